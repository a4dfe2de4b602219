"""Comparing two profiles: ratios, notes on large changes, class and process changes, missing metrics."""

from __future__ import annotations

from schedcp.analysis.classify import classify
from schedcp.analysis.diff import LARGE_RATIO, diff_profiles

from .profile_builder import BENCHMARK_PROFILES
from .test_classify import procfs_only


def _p(name: str):  # type: ignore[no-untyped-def]
    p = BENCHMARK_PROFILES[name][0]()
    p.classes = classify(p)
    return p


def test_same_profile_has_no_large_change() -> None:
    d = diff_profiles(_p("pipe"), _p("pipe"))
    assert not d.class_changed
    assert d.notes == []
    assert all(m.ratio in (None, 1.0) for m in d.metrics)
    assert "no metric changed" in d.render()


def test_server_vs_mixed() -> None:
    a, b = _p("wakeup-latency"), _p("mixed-interactive-batch")
    d = diff_profiles(a, b)
    assert d.class_changed
    assert d.class_a == "latency-critical-server"
    assert d.class_b == "mixed-interactive-batch"
    assert d.notes[0] == "class changed: latency-critical-server -> mixed-interactive-batch"
    m = {x.name: x for x in d.metrics}
    assert m["cpu"].a == a.totals.cpu_pct
    assert m["cpu"].b == b.totals.cpu_pct
    assert m["cpu"].ratio == b.totals.cpu_pct / a.totals.cpu_pct
    assert m["involuntary"].ratio is not None
    assert m["involuntary"].ratio >= LARGE_RATIO
    assert "higher" in m["involuntary"].note
    assert m["runq_p99"].better == "lower"
    procs = {p.comm: p for p in d.processes}
    assert procs["stress-ng-cpu"].note == "new in B"
    assert procs["wakeup_server"].a_cpu_pct is not None
    assert procs["wakeup_server"].b_cpu_pct is not None
    text = d.render()
    assert "class: latency-critical-server -> mixed-interactive-batch (changed)" in text
    assert "stress-ng-cpu" in text
    assert "new in B" in text


def test_latency_worse_is_marked_worse() -> None:
    a = _p("pipe")
    b = _p("pipe")
    assert b.runq_latency is not None
    b.runq_latency.summary.p99_us *= 3
    m = {x.name: x for x in diff_profiles(a, b).metrics}
    assert m["runq_p99"].note == "3.0x higher (worse)"
    m = {x.name: x for x in diff_profiles(b, a).metrics}
    assert m["runq_p99"].note == "3.0x lower (better)"


def test_missing_metrics_are_missing_not_zero() -> None:
    a = _p("pipe")
    b = procfs_only(_p("pipe"))
    m = {x.name: x for x in diff_profiles(a, b).metrics}
    assert m["runq_p99"].b is None
    assert m["runq_p99"].ratio is None
    assert m["runq_p99"].note == "only measured in A"
    assert m["wakeups"].b is None
    assert " - " in diff_profiles(a, b).render() or "-" in diff_profiles(a, b).render()
