"""Parsers of the perf and build workloads on output captured from the sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedcp.bench.registry import all_workloads, get_workload
from schedcp.bench.workload import WorkloadOutputError
from schedcp.errors import SchedcpError
from schedcp.models import CommandResult

DATA = Path(__file__).parents[2] / "data" / "bench"


def _result(stdout: str, rc: int = 0, stderr: str = "", timed_out: bool = False) -> CommandResult:
    return CommandResult(argv=["x"], rc=rc, stdout=stdout, stderr=stderr, timed_out=timed_out)


def test_messaging_parser() -> None:
    metrics = get_workload("messaging").parse(_result((DATA / "messaging-tiny.stdout").read_text()))
    assert metrics["total_s"] > 0


def test_pipe_parser() -> None:
    metrics = get_workload("pipe").parse(_result((DATA / "pipe-tiny.stdout").read_text()))
    assert metrics["usecs_per_op"] == pytest.approx(145.1367)
    assert metrics["ops_per_sec"] == 6890.0


def test_build_parser() -> None:
    metrics = get_workload("build").parse(_result((DATA / "build-tiny.stdout").read_text()))
    assert metrics["wall_s"] > 0


@pytest.mark.parametrize("name", ["messaging", "pipe", "build"])
def test_garbage_failure_and_timeout_are_errors_with_the_output(name: str) -> None:
    workload = get_workload(name)
    with pytest.raises(WorkloadOutputError, match="printed no"):
        workload.parse(_result("something else entirely\n"))
    with pytest.raises(WorkloadOutputError, match="exited with status 1") as info:
        workload.parse(_result("", rc=1, stderr=(DATA / "build-failed.stderr").read_text()))
    assert "No rule to make target" in str(info.value)
    with pytest.raises(WorkloadOutputError, match="timed out"):
        workload.parse(_result("", rc=-9, timed_out=True))


def test_every_workload_declares_its_primary_metric_and_sizes() -> None:
    for name, workload in all_workloads().items():
        assert workload.info.name == name
        assert workload.info.primary in {m.name for m in workload.info.metrics}
        assert workload.info.default_size in workload.info.sizes
        assert "tiny" in workload.info.sizes, "tests need a tiny size"


def test_unknown_workload_and_size() -> None:
    with pytest.raises(SchedcpError, match="no workload named"):
        get_workload("nope")
    with pytest.raises(SchedcpError, match="has sizes"):
        get_workload("pipe").prepare(None, "enormous", Path("/tmp"))  # type: ignore[arg-type]
