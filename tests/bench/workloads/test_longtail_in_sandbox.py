"""Long-tail batch end to end in the sandbox: stage the driver, run two variants in the guest, parse.

python and sort at size tiny (about 6 s and 3.5 s under emulation): the python variant runs
a symlink to the interpreter, the one tag a reader might doubt shows up in the comm.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from schedcp.bench.registry import get_workload
from schedcp.bench.variants import LongTailVariantWorkload
from schedcp.bench.workloads.longtail import LongTailPython, LongTailSort, LongTailWorkload, parse_report
from schedcp.sandbox import Sandbox

pytestmark = pytest.mark.sandbox


@pytest.mark.parametrize("workload", [LongTailPython(), LongTailSort()], ids=lambda w: w.info.name)
def test_long_tail_tiny_runs_in_the_sandbox_with_tagged_jobs(
    vm: Sandbox, tmp_path: Path, workload: LongTailWorkload
) -> None:
    prepared = workload.prepare(vm, "tiny", tmp_path)
    result = vm.run(prepared.argv, timeout=prepared.timeout_s)
    metrics = workload.parse(result)
    assert set(metrics) == {m.name for m in workload.info.metrics}
    for name, value in metrics.items():
        assert math.isfinite(value), (name, value)
        assert value > 0, (name, value)
    assert metrics["makespan_s"] >= metrics["long_job_s"]
    assert metrics["makespan_over_bound"] >= 0.95

    report = parse_report(result, workload.variant, workload.info.name)
    shape = workload.shape("tiny")
    assert len(report.jobs) == shape.short + 1
    assert report.cpus == 2
    assert report.driver_rt, "the driver reaps at SCHED_FIFO in the guest (it runs as root)"
    # /proc/<pid>/comm of every job, read by the driver after the exec: the symlink's name.
    for job in report.jobs:
        assert job.comm == f"lt_{'long' if job.long else 'short'}_{workload.tool}", job
    long_job = report.long_job
    assert long_job.cpu_s > max(j.cpu_s for j in report.jobs if not j.long)
    # All jobs are released together: everyone has run within a second of the release.
    assert max(j.start_s for j in report.jobs) < 1.0
    assert result.duration_s < 30, result.duration_s


def test_a_generated_variant_runs_untagged_in_the_sandbox(vm: Sandbox, tmp_path: Path) -> None:
    """long-tail-v1-5 (a sort batch, the long job spread into the start order) at size tiny: every
    job runs as plain `sort`, so only its behaviour tells a policy which job is long."""
    workload = get_workload("long-tail-v1-5")
    assert isinstance(workload, LongTailVariantWorkload)
    prepared = workload.prepare(vm, "tiny", tmp_path)
    result = vm.run(prepared.argv, timeout=prepared.timeout_s)
    metrics = workload.parse(result)
    assert metrics["makespan_over_bound"] >= 0.95
    report = parse_report(result, workload.variant, workload.info.name)
    spec = workload.spec
    assert (report.short_jobs, report.long_jobs, report.order, report.tags) == (
        spec.short,
        spec.long,
        spec.order,
        False,
    )
    assert {j.comm for j in report.jobs} == {"sort"}
    assert report.long_job.cpu_s > max(j.cpu_s for j in report.jobs if not j.long)
