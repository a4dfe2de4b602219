"""Profile the benchmark workloads and check that each gets the class it declares.

The benchmark suite is the engine's ground truth: every workload there declares the class it
stands for (`WorkloadInfo.workload_class`), so "does the classifier recognise it" is a
question with an answer. This runs each one under the collector in one boot, exactly as
`schedcp analyze -- CMD` would, and reports declared vs found class with the evidence, the
confidence and the tracer's cost, so a change to the rules or the tracer can be checked
against real workloads rather than only against recordings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from schedcp.analysis.engine import analyze
from schedcp.bench.registry import all_workloads, get_workload
from schedcp.config import Settings
from schedcp.errors import SchedcpError
from schedcp.models.profile import Target, Where, WorkloadProfile
from schedcp.models.vocabulary import Size
from schedcp.runner import CommandRunner

log = logging.getLogger(__name__)

# Slack on top of a workload's own timeout: the collector loads the tracer and samples procfs.
COLLECT_SLACK_S = 120.0


class WorkloadCheck(BaseModel):
    """One benchmark workload profiled: the class it declares against what the rules found."""

    workload: str
    size: str
    declared: str
    found: str | None = Field(description="the profile's top class; None if nothing matched")
    confidence: float | None = None
    ok: bool = Field(description="found == declared")
    margin: float | None = Field(None, description="the profile's class_margin: top minus the best competing class")
    close_call: list[str] = Field(default_factory=list, description="the profile's close_call, if the margin was small")
    evidence: list[str] = Field(default_factory=list, description="the top class's evidence")
    other_classes: list[str] = Field(default_factory=list, description="'class (confidence)' for the rest")
    complete: bool
    missing: list[str] = Field(default_factory=list)
    bpf_cpu_pct: float | None = None
    window_s: float
    wall_s: float = Field(description="host wall time for this workload: prepare, run, collect")
    error: str | None = Field(None, description="why there is no profile (the workload or collection failed)")
    profile: WorkloadProfile | None = Field(None, exclude=True)


def check_workloads(
    runner: CommandRunner,
    *,
    where: Where,
    names: Sequence[str] = (),
    size: Size | None = None,
    build_dir: Path,
    interval_s: float = 0.5,
    settings: Settings | None = None,
    progress: Callable[[WorkloadCheck], None] | None = None,
) -> list[WorkloadCheck]:
    """Profile each named workload (all of them when `names` is empty) and check its class.

    A workload that fails (it cannot be prepared, or the collector reports an error) gives a
    check with `error` set rather than stopping the rest; a bad name is an error at once.
    """
    selected = [get_workload(n) for n in names] if names else list(all_workloads().values())
    checks: list[WorkloadCheck] = []
    for workload in selected:
        info = workload.info
        # A size a workload does not have (build has no "large") falls back to its default;
        # the check's `size` says which ran.
        chosen: Size = size if size is not None and size in info.sizes else info.default_size
        t0 = time.monotonic()
        try:
            prepared = workload.prepare(runner, chosen, build_dir / info.name)
            profile = analyze(
                runner,
                Target(kind="command", command=prepared.argv),
                where=where,
                timeout_s=prepared.timeout_s + COLLECT_SLACK_S,
                interval_s=interval_s,
                settings=settings,
            )
        except SchedcpError as exc:
            log.warning("%s: %s", info.name, exc)
            check = WorkloadCheck(
                workload=info.name,
                size=chosen,
                declared=info.workload_class,
                found=None,
                ok=False,
                complete=False,
                window_s=0.0,
                wall_s=time.monotonic() - t0,
                error=str(exc).splitlines()[0],
            )
        else:
            check = _check(info.name, chosen, info.workload_class, profile, time.monotonic() - t0)
        checks.append(check)
        if progress is not None:
            progress(check)
    return checks


def _check(name: str, size: str, declared: str, profile: WorkloadProfile, wall_s: float) -> WorkloadCheck:
    top = profile.classes[0] if profile.classes else None
    return WorkloadCheck(
        workload=name,
        size=size,
        declared=declared,
        found=top.workload_class if top else None,
        confidence=top.confidence if top else None,
        ok=top is not None and top.workload_class == declared,
        margin=profile.class_margin,
        close_call=list(profile.close_call),
        evidence=list(top.evidence) if top else [],
        other_classes=[f"{c.workload_class} ({c.confidence:.2f})" for c in profile.classes[1:]],
        complete=profile.complete,
        missing=list(profile.missing),
        bpf_cpu_pct=profile.overhead.bpf_cpu_pct,
        window_s=profile.window_s,
        wall_s=wall_s,
        profile=profile,
    )


def render_checks(checks: Sequence[WorkloadCheck]) -> str:
    """A Markdown table: one row per workload, then the count that matched."""
    lines = [
        "| workload | size | declared | found | confidence | margin | other classes | tracer CPU | window |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in checks:
        found = c.found or (f"error: {c.error}" if c.error else "(none)")
        mark = "" if c.ok else " ✗"
        conf = f"{c.confidence:.2f}" if c.confidence is not None else "-"
        margin = "-" if c.margin is None else f"{c.margin:.2f}" + (" (close call)" if c.close_call else "")
        bpf = f"{c.bpf_cpu_pct:.2f}%" if c.bpf_cpu_pct is not None else "-"
        others = ", ".join(c.other_classes) or "-"
        cells = [c.workload, c.size, c.declared, found + mark, conf, margin, others, bpf, f"{c.window_s:.1f} s"]
        lines.append("| " + " | ".join(cells) + " |")
    matched = sum(c.ok for c in checks)
    lines.append("")
    lines.append(f"{matched} of {len(checks)} workloads got their declared class.")
    return "\n".join(lines)
