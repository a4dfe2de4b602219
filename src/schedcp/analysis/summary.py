"""A short text about a WorkloadProfile for an LLM planner (and a person): deterministic, from the numbers.

The planner reads this before it searches the policy repository, so it says, in order: what kind
of workload this is (the top class and its confidence), the measured facts behind that, the key
numbers, which scheduling properties matter for this class and what to avoid, and what was not
measured (so the planner does not read an absent number as zero). It stays under MAX_WORDS: the
lower-priority parts (second class, more evidence, top processes) are dropped first.
"""

from __future__ import annotations

from schedcp.models.profile import Classification, WorkloadProfile
from schedcp.models.vocabulary import WorkloadClass

MAX_WORDS = 300
MAX_EVIDENCE = 3
MAX_PROCESSES = 3
# What goes first when the text is too long: the least useful to a planner first. The headline,
# the advice and what was not measured always stay.
DROP_ORDER = ("overhead", "processes", "second", "evidence", "numbers")

# What matters for each class, and what to avoid: the advice a performance engineer would give,
# phrased so the planner can match it against policy summaries and tunables.
ADVICE: dict[WorkloadClass, str] = {
    "cpu-bound-batch": (
        "Throughput matters more than latency: long slices, few preemptions and keeping tasks on their "
        "CPU (cache locality) help; wakeup latency hardly matters. Avoid short slices and eager preemption."
    ),
    "batch-long-tail": (
        "Makespan matters: start the longest jobs first (longest-job-first from name hints or learned run "
        "time) and fit short jobs around them; fair sharing leaves the long job running alone at the end. "
        "Avoid FIFO in arrival order and plain fair sharing."
    ),
    "latency-critical-server": (
        "Wakeup-to-run latency matters more than throughput: run woken threads at once, with short slices "
        "and preemption of CPU hogs for tasks that wake often and run briefly; keep wakees near their wakers. "
        "Avoid long FIFO slices."
    ),
    "pipeline-messaging": (
        "Hand-off cost matters: switch to the woken partner quickly, keep communicating tasks on the same or "
        "nearby CPUs and avoid migrations; throughput of the whole pipeline is the metric. Avoid long slices "
        "that make a wakee wait behind its waker, and spreading partners across CPUs."
    ),
    "mixed-interactive-batch": (
        "Both sides matter: interactive threads need low wakeup latency (boost short-burst wakers, preempt the "
        "hogs for them) while the batch keeps its throughput; a latency boost with a starvation guard fits. "
        "Avoid plain FIFO (hogs hold the CPUs) and starving the batch."
    ),
    "periodic-soft-realtime": (
        "Deadline misses matter: the periodic task must run promptly every period even beside CPU hogs; "
        "deadline/EDF-style ordering or preempting hogs on its wakeup helps, and worst-case latency is the "
        "metric. Avoid long slices for the hogs."
    ),
    "io-bound": (
        "Time goes to I/O waits, not CPU: a scheduler policy can gain little beyond waking tasks promptly "
        "when their I/O completes. Look at storage or the I/O pattern first."
    ),
    "fork-heavy-build": (
        "Many short-lived processes: quick placement of new tasks on idle CPUs and keeping every CPU busy "
        "matter; throughput over latency, and starting big compile jobs early shortens the build. Avoid "
        "policies with costly per-task setup or slow wakeups of waiting parents."
    ),
    "multi-tenant": (
        "Fairness between cgroups matters: each tenant's cgroup should get CPU in proportion to its cpu.weight "
        "however many tasks it runs (cgroup-weighted virtual time); per-task fairness hands the tenant with more "
        "tasks more CPU. Avoid policies that ignore cgroups (global FIFO, per-task vtime) or boost one tenant."
    ),
}


def _us(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.1f} s"
    if x >= 1e3:
        return f"{x / 1e3:.1f} ms"
    return f"{x:.0f} us"


def _words(text: str) -> int:
    return len(text.split())


def _target(profile: WorkloadProfile) -> str:
    t = profile.target
    if t.kind == "command" and t.command:
        cmd = " ".join(t.command)
        return f"`{cmd if len(cmd) <= 60 else cmd[:57] + '...'}`"
    if t.kind == "pid":
        return f"pid {t.pid}"
    return f"cgroup {t.cgroup}"


def _headline(profile: WorkloadProfile, top: Classification | None) -> str:
    where = f"{profile.where}, {profile.ncpus} CPUs, kernel {profile.kernel}"
    head = f"Workload {_target(profile)} observed for {profile.window_s:.1f} s ({where})."
    if top is None:
        return head + " No class fits: the rules found too little activity to judge."
    return head + f" Class: {top.workload_class} (confidence {top.confidence:.2f})."


def _numbers(profile: WorkloadProfile) -> str:
    t = profile.totals
    parts = [
        f"CPU {t.cpu_pct:.0f}% of one CPU ({t.cpu_util_pct:.0f}% of the machine)",
        f"{t.switches_per_s:.0f} switches/s",
    ]
    if t.wakeups_per_s > 0:
        parts.append(f"{t.wakeups_per_s:.0f} wakeups/s")
    if profile.runq_latency is not None and profile.runq_latency.summary.count:
        s = profile.runq_latency.summary
        parts.append(f"run-queue latency p50 {_us(s.p50_us)}, p99 {_us(s.p99_us)}")
    if profile.run_length is not None and profile.run_length.summary.count:
        parts.append(f"median run length {_us(profile.run_length.summary.p50_us)}")
    parts.append(
        f"up to {t.peak_threads} thread{'s' if t.peak_threads != 1 else ''} in {t.peak_processes} "
        f"process{'es' if t.peak_processes != 1 else ''}"
    )
    if t.forks:
        parts.append(f"{t.forks_per_s:.1f} forks/s")
    return "Key numbers: " + "; ".join(parts) + "."


def _processes(profile: WorkloadProfile) -> str:
    top = profile.processes[:MAX_PROCESSES]
    if not top:
        return ""
    return "Top processes: " + ", ".join(f"{p.comm} x{p.tasks} {p.cpu_pct:.0f}%" for p in top) + "."


def _missing(profile: WorkloadProfile) -> str:
    if not profile.missing:
        return "Everything was measured." if profile.complete else ""
    items = "; ".join(profile.missing)
    return f"Not measured (partial profile, do not read absent numbers as zero): {items}."


def _overhead(profile: WorkloadProfile) -> str:
    o = profile.overhead
    parts = []
    if o.bpf_cpu_pct is not None:
        parts.append(f"tracer {o.bpf_cpu_pct:.1f}% of the CPUs")
    if o.slowdown is not None:
        parts.append(f"slowdown {o.slowdown:.3f}x")
    return ("Observation cost: " + ", ".join(parts) + ".") if parts else ""


def _close_call(profile: WorkloadProfile, classes: list[Classification]) -> str:
    """A close call is said right after the headline: the planner must consider both classes."""
    if len(profile.close_call) < 2 or profile.class_margin is None:
        return ""
    conf = {c.workload_class: c.confidence for c in classes}
    a, b = profile.close_call[:2]
    return (
        f"Close call: {a} ({conf.get(a, 0):.2f}) or {b} ({conf.get(b, 0):.2f}), only {profile.class_margin:.2f} "
        f"apart; consider policies for both."
    )


def summarize(profile: WorkloadProfile, classes: list[Classification] | None = None) -> str:
    """At most MAX_WORDS words; `classes` defaults to profile.classes."""
    classes = profile.classes if classes is None else classes
    top = classes[0] if classes else None
    headline = _headline(profile, top)
    advice = ("What matters: " + ADVICE[top.workload_class]) if top else ""
    missing = _missing(profile)
    evidence = top.evidence[:MAX_EVIDENCE] if top else []
    second = f"Also fits {classes[1].workload_class} ({classes[1].confidence:.2f})." if len(classes) > 1 else ""
    close = _close_call(profile, classes)
    if close:
        second = ""  # the close call names the runner-up already
    # Optional parts in reading order; dropped in DROP_ORDER when the text is too long.
    optional = {
        "numbers": _numbers(profile),
        "second": second,
        "processes": _processes(profile),
        "overhead": _overhead(profile),
    }

    def render() -> str:
        parts = [headline, close] if close else [headline]
        if evidence:
            parts.append("Evidence: " + "; ".join(evidence) + ".")
        parts += [text for text in optional.values() if text]
        parts += [text for text in (advice, missing) if text]
        return " ".join(parts)

    text = render()
    for name in DROP_ORDER:
        if _words(text) <= MAX_WORDS:
            break
        if name == "evidence":
            while len(evidence) > 1 and _words(text) > MAX_WORDS:
                evidence.pop()
                text = render()
            continue
        optional[name] = ""
        text = render()
    if _words(text) > MAX_WORDS:  # only a huge `missing` list or one enormous evidence item gets here
        text = " ".join(text.split()[: MAX_WORDS - 1]) + " ..."
    return text
