"""The performance gate's verdict and its choice of workload (the benchmark itself runs in the
sandbox tests; here its numbers are given, so every edge of the rule can be checked)."""

from __future__ import annotations

import pytest

from schedcp.bench.harness import summarize
from schedcp.bench.registry import get_workload
from schedcp.errors import SchedcpError
from schedcp.models.bench import BenchResult, Sample, SchedulerChoice
from schedcp.verify.performance import choose_workload, judge


def result(workload: str, base: list[float], cand: list[float]) -> BenchResult:
    info = get_workload(workload).info
    samples = [
        Sample(side=side, round=i + 1, warmup=False, metrics={m.name: v for m in info.metrics}, duration_s=1.0)
        for side, values in (("baseline", base), ("candidate", cand))
        for i, v in enumerate(values)
    ]
    return BenchResult(
        id="t",
        created="2026-12-02T00:00:00+00:00",
        host="test",
        workload=info,
        size="tiny",
        repeat=len(base),
        baseline=SchedulerChoice(name="default"),
        candidate=SchedulerChoice(name="p"),
        boot=None,
        emulated=True,
        samples=samples,
        metrics=summarize(info, samples),
    )


def test_clearly_worse_fails() -> None:
    # messaging: total_s, lower is better; the policy takes 1.5x as long in every run.
    passed, evidence, findings = judge(result("messaging", [10, 10.2, 9.9], [15, 15.3, 14.8]), 0.10)
    assert not passed
    assert findings[0].rule == "slower than the default"
    assert "1.5" in findings[0].message
    assert "messaging" in findings[0].message
    assert any("fails below 0.90x" in e for e in evidence)


def test_within_tolerance_passes() -> None:
    passed, _, findings = judge(result("messaging", [10, 10.2, 9.9], [10.6, 10.8, 10.5]), 0.10)
    assert passed
    assert not findings


def test_better_passes_higher_is_better_metric() -> None:
    # stress-ng-mix: bogo ops/s, higher is better.
    passed, evidence, _ = judge(result("stress-ng-mix", [100, 102, 99], [120, 125, 118]), 0.10)
    assert passed
    assert "1.2" in evidence[1]


def test_noisy_interval_straddling_the_floor_passes() -> None:
    # Median 12 % worse, but one run was as good as the baseline: not worse with confidence.
    passed, _, _ = judge(result("messaging", [10, 10, 10], [10, 11.2, 12.5]), 0.10)
    assert passed


def test_choose_workload() -> None:
    assert choose_workload(["batch-long-tail"], None).info.workload_class == "batch-long-tail"
    assert choose_workload(["cpu-bound-batch"], "pipe").info.name == "pipe"
    with pytest.raises(SchedcpError, match="--workload"):
        choose_workload([], None)
