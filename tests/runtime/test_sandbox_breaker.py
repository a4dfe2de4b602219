"""The circuit breaker on a real sched_ext kernel (the sandbox guest stands in for the host).

One ordered test: fifo is deployed and watched until it counts as last-known-good; then a
policy that ejects itself a few seconds after its attach, and one that starves tasks named
starve* (which the kernel's 30 s watchdog would catch much later), are deployed on top of it.
The breaker must trip on each with the kernel's reason or the starving task named, put fifo
back after the first, hold the kernel's own scheduler after the second (two trips in the
window), keep `restore` from undoing that hold, and restore fifo once the hold is cleared.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from schedcp.config import Settings
from schedcp.runtime import deploy as rt
from schedcp.runtime.watch import BreakerBounds, load_state, save_state
from schedcp.sandbox import Sandbox
from schedcp.service import Context
from schedcp.service.runtime import RollbackRequest, WatchRequest, history, restore, rollback, watch

# A spinner that names itself starveme (the fixture starves tasks named starve*).
SPIN = (
    "import sys, time\n"
    "open('/proc/self/comm', 'w').write(sys.argv[1])\n"
    "end = time.time() + 300\n"
    "while time.time() < end:\n"
    "    pass\n"
)


def _spinner(vm: Sandbox, name: str) -> int:
    """A CPU spinner on guest CPU 1 called `name`, outliving the command."""
    return vm.start_background(["taskset", "-c", "1", "/usr/bin/python3", "-c", SPIN, name])


@pytest.mark.sandbox
def test_breaker_rolls_back_an_ejection_and_a_starvation_then_holds(
    settings: Settings, vm: Sandbox, build: Any, tmp_path: Path
) -> None:
    # The breaker's memory lives in the data folder: this test's own, never the user's.
    settings = settings.model_copy(update={"data_dir": tmp_path / "data"})
    ctx = Context(settings).lending(vm)
    state_path = settings.data_dir / "runtime" / "breaker-sandbox.json"
    bounds = BreakerBounds(interval_s=1.0, grace_s=1.0, starvation_s=3.0, good_after_s=3.0, max_trips=2)
    spinners: list[int] = []
    try:
        fifo = build("fifo")
        rt.deploy(vm, fifo, version_id="fifo-under-test", verification_id=None)
        calm = watch(ctx, WatchRequest(bounds=bounds, duration_s=6, where="sandbox"))
        assert calm.trips == [], [t.evidence for t in calm.trips]
        assert calm.looks >= 3
        lkg = load_state(state_path).last_known_good
        assert lkg is not None, "fifo ran past good_after_s without a trip: last-known-good"
        assert lkg.deployment.object_sha256 == fifo.sha256

        # 1. Ejected by the kernel 4 s after its attach: fifo comes back.
        eject = build("fault_after", fault_after_ns="4s", fault="0")
        rt.deploy(vm, eject, version_id="eject-under-test", verification_id=None)
        attached = time.time()
        first = watch(ctx, WatchRequest(bounds=bounds, duration_s=60, stop_after_trips=1, where="sandbox"))
        print("\n".join(first.trips[0].evidence if first.trips else ["no trip"]), file=sys.stderr)
        assert len(first.trips) == 1
        trip = first.trips[0]
        assert trip.kind == "breaker"
        assert trip.reason == "circuit breaker: ejected"
        assert trip.policy == "fault_after"
        assert "the deliberate fault" in trip.evidence[0], trip.evidence
        assert "restored the previous policy fifo" in trip.evidence
        assert first.status.ops == "fifo"
        assert first.status.ours
        print(f"ejection to restored fifo: {time.time() - attached - 4:.1f} s after the fault", file=sys.stderr)

        # 2. Starves tasks named starve* 3 s after its attach; two trips in the window: hold.
        spinners = [_spinner(vm, "starveme"), _spinner(vm, "bystander")]
        starve = build("fault_after", fault_after_ns="3s", fault="1")
        rt.deploy(vm, starve, version_id="starve-under-test", verification_id=None)
        second = watch(ctx, WatchRequest(bounds=bounds, duration_s=60, stop_after_trips=1, where="sandbox"))
        print("\n".join(second.trips[0].evidence if second.trips else ["no trip"]), file=sys.stderr)
        assert len(second.trips) == 1
        trip = second.trips[0]
        assert trip.reason == "circuit breaker: starvation"
        assert "(starveme, nice 0) has been runnable without running" in trip.evidence[0], trip.evidence
        assert any("holding the kernel's own scheduler" in s for s in trip.evidence), trip.evidence
        assert second.status.state == "disabled", "held: the kernel's own scheduler, not fifo"
        state = load_state(state_path)
        assert state.hold
        assert [t.kind for t in state.trips] == ["ejected", "starvation"]
        assert state.last_known_good is not None
        assert state.last_known_good.deployment.object_sha256 == fifo.sha256, "fifo never tripped: still good"

        # 3. Restore (at boot) honours the hold; once cleared, it brings fifo back.
        held = restore(ctx, "sandbox")
        assert "holds the kernel's own scheduler" in held.steps[0]
        assert held.status.state == "disabled"
        state.hold = False
        save_state(state_path, state)
        back = restore(ctx, "sandbox")
        assert back.status.ops == "fifo", back.steps
        assert back.status.ours
        assert back.event is not None
        assert back.event.kind == "restore"

        kinds = [(e.kind, e.policy) for e in reversed(history(ctx, where="sandbox"))]
        assert kinds == [("breaker", "fault_after"), ("breaker", "fault_after"), ("restore", "fifo")]
    finally:
        rollback(ctx, RollbackRequest(to_default=True, where="sandbox", reason="test cleanup"))
        if spinners:
            vm.run(["kill", *map(str, spinners)], timeout=30, rt=True)
