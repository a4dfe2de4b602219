"""Deploy a policy as a machine's scheduler, say truthfully what runs there, and roll back.

Everything goes through a CommandRunner, so the same code drives this host (when its kernel
has sched_ext) and the sandbox guest, which is a sched_ext host too.

Why a pinned link and no daemon: `bpftool struct_ops register OBJ DIR` pins the struct_ops
link in bpffs, and the kernel keeps a scheduler attached for as long as its link is held.
The pin is held by the kernel itself, so the scheduler survives schedcp exiting, crashing or
being upgraded, and there is no process of ours that a stalling scheduler could starve (the
watcher that rolls back is a separate concern). Deployed links live under DEPLOY_PIN_ROOT,
one folder per ops name: a scheduler whose link is there is ours; any other enabled
scheduler was attached by something else (scx_loader, a scx_* binary), and `status` says so.

What schedcp deployed (policy, version, tunables) is written next to the pin, in STATE_DIR on
the target (/run: gone at reboot, exactly like the pin), with the object itself, so the
previous deployment can be attached again when a new one fails. The record is a convenience:
`status` reads the kernel first and trusts the record only when the kernel agrees with it.

One scheduler at a time: sched_ext has one root scheduler, so switching is detach, then
attach. In between the kernel's own scheduler runs every task; a policy is never attached
half-loaded (bpftool loads and verifies every program before it creates the link).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from schedcp.bpf import loader
from schedcp.bpf.build import BuiltPolicy
from schedcp.errors import DeployError, DeployRefused, PolicyEjected, SchedcpError
from schedcp.models.deployment import Deployment, MetricWatch, SchedulerStatus
from schedcp.runner import CommandRunner

log = logging.getLogger(__name__)

DEPLOY_PIN_ROOT = f"{loader.PIN_ROOT}/deployed"
STATE_DIR = "/run/schedcp"
CURRENT = f"{STATE_DIR}/deployment.json"
PREVIOUS = f"{STATE_DIR}/previous.json"
OBJECTS = f"{STATE_DIR}/objects"
SYSTEM_PYTHON = "/usr/bin/python3"
_SYSFS_FILES = ("state", "enable_seq", "nr_rejected", "switch_all", "root/ops", "root/events")


@contextlib.contextmanager
def deploy_lock(path: Path) -> Iterator[None]:
    """One deploy or rollback at a time from this machine: a second one is refused at once
    (not queued: it would act on a state the first one is changing). The lock is the kernel's
    (flock), so a schedcp killed mid-deploy releases it by exiting."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise DeployError(
                f"another schedcp deploy or rollback is running (pid {holder}); wait for it, "
                "or `schedcp rollback --default`, which needs no lock"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


def no_sched_ext_advice(kernel: str) -> str:
    """What to do on a kernel without sched_ext: a message, not a stack trace."""
    return (
        f"this kernel ({kernel}) has no sched_ext (/sys/kernel/sched_ext is missing), so no BPF scheduler can "
        "run on it. It needs Linux 6.12 or later built with CONFIG_SCHED_CLASS_EXT=y (and CONFIG_BPF_JIT, "
        "CONFIG_DEBUG_INFO_BTF). Debian's own kernels carry it from Debian 13 (trixie): linux-image-amd64, or a "
        "newer one from trixie-backports. On this machine, `schedcp verify` and `schedcp bench` run policies "
        "in the sandbox VM instead"
    )


def _identity(runner: CommandRunner) -> tuple[str, str]:
    res = runner.run(["uname", "-n", "-r"], timeout=30.0, rt=True)
    parts = res.stdout.split()
    if res.rc != 0 or len(parts) != 2:
        raise DeployError(f"cannot read the target's host name and kernel: {res.stderr.strip() or res.stdout}")
    return parts[0], parts[1]


def _parse_sysfs(text: str) -> dict[str, str]:
    """`grep -H ''` output of the sysfs files: file (relative to sched_ext's folder) -> text."""
    values: dict[str, str] = {}
    prefix = loader.SCX_SYSFS + "/"
    for line in text.splitlines():
        path, sep, value = line.partition(":")
        if not sep or not path.startswith(prefix):
            continue
        name = path.removeprefix(prefix)
        values[name] = f"{values[name]}\n{value}" if name in values else value
    return values


def _events(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key and value.strip().lstrip("-").isdigit():
            out[key] = int(value.strip())
    return out


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.strip().lstrip("-").isdigit() else None


def _read_json(runner: CommandRunner, path: str) -> dict[str, object] | None:
    res = runner.run(["cat", path], timeout=30.0, rt=True)
    if res.rc != 0:
        return None
    try:
        data = json.loads(res.stdout)
    except json.JSONDecodeError:
        log.warning("%s is not JSON: ignored", path)
        return None
    return data if isinstance(data, dict) else None


def _write_json(runner: CommandRunner, path: str, data: str) -> None:
    tmp = f"{path}.tmp"
    res = runner.run(["tee", tmp], timeout=30.0, input=data.encode(), rt=True)
    if res.rc != 0 or runner.run(["mv", "-f", tmp, path], timeout=30.0, rt=True).rc != 0:
        raise DeployError(f"cannot write {path} on the target: {res.stderr.strip()}")


def _deployment(data: dict[str, object] | None) -> Deployment | None:
    if data is None:
        return None
    try:
        return Deployment.model_validate(data)
    except ValidationError:
        log.warning("a damaged deployment record was ignored")
        return None


def _policy_stats(runner: CommandRunner, deployment: Deployment) -> dict[str, object]:
    """The deployed policy's own counters (its .bss), as `policy run` shows them. Best effort:
    a status must not fail because bpftool could not read a map."""
    obj_name = deployment.object.rsplit("/", 1)[-1].split(".", 1)[0]
    attached = loader.Attached(name=deployment.ops, obj_name=obj_name, pin_dir=deployment.pin_dir, load_s=0.0)
    try:
        values = loader.read_datasec(runner, attached, "bss")
    except (SchedcpError, ValueError) as exc:
        log.warning("cannot read %s's counters: %s", deployment.ops, exc)
        return {}
    return {k: v for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def read_status(runner: CommandRunner, with_stats: bool = True) -> SchedulerStatus:
    """What runs now, from the kernel (sysfs), our pins (bpffs) and our record, in that order;
    with the deployed policy's counters unless `with_stats` is False (the breaker's looks)."""
    host, kernel = _identity(runner)
    files = [f"{loader.SCX_SYSFS}/{f}" for f in _SYSFS_FILES]
    res = runner.run(["grep", "-sH", "", *files], timeout=30.0, rt=True)
    values = _parse_sysfs(res.stdout)
    if "state" not in values:
        exists = runner.run(["test", "-d", loader.SCX_SYSFS], timeout=30.0, rt=True).rc == 0
        if exists:
            raise DeployError(f"cannot read {loader.SCX_SYSFS}/state: {res.stderr.strip() or 'no output'}")
        return SchedulerStatus(host=host, kernel=kernel, sched_ext=False)
    listed = runner.run(["ls", "-1", DEPLOY_PIN_ROOT], timeout=30.0, rt=True)
    pinned = sorted(listed.stdout.split()) if listed.rc == 0 else []
    state = values["state"].strip()
    ops = values.get("root/ops", "").strip() or None
    ours = state == "enabled" and ops is not None and ops in pinned
    deployment = _deployment(_read_json(runner, CURRENT)) if ours else None
    if deployment is not None and deployment.ops != ops:
        deployment = None  # the record is stale: the kernel's word stands
    return SchedulerStatus(
        host=host,
        kernel=kernel,
        sched_ext=True,
        state=state,
        ops=ops,
        enable_seq=_int(values.get("enable_seq")),
        nr_rejected=_int(values.get("nr_rejected")),
        switch_all=None if "switch_all" not in values else values["switch_all"].strip() == "1",
        events=_events(values.get("root/events", "")),
        ours=ours,
        pinned=pinned,
        deployment=deployment,
        stats=_policy_stats(runner, deployment) if deployment is not None and with_stats else {},
    )


def _release_all(runner: CommandRunner, progress: Callable[[str], None]) -> loader.ScxState:
    """Back to the kernel's own scheduler: drop our pins, then SysRq-S if anything is still on.

    SysRq-S is sched_ext's emergency stop: it disables whatever scheduler is attached,
    whoever holds its link (a foreign one, or ours when the link release hangs under a
    stalling policy). It works even when our records are gone or damaged.
    """
    runner.run(["rm", "-rf", DEPLOY_PIN_ROOT], timeout=loader.REMOVE_WAIT_S, rt=True)
    state = loader.wait_state(runner, "disabled", timeout=loader.REMOVE_WAIT_S)
    if state.state != "disabled":
        progress(f"{state.ops or 'the scheduler'} still {state.state} without our pin: SysRq-S")
        runner.run(["tee", "/proc/sysrq-trigger"], timeout=30.0, input=b"S", rt=True)
        state = loader.wait_state(runner, "disabled", timeout=15.0)
    if state.state != "disabled":
        raise DeployError(f"sched_ext is still {state.state} ({state.ops}) after SysRq-S")
    return state


def _attach(runner: CommandRunner, deployment: Deployment, obj_on_target: str) -> loader.ScxState:
    """Attach a saved object under our pin and insist that the kernel runs it."""
    before = loader.read_state(runner)
    attached = loader.attach(runner, obj_on_target, deployment.ops, pin_dir=deployment.pin_dir)
    state = attached.state or loader.read_state(runner)
    if state.enabled and state.ops == deployment.ops:
        return state
    runner.run(["rm", "-rf", deployment.pin_dir], timeout=30.0, rt=True)
    ejection = loader.find_ejection(loader.dmesg_lines(runner), deployment.ops)
    if ejection is not None and state.enable_seq > before.enable_seq:
        details = "".join(f"\n  {d}" for d in ejection.details)
        raise PolicyEjected(f"the kernel ejected {deployment.ops} at once: {ejection.reason}{details}", ejection.reason)
    raise DeployError(f"{deployment.ops} did not stay enabled after the attach (sched_ext {state.state})")


SCHED_EXT = 7
# Moves the given processes' threads to a scheduling policy and prints {tid: old policy} as
# JSON; with "restore" on stdin-less argv it reads such a map back. One real-time process, no
# shell (under a stalling policy a forked helper would wait with everything else).
_SETPOLICY = r"""
import json, os, sys
if sys.argv[1] == "restore":
    for tid, policy in json.loads(sys.argv[2]).items():
        try:
            os.sched_setscheduler(int(tid), policy, os.sched_param(0))
        except OSError:
            pass
    sys.exit(0)
policy, old = int(sys.argv[1]), {}
for pid in sys.argv[2:]:
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        continue
    for tid in tids:
        try:
            was = os.sched_getscheduler(int(tid))
            if was in (0, 3, 5):  # SCHED_OTHER, SCHED_BATCH, SCHED_IDLE: the classes sched_ext takes
                os.sched_setscheduler(int(tid), policy, os.sched_param(0))
                old[tid] = was
        except OSError:
            pass
print(json.dumps(old))
"""


class CanarySpec(BaseModel):
    """Which tasks try a policy first, for how long, and what they may suffer meanwhile."""

    targets: list[str] = Field(description="PIDs, cgroup paths (starting with /) or command names")
    seconds: float = Field(10.0, gt=0, le=600, description="how long the canary phase lasts")
    latency_ms: float = Field(
        500.0, gt=0, description="the canary tasks' mean wait for a CPU per turn (schedstat), at most"
    )
    metric_tolerance: float = Field(0.2, ge=0, description="the watched metric may be this much worse, at most")


def canary_pids(runner: CommandRunner, targets: list[str]) -> list[int]:
    """The processes a canary spec names on the target; every spec must name at least one."""
    pids: set[int] = set()
    for spec in targets:
        if spec.isdigit():
            found = [int(spec)] if runner.run(["test", "-d", f"/proc/{spec}"], timeout=30.0, rt=True).rc == 0 else []
        elif spec.startswith("/"):
            folder = spec if spec.startswith("/sys/fs/cgroup") else f"/sys/fs/cgroup{spec}"
            res = runner.run(
                ["find", folder, "-name", "cgroup.procs", "-exec", "cat", "{}", "+"], timeout=30.0, rt=True
            )
            found = [int(x) for x in res.stdout.split() if x.isdigit()]
        else:
            res = runner.run(["pgrep", "-x", spec], timeout=30.0, rt=True)
            found = [int(x) for x in res.stdout.split() if x.isdigit()]
        if not found:
            raise DeployRefused(f"the canary {spec!r} names no running task on the target")
        pids.update(found)
    return sorted(pids)


def _schedstat(runner: CommandRunner, tids: list[str]) -> dict[str, tuple[int, int, int]]:
    """tid -> (ns run, ns waited for a CPU, turns) from /proc/<tid>/schedstat."""
    res = runner.run(["grep", "-sH", "", *[f"/proc/{t}/schedstat" for t in tids]], timeout=30.0, rt=True)
    out: dict[str, tuple[int, int, int]] = {}
    for line in res.stdout.splitlines():
        path, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            out[path.split("/")[2]] = (int(parts[0]), int(parts[1]), int(parts[2]))
    return out


def _canary(
    runner: CommandRunner,
    ops: str,
    pids: list[int],
    spec: CanarySpec,
    progress: Callable[[str], None],
) -> str:
    """Move the canary's tasks onto the (partial) policy, watch them, put them back. Returns the
    evidence in words; raises DeployError with it when a bound was broken."""
    moved = runner.run([SYSTEM_PYTHON, "-I", "-c", _SETPOLICY, str(SCHED_EXT), *map(str, pids)], timeout=30.0, rt=True)
    try:
        old: dict[str, int] = json.loads(moved.stdout or "{}")
    except json.JSONDecodeError:
        old = {}
    if moved.rc != 0 or not old:
        raise DeployError(
            f"could not move the canary's tasks to SCHED_EXT: {moved.stderr.strip()[-300:] or 'none moved'}"
        )
    tids = sorted(old)
    try:
        progress(f"canary: {len(tids)} task(s) on {ops} for {spec.seconds:g} s")
        start = _schedstat(runner, tids)
        deadline = time.monotonic() + spec.seconds
        while time.monotonic() < deadline:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            state = loader.read_state(runner)
            if not (state.enabled and state.ops == ops):
                ejection = loader.find_ejection(loader.dmesg_lines(runner), ops)
                why = ejection.reason if ejection else f"sched_ext {state.state}"
                raise DeployError(f"canary: {ops} was disabled during the canary phase ({why})")
        end = _schedstat(runner, tids)
    finally:
        runner.run([SYSTEM_PYTHON, "-I", "-c", _SETPOLICY, "restore", json.dumps(old)], timeout=30.0, rt=True)
    both = [t for t in tids if t in start and t in end]
    ran = sum(end[t][0] - start[t][0] for t in both)
    waited = sum(end[t][1] - start[t][1] for t in both)
    turns = sum(end[t][2] - start[t][2] for t in both)
    per_turn_ms = waited / turns / 1e6 if turns else 0.0
    evidence = (
        f"canary: {len(tids)} task(s) on {ops} (partial mode) for {spec.seconds:g} s ran {ran / 1e6:.0f} ms, "
        f"waited {per_turn_ms:.1f} ms per turn over {turns} turns (bound {spec.latency_ms:g} ms)"
    )
    if waited > 0 and ran == 0:
        raise DeployError(f"{evidence}: the canary's tasks waited and never ran")
    if per_turn_ms > spec.latency_ms:
        raise DeployError(f"{evidence}: they waited too long for a CPU")
    return evidence


def read_metric(runner: CommandRunner, command: str, timeout: float = 60.0) -> float:
    """Run a watched metric's command on the target; its last line must start with a number."""
    res = runner.run(["sh", "-c", command], timeout=timeout)
    lines = res.stdout.strip().splitlines()
    try:
        value = float(lines[-1].split()[0]) if lines else math.nan
    except ValueError:
        value = math.nan
    if res.rc != 0 or math.isnan(value):
        raise DeployError(
            f"the watched metric `{command}` gave no number (exit {res.rc}): "
            f"{(res.stderr or res.stdout).strip()[-200:] or 'no output'}"
        )
    return value


def metric_worse(watch: MetricWatch, value: float, tolerance: float) -> bool:
    """Worse than the baseline beyond the tolerance, in the metric's own direction."""
    if watch.baseline is None:
        return False
    margin = abs(watch.baseline) * tolerance
    if watch.better == "higher":
        return value < watch.baseline - margin
    return value > watch.baseline + margin


def measure_baseline(runner: CommandRunner, watch: MetricWatch, samples: int = 3) -> MetricWatch:
    """The metric under the scheduler running now: the median of a few readings."""
    values = sorted(read_metric(runner, watch.command) for _ in range(samples))
    return watch.model_copy(update={"baseline": values[len(values) // 2]})


def _canary_metric(runner: CommandRunner, watch: MetricWatch, tolerance: float) -> str:
    value = read_metric(runner, watch.command)
    evidence = (
        f"canary: watched metric {value:g} against {watch.baseline:g} before ({watch.better} is better, "
        f"tolerance {tolerance:.0%})"
    )
    if metric_worse(watch, value, tolerance):
        raise DeployError(f"{evidence}: worse")
    return evidence


def deploy(
    runner: CommandRunner,
    built: BuiltPolicy,
    *,
    version_id: str,
    verification_id: int | None,
    replace: bool = False,
    canary: CanarySpec | None = None,
    canary_obj: Path | None = None,
    watch: MetricWatch | None = None,
    progress: Callable[[str], None] = log.info,
) -> tuple[Deployment, list[str]]:
    """Make `built` the target's scheduler, replacing ours (or, with `replace`, anyone's).

    With a canary, `canary_obj` (the same build with SCX_OPS_SWITCH_PARTIAL set) is attached
    first and only the canary's tasks are moved onto it; when they fared well within the
    bounds, it is replaced by `built` for every task (widened). On any failure the previous
    scheduler of ours is attached again when there was one; the error says what happened to
    both. Returns the deployment and what was done, in words.
    """
    if (canary is None) != (canary_obj is None):
        raise DeployError("a canary needs its partial-mode object, and that object a canary")
    status = read_status(runner, with_stats=False)
    if not status.sched_ext:
        raise DeployRefused(no_sched_ext_advice(status.kernel))
    if status.state in ("enabling", "disabling"):
        raise DeployRefused(f"sched_ext is {status.state} right now; try again in a moment")
    if status.state == "enabled" and not status.ours and not replace:
        raise DeployRefused(
            f"{status.ops} is attached by something else (not schedcp); deploying would replace it. "
            "Stop it with the tool that started it, or deploy with --replace to take over"
        )
    done: list[str] = []
    runner.run(["mkdir", "-p", OBJECTS, DEPLOY_PIN_ROOT], timeout=30.0, rt=True)
    obj = f"{OBJECTS}/{built.obj.name}"
    copied = runner.run(["cp", "-f", runner.stage(built.obj), obj], timeout=60.0, rt=True)
    if copied.rc != 0:
        raise DeployError(f"cannot keep the object on the target ({obj}): {copied.stderr.strip()}")
    deployment = Deployment(
        policy=built.policy.name,
        version_id=version_id,
        tunables=built.tunables,
        object_sha256=built.sha256,
        object=obj,
        ops=built.name,
        pin_dir=f"{DEPLOY_PIN_ROOT}/{built.name}",
        verification_id=verification_id,
        deployed_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        watch=watch,
    )
    # Before anything is detached: a canary that names no task changes nothing.
    pids = canary_pids(runner, canary.targets) if canary is not None else []
    previous = status.deployment if status.ours else None
    if status.state == "enabled":
        progress(f"detaching {status.ops}")
        _release_all(runner, progress)
        done.append(f"detached {status.ops}" + ("" if status.ours else " (not schedcp's: --replace)"))
    # PREVIOUS is what the current deployment replaced: rollback's target. Kept as it was if
    # this deploy fails (and the previous one comes back), replaced if it succeeds.
    older = _read_json(runner, PREVIOUS)
    _set_previous(runner, previous)
    try:
        if canary is not None and canary_obj is not None:
            partial = f"{OBJECTS}/{canary_obj.name}"
            if runner.run(["cp", "-f", runner.stage(canary_obj), partial], timeout=60.0, rt=True).rc != 0:
                raise DeployError(f"cannot keep the canary's object on the target ({partial})")
            progress(f"attaching {built.name} in partial mode for the canary")
            _attach(runner, deployment, partial)
            try:
                done.append(_canary(runner, built.name, pids, canary, progress))
                if watch is not None:
                    done.append(_canary_metric(runner, watch, canary.metric_tolerance))
            finally:
                _release_all(runner, progress)
            done.append("canary passed: widening to every task")
        progress(f"attaching {built.name}")
        state = _attach(runner, deployment, obj)
    except SchedcpError as exc:
        done.append(f"{built.name} failed: {str(exc).splitlines()[0]}")
        runner.run(["rm", "-f", CURRENT], timeout=30.0, rt=True)
        if previous is not None:
            done.append(_restore(runner, previous, progress))
        _set_previous(runner, _deployment(older))
        raise DeployError("; ".join(done)) from exc
    _write_json(runner, CURRENT, deployment.model_dump_json())
    done.append(f"attached {built.name} (sched_ext enabled, enable_seq {state.enable_seq})")
    return deployment, done


def _set_previous(runner: CommandRunner, previous: Deployment | None) -> None:
    if previous is None:
        runner.run(["rm", "-f", PREVIOUS], timeout=30.0, rt=True)
    else:
        _write_json(runner, PREVIOUS, previous.model_dump_json())


def _restore(runner: CommandRunner, previous: Deployment, progress: Callable[[str], None]) -> str:
    """Attach a previous deployment's saved object again; what happened, in words."""
    res = runner.run(["sha256sum", previous.object], timeout=30.0, rt=True)
    if res.rc != 0 or res.stdout.split()[:1] != [previous.object_sha256]:
        return f"the previous policy {previous.policy} could not be restored (its object is gone): default scheduler"
    progress(f"restoring {previous.policy}")
    try:
        _attach(runner, previous, previous.object)
    except SchedcpError as exc:
        return f"restoring {previous.policy} failed too ({str(exc).splitlines()[0]}): default scheduler"
    _write_json(runner, CURRENT, previous.model_dump_json())
    return f"restored the previous policy {previous.policy}"


def restore_kept(
    runner: CommandRunner, deployment: Deployment, local_obj: Path, progress: Callable[[str], None] = log.info
) -> str:
    """Attach a deployment again from an object kept off the target (at boot /run is empty).
    Only onto the kernel's own scheduler: it never replaces a scheduler that is running."""
    status = read_status(runner, with_stats=False)
    if not status.sched_ext:
        return "no sched_ext in this kernel: nothing restored"
    if status.state != "disabled":
        return f"{status.ops} is already attached ({status.scheduler}): nothing restored"
    runner.run(["mkdir", "-p", OBJECTS, DEPLOY_PIN_ROOT], timeout=30.0, rt=True)
    obj = f"{OBJECTS}/{local_obj.name}"
    if runner.run(["cp", "-f", runner.stage(local_obj), obj], timeout=60.0, rt=True).rc != 0:
        raise DeployError(f"cannot copy the kept object to the target ({obj})")
    kept = deployment.model_copy(update={"object": obj})
    return _restore(runner, kept, progress).replace("the previous policy", "the last-known-good policy")


def rollback(
    runner: CommandRunner, *, to_default: bool, progress: Callable[[str], None] = log.info
) -> tuple[SchedulerStatus, list[str]]:
    """Back to the previous deployment of ours, or (to_default, or none kept) the kernel's own.

    `to_default` trusts no record of ours (a damaged one is ignored): it drops every pin under
    DEPLOY_PIN_ROOT and, if a scheduler is still attached (anyone's), stops it with SysRq-S.
    """
    done: list[str] = []
    status = read_status(runner, with_stats=False)
    if not status.sched_ext:
        return status, ["no sched_ext in this kernel: its own scheduler is the only one"]
    if to_default:
        _release_all(runner, progress)
        runner.run(["rm", "-f", CURRENT], timeout=30.0, rt=True)
        done.append(f"detached {status.ops}" if status.state == "enabled" else "no sched_ext scheduler was attached")
        return read_status(runner, with_stats=False), done
    previous = _deployment(_read_json(runner, PREVIOUS))
    if status.state == "enabled" and not status.ours:
        raise DeployError(
            f"{status.ops} is attached by something else (not schedcp): `schedcp rollback --default` stops it"
        )
    if status.state == "enabled":
        _release_all(runner, progress)
        done.append(f"detached {status.ops}")
        runner.run(["rm", "-f", CURRENT], timeout=30.0, rt=True)
    if previous is None:
        done.append("no previous deployment kept: the kernel's own scheduler runs")
    else:
        done.append(_restore(runner, previous, progress))
        runner.run(["rm", "-f", PREVIOUS], timeout=30.0, rt=True)
    return read_status(runner, with_stats=False), done
