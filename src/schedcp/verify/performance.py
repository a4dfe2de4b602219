"""The verifier's performance gate: no worse than the kernel's own scheduler on the policy's own work.

A policy that is safe but slower than EEVDF on the workload it claims to serve should not
reach a kernel either. The gate runs the benchmark harness (baseline and policy alternately
in the same boot, a discarded warm-up first) on a workload of the policy's first declared
class, or the one the caller names, and fails only when the policy is worse *beyond the
tolerance with confidence*: the whole bootstrap interval of its gain lies below 1 - tolerance
(with one run a side, no interval: the point estimate). Under emulation a single run varies by
10-20 %, so a point estimate alone would fail good policies by chance; an interval that
straddles the tolerance passes, with the numbers in the evidence for whoever deploys.
"""

from __future__ import annotations

import time
from pathlib import Path

from schedcp.bench.harness import run_ab
from schedcp.bench.registry import all_workloads, get_workload
from schedcp.bench.workload import Workload
from schedcp.bpf.build import BuiltPolicy
from schedcp.errors import SchedcpError
from schedcp.models import BootInfo
from schedcp.models.bench import BenchResult, RatioSummary
from schedcp.models.progress import ProgressFn, ignore_progress
from schedcp.models.verification import Finding, StageResult
from schedcp.models.vocabulary import Size
from schedcp.runner import CommandRunner

DEFAULT_TOLERANCE = 0.10
FULL_REPEAT = 3
QUICK_REPEAT = 2
QUICK_SIZE: Size = "tiny"


def choose_workload(classes: list[str], name: str | None) -> Workload:
    """The named workload, else the first workload of the first declared class that has one."""
    if name is not None:
        return get_workload(name)
    workloads = list(all_workloads().values())
    for cls in classes:
        for w in workloads:
            if w.info.workload_class == cls:
                return w
    declared = ", ".join(classes) or "none"
    raise SchedcpError(
        f"no benchmark workload for the policy's classes ({declared}); name one with --workload "
        "(`schedcp bench list` shows them)"
    )


def gain_interval(c: RatioSummary, lower_is_better: bool) -> tuple[float | None, float | None]:
    """The bootstrap interval of the gain (> 1: the policy is better), from the ratio's."""
    if c.ci_low is None or c.ci_high is None:
        return None, None
    if lower_is_better:
        return (1 / c.ci_high if c.ci_high else None), (1 / c.ci_low if c.ci_low else None)
    return c.ci_low, c.ci_high


def judge(result: BenchResult, tolerance: float) -> tuple[bool, list[str], list[Finding]]:
    """Pass unless the policy is worse than the baseline beyond `tolerance` with confidence."""
    metric = result.metric(result.workload.primary)
    c = metric.comparison
    if c is None:
        raise SchedcpError(f"{result.workload.name}: the policy's side was not measured")
    low, high = gain_interval(c, metric.better == "lower")
    floor = 1 - tolerance
    span = f", 95% interval {low:.2f}-{high:.2f}" if low is not None and high is not None else ", no interval"
    evidence = [
        f"{result.workload.name} ({result.size}, {result.repeat} run(s) a side after a warm-up): "
        f"{metric.name} {metric.baseline.median:g} {metric.unit} under the kernel's scheduler, "
        f"{metric.candidate.median if metric.candidate else float('nan'):g} under the policy",
        f"{c.gain:.2f}x as good as the kernel's scheduler{span}: {c.verdict} (fails below {floor:.2f}x)",
    ]
    worst_case_ok = high if high is not None else c.gain
    if worst_case_ok >= floor:
        return True, evidence, []
    finding = Finding(
        rule="slower than the default",
        message=f"{metric.name} is {1 / c.gain:.2f}x worse than under the kernel's scheduler on "
        f"{result.workload.name} (gain {c.gain:.2f}{span}; tolerance {tolerance:.0%})",
        fix=f"the policy loses on its own class of work ({result.workload.workload_class}): compare its "
        "policy stats with the workload's profile (`schedcp analyze`), e.g. slices too long or too short, "
        "wakeups not placed on idle CPUs, or tasks queued behind hogs; or declare the classes it really serves",
    )
    return False, evidence, [finding]


def performance_stage(
    runner: CommandRunner,
    built: BuiltPolicy,
    workload: Workload,
    *,
    build_dir: Path,
    quick: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
    boot: BootInfo | None = None,
    progress: ProgressFn = ignore_progress,
) -> tuple[StageResult, BenchResult]:
    t0 = time.monotonic()
    size: Size = QUICK_SIZE if quick and QUICK_SIZE in workload.info.sizes else workload.info.default_size
    result = run_ab(
        runner,
        workload,
        size,
        build_dir,
        candidate=built,
        repeat=QUICK_REPEAT if quick else FULL_REPEAT,
        boot=boot,
        progress=progress,
    )
    passed, evidence, findings = judge(result, tolerance)
    stage = StageResult(
        stage="performance",
        passed=passed,
        duration_s=time.monotonic() - t0,
        evidence=evidence,
        findings=findings,
        fix="" if passed else findings[0].fix,
    )
    return stage, result
