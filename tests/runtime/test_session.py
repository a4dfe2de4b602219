"""run_under_policy: what the report says for a healthy run, an ejection, a wrong scheduler.

The guest is a small scripted stand-in for the sandbox (the real one is covered by tests/sandbox):
it keeps sched_ext's state, the kernel log and the policy's maps, and answers the loader's commands.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from schedcp.bpf.build import BuiltPolicy
from schedcp.bpf.loader import SCX_SYSFS
from schedcp.bpf.policy import find_policy
from schedcp.errors import DeployError, LostVMError, SandboxError, VerifierRejected
from schedcp.models import CommandResult
from schedcp.runtime.session import run_under_policy

DATA = Path(__file__).resolve().parents[1] / "data"
OBJ_NAME = "fifo8fdc"
WORKLOAD = ["sh", "-c", "echo work"]


class FakeGuest:
    """Scripted guest: `eject` is None, "load" (disabled right after attach) or "run" (during the command)."""

    def __init__(
        self,
        eject: str | None = None,
        reason_in_log: bool = True,
        ops: str = "fifo",
        bss: str = "bpftool-map-dump-bss.json",
        register_fails: bool = False,
        workload_raises: Exception | None = None,
    ) -> None:
        self.workload_raises = workload_raises
        self.eject = eject
        self.reason_in_log = reason_in_log
        self.ops_on_attach = ops
        self.bss = bss
        self.register_fails = register_fails
        self.state = "disabled"
        self.ops: str | None = None
        self.seq = 0
        self.dmesg = ["[    0.100000] Linux version 7.3.4+deb13-amd64"]
        self.calls: list[list[str]] = []
        self.workload_runs = 0

    def _log(self, text: str) -> None:
        self.dmesg.append(f"[   {len(self.dmesg)}.000000] sched_ext: {text}")

    def _kernel_ejects(self) -> None:
        if self.reason_in_log:
            self._log(f'BPF scheduler "{self.ops}" disabled (runnable task stall)')
            self._log(f"{self.ops}: watchdog failed to check in for 3.004s")
        self.state, self.ops = "disabled", None

    def run(self, argv: Sequence[str], timeout: float | None = None, **kw: object) -> CommandResult:
        argv = list(argv)
        assert timeout is not None, "every command needs a timeout"
        self.calls.append(argv)
        out, rc, err = "", 0, ""
        if argv[:2] == ["grep", "-H"] and f"{SCX_SYSFS}/state" in argv:
            out = f"{SCX_SYSFS}/state:{self.state}\n{SCX_SYSFS}/enable_seq:{self.seq}\n"
            if self.ops:
                out += f"{SCX_SYSFS}/root/ops:{self.ops}\n"
        elif argv[:2] == ["mkdir", "-p"]:
            pass
        elif argv[:3] == ["bpftool", "struct_ops", "register"]:
            if self.register_fails:
                rc, err = 255, "-- BEGIN PROG LOAD LOG --\nR0 invalid mem access\n-- END PROG LOAD LOG --"
            else:
                self.seq += 1
                self.state, self.ops = "enabled", self.ops_on_attach
                self._log(f'BPF scheduler "{self.ops}" enabled')
                if self.eject == "load":
                    self._kernel_ejects()
        elif argv[:2] == ["rm", "-rf"]:
            if self.state == "enabled":
                self._log(f'BPF scheduler "{self.ops}" disabled (unregistered from user space)')
                self.state, self.ops = "disabled", None
        elif argv == ["dmesg"]:
            out = "\n".join(self.dmesg) + "\n"
        elif argv == ["bpftool", "-j", "map", "show"]:
            out = json.dumps([{"id": 3, "name": f"{OBJ_NAME}.bss"}, {"id": 4, "name": f"{OBJ_NAME}.rodata"}])
        elif argv[:4] == ["bpftool", "-j", "map", "dump"]:
            name = {"3": self.bss, "4": "bpftool-map-dump-rodata.json"}[argv[-1]]
            out = (DATA / name).read_text()
        elif argv == WORKLOAD:
            self.workload_runs += 1
            if self.workload_raises is not None:
                raise self.workload_raises
            if self.eject == "run":
                self._kernel_ejects()
            out = "work\n"
        else:
            raise AssertionError(f"unexpected command {argv}")
        return CommandResult(argv=argv, rc=rc, stdout=out, stderr=err)

    def stage(self, path: Path) -> str:
        return f"/tmp/schedcp-vm-test/scratch/{path.name}"

    def detached(self) -> bool:
        return any(c[:2] == ["rm", "-rf"] for c in self.calls) and self.state == "disabled"


@pytest.fixture
def built() -> BuiltPolicy:
    fifo = find_policy("fifo")
    return BuiltPolicy(
        policy=fifo,
        tunables={"slice_ns": 5_000_000, "direct_idle": True},
        obj=Path(f"/nonexistent/{OBJ_NAME}.bpf.o"),
        sha256="8fdc" + "0" * 60,
    )


def test_healthy_run(built: BuiltPolicy) -> None:
    guest = FakeGuest()
    report = run_under_policy(guest, built, WORKLOAD, timeout=30)
    assert report.policy == "fifo"
    assert report.object_sha256 == built.sha256
    assert (report.state_after_load, report.ops_after_load) == ("enabled", "fifo")
    assert (report.state_after_run, report.ops_after_run) == ("enabled", "fifo")
    assert report.command is not None
    assert report.command.stdout == "work\n"
    # Our own detach logs "unregistered from user space": that is not an ejection.
    assert not report.ejected
    assert report.exit_reason is None
    assert report.ok
    assert report.detached
    assert guest.detached()
    assert report.stats == {"nr_enqueued": 14, "nr_direct_dispatched": 281, "nr_dispatched": 14}
    assert report.exit_info["kind"] == 0
    assert report.loaded_tunables == {"slice_ns": 5_000_000, "direct_idle": True}


def test_ejected_during_the_run(built: BuiltPolicy) -> None:
    guest = FakeGuest(eject="run", bss="bpftool-map-dump-bss-stall.json")
    report = run_under_policy(guest, built, WORKLOAD, timeout=30)
    assert report.state_after_load == "enabled"
    assert report.state_after_run == "disabled"
    assert report.ejected
    assert not report.ok
    assert report.exit_reason == "runnable task stall"
    assert report.exit_details == ["fifo: watchdog failed to check in for 3.004s"]
    assert report.exit_info["kind"] == 1026
    assert report.exit_info["reason"] == "runnable task stall"
    assert "schedcp_exit_info" not in report.stats
    assert report.stats == {"nr_enqueued": 7, "nr_dispatch_calls": 66}
    assert report.detached


def test_ejected_at_load_skips_the_command(built: BuiltPolicy) -> None:
    guest = FakeGuest(eject="load")
    report = run_under_policy(guest, built, WORKLOAD, timeout=30)
    assert report.state_after_load == "disabled"
    assert report.command is None
    assert guest.workload_runs == 0
    assert report.ejected
    assert report.exit_reason == "runnable task stall"
    assert report.detached


def test_ejection_without_a_reason_in_the_log(built: BuiltPolicy) -> None:
    report = run_under_policy(FakeGuest(eject="run", reason_in_log=False), built, WORKLOAD, timeout=30)
    assert report.ejected
    assert report.exit_reason == "disabled (no reason in the kernel log)"
    assert report.exit_details == []


def test_wrong_scheduler_attached_still_detaches(built: BuiltPolicy) -> None:
    guest = FakeGuest(ops="somebody_else")
    with pytest.raises(DeployError, match="somebody_else"):
        run_under_policy(guest, built, WORKLOAD, timeout=30)
    assert guest.workload_runs == 0
    assert guest.detached()


def test_verifier_rejection_runs_nothing(built: BuiltPolicy) -> None:
    guest = FakeGuest(register_fails=True)
    with pytest.raises(VerifierRejected):
        run_under_policy(guest, built, WORKLOAD, timeout=30)
    assert guest.workload_runs == 0
    assert guest.state == "disabled"


def test_a_lost_vm_is_reported_as_such_without_trying_to_detach(built: BuiltPolicy) -> None:
    guest = FakeGuest(workload_raises=LostVMError("the sandbox VM stopped answering"))
    with pytest.raises(LostVMError, match="stopped answering"):
        run_under_policy(guest, built, WORKLOAD, timeout=10)
    assert not any(c[:2] == ["rm", "-rf"] for c in guest.calls)


def test_another_error_during_the_run_still_detaches_and_keeps_the_original_error(built: BuiltPolicy) -> None:
    guest = FakeGuest(workload_raises=SandboxError("guest could not run 'x'"))
    with pytest.raises(SandboxError, match="could not run"):
        run_under_policy(guest, built, WORKLOAD, timeout=10)
    assert any(c[:2] == ["rm", "-rf"] for c in guest.calls)
    assert guest.state == "disabled"
