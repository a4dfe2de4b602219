"""The long-tail batch workloads: parsers on output captured in the sandbox, and the driver natively.

tests/data/bench/longtail-<variant>.json are CommandResults of real runs in the sandbox (Debian
7.3 kernel under TCG, 2 vCPUs, default scheduler) at size tiny, made with each workload's own
prepare(); they keep argv, which the parser checks the report against.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from schedcp.bench.workload import Prepared, WorkloadOutputError, guest_file
from schedcp.bench.workloads.longtail import (
    WORKLOAD_CLASS,
    LongTailAwk,
    LongTailChecksum,
    LongTailCompile,
    LongTailCompress,
    LongTailPython,
    LongTailSort,
    LongTailWorkload,
    full_shape,
    longtail_workloads,
    parse_report,
)
from schedcp.errors import SchedcpError
from schedcp.models import CommandResult
from schedcp.models.vocabulary import SIZES
from schedcp.runner import HostRunner

DATA = Path(__file__).parents[2] / "data" / "bench"
CLASSES: dict[str, type[LongTailWorkload]] = {
    "compress": LongTailCompress,
    "checksum": LongTailChecksum,
    "sort": LongTailSort,
    "awk": LongTailAwk,
    "compile": LongTailCompile,
    "python": LongTailPython,
}
VARIANTS = list(CLASSES)
METRICS = {"makespan_s", "mean_completion_s", "long_job_s", "makespan_over_bound"}
HOST_PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


def _captured(variant: str) -> CommandResult:
    return CommandResult.model_validate_json((DATA / f"longtail-{variant}.json").read_text())


def _report(result: CommandResult) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _with_report(result: CommandResult, report: dict[str, Any]) -> CommandResult:
    return result.model_copy(update={"stdout": json.dumps(report) + "\n"})


# -- the definitions ---------------------------------------------------------------------------


def test_one_workload_per_variant_with_the_agreed_names_and_metrics() -> None:
    workloads = longtail_workloads()
    assert [w.info.name for w in workloads] == [f"long-tail-{v}" for v in VARIANTS]
    for w in workloads:
        assert w.info.workload_class == WORKLOAD_CLASS == "batch-long-tail"
        assert w.info.primary == "makespan_s"
        assert {m.name for m in w.info.metrics} == METRICS
        assert all(m.better == "lower" for m in w.info.metrics)
        assert w.info.sizes == list(SIZES)
        assert w.info.default_size == "small"


@pytest.mark.parametrize("variant", VARIANTS)
def test_small_is_39_short_jobs_and_one_39_times_longer(variant: str) -> None:
    w = CLASSES[variant]()
    small = w.shape("small")
    assert (small.short, small.factor) == (39, 39)
    tiny, medium, large = w.shape("tiny"), w.shape("medium"), w.shape("large")
    assert tiny.short < small.short <= medium.short < large.short
    assert tiny.unit <= small.unit <= medium.unit <= large.unit < w.shape("full").unit


def test_full_scales_with_the_cpus_so_that_the_long_job_matters() -> None:
    assert (full_shape(2, 5).short, full_shape(2, 5).factor) == (39, 39)
    big = full_shape(64, 5)
    assert big.short == 20 * 64 - 1
    # k = N / (C - 1): the long job is as long as the short jobs spread over the other CPUs.
    assert big.factor == round(big.short / 63)
    assert full_shape(1, 5).factor >= 2


def test_prepare_stages_the_driver_and_passes_the_shape(tmp_path: Path) -> None:
    prepared = LongTailSort().prepare(HostRunner(), "tiny", tmp_path)
    assert isinstance(prepared, Prepared)
    assert prepared.argv[:3] == ["/usr/bin/python3", "-I", str(guest_file("longtail.py").resolve())]
    argv = prepared.argv
    assert argv[argv.index("--variant") + 1] == "sort"
    assert argv[argv.index("--short") + 1] == "7"
    assert argv[argv.index("--factor") + 1] == "7"
    assert prepared.timeout_s >= 60


class _Runner(HostRunner):
    """The host, except that nproc answers a chosen number."""

    def __init__(self, cpus: str) -> None:
        super().__init__()
        self.cpus = cpus

    def run(self, argv: Any, timeout: float | None = None, **kwargs: Any) -> CommandResult:
        if list(argv) == ["nproc"]:
            return CommandResult(argv=["nproc"], rc=0, stdout=self.cpus + "\n")
        return super().run(argv, timeout, **kwargs)


def test_prepare_full_asks_the_runner_for_its_cpus(tmp_path: Path) -> None:
    argv = LongTailChecksum().prepare(_Runner("16"), "full", tmp_path).argv
    assert argv[argv.index("--short") + 1] == str(20 * 16 - 1)
    with pytest.raises(WorkloadOutputError, match="nproc"):
        LongTailChecksum().prepare(_Runner("lots"), "full", tmp_path)


def test_unknown_size_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SchedcpError, match="huge"):
        LongTailSort().prepare(HostRunner(), "huge", tmp_path)


# -- parsers on captured sandbox output --------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_captured_run_parses_to_plausible_metrics(variant: str) -> None:
    result = _captured(variant)
    metrics = CLASSES[variant]().parse(result)
    assert set(metrics) == METRICS
    assert all(math.isfinite(v) and v > 0 for v in metrics.values())
    assert metrics["makespan_s"] >= metrics["long_job_s"]
    assert metrics["makespan_s"] >= metrics["mean_completion_s"]
    assert metrics["makespan_over_bound"] >= 0.95
    report = parse_report(result, variant, variant)
    argv = result.argv
    assert len(report.jobs) == int(argv[argv.index("--short") + 1]) + 1 == report.short_jobs + 1
    assert report.cpus == 2
    assert report.jobs[-1].long, "the long job is started last"
    tool = CLASSES[variant].tool
    for job in report.jobs:
        assert job.comm == f"lt_{'long' if job.long else 'short'}_{tool}"[:15]
        assert 0 <= job.start_s <= job.end_s <= metrics["makespan_s"]
    assert report.long_cpu_s > max(j.cpu_s for j in report.jobs if not j.long), "the long job did the most work"


def test_garbage_and_empty_output_are_errors() -> None:
    good = _captured("sort")
    w = LongTailSort()
    for stdout in ("", "   \n", "Segmentation fault\n", "[1, 2, 3]\n", '{"variant": "sort"}\n'):
        with pytest.raises(WorkloadOutputError) as err:
            w.parse(good.model_copy(update={"stdout": stdout}))
        assert err.value.result is not None


def test_truncated_output_is_an_error_carrying_the_output() -> None:
    good = _captured("checksum")
    cut = good.model_copy(update={"stdout": good.stdout[: len(good.stdout) // 2]})
    with pytest.raises(WorkloadOutputError, match="long-tail report") as err:
        LongTailChecksum().parse(cut)
    assert "--- stdout (tail) ---" in str(err.value)


def test_failed_or_timed_out_run_is_an_error_even_with_a_report() -> None:
    good = _captured("awk")
    with pytest.raises(WorkloadOutputError, match="exited with status 1"):
        LongTailAwk().parse(good.model_copy(update={"rc": 1, "stderr": "longtail: job short-03 ... exited"}))
    with pytest.raises(WorkloadOutputError, match="timed out"):
        LongTailAwk().parse(good.model_copy(update={"timed_out": True, "rc": -9}))


def test_report_of_another_variant_is_refused() -> None:
    with pytest.raises(WorkloadOutputError, match="variant 'compress'"):
        LongTailSort().parse(_captured("compress"))


def test_job_count_mismatch_is_refused() -> None:
    good = _captured("python")
    report = _report(good)
    report["jobs"] = report["jobs"][1:]
    with pytest.raises(WorkloadOutputError, match="expected 7 short"):
        LongTailPython().parse(_with_report(good, report))


def test_command_and_report_must_agree_on_the_shape() -> None:
    good = _captured("python")
    argv = list(good.argv)
    argv[argv.index("--short") + 1] = "39"
    with pytest.raises(WorkloadOutputError, match="asked for --short 39"):
        LongTailPython().parse(good.model_copy(update={"argv": argv}))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["jobs"][0].update(long=True), "2 long jobs"),
        (lambda r: r["jobs"][2].update(rc=2), "exited with status 2"),
        (lambda r: r["jobs"][1].update(end_s=-1.0), "jobs.1.end_s"),
        (lambda r: r["jobs"][3].update(start_s=r["jobs"][3]["end_s"] + 1), "ended"),
        (lambda r: r.update(makespan_s=r["makespan_s"] / 2), "makespan_s is"),
        (lambda r: r.update(lower_bound_s=r["lower_bound_s"] * 0.5), "lower_bound_s is"),
        (lambda r: r.update(makespan_over_bound=1.0), "makespan_over_bound is"),
        (lambda r: r.update(long_job_s=0.1), "long_job_s is"),
        (lambda r: r.pop("cpus"), "cpus"),
        (lambda r: r.update(jobs=[]), "expected 7 short"),
    ],
)
def test_inconsistent_reports_are_refused(change: Any, message: str) -> None:
    good = _captured("compile")
    report = _report(good)
    change(report)
    with pytest.raises(WorkloadOutputError, match=message):
        LongTailCompile().parse(_with_report(good, report))


# -- the driver, natively on this host ----------------------------------------------------------


def _drive(tmp: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    """The guest driver run here, with its work folders under tmp (TMPDIR)."""
    env = {**os.environ, "TMPDIR": str(tmp)}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [HOST_PYTHON, "-I", str(guest_file("longtail.py")), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_driver_runs_every_variant_natively_and_reports_everything(variant: str, tmp_path: Path) -> None:
    args = ["--variant", variant, "--short", "2", "--factor", "2", "--unit", "1", "--seed", "5"]
    proc = _drive(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1, "one JSON object on one line"
    result = CommandResult(argv=["longtail.py", *args], rc=0, stdout=proc.stdout, stderr=proc.stderr)
    metrics = CLASSES[variant]().parse(result)
    assert set(metrics) == METRICS
    report = parse_report(result, variant, variant)
    raw = json.loads(proc.stdout)
    for key in ("variant", "jobs", "makespan_s", "mean_completion_s", "long_job_s", "total_job_s", "lower_bound_s"):
        assert key in raw
    assert raw["cpus"] == len(os.sched_getaffinity(0))
    assert raw["total_job_s"] == pytest.approx(sum(j.end_s - j.start_s for j in report.jobs), abs=1e-4)
    assert [j.name for j in report.jobs] == ["short-00", "short-01", "long"]
    tag = CLASSES[variant].tool
    assert [j.comm for j in report.jobs] == [f"lt_short_{tag}"[:15]] * 2 + [f"lt_long_{tag}"[:15]]
    assert list(tmp_path.iterdir()) == [], "the work folder is removed"


def test_same_seed_same_inputs_other_seed_other_inputs(tmp_path: Path) -> None:
    def digest(variant: str, seed: str) -> str:
        args = ["--variant", variant, "--short", "1", "--factor", "1", "--unit", "1", "--seed", seed]
        proc = _drive(tmp_path, *args, "--print-input-digest")
        assert proc.returncode == 0, proc.stderr
        value: str = json.loads(proc.stdout)["input_sha256"]
        return value

    for variant in ("awk", "compile", "compress"):
        first = digest(variant, "1")
        assert len(first) == 64
        assert digest(variant, "1") == first
        assert digest(variant, "2") != first


def test_keep_leaves_the_inputs_for_inspection(tmp_path: Path) -> None:
    proc = _drive(tmp_path, "--variant", "sort", "--short", "1", "--factor", "1", "--unit", "1", "--keep")
    assert proc.returncode == 0, proc.stderr
    work = Path(json.loads(proc.stdout)["workdir"])
    assert work.parent == tmp_path
    pool = sorted((work / "in").iterdir())
    assert pool
    assert all(p.read_text().count(",") == 6 * 5000 for p in pool), "5000 CSV lines of 7 fields"
    assert os.readlink(work / "bin" / "lt_long_sort") == os.path.realpath(shutil.which("sort") or "")


def test_a_failing_job_fails_the_run_with_its_stderr(tmp_path: Path) -> None:
    fake = tmp_path / "fakebin"
    fake.mkdir()
    tool = fake / "sha256sum"
    # Passes the warm-up (one file), fails in the jobs (two files or more each).
    tool.write_text('#!/bin/sh\nif [ $# -gt 1 ]; then echo "disk on fire" >&2; exit 3; fi\nexit 0\n')
    tool.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    args = ["--variant", "checksum", "--short", "2", "--factor", "2", "--unit", "2"]
    proc = _drive(work, *args, path=f"{fake}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    assert proc.returncode == 1
    assert "job short-00 (lt_short_sha256) exited with status 3" in proc.stderr
    assert "disk on fire" in proc.stderr
    result = CommandResult(argv=["longtail.py", *args], rc=proc.returncode, stdout=proc.stdout, stderr=proc.stderr)
    with pytest.raises(WorkloadOutputError, match="exited with status 1"):
        LongTailChecksum().parse(result)
    assert list(work.iterdir()) == []


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    assert _drive(tmp_path, "--variant", "nosuch").returncode == 2
    assert _drive(tmp_path, "--variant", "sort", "--factor", "0").returncode == 2
    assert _drive(tmp_path, "--variant", "sort", "--short", "-1").returncode == 2
