#!/usr/bin/env python3
"""Benchmark the MCP server's overhead (issue 12): how long a read-only tool call takes.

Starts `schedcp serve` as a subprocess over stdio, as Claude Code does, and times N calls of
each of a few read-only tools through the SDK's stdio client, against the same service function
called directly in this process (the baseline of the same run: what the protocol, the worker
thread and the audit record add). Writes mcp.json and mcp.png into the output folder and prints
the table. Uses a throwaway database and data folder.

    .venv/bin/python scripts/bench-mcp.py [--calls 100] [--out bench-results/DATE-mcp]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

from schedcp.service import Context
from schedcp.service import policies as policies_svc
from schedcp.service import runtime as runtime_svc
from schedcp.service import system as system_svc

SCHEDCP = Path(sys.executable).parent / "schedcp"
TOOLS: dict[str, tuple[dict[str, Any], Callable[[Context], Any]]] = {
    "list_policies": ({}, lambda c: policies_svc.list_policies(c)),
    "get_policy": ({"policy": "vtime", "include_source": False}, lambda c: policies_svc.show_policy(c, "vtime")),
    "deployment_status": ({}, lambda c: runtime_svc.status(c, "host")),
    "system_info": ({}, system_svc.system_info),
}


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--out", type=Path, default=Path(f"bench-results/{dt.date.today()}-mcp"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="schedcp-bench-mcp-") as tmp:
        os.environ["SCHEDCP_DATA"] = tmp
        os.environ["SCHEDCP_DB"] = f"sqlite:///{tmp}/schedcp.db"
        os.environ["SCHEDCP_CONFIG"] = f"{tmp}/none.toml"
        direct: dict[str, list[float]] = {}
        ctx = Context()
        for name, (_, fn) in TOOLS.items():
            fn(ctx)  # warm: the built-ins are imported on first use
            direct[name] = []
            for _ in range(args.calls):
                t0 = time.perf_counter()
                fn(ctx)
                direct[name].append(time.perf_counter() - t0)

        over_mcp: dict[str, list[float]] = {}
        start_s = 0.0

        async def run() -> None:
            nonlocal start_s
            params = StdioServerParameters(
                command=str(SCHEDCP), args=["serve", "--client", "bench"], env=dict(os.environ)
            )
            t0 = time.perf_counter()
            async with Client(params) as client:
                await client.list_tools()
                start_s = time.perf_counter() - t0
                for name, (arguments, _) in TOOLS.items():
                    await client.call_tool(name, arguments)
                    over_mcp[name] = []
                    for _ in range(args.calls):
                        t1 = time.perf_counter()
                        result = await client.call_tool(name, arguments)
                        over_mcp[name].append(time.perf_counter() - t1)
                        if result.is_error:
                            raise SystemExit(f"{name} failed: {result.content}")

        anyio.run(run)

    rows = []
    for name in TOOLS:
        d, m = summary(direct[name]), summary(over_mcp[name])
        rows.append(
            {"tool": name, "direct": d, "mcp_stdio": m, "ratio_median": round(m["median_ms"] / d["median_ms"], 2)}
        )
    record = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "calls_per_tool": args.calls,
        "server_start_to_first_listing_s": round(start_s, 2),
        "host": os.uname().nodename,
        "cpus": os.cpu_count(),
        "rows": rows,
        "note": "direct: the service function in this process; mcp_stdio: the tool through `schedcp serve` over "
        "stdio (JSON-RPC, a worker thread, one audit row per call in SQLite)",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mcp.json").write_text(json.dumps(record, indent=2) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r["direct"]["median_ms"] for r in rows], 0.4, label="service call (direct)")
    ax.bar([x + 0.2 for x in xs], [r["mcp_stdio"]["median_ms"] for r in rows], 0.4, label="MCP tool over stdio")
    ax.set_xticks(list(xs), [r["tool"] for r in rows])
    ax.set_ylabel(f"median of {args.calls} calls (ms)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "mcp.png", dpi=120)

    print(f"server start to first tool listing: {start_s:.2f} s")
    print(f"{'tool':20} {'direct ms':>10} {'MCP ms':>10} {'MCP p90':>10} {'ratio':>6}")
    for r in rows:
        print(
            f"{r['tool']:20} {r['direct']['median_ms']:10.2f} {r['mcp_stdio']['median_ms']:10.2f} "
            f"{r['mcp_stdio']['p90_ms']:10.2f} {r['ratio_median']:6.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
