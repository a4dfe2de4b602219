"""Summaries of repeated runs: medians, ratios, and bootstrap confidence intervals.

Medians rather than means: a single run disturbed by the host (this sandbox is emulated and
shares its machine) should not move the verdict. The interval is a percentile bootstrap of the
ratio of medians, resampling each side independently; it is crude with few runs, and says so by
being wide. A ratio is called significant only when its interval excludes 1.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence

from schedcp.models.bench import Better, RatioSummary, SideStats, Verdict


def side_stats(values: Sequence[float]) -> SideStats:
    if not values:
        raise ValueError("no values")
    return SideStats(
        n=len(values), median=statistics.median(values), min=min(values), max=max(values), values=list(values)
    )


def _ratio(num: float, den: float) -> float:
    if den == 0:
        return float("inf") if num > 0 else 1.0
    return num / den


def bootstrap_ratio_ci(
    baseline: Sequence[float],
    candidate: Sequence[float],
    confidence: float = 0.95,
    resamples: int = 5000,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile-bootstrap interval of median(candidate)/median(baseline); None with < 2 runs a side."""
    if len(baseline) < 2 or len(candidate) < 2:
        return None
    rng = random.Random(seed)  # deterministic: the same runs always give the same interval
    ratios = sorted(
        _ratio(
            statistics.median(rng.choices(candidate, k=len(candidate))),
            statistics.median(rng.choices(baseline, k=len(baseline))),
        )
        for _ in range(resamples)
    )
    tail = (1 - confidence) / 2
    lo = ratios[int(tail * (resamples - 1))]
    hi = ratios[int((1 - tail) * (resamples - 1))]
    return lo, hi


def compare(baseline: Sequence[float], candidate: Sequence[float], better: Better) -> RatioSummary:
    ratio = _ratio(statistics.median(candidate), statistics.median(baseline))
    ci = bootstrap_ratio_ci(baseline, candidate)
    gain = (1 / ratio if ratio else float("inf")) if better == "lower" else ratio
    if ci is None:
        return RatioSummary(ratio=ratio, ci_low=None, ci_high=None, significant=False, gain=gain, verdict="no interval")
    lo, hi = ci
    significant = hi < 1 or lo > 1
    verdict: Verdict = "not significant"
    if significant:
        candidate_lower = hi < 1
        verdict = "better" if candidate_lower == (better == "lower") else "worse"
    return RatioSummary(ratio=ratio, ci_low=lo, ci_high=hi, significant=significant, gain=gain, verdict=verdict)
