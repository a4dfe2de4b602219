"""The A/B harness: baseline and candidate alternate (A B A B ...) in one sandbox boot.

Only ratios measured in the same boot are compared. Absolute numbers from the emulated
sandbox are recorded (they are the raw data) but never reported as the workload's speed.
A run where the policy was ejected aborts the benchmark as an ejection, not as a slow run.
"""

from __future__ import annotations

import datetime as dt
import logging
import platform
import time
import uuid
from pathlib import Path

from schedcp.bench.stats import compare, side_stats
from schedcp.bench.workload import Prepared, Workload, WorkloadOutputError
from schedcp.bpf.build import BuiltPolicy
from schedcp.errors import PolicyEjected, SchedcpError
from schedcp.models import BootInfo
from schedcp.models.bench import DEFAULT, BenchResult, MetricResult, Sample, SchedulerChoice, Side, WorkloadInfo
from schedcp.models.progress import Progress, ProgressFn, ignore_progress
from schedcp.models.vocabulary import Size
from schedcp.runner import CommandRunner
from schedcp.runtime.session import run_under_policy

log = logging.getLogger(__name__)

EMULATION_NOTE = (
    "Measured in a sandbox VM under software emulation (TCG): absolute times are not this workload's speed "
    "on real hardware; only the ratios between schedulers measured in the same boot are meaningful."
)


def _run_side(
    runner: CommandRunner,
    prepared: Prepared,
    workload: Workload,
    built: BuiltPolicy | None,
    side: Side,
    rnd: int,
    label: str,
) -> Sample:
    t0 = time.monotonic()
    if built is None:
        result = runner.run(prepared.argv, timeout=prepared.timeout_s)
        metrics = workload.parse(result)
        return Sample(side=side, round=rnd, warmup=rnd == 0, metrics=metrics, duration_s=time.monotonic() - t0)
    report = run_under_policy(runner, built, prepared.argv, timeout=prepared.timeout_s)
    if report.ejected:
        raise PolicyEjected(
            f"policy {built.name} was ejected by the kernel during {label}: {report.exit_reason}"
            + (f" ({'; '.join(report.exit_details)})" if report.exit_details else ""),
            report.exit_reason or "",
        )
    if report.command is None:
        raise SchedcpError(f"{label}: the workload did not run under {built.name}")
    return Sample(
        side=side,
        round=rnd,
        warmup=rnd == 0,
        metrics=workload.parse(report.command),
        duration_s=time.monotonic() - t0,
        policy_stats=report.stats,
        scheduler_after_run=f"{report.state_after_run}:{report.ops_after_run}",
    )


def run_ab(
    runner: CommandRunner,
    workload: Workload,
    size: Size,
    build_dir: Path,
    baseline: BuiltPolicy | None = None,
    candidate: BuiltPolicy | None = None,
    repeat: int = 3,
    compare_candidate: bool = True,
    boot: BootInfo | None = None,
    progress: ProgressFn = ignore_progress,
) -> BenchResult:
    """Run `workload` alternately under baseline and candidate; the first round is a discarded warm-up.

    `baseline`/`candidate` None means the kernel's default scheduler. With compare_candidate
    False only the baseline is measured (no ratios).
    """
    if repeat < 1:
        raise SchedcpError("repeat must be at least 1")
    prepared = workload.prepare(runner, size, build_dir)
    sides: list[tuple[Side, BuiltPolicy | None]] = [("baseline", baseline)]
    if compare_candidate:
        sides.append(("candidate", candidate))
    samples: list[Sample] = []
    total = (repeat + 1) * len(sides)
    for rnd in range(repeat + 1):
        for side, built in sides:
            who = built.name if built is not None else DEFAULT
            label = f"{'warm-up' if rnd == 0 else f'round {rnd}/{repeat}'} of {workload.info.name} ({side}: {who})"
            try:
                sample = _run_side(runner, prepared, workload, built, side, rnd, label)
            except WorkloadOutputError as exc:
                raise WorkloadOutputError(f"{label} failed: {exc}", exc.result) from exc
            samples.append(sample)
            primary = sample.metrics.get(workload.info.primary)
            message = f"{label}: {workload.info.primary}={primary:g}" if primary is not None else label
            log.info("%s", message)
            progress(Progress(message=message, done=len(samples), total=total))
    return BenchResult(
        id=uuid.uuid4().hex[:12],
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        host=platform.node(),
        workload=workload.info,
        size=size,
        repeat=repeat,
        baseline=_choice(baseline),
        candidate=_choice(candidate) if compare_candidate else None,
        boot=boot,
        emulated=bool(boot and boot.accel == "tcg"),
        note=EMULATION_NOTE if boot and boot.accel == "tcg" else "",
        samples=samples,
        metrics=summarize(workload.info, samples),
    )


def _choice(built: BuiltPolicy | None) -> SchedulerChoice:
    if built is None:
        return SchedulerChoice(name=DEFAULT)
    return SchedulerChoice(name=built.name, tunables=built.tunables, object_sha256=built.sha256)


def summarize(info: WorkloadInfo, samples: list[Sample]) -> list[MetricResult]:
    """Per-metric statistics over the measured (non-warm-up) samples."""
    out = []
    for metric in info.metrics:
        base = [s.metrics[metric.name] for s in samples if s.side == "baseline" and not s.warmup]
        cand = [s.metrics[metric.name] for s in samples if s.side == "candidate" and not s.warmup]
        if not base:
            raise WorkloadOutputError(f"no baseline values for metric {metric.name}")
        result = MetricResult(name=metric.name, unit=metric.unit, better=metric.better, baseline=side_stats(base))
        if cand:
            result.candidate = side_stats(cand)
            result.comparison = compare(base, cand, metric.better)
        out.append(result)
    return out
