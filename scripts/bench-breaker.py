#!/usr/bin/env python3
"""Benchmark the circuit breaker (issue 11): how long from a policy's fault to a good scheduler.

In one sandbox boot, with fifo deployed as the policy to fall back to, each round deploys the
fixture tests/fixtures/policies/fault_after, which goes bad a fixed time after its attach:

- `eject`: it calls scx_bpf_error(); the kernel ejects it at once and leaves its own scheduler.
  Measured: fault to the breaker's trip (detection), trip to fifo attached again (rollback),
  and fault to fifo attached again.
- `starve`: it stops running tasks named starve*. Measured the same way, and once without the
  breaker, as the baseline of the same run: how long the kernel's own watchdog (the fixture's
  timeout_ms, 30 s) takes to eject it.

Writes breaker.json and breaker.png into the output folder and prints the table. Times are the
sandbox's (emulated, TCG) wall clock as the host sees it.

    .venv/bin/python scripts/bench-breaker.py [--rounds 3] [--out bench-results/DATE-breaker]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from schedcp.bpf import loader
from schedcp.bpf.build import build_policy
from schedcp.bpf.policy import find_policy
from schedcp.config import load_settings
from schedcp.runtime import deploy as rt
from schedcp.runtime.watch import BreakerBounds
from schedcp.sandbox import Sandbox
from schedcp.sandbox.kernel import find_kernel
from schedcp.service import Context
from schedcp.service.runtime import WatchRequest, watch

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "policies" / "fault_after"
FAULT_AFTER_S = 3.0
SPIN = "import sys, time\nopen('/proc/self/comm', 'w').write(sys.argv[1])\nwhile True:\n    pass\n"


def spinner(vm: Sandbox, name: str) -> int:
    return vm.start_background(["taskset", "-c", "1", "/usr/bin/python3", "-c", SPIN, name])


def stamp(marks: list[float]) -> Any:
    """A progress callback that notes when each step began (the last: the attach)."""
    return lambda _message: marks.append(time.time())


def plot(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    labels, detect, restored = [], [], []
    for kind in ("eject", "starve"):
        rows = data["rounds"][kind]
        labels.append(kind)
        detect.append(statistics.median(r["detect_s"] for r in rows))
        restored.append(statistics.median(r["restored_s"] for r in rows))
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], detect, 0.4, label="fault to trip (median)")
    ax.bar([i + 0.2 for i in x], restored, 0.4, label="fault to fifo attached again (median)")
    if data["kernel_watchdog_s"] is not None:
        ax.axhline(data["kernel_watchdog_s"], color="red", linestyle="--", label="starve: kernel watchdog alone")
    ax.set_xticks(list(x), labels)
    ax.set_ylabel("seconds")
    ax.set_title("circuit breaker: fault to recovery (sandbox, TCG)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench-results" / f"{dt.date.today()}-breaker")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    settings = load_settings()
    bounds = BreakerBounds(interval_s=1.0, grace_s=1.0, starvation_s=3.0, max_trips=1000, backoff_s=0)
    kernel = find_kernel(settings.kernels_dir, settings.sandbox.kernel)
    rounds: dict[str, list[dict[str, float]]] = {"eject": [], "starve": []}
    kernel_watchdog_s = None
    with tempfile.TemporaryDirectory() as tmp, Sandbox(settings) as vm:
        settings = settings.model_copy(update={"data_dir": Path(tmp) / "data"})
        ctx = Context(settings).lending(vm)

        def built(name: str, **tunables: str) -> Any:
            policy = find_policy(str(FIXTURE) if name == "fault_after" else name)
            return build_policy(policy, policy.resolve_tunables(tunables), kernel, settings.cache_dir, Path(tmp))

        fifo = built("fifo")
        faults = {
            "eject": built("fault_after", fault_after_ns=f"{FAULT_AFTER_S:g}s", fault="0"),
            "starve": built("fault_after", fault_after_ns=f"{FAULT_AFTER_S:g}s", fault="1"),
        }
        pids = [spinner(vm, "starveme"), spinner(vm, "bystander")]
        try:
            for r in range(args.rounds):
                for kind, obj in faults.items():
                    rt.deploy(vm, fifo, version_id="fifo", verification_id=None)
                    marks: list[float] = []
                    rt.deploy(vm, obj, version_id=kind, verification_id=None, progress=stamp(marks))
                    # The fixture counts from its init, during the attach: from the attach's start,
                    # so the detection time measured is an upper bound (by the load, ~1 s here).
                    fault_at = marks[-1] + FAULT_AFTER_S
                    done = watch(ctx, WatchRequest(bounds=bounds, duration_s=90, stop_after_trips=1, where="sandbox"))

                    if not done.trips or done.status.ops != "fifo":
                        raise SystemExit(f"round {r} {kind}: no trip or fifo not back: {done}")
                    trip_at = done.seen[0].at
                    back_at = done.seen[0].recovered_at or time.time()
                    row = {
                        "detect_s": round(trip_at - fault_at, 2),
                        "restored_s": round(back_at - fault_at, 2),
                        "rollback_s": round(back_at - trip_at, 2),
                    }
                    rounds[kind].append(row)
                    print(f"round {r} {kind}: {row} ({done.trips[0].evidence[0]})", flush=True)
                    rt.rollback(vm, to_default=True)
            # The baseline: the starving fixture with no breaker, until the kernel ejects it.
            attached = loader.attach(vm, vm.stage(faults["starve"].obj), "fault_after")
            fault_at = time.time() + FAULT_AFTER_S
            state = loader.wait_state(vm, "disabled", timeout=120)
            kernel_watchdog_s = round(time.time() - fault_at, 2) if state.state == "disabled" else None
            vm.run(["rm", "-rf", attached.pin_dir], timeout=30, rt=True)
            print(f"kernel watchdog alone: {kernel_watchdog_s} s after the fault", flush=True)
        finally:
            rt.rollback(vm, to_default=True)
            vm.run(["kill", *map(str, pids)], timeout=30, rt=True)
    summary = {
        kind: {
            "detect_median_s": statistics.median(r["detect_s"] for r in rows),
            "restored_median_s": statistics.median(r["restored_s"] for r in rows),
            "rollback_median_s": statistics.median(r["rollback_s"] for r in rows),
        }
        for kind, rows in rounds.items()
    }
    starve = summary["starve"]["restored_median_s"]
    data = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "fault_after_s": FAULT_AFTER_S,
        "bounds": bounds.model_dump(),
        "rounds": rounds,
        "summary": summary,
        "kernel_watchdog_s": kernel_watchdog_s,
        "starve_breaker_over_watchdog": round(starve / kernel_watchdog_s, 3) if kernel_watchdog_s else None,
    }
    (args.out / "breaker.json").write_text(json.dumps(data, indent=1))
    plot(data, args.out / "breaker.png")
    print(json.dumps(summary, indent=1))
    print(f"starvation: breaker restores fifo in {data['starve_breaker_over_watchdog']}x the kernel watchdog's time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
