"""Deploy, status, rollback and history: the runtime behind `schedcp deploy` and the MCP tools.

The gate lives here, between the repository and the kernel: `deploy` resolves the stored
version, builds it with exactly the tunables asked for, and attaches it only when the
repository holds a passing verification report for that version and those tunables. Every
deploy, refusal, failure and rollback is recorded in the repository with the host's name and
kernel, so hosts sharing one repository give one history.

`where` is "host" for the real thing. "sandbox" targets the sandbox guest (a sched_ext host
too): a VM booted for one call is gone when the call returns, so that is for tests and for a
caller that lends a booted VM (`Context.lending`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from schedcp.bpf.build import build_policy
from schedcp.bpf.opsflags import enum_value, with_ops_flags
from schedcp.bpf.policy import find_policy
from schedcp.bpf.toolchain import vmlinux_h
from schedcp.errors import DeployError, DeployRefused, NotVerified, SchedcpError
from schedcp.models.deployment import Deployment, DeploymentEvent, EventKind, MetricWatch, SchedulerStatus
from schedcp.models.profile import Where
from schedcp.models.vocabulary import TunableValue
from schedcp.runner import CommandRunner
from schedcp.runtime import deploy as runtime
from schedcp.runtime import watch as breaker
from schedcp.runtime.deploy import CanarySpec
from schedcp.runtime.watch import BreakerBounds as BreakerBounds
from schedcp.sandbox.kernel import Kernel, find_kernel
from schedcp.service.context import Context

HOST_BTF = Path("/sys/kernel/btf/vmlinux")
PARTIAL = "SCX_OPS_SWITCH_PARTIAL"


class DeployRequest(BaseModel):
    policy: str = Field(description="NAME, NAME@VERSION or a version id prefix (a stored, verified version)")
    tunables: dict[str, TunableValue] = Field(default_factory=dict, description="values (text is parsed)")
    replace: bool = Field(False, description="take over from a sched_ext scheduler that schedcp did not start")
    reason: str = Field("", description="why, for the record")
    canary: list[str] = Field(
        default_factory=list,
        description="PIDs, cgroup paths or command names that run the policy first (partial mode), "
        "before every task does",
    )
    canary_s: float = Field(10.0, gt=0, le=600, description="how long the canary phase lasts")
    canary_latency_ms: float = Field(500.0, gt=0, description="the canary tasks' mean wait per turn, at most")
    watch: str | None = Field(
        None,
        description="a shell command on the target that prints one number (e.g. requests/s): measured before, "
        "checked after the canary and by the breaker (`schedcp watch`)",
    )
    watch_better: Literal["higher", "lower"] = Field("higher", description="which way the watched metric improves")
    watch_tolerance: float = Field(0.2, ge=0, le=10, description="how much worse the canary's reading may be")
    force: bool = Field(False, description="deploy an object that tripped the breaker within its back-off")
    where: Where = Field("host", description="host, or the sandbox guest (tests, demos)")


class DeployResult(BaseModel):
    deployment: Deployment
    steps: list[str]
    event: DeploymentEvent
    status: SchedulerStatus


class RollbackRequest(BaseModel):
    to_default: bool = Field(False, description="the kernel's own scheduler, whatever schedcp's records say")
    reason: str = Field("", description="why, for the record")
    where: Where = "host"


class RollbackResult(BaseModel):
    steps: list[str]
    event: DeploymentEvent
    status: SchedulerStatus


def _lock_path(ctx: Context, where: Where) -> Path:
    """One lock per target: this host, or the sandbox (a lent VM is one target too)."""
    return ctx.settings.data_dir / "runtime" / f"deploy-{where}.lock"


def _breaker_path(ctx: Context, where: Where) -> Path:
    """The breaker's memory (trips, hold, last-known-good) of one target, on this machine."""
    return ctx.settings.data_dir / "runtime" / f"breaker-{where}.json"


def _objects_dir(ctx: Context) -> Path:
    return ctx.settings.data_dir / "runtime" / "objects"


def _record(ctx: Context, event: DeploymentEvent) -> DeploymentEvent:
    with ctx.repository() as repo:
        return repo.record_deployment(event)


def _host_kernel(ctx: Context, release: str) -> Kernel:
    """This host's kernel as a build target: its BTF (sysfs) stands in for the vmlinux ELF."""
    if not HOST_BTF.exists():
        raise DeployError(f"{HOST_BTF} is missing: this kernel lacks BTF (CONFIG_DEBUG_INFO_BTF)")
    root = ctx.settings.cache_dir / "host-btf" / release
    root.mkdir(parents=True, exist_ok=True)
    link = root / "vmlinux"
    if not link.is_symlink():
        link.unlink(missing_ok=True)
        os.symlink(HOST_BTF, link)
    return Kernel(release=f"host-{release}", root=root)


def status(ctx: Context, where: Where = "host") -> SchedulerStatus:
    """The truth about the target's scheduler: the kernel's view, and whether schedcp put it there."""
    with ctx.runner(where) as runner:
        return runtime.read_status(runner)


def deploy(ctx: Context, request: DeployRequest) -> DeployResult:
    """Attach a verified version as the target's scheduler; refusals and failures are recorded too."""
    with ctx.repository() as repo:
        version = repo.resolve(request.policy)
    with (
        runtime.deploy_lock(_lock_path(ctx, request.where)),
        tempfile.TemporaryDirectory(prefix="schedcp-deploy-") as tmp,
        ctx.runner(request.where) as runner,
    ):
        before = runtime.read_status(runner, with_stats=False)
        event = DeploymentEvent(
            kind="refused",
            host=before.host,
            kernel=before.kernel,
            policy=version.spec.name,
            version_id=version.id,
            reason=request.reason,
        )
        if not before.sched_ext:
            _record(ctx, event.model_copy(update={"evidence": ["no sched_ext in this kernel"]}))
            raise DeployRefused(runtime.no_sched_ext_advice(before.kernel))
        with ctx.repository() as repo:
            folder = repo.checkout(version.id, Path(tmp) / "checkout")
        policy = find_policy(str(folder))
        text = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in request.tunables.items()}
        tunables = policy.resolve_tunables(text)
        event = event.model_copy(update={"tunables": tunables})
        try:
            with ctx.repository() as repo:
                verified = repo.require_verified(version.id, tunables)
        except NotVerified as exc:
            _record(ctx, event.model_copy(update={"evidence": [str(exc)]}))
            raise
        kernel = (
            find_kernel(ctx.settings.kernels_dir, ctx.settings.sandbox.kernel)
            if request.where == "sandbox"
            else _host_kernel(ctx, before.kernel)
        )
        ctx.report(f"building {version.spec.name}@{version.id[:12]}")
        built = build_policy(policy, tunables, kernel, ctx.settings.cache_dir, Path(tmp) / "build")
        event = event.model_copy(update={"object_sha256": built.sha256})
        state = breaker.load_state(_breaker_path(ctx, request.where))
        until = breaker.backoff_until(state, built.sha256, BreakerBounds())
        if until is not None and not request.force:
            last = [t for t in state.trips if t.object_sha256 == built.sha256][-1]
            msg = (
                f"this build of {version.spec.name} tripped the circuit breaker ({last.kind}: {last.detail}); "
                f"it may be deployed again in {until - time.time():.0f} s (the back-off doubles with each trip), "
                "or now with --force"
            )
            _record(ctx, event.model_copy(update={"evidence": [msg]}))
            raise DeployRefused(msg)
        watch = None
        if request.watch:
            ctx.report(f"measuring the watched metric under {before.scheduler}")
            watch = runtime.measure_baseline(runner, MetricWatch(command=request.watch, better=request.watch_better))
        canary = canary_obj = None
        if request.canary:
            canary = CanarySpec(
                targets=request.canary,
                seconds=request.canary_s,
                latency_ms=request.canary_latency_ms,
                metric_tolerance=request.watch_tolerance,
            )
            header = vmlinux_h(kernel, ctx.settings.cache_dir) / "vmlinux.h"
            canary_obj = with_ops_flags(
                built.obj, built.obj.with_name(f"{built.policy.name[:4]}cnry.bpf.o"), enum_value(header, PARTIAL)
            )
        try:
            deployment, steps = runtime.deploy(
                runner,
                built,
                version_id=version.id,
                verification_id=verified.id,
                replace=request.replace,
                canary=canary,
                canary_obj=canary_obj,
                watch=watch,
                progress=ctx.report,
            )
        except SchedcpError as exc:
            kind: EventKind = "refused" if isinstance(exc, DeployRefused) else "failed"
            _record(ctx, event.model_copy(update={"kind": kind, "evidence": [str(exc)]}))
            raise
        # Kept here too: at boot the target's /run copy is gone, and restore needs the object.
        kept = breaker.kept_object(_objects_dir(ctx), built.sha256)
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built.obj, kept)
        if state.hold:
            state.hold = False  # an operator deployed again: the breaker may restore from now on
            breaker.save_state(_breaker_path(ctx, request.where), state)
        if watch is not None:
            steps.append(f"watched metric before the deploy: {watch.baseline:g} ({watch.better} is better)")
        recorded = _record(
            ctx, event.model_copy(update={"kind": "deploy", "evidence": [*steps, f"verification #{verified.id}"]})
        )
        return DeployResult(deployment=deployment, steps=steps, event=recorded, status=runtime.read_status(runner))


def _rollback(ctx: Context, runner: CommandRunner, request: RollbackRequest) -> RollbackResult:
    before = runtime.read_status(runner, with_stats=False)
    after, steps = runtime.rollback(runner, to_default=request.to_default, progress=ctx.report)
    event = DeploymentEvent(
        kind="rollback",
        host=before.host,
        kernel=before.kernel,
        policy=after.deployment.policy if after.deployment else None,
        version_id=after.deployment.version_id if after.deployment else None,
        tunables=after.deployment.tunables if after.deployment else {},
        object_sha256=after.deployment.object_sha256 if after.deployment else None,
        reason=request.reason,
        evidence=[f"before: {before.scheduler}", *steps, f"after: {after.scheduler}"],
    )
    return RollbackResult(steps=steps, event=_record(ctx, event), status=after)


def rollback(ctx: Context, request: RollbackRequest) -> RollbackResult:
    """Back to the previous deployment, or to the kernel's own scheduler (always possible: that
    one takes no lock, so it works while a deploy hangs)."""
    lock = contextlib.nullcontext() if request.to_default else runtime.deploy_lock(_lock_path(ctx, request.where))
    with lock, ctx.runner(request.where) as runner:
        return _rollback(ctx, runner, request)


def history(ctx: Context, all_hosts: bool = False, limit: int = 50, where: Where = "host") -> list[DeploymentEvent]:
    """Newest first: this host's deployment events, or every host's in the repository."""
    host = None
    if not all_hosts:
        with ctx.runner(where) as runner:
            host = runtime.read_status(runner, with_stats=False).host
    with ctx.repository() as repo:
        return repo.deployment_history(host, limit)


def _record_trip(ctx: Context, trip: breaker.Trip, steps: list[str], status: SchedulerStatus) -> DeploymentEvent:
    event = DeploymentEvent(
        kind="breaker",
        host=status.host,
        kernel=status.kernel,
        policy=trip.policy,
        object_sha256=trip.object_sha256,
        reason=f"circuit breaker: {trip.kind}",
        evidence=[*steps, f"after: {status.scheduler}"],
    )
    try:
        return _record(ctx, event)
    except SchedcpError as exc:  # acted, but the record failed: say so, keep going
        ctx.report(f"the trip could not be recorded in the repository: {exc}")
        return event


class WatchRequest(BaseModel):
    bounds: BreakerBounds = Field(default_factory=BreakerBounds)
    duration_s: float | None = Field(None, gt=0, description="stop after this long; None: until stopped")
    stop_after_trips: int | None = Field(None, ge=1, description="stop after this many trips (scripts, tests)")
    where: Where = "host"


class WatchResult(BaseModel):
    looks: int = Field(description="how many times the breaker looked")
    trips: list[DeploymentEvent] = Field(default_factory=list, description="what it did, as recorded")
    seen: list[breaker.Trip] = Field(
        default_factory=list, description="what it saw, when (the trips' detection times; the events come after)"
    )
    status: SchedulerStatus


def watch(ctx: Context, request: WatchRequest) -> WatchResult:
    """The circuit breaker (`schedcp watch`, run by systemd): look every interval, and on harm
    roll back by itself and record why. A failed look (the target did not answer) is logged and
    retried, never fatal: the breaker must outlive the trouble it watches for."""
    looks = 0
    trips: list[DeploymentEvent] = []
    seen: list[breaker.Trip] = []
    stop_at = None if request.duration_s is None else time.monotonic() + request.duration_s
    with ctx.runner(request.where) as runner:
        b = breaker.Breaker(
            runner, request.bounds, _breaker_path(ctx, request.where), _objects_dir(ctx), progress=ctx.report
        )
        status = runtime.read_status(runner, with_stats=False)
        ctx.report(f"circuit breaker on {status.host}: {status.scheduler}")
        while stop_at is None or time.monotonic() < stop_at:
            if request.stop_after_trips is not None and len(trips) >= request.stop_after_trips:
                break
            started = time.monotonic()
            try:
                status, trip = b.tick()
                looks += 1
                if trip is not None:
                    ctx.report(f"tripped: {trip.kind}: {trip.detail}")
                    with runtime.deploy_lock(_lock_path(ctx, request.where)):
                        steps = b.trip(trip)
                    if steps:
                        seen.append(trip)
                        status = runtime.read_status(runner, with_stats=False)
                        trips.append(_record_trip(ctx, trip, steps, status))
                        for step in steps[1:]:
                            ctx.report(step)
                    else:
                        ctx.report("the trip is stale (a deploy replaced that policy since the look): nothing done")
            except SchedcpError as exc:
                ctx.report(f"look failed, retrying: {str(exc).splitlines()[0]}")
            time.sleep(max(0.0, request.bounds.interval_s - (time.monotonic() - started)))
    return WatchResult(looks=looks, trips=trips, seen=seen, status=status)


class RestoreResult(BaseModel):
    steps: list[str]
    event: DeploymentEvent | None = Field(None, description="recorded when something was restored")
    status: SchedulerStatus


def restore(ctx: Context, where: Where = "host") -> RestoreResult:
    """At boot (schedcp-restore.service): attach the last-known-good policy again, unless the
    breaker holds the default or the kernel changed. Never fails the boot: it says why not."""
    state = breaker.load_state(_breaker_path(ctx, where))
    with runtime.deploy_lock(_lock_path(ctx, where)), ctx.runner(where) as runner:
        before = runtime.read_status(runner, with_stats=False)
        if not before.sched_ext:
            return RestoreResult(steps=["no sched_ext in this kernel: nothing to restore"], status=before)
        steps = breaker.restore_last_known_good(runner, state, before.kernel, _objects_dir(ctx), ctx.report)
        after = runtime.read_status(runner)
    event = None
    if after.ours and after.deployment is not None:
        d = after.deployment
        event = _record(
            ctx,
            DeploymentEvent(
                kind="restore",
                host=after.host,
                kernel=after.kernel,
                policy=d.policy,
                version_id=d.version_id,
                tunables=d.tunables,
                object_sha256=d.object_sha256,
                reason="last-known-good at boot",
                evidence=steps,
            ),
        )
    return RestoreResult(steps=steps, event=event, status=after)
