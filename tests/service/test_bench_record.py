"""Benchmark results are recorded against the exact repository version that ran, and only then."""

from __future__ import annotations

from pathlib import Path

from bench.test_harness import Counter

from schedcp.bench.harness import run_ab
from schedcp.bpf.policy import Policy, find_policy
from schedcp.config import Settings
from schedcp.models.bench import BenchResult, SchedulerChoice
from schedcp.repository import open_repository
from schedcp.repository.content import read_policy
from schedcp.runner import HostRunner
from schedcp.service import Context
from schedcp.service.bench import record_result

FIXTURES = Path(__file__).parents[1] / "fixtures" / "policies"


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", db_url=f"sqlite:///{tmp_path / 'repo.db'}")


def record_in_repository(result: BenchResult, policy: Policy, settings: Settings) -> str | None:
    """Into this test's own database (not the session's $SCHEDCP_DB, which other tests fill)."""
    return record_result(Context(settings, db_url=settings.db_url), result, policy.name, read_policy(policy).id)


def test_builtin_result_is_recorded_against_its_version(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    result = run_ab(HostRunner(), Counter(tmp_path / "s"), "tiny", tmp_path, repeat=2)
    result.candidate = SchedulerChoice(name="fifo", tunables={"slice_ns": 20_000_000, "direct_idle": True})
    version = record_in_repository(result, find_policy("fifo"), settings)
    assert version is not None
    with open_repository(settings.db_url) as repo:
        records = repo.benchmarks(policy="fifo")
        assert [r.version for r in records] == [version]
        assert repo.benchmark_result(records[0].id) == result


def test_unknown_policy_folder_is_not_recorded(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    result = run_ab(HostRunner(), Counter(tmp_path / "s"), "tiny", tmp_path, repeat=2)
    assert record_in_repository(result, find_policy(str(FIXTURES / "good")), settings) is None
    with open_repository(settings.db_url) as repo:
        assert repo.benchmarks(policy="good") == []


def test_baseline_only_results_are_not_recorded(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    result = run_ab(HostRunner(), Counter(tmp_path / "s"), "tiny", tmp_path, repeat=1, compare_candidate=False)
    assert record_in_repository(result, find_policy("fifo"), settings) is None
