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
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import ValidationError

from schedcp.bpf import loader
from schedcp.bpf.build import BuiltPolicy
from schedcp.errors import DeployError, PolicyEjected, SchedcpError
from schedcp.models.deployment import Deployment, SchedulerStatus
from schedcp.runner import CommandRunner

log = logging.getLogger(__name__)

DEPLOY_PIN_ROOT = f"{loader.PIN_ROOT}/deployed"
STATE_DIR = "/run/schedcp"
CURRENT = f"{STATE_DIR}/deployment.json"
PREVIOUS = f"{STATE_DIR}/previous.json"
OBJECTS = f"{STATE_DIR}/objects"
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


def read_status(runner: CommandRunner) -> SchedulerStatus:
    """What runs now, from the kernel (sysfs), our pins (bpffs) and our record, in that order."""
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


def deploy(
    runner: CommandRunner,
    built: BuiltPolicy,
    *,
    version_id: str,
    verification_id: int | None,
    replace: bool = False,
    progress: Callable[[str], None] = log.info,
) -> tuple[Deployment, list[str]]:
    """Make `built` the target's scheduler, replacing ours (or, with `replace`, anyone's).

    On failure the previous scheduler of ours is attached again when there was one; the
    error says what happened to both. Returns the deployment and what was done, in words.
    """
    status = read_status(runner)
    if not status.sched_ext:
        raise DeployError(no_sched_ext_advice(status.kernel))
    if status.state in ("enabling", "disabling"):
        raise DeployError(f"sched_ext is {status.state} right now; try again in a moment")
    if status.state == "enabled" and not status.ours and not replace:
        raise DeployError(
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
    )
    previous = status.deployment if status.ours else None
    if status.state == "enabled":
        progress(f"detaching {status.ops}")
        _release_all(runner, progress)
        done.append(f"detached {status.ops}" + ("" if status.ours else " (not schedcp's: --replace)"))
    if previous is not None:
        _write_json(runner, PREVIOUS, previous.model_dump_json())
    progress(f"attaching {built.name}")
    try:
        state = _attach(runner, deployment, obj)
    except SchedcpError as exc:
        done.append(f"{built.name} failed: {str(exc).splitlines()[0]}")
        runner.run(["rm", "-f", CURRENT], timeout=30.0, rt=True)
        if previous is not None:
            done.append(_restore(runner, previous, progress))
        raise DeployError("; ".join(done)) from exc
    _write_json(runner, CURRENT, deployment.model_dump_json())
    done.append(f"attached {built.name} (sched_ext enabled, enable_seq {state.enable_seq})")
    return deployment, done


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


def rollback(
    runner: CommandRunner, *, to_default: bool, progress: Callable[[str], None] = log.info
) -> tuple[SchedulerStatus, list[str]]:
    """Back to the previous deployment of ours, or (to_default, or none kept) the kernel's own.

    `to_default` trusts no record of ours (a damaged one is ignored): it drops every pin under
    DEPLOY_PIN_ROOT and, if a scheduler is still attached (anyone's), stops it with SysRq-S.
    """
    done: list[str] = []
    status = read_status(runner)
    if not status.sched_ext:
        return status, ["no sched_ext in this kernel: its own scheduler is the only one"]
    if to_default:
        _release_all(runner, progress)
        runner.run(["rm", "-f", CURRENT], timeout=30.0, rt=True)
        done.append(f"detached {status.ops}" if status.state == "enabled" else "no sched_ext scheduler was attached")
        return read_status(runner), done
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
    return read_status(runner), done
