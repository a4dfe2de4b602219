"""attach / read_state / detach / read_datasec against a scripted CommandRunner (and real sh)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from schedcp.bpf import loader
from schedcp.bpf.loader import PIN_ROOT, SCX_SYSFS, Attached, attach, detach, read_datasec, read_state
from schedcp.errors import DeployError, SchedcpError, VerifierRejected
from schedcp.models import CommandResult
from schedcp.runner import HostRunner

DATA = Path(__file__).resolve().parents[1] / "data"
OBJ = "/tmp/schedcp-vm-x/scratch/fifo8fdc.bpf.o"
PIN = f"{PIN_ROOT}/fifo8fdc"

VERIFIER_LOG = """\
libbpf: prog 'reject_enqueue': BPF program load failed: Permission denied
libbpf: prog 'reject_enqueue': -- BEGIN PROG LOAD LOG --
0: R1=ctx() R10=fp0
; void BPF_PROG(reject_enqueue, struct task_struct *p, u64 enq_flags) @ reject.bpf.c:22
8: (79) r1 = *(u64 *)(r0 +0)
R0 invalid mem access 'map_value_or_null'
processed 9 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
-- END PROG LOAD LOG --
libbpf: prog 'reject_enqueue': failed to load: -13
libbpf: failed to load object '/tmp/schedcp-vm-x/scratch/reje1234.bpf.o'
Error: failed to load object file
"""


def _result(argv: Sequence[str], rc: int = 0, stdout: str = "", stderr: str = "", **kw: bool) -> CommandResult:
    return CommandResult(argv=list(argv), rc=rc, stdout=stdout, stderr=stderr, **kw)


class FakeRunner:
    """A CommandRunner whose answers are scripted per kind of command; records every call."""

    def __init__(
        self,
        states: Sequence[str] = ("disabled\n-\n0\n",),
        register: tuple[int, str, str] = (0, "", ""),
        register_timed_out: bool = False,
        mkdir: tuple[int, str] = (0, ""),
        rm_rc: int = 0,
        maps: Sequence[dict[str, object]] = (),
        dumps: Mapping[int, str] | None = None,
        sysrq_disables: bool = False,
    ) -> None:
        self.sysrq_disables = sysrq_disables
        self.states = list(states)  # stdout of successive state reads; the last one repeats
        self.register = register
        self.register_timed_out = register_timed_out
        self.mkdir = mkdir
        self.rm_rc = rm_rc
        self.maps = list(maps)
        self.dumps = dict(dumps or {})
        self.calls: list[list[str]] = []

    def run(
        self,
        argv: Sequence[str],
        timeout: float | None = None,
        *,
        check: bool = False,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        input: bytes | None = None,
        rt: bool = False,
    ) -> CommandResult:
        assert rt, f"{argv[0]} must run real-time: a stalling policy would freeze it"
        argv = list(argv)
        assert timeout is not None, "every command needs a timeout"
        assert timeout > 0
        self.calls.append(argv)
        if argv[:2] == ["grep", "-H"] and f"{SCX_SYSFS}/state" in argv:
            # states are written as the three files' contents, one a line ("-": no such file)
            text = self.states.pop(0) if len(self.states) > 1 else self.states[0]
            files = [a for a in argv if a.startswith(SCX_SYSFS)]
            out = "".join(f"{f}:{v}\n" for f, v in zip(files, text.splitlines(), strict=False) if v != "-")
            return _result(argv, stdout=out)
        if argv[:2] == ["mkdir", "-p"]:
            return _result(argv, self.mkdir[0], stderr=self.mkdir[1])
        if argv[:3] == ["bpftool", "struct_ops", "register"]:
            rc, out, err = self.register
            return _result(argv, rc, out, err, timed_out=self.register_timed_out)
        if argv == ["tee", "/proc/sysrq-trigger"]:
            if self.sysrq_disables:
                self.states = ["disabled\n-\n1\n"]
            return _result(argv)
        if argv[:2] == ["rm", "-rf"]:
            return _result(argv, self.rm_rc, stderr="rm: cannot remove" if self.rm_rc else "")
        if argv == ["bpftool", "-j", "map", "show"]:
            return _result(argv, stdout=json.dumps(self.maps))
        if argv[:4] == ["bpftool", "-j", "map", "dump"]:
            return _result(argv, stdout=self.dumps[int(argv[-1])])
        raise AssertionError(f"unexpected command {argv}")

    def stage(self, path: Path) -> str:
        return str(path)

    def registers(self) -> list[list[str]]:
        return [c for c in self.calls if "struct_ops register" in " ".join(c)]


class SysfsRunner(HostRunner):
    """Runs the real commands with real sh, with /sys/kernel/sched_ext moved to a test folder."""

    def __init__(self, sysfs: Path) -> None:
        super().__init__(default_timeout=10)
        self.sysfs = sysfs

    def run(self, argv: Sequence[str], timeout: float | None = None, **kw: object) -> CommandResult:
        return super().run([a.replace(SCX_SYSFS, str(self.sysfs)) for a in argv], timeout, **kw)  # type: ignore[arg-type]


# -- read_state --------------------------------------------------------------------------------


def test_read_state_parses_enabled() -> None:
    runner = FakeRunner(states=["enabled\nfifo\n3\n"])
    state = read_state(runner)
    assert state.state == "enabled"
    assert state.ops == "fifo"
    assert state.enable_seq == 3
    assert state.enabled
    (call,) = runner.calls
    assert call[:2] == ["grep", "-H"], "one process, no shell: a shell's children would not be real-time"


def test_read_state_parses_disabled() -> None:
    state = read_state(FakeRunner(states=["disabled\n-\n7\n"]))
    assert state.state == "disabled"
    assert state.ops is None
    assert state.enable_seq == 7
    assert not state.enabled


class FailingStateRunner(FakeRunner):
    def __init__(self, rc: int, stdout: str, stderr: str) -> None:
        super().__init__()
        self.answer = (rc, stdout, stderr)

    def run(self, argv: Sequence[str], timeout: float | None = None, **kw: object) -> CommandResult:
        rc, out, err = self.answer
        return _result(argv, rc, out, err)


@pytest.mark.parametrize(
    ("rc", "stdout", "stderr"),
    [
        (1, "", "cat: /sys/kernel/sched_ext/state: No such file or directory"),
        (0, "", ""),
        (0, "enabled\n", ""),
    ],
)
def test_read_state_failures(rc: int, stdout: str, stderr: str) -> None:
    with pytest.raises(DeployError, match="CONFIG_SCHED_CLASS_EXT"):
        read_state(FailingStateRunner(rc, stdout, stderr))


def _sysfs(tmp_path: Path, state: str | None, ops: str | None, seq: str | None) -> Path:
    root = tmp_path / "sched_ext"
    (root / "root").mkdir(parents=True)
    for rel, value in (("state", state), ("root/ops", ops), ("enable_seq", seq)):
        if value is not None:
            (root / rel).write_text(value + "\n")
    return root


def test_read_state_script_with_real_sh(tmp_path: Path) -> None:
    runner = SysfsRunner(_sysfs(tmp_path, "enabled", "fifo", "12"))
    state = read_state(runner)
    assert (state.state, state.ops, state.enable_seq) == ("enabled", "fifo", 12)


def test_read_state_script_without_a_scheduler(tmp_path: Path) -> None:
    # The kernel has no root/ops file while no BPF scheduler is attached.
    state = read_state(SysfsRunner(_sysfs(tmp_path, "disabled", None, "4")))
    assert (state.state, state.ops, state.enable_seq) == ("disabled", None, 4)


def test_read_state_on_a_kernel_without_sched_ext(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="CONFIG_SCHED_CLASS_EXT"):
        read_state(SysfsRunner(tmp_path / "absent"))


# -- attach --------------------------------------------------------------------------------------


def test_attach_success() -> None:
    runner = FakeRunner(states=["disabled\n-\n0\n", "enabled\nfifo\n1\n"], register=(0, "", "registered"))
    attached = attach(runner, OBJ, "fifo")
    assert attached.name == "fifo"
    assert attached.obj_name == "fifo8fdc"
    assert attached.pin_dir == PIN
    assert attached.state is not None
    assert attached.state.enabled
    assert attached.state.ops == "fifo"
    assert attached.load_log == "registered"
    assert attached.load_s >= 0
    # The paths travel as arguments, never pasted into the shell script.
    (register,) = runner.registers()
    assert register == ["bpftool", "struct_ops", "register", OBJ, PIN]
    assert runner.calls.index(["mkdir", "-p", PIN]) < runner.calls.index(register)
    assert not [c for c in runner.calls if c[:2] == ["rm", "-rf"]]


def test_attach_waits_while_enabling() -> None:
    runner = FakeRunner(states=["disabled\n-\n0\n", "enabling\nfifo\n1\n", "enabled\nfifo\n1\n"])
    attached = attach(runner, OBJ, "fifo")
    assert attached.state is not None
    assert attached.state.state == "enabled"


def test_attach_reports_an_ejected_policy_without_raising() -> None:
    # Attached, then disabled by the kernel at once: the caller decides what that means.
    runner = FakeRunner(states=["disabled\n-\n0\n", "disabled\n-\n1\n"])
    attached = attach(runner, OBJ, "stall")
    assert attached.state is not None
    assert attached.state.state == "disabled"


@pytest.mark.parametrize("state", ["enabled\nscx_rusty\n2\n", "enabling\nscx_rusty\n2\n"])
def test_attach_refuses_when_another_scheduler_is_attached(state: str) -> None:
    runner = FakeRunner(states=[state])
    with pytest.raises(DeployError, match="detach it first") as info:
        attach(runner, OBJ, "fifo")
    assert "scx_rusty" in str(info.value)
    assert runner.registers() == []


def test_attach_verifier_rejection() -> None:
    runner = FakeRunner(register=(255, "", VERIFIER_LOG))
    with pytest.raises(VerifierRejected, match="verifier rejected reject") as info:
        attach(runner, OBJ, "reject")
    assert "-- BEGIN PROG LOAD LOG --" in info.value.log
    assert "R0 invalid mem access 'map_value_or_null'" in info.value.log
    assert "R0 invalid mem access" in str(info.value)
    assert ["rm", "-rf", PIN] in runner.calls


def test_attach_other_failure_is_a_deploy_error() -> None:
    stderr = "Error: failed to pin link at /sys/fs/bpf/schedcp/fifo8fdc: File exists\n"
    runner = FakeRunner(register=(255, "", stderr))
    with pytest.raises(DeployError) as info:
        attach(runner, OBJ, "fifo")
    assert not isinstance(info.value, VerifierRejected)
    message = str(info.value)
    assert "exit 255" in message
    assert "File exists" in message
    assert ["rm", "-rf", PIN] in runner.calls
    # The pin folder is removed after the failed register, not before.
    assert runner.calls.index(["rm", "-rf", PIN]) > runner.calls.index(runner.registers()[0])


def test_attach_mkdir_failure_is_not_a_verifier_rejection() -> None:
    stderr = "mkdir: cannot create directory '/sys/fs/bpf/schedcp': Permission denied\n"
    runner = FakeRunner(mkdir=(1, stderr))
    with pytest.raises(DeployError, match="cannot create the pin folder") as info:
        attach(runner, OBJ, "fifo")
    assert not isinstance(info.value, VerifierRejected)
    assert runner.registers() == [], "nothing may be loaded without its pin folder"


def test_attach_timeout_is_treated_as_rejected() -> None:
    runner = FakeRunner(register=(-9, "", "libbpf: loading..."), register_timed_out=True)
    with pytest.raises(VerifierRejected, match="did not finish within 7 s"):
        attach(runner, OBJ, "fifo", timeout=7)
    assert ["rm", "-rf", PIN] in runner.calls


def test_long_verifier_logs_keep_head_and_tail() -> None:
    body = "\n".join(f"{i}: (b7) r{i % 10} = 0" for i in range(1000))
    log = f"-- BEGIN PROG LOAD LOG --\n{body}\nR0 invalid mem access 'scalar'\n-- END PROG LOAD LOG --"
    with pytest.raises(VerifierRejected) as info:
        attach(FakeRunner(register=(255, "", log)), OBJ, "fifo")
    kept = info.value.log.splitlines()
    assert len(kept) == 201
    assert kept[0] == "-- BEGIN PROG LOAD LOG --"
    assert "lines omitted" in kept[20]
    assert kept[-2] == "R0 invalid mem access 'scalar'"


# -- detach --------------------------------------------------------------------------------------


def _attached() -> Attached:
    return Attached(name="fifo", obj_name="fifo8fdc", pin_dir=PIN, load_s=0.1)


def test_detach_removes_the_pin_and_waits_for_disabled() -> None:
    runner = FakeRunner(states=["disabling\nfifo\n1\n", "disabled\n-\n1\n"])
    state = detach(runner, _attached())
    assert state.state == "disabled"
    assert runner.calls[0] == ["rm", "-rf", PIN]


def test_detach_rm_failure() -> None:
    runner = FakeRunner(rm_rc=1)
    with pytest.raises(DeployError, match=f"cannot remove {PIN}"):
        detach(runner, _attached())


def test_detach_scheduler_stays_enabled() -> None:
    runner = FakeRunner(states=["enabled\nfifo\n1\n"])
    with pytest.raises(DeployError, match="fifo still enabled"):
        detach(runner, _attached(), timeout=0.2)
    assert ["tee", "/proc/sysrq-trigger"] in runner.calls, "SysRq-S was tried before giving up"


def test_detach_falls_back_to_sysrq_when_the_pin_is_not_enough() -> None:
    # A stalling policy: removing the pin does not disable it (the link's release waits on
    # kernel threads that never run); SysRq-S does.
    runner = FakeRunner(states=["enabled\nfifo\n1\n"], sysrq_disables=True)
    state = detach(runner, _attached(), timeout=0.2)
    assert state.state == "disabled"
    rm = runner.calls.index(["rm", "-rf", _attached().pin_dir])
    assert rm < runner.calls.index(["tee", "/proc/sysrq-trigger"]), "the pin first, SysRq-S only after"


# -- read_datasec --------------------------------------------------------------------------------


def test_read_datasec_dumps_the_newest_map_of_that_name() -> None:
    maps = [
        {"id": 4, "name": "fifo8fdc.bss"},  # left over from an earlier load of the same object
        {"id": 9, "name": "fifo8fdc.bss"},
        {"id": 10, "name": "fifo8fdc.rodata"},
        {"id": 12, "name": "othe1234.bss"},
    ]
    dumps = {9: (DATA / "bpftool-map-dump-bss.json").read_text()}
    runner = FakeRunner(maps=maps, dumps=dumps)
    values = read_datasec(runner, _attached(), "bss")
    assert values["nr_direct_dispatched"] == 281
    assert ["bpftool", "-j", "map", "dump", "id", "9"] in runner.calls


def test_read_datasec_rodata() -> None:
    maps = [{"id": 10, "name": "fifo8fdc.rodata"}]
    dumps = {10: (DATA / "bpftool-map-dump-rodata.json").read_text()}
    values = read_datasec(FakeRunner(maps=maps, dumps=dumps), _attached(), "rodata")
    assert values == {"slice_ns": 5_000_000, "direct_idle": True}


def test_read_datasec_without_the_map() -> None:
    runner = FakeRunner(maps=[{"id": 1, "name": "other.bss"}])
    assert read_datasec(runner, _attached(), "bss") == {}
    assert not [c for c in runner.calls if "dump" in c]


def test_read_datasec_bpftool_failure() -> None:
    class Broken(FakeRunner):
        def run(self, argv: Sequence[str], timeout: float | None = None, **kw: object) -> CommandResult:
            return _result(argv, 1, stderr="Error: can't get next map: Operation not permitted")

    with pytest.raises(SchedcpError, match="Operation not permitted"):
        read_datasec(Broken(), _attached(), "bss")


def test_dmesg_lines() -> None:
    class Dmesg(FakeRunner):
        def run(self, argv: Sequence[str], timeout: float | None = None, **kw: object) -> CommandResult:
            assert argv == ["dmesg"]
            return _result(argv, stdout=(DATA / "dmesg-fifo-then-stall.txt").read_text())

    lines = loader.dmesg_lines(Dmesg())
    assert len(lines) == 6
    assert loader.find_ejection(lines, "stall") is not None
