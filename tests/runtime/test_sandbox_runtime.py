"""The runtime on a real sched_ext kernel: the sandbox guest stands in for the host.

One test, in order, since each step starts from what the last one left: refused without a
report; verified; deployed through a canary (two spinners run it in partial mode, then it is
widened); status truthful (also from a fresh Context, as after schedcp restarts); a canary
whose bound cannot hold fails and the deployment before it comes back; a scheduler attached by
something else is named as such and not replaced unless asked; rollbacks; and the history that
recorded every step. It shares the session's VM and
leaves it with no scheduler attached, whatever happens.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from schedcp.bpf import loader
from schedcp.bpf.policy import find_policy
from schedcp.config import Settings
from schedcp.errors import DeployError, NotVerified
from schedcp.sandbox import Sandbox
from schedcp.service import Context
from schedcp.service.runtime import DeployRequest, RollbackRequest, deploy, history, rollback, status
from schedcp.service.verify import VerifyRequest, verify

SPIN = "import os, time\nend = time.time() + 300\nwhile time.time() < end:\n    pass\n"


def _spinners(vm: Sandbox, n: int) -> list[int]:
    """n CPU spinners on one guest CPU (so they wait for each other), outliving the command."""
    return [vm.start_background(["taskset", "-c", "1", "/usr/bin/python3", "-c", SPIN]) for _ in range(n)]


@pytest.mark.sandbox
def test_deploy_status_foreign_scheduler_rollback_and_history(settings: Settings, vm: Sandbox, build: Any) -> None:
    ctx = Context(settings).lending(vm)
    foreign_pin = None
    spinners: list[int] = []
    try:
        with pytest.raises(NotVerified, match="schedcp verify vtime@"):
            deploy(ctx, DeployRequest(policy="vtime", where="sandbox", reason="before verification"))
        assert status(ctx, "sandbox").state == "disabled", "a refused deploy attached nothing"

        verified = verify(ctx, VerifyRequest(policy="vtime", workload="messaging", quick=True))
        print(f"\n{verified.report.render()}", file=sys.stderr)
        assert verified.report.passed, verified.report.render()

        spinners = _spinners(vm, 2)
        canary = [str(p) for p in spinners]
        done = deploy(ctx, DeployRequest(policy="vtime", where="sandbox", reason="first", canary=canary, canary_s=4))
        print("\n".join(done.steps), file=sys.stderr)
        said = next(s for s in done.steps if s.startswith("canary: 2 task(s) on vtime (partial mode)"))
        assert not said.startswith("canary: 2 task(s) on vtime (partial mode) for 4 s ran 0 ms")
        assert "canary passed: widening to every task" in done.steps
        assert done.status.state == "enabled"
        assert done.status.ops == "vtime"
        assert done.status.ours
        assert done.deployment.verification_id == verified.recorded
        assert done.status.deployment == done.deployment
        # A new Context (schedcp restarted): the kernel still runs it, and we still know it is ours.
        again = status(Context(settings).lending(vm), "sandbox")
        assert again.ours
        assert again.deployment is not None
        assert again.deployment.version_id == verified.report.version_id
        assert "deployed by schedcp" in again.scheduler
        assert again.switch_all is True
        declared = set(find_policy("vtime").spec.stats)
        assert declared <= set(again.stats), f"the policy's own counters: {again.stats}"
        assert again.stats["nr_dispatched"] > 0

        # A canary whose bound cannot hold (two spinners on one CPU wait ~a slice per turn):
        # refused after the canary phase, and the deployment before it is back in place.
        with pytest.raises(DeployError, match=r"waited too long for a CPU.*restored the previous policy vtime"):
            deploy(
                ctx,
                DeployRequest(
                    policy="vtime",
                    where="sandbox",
                    reason="strict canary",
                    canary=canary,
                    canary_s=3,
                    canary_latency_ms=0.001,
                ),
            )
        kept = status(ctx, "sandbox")
        assert kept.ours
        assert kept.switch_all is True
        assert kept.deployment is not None
        assert kept.deployment.deployed_at == done.deployment.deployed_at
        # A canary that names no task changes nothing.
        with pytest.raises(DeployError, match="names no running task"):
            deploy(ctx, DeployRequest(policy="vtime", where="sandbox", reason="no such canary", canary=["no-such-cmd"]))
        same = status(ctx, "sandbox").deployment
        assert same is not None
        assert same.deployed_at == done.deployment.deployed_at
        policies = vm.run(["sh", "-c", " ".join(f"chrt -p {p};" for p in spinners)], timeout=30).stdout
        assert "SCHED_OTHER" in policies, "the canary's tasks are back in their own class"

        # Back to the kernel's own; then something else attaches a scheduler (pinned elsewhere).
        back = rollback(ctx, RollbackRequest(to_default=True, where="sandbox", reason="make room"))
        assert back.status.state == "disabled"
        fifo = build("fifo")
        attached = loader.attach(vm, vm.stage(fifo.obj), "fifo")
        foreign_pin = attached.pin_dir
        seen = status(ctx, "sandbox")
        assert seen.ops == "fifo"
        assert not seen.ours
        assert "not schedcp" in seen.scheduler
        with pytest.raises(DeployError, match="attached by something else"):
            deploy(ctx, DeployRequest(policy="vtime", where="sandbox", reason="over a foreign one"))
        assert status(ctx, "sandbox").ops == "fifo", "a refused deploy left the foreign scheduler alone"
        with pytest.raises(DeployError, match="rollback --default"):
            rollback(ctx, RollbackRequest(where="sandbox"))

        taken = deploy(ctx, DeployRequest(policy="vtime", where="sandbox", replace=True, reason="take over"))
        assert taken.status.ours
        assert taken.status.ops == "vtime"
        assert any("not schedcp's" in s for s in taken.steps)

        # No previous deployment of ours is kept (the one before was not ours): default.
        undone = rollback(ctx, RollbackRequest(where="sandbox", reason="done"))
        assert undone.status.state == "disabled"

        events = list(reversed(history(ctx, where="sandbox")))
        assert [(e.kind, e.reason) for e in events] == [
            ("refused", "before verification"),
            ("deploy", "first"),
            ("failed", "strict canary"),
            ("refused", "no such canary"),
            ("rollback", "make room"),
            ("refused", "over a foreign one"),
            ("deploy", "take over"),
            ("rollback", "done"),
        ]
        assert {e.host for e in events} == {done.status.host}
        assert events[1].tunables == verified.report.tunables
        assert events[1].object_sha256 == done.deployment.object_sha256
    finally:
        rollback(ctx, RollbackRequest(to_default=True, where="sandbox", reason="test cleanup"))
        if foreign_pin is not None:
            vm.run(["rm", "-rf", foreign_pin], timeout=30, rt=True)
        if spinners:
            vm.run(["kill", *map(str, spinners)], timeout=30, rt=True)
