"""Compare two WorkloadProfiles: the key numbers side by side, their ratio, and what changed a lot.

Use: the same workload before and after a policy change, on two kernels, or two runs of one
benchmark. The comparison is per metric (B / A; > 1 means B is higher) with a note when the
change is large enough to matter (LARGE_RATIO either way), plus the class and the top processes.
A metric missing on either side is shown as missing, never as zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field

from schedcp.models.profile import WorkloadProfile
from schedcp.models.vocabulary import WorkloadClass

# A change of 1.5x either way is beyond run-to-run noise in the emulated sandbox (repeated
# benchmark runs there vary by up to ~20%), so it is worth a reader's attention.
LARGE_RATIO = 1.5
TOP_PROCESSES = 5

Better = Literal["lower", "higher", "neither"]


class MetricDiff(BaseModel):
    name: str
    unit: str
    better: Better = Field(description="which direction is an improvement, when there is one")
    a: float | None
    b: float | None
    ratio: float | None = Field(description="b / a; None when either is missing or a is 0")
    note: str = ""


class ProcessChange(BaseModel):
    comm: str
    a_cpu_pct: float | None
    b_cpu_pct: float | None
    a_tasks: int | None
    b_tasks: int | None
    note: str = ""


class ProfileDiff(BaseModel):
    a: str = Field(description="id or label of the first profile")
    b: str
    class_a: WorkloadClass | None
    class_b: WorkloadClass | None
    class_changed: bool
    metrics: list[MetricDiff]
    processes: list[ProcessChange]
    notes: list[str] = Field(description="the large changes, one line each")

    def render(self) -> str:
        """A plain-text table for people and LLMs."""
        lines = [f"A: {self.a}", f"B: {self.b}"]
        cls = f"class: {self.class_a or '-'} -> {self.class_b or '-'}"
        lines.append(cls + (" (changed)" if self.class_changed else " (same)"))
        lines.append("")
        lines.append(f"{'metric':<26} {'A':>12} {'B':>12} {'B/A':>8}  note")
        for m in self.metrics:
            lines.append(
                f"{m.name + ' (' + m.unit + ')':<26} {_num(m.a):>12} {_num(m.b):>12} "
                f"{(f'{m.ratio:.2f}x' if m.ratio is not None else '-'):>8}  {m.note}".rstrip()
            )
        if self.processes:
            lines.append("")
            lines.append(f"{'process':<20} {'A cpu%':>9} {'B cpu%':>9}  note")
            for p in self.processes:
                lines.append(f"{p.comm:<20} {_num(p.a_cpu_pct):>9} {_num(p.b_cpu_pct):>9}  {p.note}".rstrip())
        if self.notes:
            lines.append("")
            lines.append("large changes:")
            lines += [f"- {n}" for n in self.notes]
        else:
            lines.append("")
            lines.append(f"no metric changed by {LARGE_RATIO}x or more")
        return "\n".join(lines)


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}"


def _label(p: WorkloadProfile) -> str:
    ident = p.id or "(not stored)"
    return f"{ident} {p.target.kind} {p.target.text()[:50]} on {p.host} ({p.where}, {p.created:%Y-%m-%d %H:%M})"


def _involuntary_share(p: WorkloadProfile) -> float | None:
    t = p.totals
    total = t.voluntary_switches + t.involuntary_switches
    return 100 * t.involuntary_switches / total if total else None


def _io(p: WorkloadProfile) -> float | None:
    values = [x.some_pct for x in p.pressure if x.resource == "io"]
    return max(values) if values else None


def _has_bpf(p: WorkloadProfile) -> bool:
    return any(s.name == "bpf" and s.available for s in p.sources)


Getter = Callable[[WorkloadProfile], float | None]
METRICS: tuple[tuple[str, str, Better, Getter], ...] = (
    ("cpu", "% of 1 CPU", "neither", lambda p: p.totals.cpu_pct),
    ("cpu_util", "% of machine", "neither", lambda p: p.totals.cpu_util_pct),
    (
        "runq_p50",
        "us",
        "lower",
        lambda p: p.runq_latency.summary.p50_us if p.runq_latency and p.runq_latency.summary.count else None,
    ),
    (
        "runq_p99",
        "us",
        "lower",
        lambda p: p.runq_latency.summary.p99_us if p.runq_latency and p.runq_latency.summary.count else None,
    ),
    (
        "run_length_p50",
        "us",
        "neither",
        lambda p: p.run_length.summary.p50_us if p.run_length and p.run_length.summary.count else None,
    ),
    ("switches", "/s", "neither", lambda p: p.totals.switches_per_s),
    ("involuntary", "% of switches", "neither", _involuntary_share),
    ("wakeups", "/s", "neither", lambda p: p.totals.wakeups_per_s if _has_bpf(p) else None),
    ("migrations", "/s", "neither", lambda p: p.totals.migrations_per_s if _has_bpf(p) else None),
    ("forks", "/s", "neither", lambda p: p.totals.forks_per_s),
    ("execs", "/s", "neither", lambda p: p.totals.execs_per_s),
    ("peak_threads", "threads", "neither", lambda p: float(p.totals.peak_threads)),
    ("mean_threads", "threads", "neither", lambda p: p.totals.mean_threads),
    ("io_some", "% PSI", "lower", _io),
    ("window", "s", "neither", lambda p: p.window_s),
)


def _metric(name: str, unit: str, better: Better, a: float | None, b: float | None) -> MetricDiff:
    ratio = b / a if a is not None and b is not None and a > 0 else None
    note = ""
    if ratio is not None and (ratio >= LARGE_RATIO or ratio <= 1 / LARGE_RATIO):
        direction = f"{ratio:.1f}x higher" if ratio > 1 else f"{1 / ratio:.1f}x lower" if ratio > 0 else "down to 0"
        verdict = ""
        if better != "neither":
            improved = (ratio < 1) == (better == "lower")
            verdict = " (better)" if improved else " (worse)"
        note = direction + verdict
    elif a is not None and b is not None and a == 0 and b > 0:
        note = "from 0"
    elif (a is None) != (b is None):
        note = f"only measured in {'A' if b is None else 'B'}"
    return MetricDiff(name=name, unit=unit, better=better, a=a, b=b, ratio=ratio, note=note)


def _processes(a: WorkloadProfile, b: WorkloadProfile) -> list[ProcessChange]:
    pa = {p.comm: p for p in a.processes}
    pb = {p.comm: p for p in b.processes}
    names: list[str] = []
    for p in [*a.processes[:TOP_PROCESSES], *b.processes[:TOP_PROCESSES]]:
        if p.comm not in names:
            names.append(p.comm)
    changes = []
    for name in names:
        x, y = pa.get(name), pb.get(name)
        note = ""
        if x is None:
            note = "new in B"
        elif y is None:
            note = "gone in B"
        elif x.cpu_pct > 0 and (y.cpu_pct / x.cpu_pct >= LARGE_RATIO or y.cpu_pct / x.cpu_pct <= 1 / LARGE_RATIO):
            note = f"CPU {y.cpu_pct / x.cpu_pct:.1f}x"
        changes.append(
            ProcessChange(
                comm=name,
                a_cpu_pct=x.cpu_pct if x else None,
                b_cpu_pct=y.cpu_pct if y else None,
                a_tasks=x.tasks if x else None,
                b_tasks=y.tasks if y else None,
                note=note,
            )
        )
    return changes


def diff_profiles(a: WorkloadProfile, b: WorkloadProfile) -> ProfileDiff:
    """B compared with A, metric by metric."""
    metrics = [_metric(name, unit, better, get(a), get(b)) for name, unit, better, get in METRICS]
    processes = _processes(a, b)
    notes = [f"{m.name}: {_num(m.a)} -> {_num(m.b)} {m.unit} ({m.note})" for m in metrics if m.note]
    notes += [f"process {p.comm}: {p.note}" for p in processes if p.note]
    class_a, class_b = a.primary_class, b.primary_class
    if class_a != class_b:
        notes.insert(0, f"class changed: {class_a or '-'} -> {class_b or '-'}")
    return ProfileDiff(
        a=_label(a),
        b=_label(b),
        class_a=class_a,
        class_b=class_b,
        class_changed=class_a != class_b,
        metrics=metrics,
        processes=processes,
        notes=notes,
    )
