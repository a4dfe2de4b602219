from __future__ import annotations

import pytest

from schedcp.bench.stats import bootstrap_ratio_ci, compare, side_stats


def test_side_stats() -> None:
    s = side_stats([3.0, 1.0, 2.0])
    assert (s.n, s.median, s.min, s.max) == (3, 2.0, 1.0, 3.0)
    with pytest.raises(ValueError, match="no values"):
        side_stats([])


def test_clear_improvement_on_a_lower_is_better_metric() -> None:
    c = compare([2.1, 2.3, 2.0, 2.2], [1.5, 1.4, 1.6, 1.5], "lower")
    assert c.ratio == pytest.approx(1.5 / 2.15)
    assert c.gain == pytest.approx(2.15 / 1.5)
    assert c.ci_low is not None
    assert c.ci_high is not None
    assert c.ci_low <= c.ratio <= c.ci_high
    assert c.ci_high < 1
    assert c.significant
    assert c.verdict == "better"


def test_direction_matters() -> None:
    # The same numbers are a loss when higher is better.
    c = compare([2.1, 2.3, 2.0, 2.2], [1.5, 1.4, 1.6, 1.5], "higher")
    assert c.verdict == "worse"
    assert c.gain < 1
    assert compare([100, 110], [200, 210], "higher").verdict == "better"


def test_overlapping_runs_are_not_significant() -> None:
    c = compare([2.1, 1.3, 2.9], [1.5, 2.4, 1.6], "lower")
    assert c.ci_low is not None
    assert c.ci_high is not None
    assert c.ci_low < 1 < c.ci_high
    assert not c.significant
    assert c.verdict == "not significant"


def test_a_single_run_a_side_has_no_interval() -> None:
    c = compare([1.0], [2.0], "lower")
    assert c.ci_low is None
    assert c.verdict == "no interval"
    assert not c.significant
    assert c.ratio == 2.0


def test_bootstrap_is_deterministic_and_narrows_with_more_runs() -> None:
    base = [10.0, 10.4, 9.8, 10.1, 10.3, 9.9]
    cand = [8.0, 8.3, 7.9, 8.1, 8.2, 7.8]
    assert bootstrap_ratio_ci(base, cand) == bootstrap_ratio_ci(base, cand)
    wide = bootstrap_ratio_ci(base[:2], cand[:2])
    narrow = bootstrap_ratio_ci(base * 3, cand * 3)
    assert wide is not None
    assert narrow is not None
    assert narrow[1] - narrow[0] <= wide[1] - wide[0]
