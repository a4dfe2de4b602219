"""The A/B loop with a scripted workload and the host as the runner (no VM, no policy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedcp.bench.harness import run_ab, summarize
from schedcp.bench.workload import Prepared, WorkloadOutputError, require_ok
from schedcp.models import CommandResult
from schedcp.models.bench import Metric, WorkloadInfo
from schedcp.models.vocabulary import Size
from schedcp.runner import CommandRunner, HostRunner


class Counter:
    """Prints an increasing number each run (a file counts the runs), or fails on a chosen run."""

    info = WorkloadInfo(
        name="counter",
        version="1",
        summary="test workload",
        workload_class="cpu-bound-batch",
        metrics=[
            Metric(name="n", unit="count", better="higher"),
            Metric(name="t", unit="s", better="lower"),
        ],
        primary="n",
        sizes=["tiny"],
        default_size="tiny",
    )

    def __init__(self, state: Path, fail_on: int | None = None) -> None:
        self.state = state
        self.fail_on = fail_on

    def prepare(self, runner: CommandRunner, size: Size, build_dir: Path) -> Prepared:
        self.state.write_text("0")
        fail = f'[ "$n" = {self.fail_on} ] && {{ echo boom >&2; exit 9; }}; ' if self.fail_on else ""
        script = f'n=$(($(cat {self.state}) + 1)); echo $n > {self.state}; {fail}echo "n=$n t=1.5"'
        return Prepared(argv=["sh", "-c", script], timeout_s=10)

    def parse(self, result: CommandResult) -> dict[str, float]:
        require_ok(result, "counter")
        fields = dict(kv.split("=") for kv in result.stdout.split())
        return {"n": float(fields["n"]), "t": float(fields["t"])}


def test_baseline_and_candidate_alternate_and_warmup_is_discarded(tmp_path: Path) -> None:
    result = run_ab(HostRunner(), Counter(tmp_path / "state"), "tiny", tmp_path, repeat=3)
    order = [(s.side, s.round, s.metrics["n"]) for s in result.samples]
    assert order == [
        ("baseline", 0, 1),
        ("candidate", 0, 2),
        ("baseline", 1, 3),
        ("candidate", 1, 4),
        ("baseline", 2, 5),
        ("candidate", 2, 6),
        ("baseline", 3, 7),
        ("candidate", 3, 8),
    ]
    n = result.metric("n")
    assert n.baseline.values == [3, 5, 7]
    assert n.candidate is not None
    assert n.candidate.values == [4, 6, 8]
    assert n.comparison is not None
    assert n.comparison.ratio == pytest.approx(6 / 5)
    assert result.baseline.name == "default"
    assert result.candidate is not None
    assert result.candidate.name == "default"
    assert not result.emulated  # no boot info: not claimed to be the sandbox


def test_baseline_only(tmp_path: Path) -> None:
    result = run_ab(HostRunner(), Counter(tmp_path / "s"), "tiny", tmp_path, repeat=2, compare_candidate=False)
    assert result.candidate is None
    assert [s.side for s in result.samples] == ["baseline"] * 3
    assert all(m.comparison is None for m in result.metrics)


def test_a_failing_run_names_the_run_and_carries_the_output(tmp_path: Path) -> None:
    with pytest.raises(WorkloadOutputError) as info:
        run_ab(HostRunner(), Counter(tmp_path / "s", fail_on=4), "tiny", tmp_path, repeat=3)
    message = str(info.value)
    assert "round 1/3 of counter (candidate: default)" in message
    assert "exited with status 9" in message
    assert "boom" in message


def test_repeat_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="at least 1"):
        run_ab(HostRunner(), Counter(tmp_path / "s"), "tiny", tmp_path, repeat=0)


def test_summarize_needs_baseline_values() -> None:
    with pytest.raises(WorkloadOutputError, match="no baseline values"):
        summarize(Counter.info, [])
