"""The MCP server against the real sandbox: the whole loop an agent runs (create_policy ->
verify_policy -> benchmark -> deploy_policy -> deployment_status -> rollback), and a benchmark
cancelled mid-run (its VM is stopped, the server keeps serving)."""

from __future__ import annotations

import sys
import time
from typing import Any

import anyio
import pytest
from conftest import our_qemu_pids
from mcp import Client
from mcp.types import CallToolResult

from schedcp.bpf.policy import builtin_dir
from schedcp.config import load_settings
from schedcp.mcp import ServeConfig, build_server
from schedcp.sandbox import Sandbox
from schedcp.service import Context
from schedcp.service.audit import audit_log

# vtime's rare episodic failures under the stress (docs/verify.md): one more run is allowed, and
# printed, so the test is about the MCP loop rather than that policy's tail.
EPISODIC = ("has not run for", "runnable task stall", "RCU")


def text(result: CallToolResult) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


def _copy_of_vtime(name: str) -> dict[str, str]:
    """An agent's policy: vtime's code under a new name (so the test does not depend on a policy
    that could lose the performance gate by chance: vtime wins messaging 1.1-1.2x)."""
    folder = builtin_dir() / "vtime"
    source = (folder / "vtime.bpf.c").read_text()
    source = source.replace("vtime_ops", f"{name}_ops").replace('.name\t\t= "vtime"', f'.name\t\t= "{name}"')
    toml = (folder / "policy.toml").read_text().replace('name = "vtime"', f'name = "{name}"', 1)
    return {"name": name, "source": source, "policy_toml": toml, "readme": f"# {name}\n\nvtime, as an agent's copy.\n"}


@pytest.mark.sandbox
def test_an_agent_creates_verifies_benchmarks_deploys_and_rolls_back(vm: Sandbox) -> None:
    server = build_server(ServeConfig(settings=load_settings(), client="e2e", sandbox=vm))
    args = _copy_of_vtime("mcp_vtime")
    timings: dict[str, float] = {}
    progress: list[str] = []

    async def on_progress(step: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async def timed(client: Client, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        t0 = time.monotonic()
        result = await client.call_tool(tool, arguments, progress_callback=on_progress)
        timings[tool] = timings.get(tool, 0.0) + time.monotonic() - t0
        return result

    async def main() -> dict[str, CallToolResult]:
        out: dict[str, CallToolResult] = {}
        async with Client(server) as client:
            out["create"] = await timed(client, "create_policy", args)
            verify_args = {"policy": "mcp_vtime", "workload": "messaging", "quick": True}
            out["verify"] = await timed(client, "verify_policy", verify_args)
            report = out["verify"].structured_content or {}
            if not report.get("report", {}).get("passed") and any(s in text(out["verify"]) for s in EPISODIC):
                print(f"\nverify failed once with vtime's known episodic starvation; again:\n{text(out['verify'])}")
                out["verify"] = await timed(client, "verify_policy", verify_args)
            out["benchmark"] = await timed(
                client, "benchmark", {"workload": "messaging", "policy": "mcp_vtime", "repeat": 1, "size": "tiny"}
            )
            out["deploy"] = await timed(client, "deploy_policy", {"policy": "mcp_vtime", "target": "sandbox"})
            out["status"] = await timed(client, "deployment_status", {"target": "sandbox"})
            out["rollback"] = await timed(client, "rollback", {"target": "sandbox"})
            out["after"] = await timed(client, "deployment_status", {"target": "sandbox"})
        return out

    t0 = time.monotonic()
    out = anyio.run(main)
    print(f"\nend-to-end over MCP in {time.monotonic() - t0:.0f} s: {timings}", file=sys.stderr)
    for step, result in out.items():
        assert not result.is_error, f"{step}: {text(result)}"
    verified = out["verify"].structured_content["report"]
    assert verified["passed"], text(out["verify"])
    assert out["verify"].structured_content["recorded"] is not None
    bench = out["benchmark"].structured_content
    assert bench["recorded_version"] == out["create"].structured_content["added"]["version"]
    status = out["status"].structured_content
    assert (status["state"], status["ops"], status["ours"]) == ("enabled", "mcp_vtime", True)
    assert out["after"].structured_content["state"] != "enabled"
    assert any("sandbox" in p or "stress" in p or "run" in p for p in progress), progress
    tools = [e.tool for e in audit_log(Context(), client="e2e", limit=20).entries]
    assert {"create_policy", "verify_policy", "benchmark", "deploy_policy", "rollback"} <= set(tools)
    assert vm.run(["cat", "/sys/kernel/sched_ext/state"], timeout=30).stdout.strip() == "disabled"


@pytest.mark.sandbox
def test_a_cancelled_benchmark_stops_its_vm_and_the_server_keeps_serving() -> None:
    """The server boots a VM of its own here (none lent): cancelling the call must stop it."""
    before = our_qemu_pids()
    server = build_server(ServeConfig(settings=load_settings(), client="cancel-test"))
    seen: list[str] = []

    async def main() -> tuple[set[int], CallToolResult]:
        async with Client(server) as client:
            running = anyio.Event()

            async def on_progress(step: float, total: float | None, message: str | None) -> None:
                seen.append(message or "")
                if "sandbox up" in (message or ""):
                    running.set()

            async def bench(scope: anyio.CancelScope) -> None:
                with scope:
                    await client.call_tool(
                        "benchmark",
                        {"workload": "messaging", "policy": "fifo", "repeat": 5},
                        progress_callback=on_progress,
                    )

            scope = anyio.CancelScope()
            async with anyio.create_task_group() as tg:
                tg.start_soon(bench, scope)
                with anyio.fail_after(240):
                    await running.wait()
                await anyio.sleep(5)  # into the benchmark's build and runs
                during = our_qemu_pids() - before
                scope.cancel()
            # The server finishes the job's cleanup (VM stopped) before it answers anything else.
            with anyio.fail_after(120):
                while our_qemu_pids() - before:
                    await anyio.sleep(0.5)
            return during, await client.call_tool("list_policies", {})

    during, after = anyio.run(main)
    assert during, f"the benchmark's VM was not seen running (progress: {seen})"
    assert not (our_qemu_pids() - before), "the cancelled benchmark left its VM running"
    assert not after.is_error
    entry = audit_log(Context(), tool="benchmark", client="cancel-test").entries[0]
    assert entry.outcome == "cancelled", entry
