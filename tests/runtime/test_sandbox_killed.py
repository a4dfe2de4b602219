"""A schedcp killed mid-deploy (SIGKILL: no cleanup of ours runs) leaves a target that the next
schedcp can always bring back: `rollback --default` ends with the kernel's own scheduler, and a
new deploy succeeds. The deploy runs inside the sandbox guest (a sched_ext host), in a Python
of its own that `timeout -s KILL` kills at several points of the deploy."""

from __future__ import annotations

import json
import sys

import pytest

from schedcp.bpf.build import BuiltPolicy
from schedcp.runtime import deploy as rt
from schedcp.sandbox import Sandbox

# The deploy, SIGKILLed by itself at a chosen point (deterministic, unlike a timer: Python's
# imports alone take 2-15 s in the emulated guest, depending on the page cache).
DEPLOY = """
import json, os, pathlib, signal, sys, threading, time
from schedcp.bpf.build import BuiltPolicy
from schedcp.bpf.policy import find_policy
from schedcp.runner import HostRunner
from schedcp.runtime import deploy as rt
built = BuiltPolicy(find_policy(sys.argv[1]), json.loads(sys.argv[2]), pathlib.Path(sys.argv[3]), sys.argv[4])
point = sys.argv[5]
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
def progress(message):
    print(message, flush=True)
    if point == "before-detach" and message.startswith("detaching"):
        die()
    if point == "before-attach" and message.startswith("attaching"):
        die()
    if point == "mid-attach" and message.startswith("attaching"):
        threading.Thread(target=lambda: (time.sleep(0.3), die())).start()
write = rt._write_json
def write_json(runner, path, data):
    if point == "before-record" and path == rt.CURRENT:
        die()
    write(runner, path, data)
rt._write_json = write_json
rt.deploy(HostRunner(), built, version_id="killed-mid-deploy", verification_id=None, progress=progress)
print("deployed", flush=True)
"""
POINTS = ("before-detach", "before-attach", "mid-attach", "before-record")


def _killed_deploy(vm: Sandbox, built: BuiltPolicy, point: str) -> list[str]:
    """Deploy `built` from inside the guest, killed at `point`; what it said before it died."""
    argv = [sys.executable, "-c", DEPLOY, built.policy.name, json.dumps(built.tunables), vm.stage(built.obj)]
    res = vm.run([*argv, built.sha256, point], timeout=180, rt=True)
    assert res.rc == -9 or res.rc == 137, f"{point}: not killed (exit {res.rc}): {res.stdout} {res.stderr[-2000:]}"
    return res.stdout.splitlines()


@pytest.mark.sandbox
def test_a_deploy_killed_at_any_point_leaves_a_recoverable_target(vm: Sandbox, build: object) -> None:
    assert callable(build)
    vtime: BuiltPolicy = build("vtime")
    fifo: BuiltPolicy = build("fifo")
    outcomes = []
    try:
        for point in POINTS:
            rt.deploy(vm, vtime, version_id="before", verification_id=None)
            said = _killed_deploy(vm, fifo, point)  # replaces vtime: detach, then attach
            seen = rt.read_status(vm)
            outcomes.append(f"killed {point} ({'; '.join(said)}): {seen.scheduler}")
            assert "deployed" not in said
            if point == "before-detach":
                assert seen.ops == "vtime", outcomes[-1]
                assert seen.ours, outcomes[-1]
            if point == "before-record":
                assert seen.ops == "fifo", outcomes[-1]
                assert seen.ours, "attached and pinned: ours, though its record was never written"
                assert seen.deployment is None, "the stale record (vtime's) is not shown for fifo"
            back, _ = rt.rollback(vm, to_default=True)
            assert back.state == "disabled", outcomes[-1]
            assert back.pinned == [], outcomes[-1]
            again, _ = rt.deploy(vm, fifo, version_id="after", verification_id=None)
            now = rt.read_status(vm)
            assert now.ours, outcomes[-1]
            assert now.ops == "fifo"
            assert now.deployment == again
            rt.rollback(vm, to_default=True)
        print("\n".join(outcomes), file=sys.stderr)
    finally:
        rt.rollback(vm, to_default=True)
