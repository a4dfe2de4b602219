"""Attach, inspect and detach a compiled sched_ext policy through bpftool, wherever it runs.

Why bpftool rather than a ctypes binding to libbpf: `bpftool struct_ops register OBJ DIR`
opens, verifies, attaches *and pins* the struct_ops link in one audited tool that Debian
ships matched to its libbpf; pinning is what keeps the scheduler attached after the loader
exits, so no long-lived loader process of ours has to stay alive (and be kept schedulable
under a scheduler that may stall). Tunables are already in the object (rodata.py); stats are
read with `bpftool map dump`, which renders values through the object's BTF.

Never trust the loader's exit code alone: a scheduler can attach and be disabled by the
kernel a moment later. Every step re-reads /sys/kernel/sched_ext.

Every command here runs real-time (`rt=True`): bpftool, the state reads, removing a pin and
dmesg must keep working while the policy being loaded stalls every normal task. As normal
tasks they stalled with it: a policy that lost tasks during load once made a 30 s state read
time out, reported as "this kernel may lack sched_ext" instead of the kernel's ejection.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from schedcp.errors import DeployError, SchedcpError, VerifierRejected
from schedcp.runner import CommandRunner

log = logging.getLogger(__name__)

SCX_SYSFS = "/sys/kernel/sched_ext"
PIN_ROOT = "/sys/fs/bpf/schedcp"
_DISABLED = re.compile(r'sched_ext: BPF scheduler "(?P<name>[^"]+)" disabled \((?P<reason>[^)]*)\)')
_STATES = ("enabled", "disabled", "enabling", "disabling")
# libbpf's report of a program the kernel refused; anything else failing is not the verifier.
_VERIFIER_LOG = re.compile(r"BEGIN PROG LOAD LOG|prog '[^']+': failed to load|BPF program load failed")
_BPF_SCHEDULER = re.compile(r'BPF scheduler "')


@dataclass
class ScxState:
    """The kernel's view of sched_ext at one moment."""

    state: str  # enabled | disabled | enabling | disabling
    ops: str | None  # name of the attached scheduler, None when none is
    enable_seq: int

    @property
    def enabled(self) -> bool:
        return self.state == "enabled"


@dataclass
class Attached:
    """A policy attached by us: where its link is pinned and how to find its maps."""

    name: str
    obj_name: str  # libbpf object name (file name up to the first dot); prefixes its maps
    pin_dir: str
    load_s: float
    load_log: str = ""
    state: ScxState | None = None


@dataclass
class Ejection:
    """Why the kernel disabled a scheduler, from dmesg and from the policy's own exit record."""

    reason: str
    details: list[str] = field(default_factory=list)


def read_state(runner: CommandRunner, timeout: float = 30.0) -> ScxState:
    """The kernel's view: state, the attached scheduler's name, how many were ever enabled.

    One process reads all three (`grep -H`), not a shell: a real-time command's children are
    normal tasks again, and under a policy that makes normal tasks wait (or under the verifier's
    stress) a `cat` forked by `sh` waited long enough to time the read out.
    """
    files = [f"{SCX_SYSFS}/state", f"{SCX_SYSFS}/root/ops", f"{SCX_SYSFS}/enable_seq"]
    res = runner.run(["grep", "-H", "", *files], timeout=timeout, rt=True)
    values: dict[str, str] = {}
    for line in res.stdout.splitlines():
        path, sep, value = line.partition(":")
        name = next((f.removeprefix(SCX_SYSFS) for f in files if path.endswith(f.removeprefix(SCX_SYSFS))), None)
        if sep and name is not None:
            values[name] = value.strip()
    state = values.get("/state", "")
    if not state:
        if res.timed_out:
            raise DeployError(f"reading {SCX_SYSFS} did not finish within {timeout:g} s; is the guest overloaded?")
        raise DeployError(
            f"cannot read {SCX_SYSFS}/state: {res.stderr.strip() or res.stdout.strip()}; "
            "this kernel may lack sched_ext (CONFIG_SCHED_CLASS_EXT)"
        )
    if state not in _STATES:
        raise DeployError(f"unexpected sched_ext state {state!r} in {SCX_SYSFS}/state")
    ops = values.get("/root/ops", "")
    return ScxState(state=state, ops=ops or None, enable_seq=int(values.get("/enable_seq") or 0))


def wait_state(runner: CommandRunner, want: str, timeout: float = 15.0) -> ScxState:
    """Poll until the state is `want` (the kernel finishes enabling/disabling asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        st = read_state(runner)
        if st.state == want or time.monotonic() > deadline:
            return st
        time.sleep(0.1)


def dmesg_lines(runner: CommandRunner) -> list[str]:
    res = runner.run(["dmesg"], timeout=30.0, rt=True)
    return res.stdout.splitlines()


def find_ejection(lines: Sequence[str], name: str) -> Ejection | None:
    """The last `disabled (REASON)` line for scheduler `name` and the kernel's detail lines after it."""
    for i in range(len(lines) - 1, -1, -1):
        m = _DISABLED.search(lines[i])
        if m and m.group("name") == name:
            details = []
            for line in lines[i + 1 : i + 8]:
                if _BPF_SCHEDULER.search(line):
                    break
                text = line.split("sched_ext:", 1)[1].strip() if "sched_ext:" in line else ""
                if text.startswith(f"{name}: "):
                    details.append(text)
            return Ejection(reason=m.group("reason"), details=details)
    return None


def pin_dir_for(obj_path: str) -> str:
    """Where `attach` pins the link of a staged object (known before it is attached, so a watcher
    started first can remove it)."""
    return f"{PIN_ROOT}/{obj_path.rsplit('/', 1)[-1].split('.', 1)[0]}"


def attach(
    runner: CommandRunner, obj_path: str, name: str, timeout: float = 180.0, pin_dir: str | None = None
) -> Attached:
    """Load `obj_path` (already staged for the runner) and attach it as the system scheduler.

    Raises VerifierRejected with the kernel verifier's log when the kernel refuses the
    programs, DeployError when another scheduler is attached or attaching fails otherwise.
    The returned state may show the policy already disabled: the caller decides what an
    ejection means (the dynamic verifier expects some). `pin_dir` defaults to pin_dir_for();
    the runtime pins deployments in a folder of their own.
    """
    before = read_state(runner)
    if before.state != "disabled":
        raise DeployError(f"another sched_ext scheduler is attached ({before.ops or before.state}); detach it first")
    obj_name = obj_path.rsplit("/", 1)[-1].split(".", 1)[0]
    pin_dir = pin_dir or pin_dir_for(obj_path)
    made = runner.run(["mkdir", "-p", pin_dir], timeout=30.0, rt=True)
    if made.rc != 0:
        raise DeployError(f"cannot create the pin folder {pin_dir}: {made.stderr.strip()}; is bpffs mounted?")
    t0 = time.monotonic()
    res = runner.run(["bpftool", "struct_ops", "register", obj_path, pin_dir], timeout=timeout, rt=True)
    load_s = time.monotonic() - t0
    log = (res.stderr + res.stdout).strip()
    if res.timed_out:
        runner.run(["rm", "-rf", pin_dir], timeout=30.0, rt=True)
        raise VerifierRejected(
            f"loading {name} did not finish within {timeout:g} s (kernel verifier or attach hung); "
            "treat as rejected: simplify the program or raise the load timeout",
            log,
        )
    if res.rc != 0:
        runner.run(["rm", "-rf", pin_dir], timeout=30.0, rt=True)
        if _VERIFIER_LOG.search(log):
            raise VerifierRejected(f"the kernel's BPF verifier rejected {name}", _trim_log(log))
        raise DeployError(f"bpftool could not attach {name} (exit {res.rc}):\n{log[-4000:]}")
    state = read_state(runner)
    if state.state == "enabling":
        state = wait_state(runner, "enabled")
    return Attached(name=name, obj_name=obj_name, pin_dir=pin_dir, load_s=load_s, load_log=log, state=state)


def _trim_log(log: str, limit: int = 200) -> str:
    """Keep the verifier log readable: the tail holds the failing instruction and reason."""
    lines = log.splitlines()
    if len(lines) <= limit:
        return log
    return "\n".join([*lines[:20], f"... ({len(lines) - limit} lines omitted) ...", *lines[-(limit - 20) :]])


REMOVE_WAIT_S = 5.0
"""How long a detach waits for the kernel after removing the pin before it uses SysRq-S."""


def detach(runner: CommandRunner, attached: Attached, timeout: float = 30.0) -> ScxState:
    """Remove the pinned link (the kernel then disables the scheduler) and wait for it.

    Under a policy that stalls the machine, releasing the link waits on kernel threads that
    never run: the removal blocked 26 s, until the kernel's watchdog fired. So after
    REMOVE_WAIT_S the detach uses sched_ext's emergency stop, SysRq-S, which disables the
    scheduler at once (0.2 s measured) whatever holds the link.
    """
    wait = min(REMOVE_WAIT_S, timeout)
    res = runner.run(["rm", "-rf", attached.pin_dir], timeout=wait, rt=True)
    if res.rc != 0 and not res.timed_out:
        raise DeployError(f"cannot remove {attached.pin_dir}: {res.stderr.strip()}")
    state = wait_state(runner, "disabled", timeout=wait)
    if state.state != "disabled":
        log.warning("%s still %s %g s after its pin was removed: SysRq-S", attached.name, state.state, wait)
        runner.run(["tee", "/proc/sysrq-trigger"], timeout=30.0, input=b"S", rt=True)
        state = wait_state(runner, "disabled", timeout=timeout)
    if state.state != "disabled":
        raise DeployError(f"{attached.name} still {state.state} {timeout:g} s after its link was removed")
    return state


def internal_map_name(obj_name: str, section: str) -> str:
    """libbpf's name for an object's .bss/.data/.rodata map: the object name cut to 8 characters
    (room for the longest suffix, ".rodata", in the kernel's 15-character limit) plus the section."""
    return f"{obj_name[:8]}.{section}"


def _map_ids(runner: CommandRunner, map_name: str) -> list[int]:
    res = runner.run(["bpftool", "-j", "map", "show"], timeout=60.0, rt=True)
    if res.rc != 0:
        raise SchedcpError(f"bpftool map show failed: {res.stderr.strip()}")
    return [int(m["id"]) for m in json.loads(res.stdout or "[]") if m.get("name") == map_name]


def read_datasec(runner: CommandRunner, attached: Attached, section: str = "bss") -> dict[str, Any]:
    """The policy's global variables in one data section (counters live in .bss), by name."""
    map_name = internal_map_name(attached.obj_name, section)
    ids = _map_ids(runner, map_name)
    if not ids:
        return {}
    res = runner.run(["bpftool", "-j", "map", "dump", "id", str(max(ids))], timeout=60.0, rt=True)
    if res.rc != 0:
        raise SchedcpError(f"bpftool map dump failed: {res.stderr.strip()}")
    return parse_datasec_dump(res.stdout)


def parse_datasec_dump(text: str) -> dict[str, Any]:
    """Flatten bpftool's BTF-formatted dump of a datasec map into {variable: value}."""
    entries = json.loads(text or "[]")
    out: dict[str, Any] = {}
    for entry in entries:
        formatted = entry.get("formatted", entry)
        value = formatted.get("value", {})
        if not isinstance(value, dict):
            continue
        for section_vars in value.values():
            if isinstance(section_vars, list):
                for var in section_vars:
                    if isinstance(var, dict):
                        out.update(var)
    return out
