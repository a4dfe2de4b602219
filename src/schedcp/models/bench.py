"""A benchmark session's record: the workload it ran, every sample, and the comparison.

The harness (schedcp.bench) writes it, the repository stores it against the exact policy
version that ran, the CLI and the MCP server return it. Absolute numbers from the emulated
sandbox are raw data; only ratios measured in one boot are comparisons.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from schedcp.models.run import BootInfo
from schedcp.models.vocabulary import DEFAULT_SIZE, Size, TunableValue, WorkloadClass

Better = Literal["lower", "higher"]
Verdict = Literal["better", "worse", "not significant", "no interval"]
Side = Literal["baseline", "candidate"]
DEFAULT = "default"
"""The name of the kernel's own scheduler (EEVDF) as one side of a comparison."""


class SideStats(BaseModel):
    n: int
    median: float
    min: float
    max: float
    values: list[float]


class RatioSummary(BaseModel):
    """Candidate against baseline for one metric."""

    ratio: float = Field(description="median(candidate) / median(baseline)")
    ci_low: float | None = Field(description="2.5th percentile of the bootstrap ratio; None with < 2 runs a side")
    ci_high: float | None
    confidence: float = 0.95
    significant: bool = Field(description="the interval excludes 1")
    gain: float = Field(description="how many times better the candidate is (> 1 better), whatever the direction")
    verdict: Verdict


class Metric(BaseModel):
    """One number a workload reports, and which direction is better."""

    name: str
    unit: str
    better: Better
    description: str = ""


class WorkloadInfo(BaseModel):
    """The public description of a workload (what `schedcp bench list` shows)."""

    name: str
    version: str
    summary: str
    workload_class: WorkloadClass = Field(description="the class of workload it stands for, as the classifier names it")
    metrics: list[Metric]
    primary: str = Field(description="the metric a one-line verdict is based on")
    sizes: list[Size]
    default_size: Size = DEFAULT_SIZE


class SchedulerChoice(BaseModel):
    """One side of the comparison: the kernel's default scheduler or a built policy."""

    name: str = Field(description="'default' (the kernel's own scheduler, EEVDF) or a policy name")
    tunables: dict[str, TunableValue] = Field(default_factory=dict)
    object_sha256: str | None = None


class Sample(BaseModel):
    side: Side
    round: int
    warmup: bool
    metrics: dict[str, float]
    duration_s: float
    policy_stats: dict[str, Any] = Field(default_factory=dict)
    scheduler_after_run: str | None = Field(
        None, description="sched_ext state and scheduler after a policy run, e.g. 'enabled:fifo'; None for default"
    )


class MetricResult(BaseModel):
    name: str
    unit: str
    better: Better
    baseline: SideStats
    candidate: SideStats | None = None
    comparison: RatioSummary | None = None


class BenchResult(BaseModel):
    """One benchmark session: everything needed to audit and re-read it later."""

    id: str
    created: str
    host: str
    workload: WorkloadInfo
    size: Size
    repeat: int
    baseline: SchedulerChoice
    candidate: SchedulerChoice | None
    boot: BootInfo | None
    emulated: bool
    note: str = ""
    samples: list[Sample]
    metrics: list[MetricResult]

    def metric(self, name: str) -> MetricResult:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)
