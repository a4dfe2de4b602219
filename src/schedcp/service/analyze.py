"""Workload analysis as a service: profile a command (in the sandbox or on this host), attach to a
running process or cgroup (this host), and read, compare and check stored profiles.

Every profile is stored in the repository database unless the caller says not to, so the
planner can find what was measured and compare before and after (`diff`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, RootModel, model_validator

from schedcp.analysis import engine
from schedcp.analysis.diff import ProfileDiff, diff_profiles
from schedcp.analysis.workloads import WorkloadCheck, render_checks
from schedcp.analysis.workloads import check_workloads as run_checks
from schedcp.bench.registry import all_workloads
from schedcp.errors import AnalysisError
from schedcp.fsutil import atomic_write
from schedcp.models.profile import Target, Where, WorkloadProfile, parse_profile_json
from schedcp.models.progress import Progress
from schedcp.models.vocabulary import Size
from schedcp.repository import ProfileRecord
from schedcp.service.context import Context


class Observation(BaseModel):
    """How to observe, for a command and for attaching alike."""

    interval_s: float = Field(1.0, gt=0, description="procfs sampling interval")
    trace: bool = Field(True, description="BPF tracing; False: procfs and schedstat only")
    store: bool = Field(True, description="store the profile in the repository")
    output: Path | None = Field(None, description="also write the profile JSON here")


class AnalyzeRequest(Observation):
    """Run a command and profile it until it exits (or `duration_s`, when it is stopped)."""

    command: list[str] = Field(min_length=1)
    where: Where = Field("sandbox", description="the sched_ext sandbox VM, or this host")
    duration_s: float | None = Field(None, gt=0, description="stop the command after this; None: until it exits")
    timeout_s: float = Field(600.0, gt=0, description="the command is killed after this")


class AttachRequest(Observation):
    """Observe a running process (and its threads and children) or a cgroup on this host."""

    pid: int | None = Field(None, ge=1)
    cgroup: str | None = Field(None, description="a cgroup v2 path (under /sys/fs/cgroup, or relative to it)")
    duration_s: float = Field(gt=0, description="how long to observe")

    @model_validator(mode="after")
    def _one_target(self) -> AttachRequest:
        if (self.pid is None) == (self.cgroup is None):
            raise ValueError("attach to exactly one target: a pid or a cgroup")
        return self


def analyze_command(ctx: Context, request: AnalyzeRequest) -> WorkloadProfile:
    """Run the command under the collector where it was asked to run; classify, summarize, store."""
    target = Target(kind="command", command=request.command)
    return _analyze(ctx, target, request.where, request, request.duration_s, request.timeout_s)


def attach(ctx: Context, request: AttachRequest) -> WorkloadProfile:
    """Observe a process or cgroup of this host for the duration; classify, summarize, store."""
    if request.pid is not None:
        target = Target(kind="pid", pid=request.pid)
    else:
        target = Target(kind="cgroup", cgroup=request.cgroup)
    return _analyze(ctx, target, "host", request, request.duration_s, request.duration_s)


def _analyze(
    ctx: Context, target: Target, where: Where, how: Observation, duration_s: float | None, timeout_s: float
) -> WorkloadProfile:
    with ctx.runner(where) as runner:
        ctx.report(
            f"observing the {target.kind} {target.text()} on {'this host' if where == 'host' else 'the sandbox'}"
        )
        profile = engine.analyze(
            runner,
            target,
            where=where,
            duration_s=duration_s,
            timeout_s=timeout_s,
            interval_s=how.interval_s,
            trace=how.trace,
            settings=ctx.settings,
        )
    return _keep(ctx, profile, how.store, how.output)


def _keep(ctx: Context, profile: WorkloadProfile, store: bool, output: Path | None) -> WorkloadProfile:
    if store:
        with ctx.repository(import_builtins=False) as repo:
            repo.save_profile(profile)
    if output is not None:
        atomic_write(output, (profile.model_dump_json(indent=2) + "\n").encode())
    return profile


class ProfileList(BaseModel):
    profiles: list[ProfileRecord]


def list_profiles(ctx: Context, limit: int = 20, workload_class: str | None = None) -> ProfileList:
    """Stored profiles, newest first; `workload_class` keeps those whose primary class it is."""
    with ctx.repository(import_builtins=False) as repo:
        return ProfileList(profiles=repo.list_profiles(limit=limit, workload_class=workload_class))


def show_profile(ctx: Context, ref: str) -> WorkloadProfile:
    """A stored profile by id (or unique prefix), or a profile JSON file.

    A file holding a bare profile (no classes and no summary, e.g. a test recording) is
    classified and summarized as the engine would have done.
    """
    path = Path(ref)
    if path.suffix == ".json" or path.is_file():
        try:
            text = path.read_text()
        except OSError as exc:
            raise AnalysisError(f"cannot read the profile file {path}: {exc}") from exc
        profile = parse_profile_json(text, str(path))
        if not profile.classes and not profile.summary:
            engine.finish_profile(profile)
        return profile
    with ctx.repository(import_builtins=False) as repo:
        return repo.get_profile(ref)


def compare_profiles(ctx: Context, a: str, b: str) -> ProfileDiff:
    """B against A (ids or files): key metrics with B/A ratios, class and top-process changes."""
    return diff_profiles(show_profile(ctx, a), show_profile(ctx, b))


class OverheadRequest(BaseModel):
    repeat: int = Field(3, ge=1, le=50, description="measured rounds, after one warm-up")
    size: Size = Field("small", description="the wakeup-latency benchmark's size")
    store: bool = Field(True, description="store the last traced run's profile")
    output: Path | None = Field(None, description="also write the report JSON here")


def measure_overhead(ctx: Context, request: OverheadRequest) -> engine.OverheadReport:
    """The tracer's cost: wakeup-latency untraced and traced, alternating in one sandbox boot."""
    with ctx.runner("sandbox") as vm:
        report = engine.measure_overhead(
            vm, repeat=request.repeat, size=request.size, settings=ctx.settings, progress=ctx.report
        )
    _keep(ctx, report.profile, request.store, None)
    if request.output is not None:
        atomic_write(request.output, (report.model_dump_json(indent=2) + "\n").encode())
    return report


class WorkloadsRequest(BaseModel):
    names: list[str] = Field(default_factory=list, description="benchmark workloads; empty: all of them")
    size: Size | None = Field(None, description="None: each workload's default size")
    store: bool = Field(True, description="store every profile")
    output: Path | None = Field(None, description="also write the checks as JSON here")


class WorkloadChecks(RootModel[list[WorkloadCheck]]):
    """One check per workload, in the order asked for."""

    @property
    def matched(self) -> int:
        return sum(c.ok for c in self.root)

    def render(self) -> str:
        """A Markdown table: one row per workload, then how many matched."""
        return render_checks(self.root)


def check_workloads(ctx: Context, request: WorkloadsRequest) -> WorkloadChecks:
    """Profile the benchmark workloads in one sandbox boot and check each gets its declared class."""
    total = len(request.names) or len(all_workloads())

    def done(check: WorkloadCheck) -> None:
        if check.profile is not None and request.store:
            with ctx.repository(import_builtins=False) as repo:
                repo.save_profile(check.profile)
        verdict = "ok" if check.ok else f"MISMATCH (found {check.found or check.error})"
        count = len(checks_so_far) + 1
        checks_so_far.append(check)
        ctx.report(Progress(message=f"{check.workload}: {check.declared} -> {verdict}", done=count, total=total))

    checks_so_far: list[WorkloadCheck] = []
    with tempfile.TemporaryDirectory(prefix="schedcp-analyze-") as tmp, ctx.runner("sandbox") as vm:
        checks = run_checks(
            vm,
            where="sandbox",
            names=request.names,
            size=request.size,
            build_dir=Path(tmp),
            settings=ctx.settings,
            progress=done,
        )
    result = WorkloadChecks(checks)
    if request.output is not None:
        atomic_write(request.output, (result.model_dump_json(indent=2) + "\n").encode())
    return result


def profile_schema() -> dict[str, Any]:
    """The JSON schema of a WorkloadProfile, for readers that validate what they parse."""
    return WorkloadProfile.model_json_schema()
