"""The text for the planner: short, names the class and what matters, says what was not measured."""

from __future__ import annotations

import pytest

from schedcp.analysis.classify import classify
from schedcp.analysis.summary import ADVICE, MAX_WORDS, summarize
from schedcp.models.profile import Classification

from .profile_builder import BENCHMARK_PROFILES, make_profile, proc
from .test_classify import procfs_only


@pytest.mark.parametrize("name", sorted(BENCHMARK_PROFILES))
def test_summary_is_short_and_names_the_class_and_advice(name: str) -> None:
    p = BENCHMARK_PROFILES[name][0]()
    p.classes = classify(p)
    text = summarize(p)
    top = p.classes[0]
    assert len(text.split()) <= MAX_WORDS
    assert f"Class: {top.workload_class} (confidence {top.confidence:.2f})" in text
    assert ADVICE[top.workload_class] in text
    assert "Everything was measured." in text


def test_partial_profile_says_what_is_missing() -> None:
    p = procfs_only(BENCHMARK_PROFILES["wakeup-latency"][0]())
    p.classes = classify(p)
    text = summarize(p)
    assert "Not measured" in text
    assert "bpf: the tracer did not load" in text
    assert "do not read absent numbers as zero" in text
    assert "latency-critical-server" in text


def test_no_class() -> None:
    p = make_profile([], runq=None, run=None)
    text = summarize(p, [])
    assert "No class fits" in text


def test_long_evidence_is_cut_to_fit() -> None:
    p = BENCHMARK_PROFILES["pipe"][0]()
    long = Classification(
        workload_class="pipeline-messaging",
        confidence=0.9,
        evidence=[f"fact number {i} " + "with many words in it " * 12 for i in range(20)],
    )
    p.missing = [f"section {i} was not measured because of reason {i}" for i in range(10)]
    text = summarize(p, [long, *classify(p)])
    assert len(text.split()) <= MAX_WORDS
    assert "pipeline-messaging" in text
    assert "Not measured" in text  # what is missing is never the part that is dropped


def test_summary_is_deterministic_and_uses_the_numbers() -> None:
    a = BENCHMARK_PROFILES["mixed-interactive-batch"][0]()
    b = BENCHMARK_PROFILES["mixed-interactive-batch"][0]()
    assert summarize(a, classify(a)) == summarize(b, classify(b))
    other = make_profile([proc("stress-ng-cpu", 4, 12.4, 4, 7000), proc("wakeup_server", 7, 3.0, 9000, 900)])
    assert summarize(other, classify(other)) != summarize(a, classify(a))
    assert "CPU 188% of one CPU" in summarize(a, classify(a))
