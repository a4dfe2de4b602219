"""Run or attach to a workload, collect, and turn what was collected into a WorkloadProfile.

CONTRACT (shared by the collection side and the CLI/classification side; keep these names
and signatures):

    analyze(runner, target, *, where, duration_s=None, timeout_s=600.0, interval_s=1.0,
            trace=True, settings=None) -> WorkloadProfile
        runner: a CommandRunner (HostRunner for the host, a booted Sandbox for the sandbox).
        target: Target(kind="command", command=[...]) runs the command and observes it until
                it exits (or duration_s, after which it is killed and exit_code is None);
                Target(kind="pid", pid=N) / Target(kind="cgroup", cgroup="/sys/fs/cgroup/..."
                or a path relative to /sys/fs/cgroup) attaches for duration_s (required).
        trace=False skips BPF (procfs/schedstat only): for the overhead comparison and for
                machines without BPF.
        Returns a profile with classes (classify.classify) and summary (summary.summarize)
        filled in. Raises AnalysisError (errors.py) on bad input (no such command, pid,
        cgroup); a BPF failure gives a partial profile (complete=False, `missing` says why).

    schedcp.service.analyze runs it on a HostRunner or in a sandbox it boots for the call.

Also here: collect() (one collector run, the raw document) and measure_overhead() (the
wakeup-latency benchmark alternately untraced and traced in one boot: the tracer's slowdown).

How a collection runs: the collector (guest/collect.py, standard library only) and the
tracer object are staged for the runner and started as `/usr/bin/python3 -I collect.py ...`
wherever the workload lives; the collector enforces the duration/timeout itself and the
runner's timeout is only a backstop with slack on top. Should the backstop fire anyway (the
collector was killed, so its finally never ran), the engine removes the pins itself: a
tracer left attached would cost every later workload on that machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import statistics
import sys
import tempfile
import uuid
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from schedcp.analysis.measure import build_profile
from schedcp.analysis.raw import RawCollection
from schedcp.bench.stats import compare
from schedcp.config import Settings, load_settings
from schedcp.errors import AnalysisError, SchedcpError
from schedcp.models import CommandResult
from schedcp.models.bench import RatioSummary
from schedcp.models.profile import Target, Where, WorkloadProfile
from schedcp.models.progress import Progress, ProgressFn, ignore_progress
from schedcp.models.vocabulary import Size
from schedcp.runner import CommandRunner, HostRunner

log = logging.getLogger(__name__)

TRACER_SOURCE = "sched_trace.bpf.c"
COLLECTOR = "collect.py"
# Backstop on top of the collector's own limit: loading the tracer and dumping its maps take
# seconds under emulation, and the collector must be allowed to finish and clean up itself.
RUNNER_SLACK_S = 120.0
PIN_PREFIX = "/sys/fs/bpf/schedcp_analyze_"
SYSTEM_PYTHON = "/usr/bin/python3"


def tracer_source() -> Path:
    """Our BPF tracer, shipped as package data."""
    return Path(str(resources.files("schedcp.analysis").joinpath("bpf", TRACER_SOURCE)))


def collector_script() -> Path:
    return Path(str(resources.files("schedcp.analysis").joinpath("guest", COLLECTOR)))


def build_tracer(settings: Settings | None = None) -> Path:
    """Compile the tracer against the sandbox kernel's vmlinux.h, once per source and kernel.

    The same object loads on the host: CO-RE relocates its field accesses to the running
    kernel's BTF at load time.
    """
    from schedcp.bpf.toolchain import compile_policy
    from schedcp.sandbox.kernel import find_kernel

    settings = settings or load_settings()
    kernel = find_kernel(settings.kernels_dir, settings.sandbox.kernel)
    source = tracer_source()
    digest = hashlib.sha256(source.read_bytes() + kernel.release.encode()).hexdigest()[:12]
    out_dir = settings.cache_dir / "analysis"
    out = out_dir / f"sched_trace-{digest}.bpf.o"
    if out.exists():
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    # Compile in a private folder and rename: concurrent analyses must never load half an object.
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".build-") as tmp:
        built = compile_policy(source, Path(tmp) / "sched_trace.bpf.o", kernel, settings.cache_dir)
        os.replace(built, out)
    return out


def _python() -> str:
    """The guest sees the host's / read-only: the system interpreter exists in both."""
    return SYSTEM_PYTHON if os.access(SYSTEM_PYTHON, os.X_OK) else os.path.realpath(sys.executable)


def _check_target(target: Target, duration_s: float | None) -> None:
    if target.kind == "command":
        if not target.command:
            raise AnalysisError("no command to analyze; give one, e.g. `schedcp analyze -- make -j4`")
    elif target.kind == "pid":
        if target.pid is None or target.pid <= 0:
            raise AnalysisError(f"invalid pid {target.pid!r}; give the pid of a running process")
    elif not target.cgroup:
        raise AnalysisError("no cgroup path given; use a path under /sys/fs/cgroup")
    if target.kind != "command" and not duration_s:
        raise AnalysisError(f"attaching to a {target.kind} needs a duration (e.g. --duration 10s)")
    if duration_s is not None and duration_s <= 0:
        raise AnalysisError(f"duration must be positive, not {duration_s:g} s")


def collect(
    runner: CommandRunner,
    target: Target,
    *,
    duration_s: float | None = None,
    timeout_s: float = 600.0,
    interval_s: float = 1.0,
    trace: bool = True,
    settings: Settings | None = None,
    tracer_object: Path | None = None,
) -> RawCollection:
    """One collector run where `runner` runs commands; the raw document it printed.

    Raises AnalysisError when the target is bad (the collector's `fatal`) or the collector
    itself failed. A tracer that cannot be built or loaded is not an error: the document says
    so and carries the procfs/schedstat data.
    """
    _check_target(target, duration_s)
    if interval_s <= 0:
        raise AnalysisError(f"sampling interval must be positive, not {interval_s:g} s")
    run_id = uuid.uuid4().hex[:12]
    argv = [_python(), "-I", runner.stage(collector_script()), "--id", run_id, "--interval", f"{interval_s:g}"]
    build_error: str | None = None
    if trace:
        try:
            obj = tracer_object or build_tracer(settings)
            argv += ["--object", runner.stage(obj)]
        except (SchedcpError, OSError) as exc:
            build_error = f"bpf: the tracer could not be built: {exc}"
            log.warning("%s; collecting from procfs only", build_error)
    if duration_s is not None:
        argv += ["--duration", f"{duration_s:g}"]
    limit = duration_s if duration_s is not None else timeout_s
    if target.kind == "command":
        argv += ["--timeout", f"{timeout_s:g}", "--", *(target.command or [])]
    elif target.kind == "pid":
        argv += ["--pid", str(target.pid)]
    else:
        argv += ["--cgroup", str(target.cgroup)]
    result = runner.run(argv, timeout=limit + RUNNER_SLACK_S)
    pin_dir = PIN_PREFIX + run_id
    if result.timed_out:
        _remove_pins(runner, pin_dir)
        raise AnalysisError(
            f"the collector did not finish within {limit + RUNNER_SLACK_S:g} s and was killed; "
            f"its stderr: {result.stderr[-1500:]}"
        )
    raw = _parse(result)
    if raw.fatal:
        raise AnalysisError(raw.fatal)
    if raw.bpf.pin_dir and raw.bpf.pins_removed is False:
        _remove_pins(runner, raw.bpf.pin_dir)
    if build_error:
        # Replaces the collector's "not requested": it was requested, and failed.
        raw.missing = [build_error, *(m for m in raw.missing if not m.startswith("bpf: tracing not requested"))]
        raw.bpf.error = build_error
    return raw


def _parse(result: CommandResult) -> RawCollection:
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    try:
        return RawCollection.model_validate(json.loads(lines[-1]))
    except (IndexError, json.JSONDecodeError, ValidationError) as exc:
        raise AnalysisError(
            f"the collector printed no usable report (exit {result.rc}): {exc}\nstderr (tail): {result.stderr[-2000:]}"
        ) from exc


def _remove_pins(runner: CommandRunner, pin_dir: str) -> None:
    log.warning("removing the tracer pins %s left by a collector that did not clean up", pin_dir)
    res = runner.run(["rm", "-rf", pin_dir], timeout=60.0)
    if res.rc != 0:
        log.error("could not remove %s: %s; the tracer may still be attached", pin_dir, res.stderr.strip())


def analyze(
    runner: CommandRunner,
    target: Target,
    *,
    where: Where,
    duration_s: float | None = None,
    timeout_s: float = 600.0,
    interval_s: float = 1.0,
    trace: bool = True,
    settings: Settings | None = None,
    tracer_object: Path | None = None,
) -> WorkloadProfile:
    """Collect, measure, classify and summarize (see the module docstring for the contract).

    `tracer_object` replaces the built tracer (tests force a BPF load failure with it).
    """
    raw = collect(
        runner,
        target,
        duration_s=duration_s,
        timeout_s=timeout_s,
        interval_s=interval_s,
        trace=trace,
        settings=settings,
        tracer_object=tracer_object,
    )
    return finish_profile(build_profile(raw, where=where, target=target))


def finish_profile(profile: WorkloadProfile) -> WorkloadProfile:
    """Add the classes, the margin of the decision and the summary (rules in classify.py, prose in summary.py)."""
    from schedcp.analysis.classify import classify, decide
    from schedcp.analysis.summary import summarize

    profile.classes = classify(profile)
    decision = decide(profile.classes)
    profile.class_margin = decision.margin
    top, runner_up = decision.top, decision.runner_up
    close = decision.close and top is not None and runner_up is not None
    profile.close_call = [top.workload_class, runner_up.workload_class] if top and runner_up and close else []
    profile.summary = summarize(profile)
    return profile


# -- overhead --------------------------------------------------------------------------------


class OverheadReport(BaseModel):
    """The tracer's cost on the wakeup-latency benchmark: untraced and traced runs alternating
    in one boot (A B A B ..., the first round a discarded warm-up), compared by medians."""

    workload: str
    size: Size
    repeat: int
    untraced: dict[str, list[float]] = Field(description="metric -> values of the measured untraced runs")
    traced: dict[str, list[float]]
    rps: RatioSummary = Field(description="traced / untraced requests per second (1 = no cost)")
    request_p99: RatioSummary = Field(description="traced / untraced request p99 latency (1 = no cost)")
    slowdown: float = Field(description="untraced rps / traced rps: 1.03 = the traced run did 3% less work")
    bpf_cpu_pct: float | None = Field(None, description="median tracer CPU, % of the machine's capacity")
    bpf_ns_per_event: float | None = None
    collector_cpu_pct: float | None = None
    profile: WorkloadProfile = Field(description="the last traced run's profile, with overhead.slowdown set")

    def detail(self) -> str:
        def interval(r: RatioSummary) -> str:
            return f" [{r.ci_low:.3f}, {r.ci_high:.3f}]" if r.ci_low is not None and r.ci_high is not None else ""

        return (
            f"{self.workload} ({self.size}, {self.repeat} rounds, alternating, same boot): traced/untraced "
            f"rps {self.rps.ratio:.3f}{interval(self.rps)}, request p99 "
            f"{self.request_p99.ratio:.3f}{interval(self.request_p99)} (95% bootstrap intervals)"
        )


def measure_overhead(
    runner: CommandRunner,
    repeat: int = 3,
    size: Size = "small",
    *,
    where: Where | None = None,
    settings: Settings | None = None,
    build_dir: Path | None = None,
    progress: ProgressFn = ignore_progress,
) -> OverheadReport:
    """Run wakeup-latency alternately untraced and under the collector with the tracer.

    `where` defaults to "host" for a HostRunner and "sandbox" for anything else.
    """
    from schedcp.bench.registry import get_workload

    if where is None:
        where = "host" if isinstance(runner, HostRunner) else "sandbox"

    if repeat < 1:
        raise AnalysisError("repeat must be at least 1")
    settings = settings or load_settings()
    workload = get_workload("wakeup-latency")
    prepared = workload.prepare(runner, size, build_dir or settings.cache_dir / "bench-build")
    target = Target(kind="command", command=prepared.argv)
    untraced: dict[str, list[float]] = {}
    traced: dict[str, list[float]] = {}
    profiles: list[WorkloadProfile] = []
    for rnd in range(repeat + 1):
        plain = runner.run(prepared.argv, timeout=prepared.timeout_s)
        base = workload.parse(plain)
        raw = collect(runner, target, timeout_s=prepared.timeout_s, settings=settings)
        if raw.command is None or not raw.bpf.loaded:
            raise AnalysisError(f"the traced run {rnd} did not trace the benchmark: {'; '.join(raw.missing)}")
        cand = workload.parse(
            CommandResult(
                argv=prepared.argv,
                rc=raw.command.exit_code if raw.command.exit_code is not None else -1,
                stdout=raw.command.stdout,
                stderr=raw.command.stderr_tail,
                timed_out=raw.command.stopped == "timeout",
            )
        )
        message = f"overhead round {rnd}/{repeat}: untraced rps {base['rps']:.1f}, traced rps {cand['rps']:.1f}"
        log.info("%s", message)
        progress(Progress(message=message + (" (warm-up)" if rnd == 0 else ""), done=rnd + 1, total=repeat + 1))
        if rnd == 0:
            continue  # warm-up: binaries come over 9p, caches are cold
        for name, value in base.items():
            untraced.setdefault(name, []).append(value)
        for name, value in cand.items():
            traced.setdefault(name, []).append(value)
        profiles.append(build_profile(raw, where=where, target=target))
    rps = compare(untraced["rps"], traced["rps"], "higher")
    p99 = compare(untraced["request_p99_us"], traced["request_p99_us"], "lower")
    slowdown = 1 / rps.ratio if rps.ratio > 0 else float("inf")

    def median_of(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else None

    report = OverheadReport(
        workload=workload.info.name,
        size=size,
        repeat=repeat,
        untraced=untraced,
        traced=traced,
        rps=rps,
        request_p99=p99,
        slowdown=slowdown,
        bpf_cpu_pct=median_of([p.overhead.bpf_cpu_pct for p in profiles]),
        bpf_ns_per_event=median_of([p.overhead.bpf_ns_per_event for p in profiles]),
        collector_cpu_pct=median_of([p.overhead.collector_cpu_pct for p in profiles]),
        profile=profiles[-1],
    )
    report.profile.overhead.slowdown = slowdown
    report.profile.overhead.slowdown_detail = report.detail()
    report.profile = finish_profile(report.profile)
    return report
