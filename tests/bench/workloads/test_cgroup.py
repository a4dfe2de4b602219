"""The cgroup-weights workload: its parser on output captured in the sandbox.

tests/data/bench/cgroup-weights-{tiny,small}.result.json are CommandResults of real runs of
guest/cgroup_hogs.sh in the sandbox (Debian 7.3 kernel under TCG, default scheduler) with the
arguments of each size, captured with `schedcp sandbox run --json`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from schedcp.bench.registry import all_workloads
from schedcp.bench.workload import WorkloadOutputError, guest_file
from schedcp.bench.workloads.cgroup import CgroupWeights, parse_cgroup_report
from schedcp.models import CommandResult
from schedcp.models.vocabulary import SIZES

DATA = Path(__file__).parents[2] / "data" / "bench"


def _captured(size: str) -> CommandResult:
    return CommandResult.model_validate_json((DATA / f"cgroup-weights-{size}.result.json").read_text())


def _with(result: CommandResult, **changes: object) -> CommandResult:
    return result.model_copy(update=changes)


@pytest.mark.parametrize("size", ["tiny", "small"])
def test_every_declared_metric_is_parsed_finite(size: str) -> None:
    workload = CgroupWeights()
    metrics = workload.parse(_captured(size))
    assert set(metrics) == {m.name for m in workload.info.metrics}
    assert workload.info.primary in metrics
    for key, value in metrics.items():
        assert math.isfinite(value), (key, value)
        assert value >= 0, (key, value)
    assert metrics["heavy_bogo_ops_s"] < metrics["total_bogo_ops_s"]


@pytest.mark.parametrize("size", ["tiny", "small"])
def test_captured_run_matches_the_size_it_was_run_with(size: str) -> None:
    params = CgroupWeights().params(size)
    report = parse_cgroup_report(_captured(size), "cgroup-weights")
    assert (report.light.weight, report.heavy.weight) == (params.weight_a, params.weight_b)
    assert (report.light.hogs, report.heavy.hogs) == (params.hogs_a, params.hogs_b)
    assert report.heavy_weight_share == pytest.approx(0.75)
    # The window is `sleep SECONDS` plus reading cpu.stat (a sleep overshoots by up to 2 s under
    # emulation); 2 CPUs cannot give more than twice it.
    assert params.seconds <= report.window_s < params.seconds + 5
    total_s = (report.light.cpu_usec + report.heavy.cpu_usec) / 1e6
    assert 0.5 * report.window_s < total_s <= 2 * report.window_s * 1.01


def test_share_error_is_the_distance_from_the_weight_share() -> None:
    result = _captured("small")
    report = parse_cgroup_report(result, "cgroup-weights")
    metrics = CgroupWeights().parse(result)
    assert metrics["share_error_pct"] == pytest.approx(100 * abs(report.heavy_share - 0.75))
    # The script prints the same share rounded to three places.
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("share of b: "))
    assert float(line.split()[3]) == pytest.approx(report.heavy_share, abs=6e-4)


def test_sizes_and_registry() -> None:
    workload = all_workloads()["cgroup-weights"]
    assert isinstance(workload, CgroupWeights)
    assert workload.info.sizes == list(SIZES)
    assert workload.info.workload_class == "multi-tenant"
    for size in SIZES:
        p = workload.params(size)
        # More hogs than the heavy group's share can use, so the weights decide.
        assert p.hogs_a >= p.hogs_b
        assert p.argv("/s.sh")[:2] == ["sh", "/s.sh"]
    with pytest.raises(Exception, match="sizes"):
        workload.params("huge")


def test_guest_script_is_shipped() -> None:
    assert guest_file("cgroup_hogs.sh").is_file()


@pytest.mark.parametrize(
    "mangle",
    [
        lambda out: "",
        lambda out: "garbage\n",
        lambda out: out.replace("window_s", "window"),
        lambda out: out.replace("group b: cpu.weight", "group c: cpu.weight"),
        lambda out: out.split("--- group b stress-ng ---")[0],
        lambda out: out.replace("] cpu ", "] cpux "),
        lambda out: re.sub(r"(group a: .*cpu_usec )\d+", r"\g<1>0", out),
    ],
)
def test_garbage_raises_with_the_output(mangle: object) -> None:
    good = _captured("small")
    assert callable(mangle)
    bad = _with(good, stdout=mangle(good.stdout))
    with pytest.raises(WorkloadOutputError) as info:
        CgroupWeights().parse(bad)
    assert info.value.result is bad


def test_failed_or_timed_out_run_is_an_error() -> None:
    good = _captured("tiny")
    for bad in (_with(good, rc=1), _with(good, timed_out=True)):
        with pytest.raises(WorkloadOutputError):
            CgroupWeights().parse(bad)
