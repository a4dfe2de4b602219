"""Benchmark results and verification reports per version; the best known policy for a workload."""

from __future__ import annotations

from pathlib import Path

import pytest
from repo_helpers import BUILD, WAKE, bench_result, make_policy, table_snapshot

from schedcp.errors import PolicyError, RepositoryError, VersionNotFound
from schedcp.repository import PolicyRepository

STEADY = [100.0, 101.0, 99.0, 100.0, 102.0]


def _policy(repo: PolicyRepository, tmp_path: Path, name: str) -> str:
    return repo.add_policy(make_policy(tmp_path, name, classes=["latency-critical-server"])).version


def test_record_benchmark_keeps_the_primary_metric_and_the_whole_result(repo: PolicyRepository, tmp_path: Path) -> None:
    vid = _policy(repo, tmp_path, "fast")
    result = bench_result("fast", STEADY, [80.0, 81.0, 79.0, 80.0, 82.0], tunables={"slice_ns": 2_000_000})
    rec = repo.record_benchmark(vid[:8], "wake", result)
    assert (rec.policy, rec.version, rec.workload, rec.workload_class) == ("fast", vid, "wake", WAKE.workload_class)
    assert (rec.metric, rec.better, rec.verdict, rec.significant) == ("p99_us", "lower", "better", True)
    assert rec.gain == pytest.approx(100 / 80)
    assert rec.gain_low is not None
    assert rec.gain_high is not None
    assert rec.gain_low <= rec.gain <= rec.gain_high
    assert rec.tunables == {"slice_ns": 2_000_000}
    assert repo.benchmark_result(rec.id) == result  # the full record, unchanged
    again = repo.record_benchmark(vid, None, result)  # the same result twice: stored once
    assert again.id == rec.id
    assert len(repo.benchmarks(version=vid)) == 1
    assert repo.history("fast").versions[0].benchmarks == 1


def test_bad_results_are_refused(repo: PolicyRepository, tmp_path: Path) -> None:
    vid = _policy(repo, tmp_path, "fast")
    before = table_snapshot(repo.db.url)
    with pytest.raises(RepositoryError, match="measured 'other' as the candidate, not policy 'fast'"):
        repo.record_benchmark(vid, None, bench_result("other", STEADY, STEADY))
    with pytest.raises(RepositoryError, match="does not match the result, which measured 'wake'"):
        repo.record_benchmark(vid, "build", bench_result("fast", STEADY, STEADY))
    with pytest.raises(PolicyError, match="slice_ns=1 ns is outside its range"):
        repo.record_benchmark(vid, None, bench_result("fast", STEADY, STEADY, tunables={"slice_ns": 1}))
    with pytest.raises(PolicyError, match="no tunable 'nope'"):
        repo.record_benchmark(vid, None, bench_result("fast", STEADY, STEADY, tunables={"nope": 1}))
    only_baseline = bench_result("fast", STEADY, STEADY).model_copy(update={"candidate": None})
    with pytest.raises(RepositoryError, match="measured only the baseline"):
        repo.record_benchmark(vid, None, only_baseline)
    with pytest.raises(VersionNotFound):
        repo.record_benchmark("abcdef0123", None, bench_result("fast", STEADY, STEADY))
    assert table_snapshot(repo.db.url) == before


def test_best_for_ranks_significant_gains_by_their_lower_bound(repo: PolicyRepository, tmp_path: Path) -> None:
    solid = _policy(repo, tmp_path, "solid")  # 1.2x, tight interval: significant
    lucky = _policy(repo, tmp_path, "lucky")  # 1.7x median, but noisy: not significant
    modest = _policy(repo, tmp_path, "modest")  # 1.1x, significant, lower bound below solid's
    worse = _policy(repo, tmp_path, "worse")  # significantly slower
    results = {
        solid: bench_result("solid", STEADY, [83.0, 84.0, 82.0, 83.0, 85.0]),
        lucky: bench_result("lucky", [100.0, 300.0, 50.0, 200.0, 100.0], [40.0, 250.0, 30.0, 60.0, 200.0]),
        modest: bench_result("modest", STEADY, [91.0, 92.0, 90.0, 91.0, 93.0]),
        worse: bench_result("worse", STEADY, [130.0, 131.0, 129.0, 130.0, 132.0]),
    }
    for vid, result in results.items():
        repo.record_benchmark(vid, None, result)
    verdicts = {r.policy: r.verdict for r in repo.benchmarks()}
    assert verdicts == {"solid": "better", "lucky": "not significant", "modest": "better", "worse": "worse"}
    best = repo.best_for(workload_class="latency-critical-server")
    assert [b.policy for b in best] == ["solid", "modest", "lucky", "worse"]
    assert [b.tier for b in best] == ["better", "better", "not significant", "worse"]
    lucky_entry = best[2]
    assert lucky_entry.gain > best[0].gain  # bigger, but not significant: ranked below
    assert [b.rank for b in best] == [1, 2, 3, 4]
    assert repo.best_for(workload="wake", limit=1)[0].policy == "solid"
    assert repo.best_for(workload_class="latency-critical")[0].policy == "solid"  # a class family
    assert repo.best_for(workload_class="fork-heavy-build") == []
    assert repo.best_for(workload="build") == []


def test_best_for_uses_the_newest_result_per_version_tunables_and_workload(
    repo: PolicyRepository, tmp_path: Path
) -> None:
    vid = _policy(repo, tmp_path, "p")
    old = bench_result("p", STEADY, [70.0, 71.0, 69.0, 70.0, 72.0], created="2026-01-01T00:00:00+00:00")
    new = bench_result("p", STEADY, [95.0, 96.0, 94.0, 95.0, 97.0], created="2026-02-01T00:00:00+00:00")
    other_tunables = bench_result("p", STEADY, [60.0, 61.0, 59.0, 60.0, 62.0], tunables={"slice_ns": 1_000_000})
    build = bench_result("p", STEADY, [90.0, 91.0, 89.0, 90.0, 92.0], info=BUILD)
    for r in (new, old, other_tunables, build):  # recorded out of order on purpose
        repo.record_benchmark(vid, None, r)
    wake = repo.best_for(workload="wake")
    assert [(b.tunables, b.results, b.result_id) for b in wake] == [
        ({"slice_ns": 1_000_000}, 1, other_tunables.id),
        ({}, 2, new.id),
    ]
    assert [b.workload for b in repo.best_for()] == ["wake", "build", "wake"]


def test_best_for_counts_only_runs_against_the_default_scheduler(repo: PolicyRepository, tmp_path: Path) -> None:
    vid = _policy(repo, tmp_path, "p")
    repo.record_benchmark(vid, None, bench_result("p", STEADY, [50.0] * 5, baseline_name="fifo"))
    assert len(repo.benchmarks(policy="p")) == 1
    assert repo.best_for(workload="wake") == []


def test_removed_policies_leave_the_ranking_but_keep_their_results(repo: PolicyRepository, tmp_path: Path) -> None:
    vid = _policy(repo, tmp_path, "p")
    repo.record_benchmark(vid, None, bench_result("p", STEADY, [80.0] * 5))
    repo.remove("p")
    assert repo.best_for(workload="wake") == []
    kept = repo.best_for(workload="wake", include_removed=True)
    assert [(b.policy, b.removed) for b in kept] == [("p", True)]


def test_verification_reports(repo: PolicyRepository, tmp_path: Path) -> None:
    vid = _policy(repo, tmp_path, "p")
    first = repo.record_verification(vid, {"static": {"compiled": True}, "dynamic": "stalled"}, passed=False)
    same = repo.record_verification(vid, '{"dynamic": "stalled", "static": {"compiled": true}}', passed=False)
    assert same.id == first.id  # the same report (canonical JSON) is stored once
    second = repo.record_verification(vid, {"static": {"compiled": True}, "dynamic": "ok"}, passed=True)
    reports = repo.verifications(vid[:10])
    assert [r.id for r in reports] == [second.id, first.id]
    assert reports[0].report == {"static": {"compiled": True}, "dynamic": "ok"}
    assert repo.history("p").versions[0].verified is True
    with pytest.raises(RepositoryError, match="must be JSON"):
        repo.record_verification(vid, "{not json", passed=True)
