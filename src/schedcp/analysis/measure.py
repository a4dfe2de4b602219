"""From the collector's raw document to a WorkloadProfile: the numbers, with their sources.

No classification here (classify.py) and no prose (summary.py): this module only computes.
Rules it follows:
- Every section that could not be measured is left empty *and* named in `missing`;
  `complete` is True only when nothing is.
- Two sources often measure the same thing from different sides, each an underestimate in
  its own way: the tracer misses the slice a task is in when the window opens or closes (a
  CPU hog alone on a CPU may not be switched out for seconds), schedstat sampling misses a
  thread's last interval before it exits, and the command's rusage misses children that were
  never reaped. Where they overlap (CPU time) the largest is taken, since each is a lower bound.
- Log2 histogram percentiles are the upper bound of the bucket the percentile falls in, capped
  at the exact maximum: within a factor of two, never below the truth.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from schedcp.analysis.raw import RawCollection, RawCommStats, RawExited, RawHist, RawThread
from schedcp.models.profile import (
    CgroupUsage,
    Distribution,
    Histogram,
    HistogramBucket,
    JobSizes,
    Overhead,
    Pressure,
    ProcessStats,
    Source,
    Target,
    TimelineSample,
    Totals,
    WakePair,
    Where,
    WorkloadProfile,
)

# The tracer's histogram size (sched_trace.bpf.c NBUCKETS): the last slot is open-ended.
NBUCKETS = 41
# The collector's forked child before it execs the command (collect.py GATE_COMM).
GATE_COMM = "schedcp-gate"
TOP_WAKE_PAIRS = 20
MIN_JOBS = 2
BPF_DETAIL = (
    "our sched_trace tracer (tp_btf sched_waking, sched_wakeup, sched_wakeup_new, sched_switch, sched_migrate_task, "
    "sched_process_exec, sched_process_free): run-queue latency and run-length histograms, "
    "voluntary/involuntary switches, migrations, wakeups, wake pairs, forks/execs/exits, per-task CPU time "
    "and lifetime at exit"
)
_SWAPPER = re.compile(r"^swapper/\d+$")


# -- distributions ---------------------------------------------------------------------------


def bucket_upper_ns(slot: int) -> float:
    """Upper bound of a tracer histogram slot: slot b holds [2^(b-1), 2^b) ns, slot 0 holds 0."""
    return 0.0 if slot == 0 else float(1 << slot)


def hist_distribution(h: RawHist) -> Distribution | None:
    """Summary of a log2 histogram (None when empty)."""
    if h.count <= 0:
        return None
    max_us = h.max_ns / 1000

    def pct(q: float) -> float:
        want = max(1, math.ceil(q * h.count))
        seen = 0
        for slot, n in enumerate(h.slots):
            seen += n
            if seen >= want:
                return min(bucket_upper_ns(slot) / 1000, max_us)
        return max_us

    return Distribution(
        count=h.count,
        mean_us=h.sum_ns / h.count / 1000,
        p50_us=pct(0.50),
        p90_us=pct(0.90),
        p99_us=pct(0.99),
        max_us=max_us,
    )


def hist_record(h: RawHist) -> Histogram | None:
    summary = hist_distribution(h)
    if summary is None:
        return None
    buckets = []
    for slot, n in enumerate(h.slots):
        if n:
            upper = summary.max_us if slot >= NBUCKETS - 1 else bucket_upper_ns(slot) / 1000
            buckets.append(HistogramBucket(le_us=upper, count=n))
    return Histogram(buckets=buckets, summary=summary)


def merge_hists(hists: Iterable[RawHist]) -> RawHist:
    out = RawHist()
    for h in hists:
        out.count += h.count
        out.sum_ns += h.sum_ns
        out.max_ns = max(out.max_ns, h.max_ns)
        if len(h.slots) > len(out.slots):
            out.slots.extend([0] * (len(h.slots) - len(out.slots)))
        for i, n in enumerate(h.slots):
            out.slots[i] += n
    return out


def exact_distribution(values_ns: Sequence[int]) -> Distribution | None:
    """Nearest-rank percentiles of exact values."""
    if not values_ns:
        return None
    v = sorted(values_ns)

    def pct(q: float) -> float:
        return v[max(0, math.ceil(q * len(v)) - 1)] / 1000

    return Distribution(
        count=len(v),
        mean_us=sum(v) / len(v) / 1000,
        p50_us=pct(0.50),
        p90_us=pct(0.90),
        p99_us=pct(0.99),
        max_us=v[-1] / 1000,
    )


# -- per process name ------------------------------------------------------------------------


@dataclass
class _Sched:
    """schedstat deltas of the sampled threads of one name."""

    tids: set[int] = field(default_factory=set)
    run_ns: int = 0
    wait_ns: int = 0
    slices: int = 0


def _schedstat_by_comm(threads: Sequence[RawThread]) -> dict[str, _Sched]:
    out: dict[str, _Sched] = defaultdict(_Sched)
    for t in threads:
        if t.comm == GATE_COMM:
            continue
        s = out[t.comm]
        s.tids.add(t.tid)
        s.run_ns += max(0, t.run_ns)
        s.wait_ns += max(0, t.wait_ns)
        s.slices += max(0, t.slices)
    return out


def _process_stats(
    comms: dict[str, RawCommStats], sched: dict[str, _Sched], use_schedstat: bool, window_s: float
) -> list[ProcessStats]:
    out = []
    for name in set(comms) | set(sched):
        c = comms.get(name)
        s = sched.get(name)
        cpu_ns = max(c.run.sum_ns if c else 0, s.run_ns if s else 0)
        stats = ProcessStats(
            comm=name,
            tasks=max(c.tasks if c else 0, len(s.tids) if s else 0),
            cpu_s=cpu_ns / 1e9,
            cpu_pct=100 * cpu_ns / 1e9 / window_s if window_s > 0 else 0.0,
        )
        if c is not None:
            stats.runq_latency = hist_distribution(c.runq)
            stats.run_length = hist_distribution(c.run)
            stats.voluntary_switches = c.voluntary
            stats.involuntary_switches = c.involuntary
            stats.migrations = c.migrations
            stats.wakeups = c.wakeups + c.wakeups_new
            stats.forks = c.forks
            stats.execs = c.execs
            stats.exits = c.exits
        if use_schedstat and s is not None:
            stats.runq_wait_s = s.wait_ns / 1e9
            stats.runq_wait_mean_us = s.wait_ns / s.slices / 1000 if s.slices else None
        out.append(stats)
    out.sort(key=lambda p: (-p.cpu_s, p.comm))
    return out


def _wake_pairs(raw: RawCollection) -> list[WakePair]:
    """Top pairs; the idle tasks (swapper/N: wakeups from interrupts on an idle CPU) become one name."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for p in raw.bpf.wake_pairs:
        if GATE_COMM in (p.waker, p.wakee):
            continue
        waker = "swapper" if _SWAPPER.match(p.waker) else p.waker
        counts[(waker, p.wakee)] += p.count
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_WAKE_PAIRS]
    return [WakePair(waker=w, wakee=e, count=n) for (w, e), n in top]


def _job_sizes(comms: dict[str, RawCommStats], exited: Sequence[RawExited]) -> list[JobSizes]:
    """Names with at least MIN_JOBS finished tasks: exact sizes when the tracer kept every
    record for the name (its `exited` map is bounded), the histograms otherwise."""
    by_comm: dict[str, list[RawExited]] = defaultdict(list)
    for e in exited:
        by_comm[e.comm].append(e)
    out = []
    for name, c in comms.items():
        if name == GATE_COMM or c.job_cpu.count < MIN_JOBS:
            continue
        recs = by_comm.get(name, [])
        if len(recs) == c.job_cpu.count:
            cpu = exact_distribution([r.cpu_ns for r in recs])
            life = exact_distribution([r.life_ns for r in recs])
        else:
            cpu = hist_distribution(c.job_cpu)
            life = hist_distribution(c.job_life)
        if cpu is None:
            continue
        skew = cpu.max_us / cpu.p50_us if cpu.p50_us > 0 else (1.0 if cpu.max_us == 0 else cpu.max_us / 0.001)
        out.append(JobSizes(comm=name, count=cpu.count, cpu=cpu, lifetime=life, skew=skew))
    out.sort(key=lambda j: (-j.count, j.comm))
    return out


# -- whole workload --------------------------------------------------------------------------


def _timeline(raw: RawCollection) -> list[TimelineSample]:
    out = []
    prev_t = 0.0
    for s in raw.samples:
        dt = s.t_s - prev_t
        cpu_pct = 100 * s.cpu_ns / 1e9 / dt if dt > 0 else 0.0
        out.append(
            TimelineSample(t_s=s.t_s, processes=s.processes, threads=s.threads, running=s.running, cpu_pct=cpu_pct)
        )
        prev_t = s.t_s
    return out


def _pressure(raw: RawCollection, window_s: float) -> list[Pressure]:
    out: list[Pressure] = []
    if window_s <= 0:
        return out
    for scope_key, start_scope in raw.pressure.start.items():
        end_scope = raw.pressure.end.get(scope_key, {})
        scope = "system" if scope_key == "system" else (raw.target.cgroup_dir or raw.target.cgroup or scope_key)
        resources: tuple[Literal["cpu", "io", "memory"], ...] = ("cpu", "io", "memory")
        for resource in resources:
            a, b = start_scope.get(resource), end_scope.get(resource)
            if a is None or b is None or a.some is None or b.some is None:
                continue
            full = None
            # The system-wide cpu "full" line is always zero (some task is always running).
            if a.full is not None and b.full is not None and not (scope_key == "system" and resource == "cpu"):
                full = max(0.0, 100 * (b.full - a.full) / 1e6 / window_s)
            out.append(
                Pressure(
                    resource=resource,
                    scope=scope,
                    some_pct=max(0.0, 100 * (b.some - a.some) / 1e6 / window_s),
                    full_pct=full,
                )
            )
    return out


def _cgroup_cpu(raw: RawCollection, window_s: float, total_cpu_s: float) -> list[CgroupUsage]:
    """CPU per cgroup from the sampled threads; shares are of the workload's CPU (all sources)."""
    total = max(total_cpu_s, sum(c.cpu_ns for c in raw.cgroup_cpu.values()) / 1e9)
    start = set(raw.start_cgroups)
    out = [
        CgroupUsage(
            path=path,
            cpu_s=c.cpu_ns / 1e9,
            cpu_pct=100 * c.cpu_ns / 1e9 / window_s if window_s > 0 else 0.0,
            share_pct=min(100.0, 100 * c.cpu_ns / 1e9 / total) if total > 0 else 0.0,
            weight=c.weight if c.weight and c.weight > 0 else None,
            tasks=c.tasks,
            start=path in start,
        )
        for path, c in raw.cgroup_cpu.items()
    ]
    out.sort(key=lambda c: (-c.cpu_s, c.path))
    return out


def _overhead(raw: RawCollection, window_s: float) -> Overhead:
    out = Overhead()
    capacity_s = window_s * raw.ncpus
    if raw.bpf.loaded and raw.bpf.programs and raw.bpf.stats != "off":
        run_ns = sum(p.run_time_ns for p in raw.bpf.programs)
        events = sum(p.run_cnt for p in raw.bpf.programs)
        out.bpf_run_time_s = run_ns / 1e9
        out.bpf_events = events
        out.bpf_ns_per_event = run_ns / events if events else None
        out.bpf_cpu_pct = 100 * run_ns / 1e9 / capacity_s if capacity_s > 0 else None
    if raw.collector is not None and capacity_s > 0:
        out.collector_cpu_pct = 100 * (raw.collector.self_cpu_s + raw.collector.tools_cpu_s) / capacity_s
    return out


def _sources(raw: RawCollection) -> list[Source]:
    sampled = len(raw.samples)
    psi_ok = any(v is not None for v in raw.pressure.start.get("system", {}).values())
    cgroup_psi = "cgroup" in raw.pressure.start and any(v is not None for v in raw.pressure.start["cgroup"].values())
    return [
        Source(name="bpf", available=raw.bpf.loaded, detail=BPF_DETAIL if raw.bpf.loaded else raw.bpf.error or ""),
        Source(
            name="procfs",
            available=sampled > 0,
            detail=f"{sampled} samples every {raw.interval_s:g} s of /proc/<pid>/stat and task/*/stat: "
            "processes, threads, running threads, CPU",
        ),
        Source(
            name="schedstat",
            available=raw.schedstat and bool(raw.threads),
            detail="per-thread run and run-queue wait time and time slices (/proc/<pid>/task/<tid>/schedstat), "
            "first to last sample",
        ),
        Source(
            name="psi",
            available=psi_ok,
            detail="/proc/pressure/{cpu,io,memory} totals at start and end"
            + (" and the cgroup's *.pressure files" if cgroup_psi else ""),
        ),
        Source(
            name="cgroup",
            available=bool(raw.cgroups),
            detail="cgroup v2 membership from /proc/<pid>/cgroup; CPU per cgroup from the sampled threads' CPU, "
            "cpu.weight from the cgroup's folder"
            if raw.cgroups
            else "no cgroup membership read",
        ),
    ]


def build_profile(raw: RawCollection, *, where: Where, target: Target | None = None) -> WorkloadProfile:
    """The profile of one collection, without classes or summary (the engine adds those)."""
    window_s = raw.window_s or 0.0
    missing = list(raw.missing)
    missing.extend(f"collector error: {e}" for e in raw.errors)
    if raw.window_s is None:
        missing.append("the collector stopped before the window ended; the numbers cover nothing reliable")
    if raw.bpf.loaded and not raw.bpf.programs:
        missing.append("bpf: the tracer's run-time statistics could not be read; its CPU cost is unknown")
    skipped = {prog.name: prog.recursion_misses for prog in raw.bpf.programs if prog.recursion_misses}
    if skipped:
        missing.append(
            "bpf: the kernel skipped tracer runs (a program already running on that CPU): "
            + ", ".join(f"{k}={v}" for k, v in sorted(skipped.items()))
        )
    dropped = {k: v for k, v in raw.bpf.drops.items() if v}
    if dropped:
        missing.append(
            "bpf: events dropped because a map was full or task storage unavailable: "
            + ", ".join(f"{k}={v}" for k, v in sorted(dropped.items()))
        )
    comms = {c.comm: c for c in raw.bpf.comm_stats if c.comm != GATE_COMM} if raw.bpf.loaded else {}
    sched = _schedstat_by_comm(raw.threads)
    use_schedstat = raw.schedstat
    processes = _process_stats(comms, sched, use_schedstat, window_s)

    bpf_cpu_ns = sum(c.run.sum_ns for c in comms.values())
    sched_cpu_ns = sum(s.run_ns for s in sched.values())
    rusage_ns = int((raw.command.rusage_cpu_s or 0.0) * 1e9) if raw.command else 0
    cpu_s = max(bpf_cpu_ns, sched_cpu_ns, rusage_ns) / 1e9
    cpu_pct = 100 * cpu_s / window_s if window_s > 0 else 0.0
    timeline = _timeline(raw)
    exited_life = [e.life_ns for e in raw.bpf.exited if e.comm != GATE_COMM] if raw.bpf.loaded else []
    exits = sum(c.exits for c in comms.values())
    if comms:
        voluntary = sum(c.voluntary for c in comms.values())
        involuntary = sum(c.involuntary for c in comms.values())
        forks = sum(c.forks for c in comms.values())
        execs = sum(c.execs for c in comms.values())
        wakeups = sum(c.wakeups + c.wakeups_new for c in comms.values())
        migrations = sum(c.migrations for c in comms.values())
    else:
        voluntary = (raw.command.rusage_nvcsw or 0) if raw.command else 0
        involuntary = (raw.command.rusage_nivcsw or 0) if raw.command else 0
        forks = sum(1 for t in raw.threads if t.born_in_window)
        execs = wakeups = migrations = 0
    wait_ns = sum(s.wait_ns for s in sched.values())
    slices = sum(s.slices for s in sched.values())

    def per_s(n: int) -> float:
        return n / window_s if window_s > 0 else 0.0

    totals = Totals(
        cpu_s=cpu_s,
        cpu_pct=cpu_pct,
        cpu_util_pct=cpu_pct / raw.ncpus,
        peak_threads=max((s.threads for s in timeline), default=0),
        peak_processes=max((s.processes for s in timeline), default=0),
        mean_threads=sum(s.threads for s in timeline) / len(timeline) if timeline else 0.0,
        voluntary_switches=voluntary,
        involuntary_switches=involuntary,
        switches_per_s=per_s(voluntary + involuntary),
        wakeups_per_s=per_s(wakeups),
        migrations_per_s=per_s(migrations),
        forks=forks,
        forks_per_s=per_s(forks),
        execs=execs,
        execs_per_s=per_s(execs),
        task_lifetime=(
            exact_distribution(exited_life)
            if len(exited_life) == exits
            else hist_distribution(merge_hists(c.job_life for c in comms.values()))
        ),
        runq_wait_s=wait_ns / 1e9 if use_schedstat and sched else None,
        runq_wait_mean_us=wait_ns / slices / 1000 if use_schedstat and slices else None,
    )
    profile_target = target or Target(
        kind=raw.target.kind, command=raw.target.command, pid=raw.target.pid, cgroup=raw.target.cgroup
    )
    started = datetime.fromtimestamp(raw.started_at, UTC) if raw.started_at else datetime.now(UTC)
    return WorkloadProfile(
        created=started,
        host=raw.host,
        kernel=raw.kernel,
        where=where,
        ncpus=raw.ncpus,
        target=profile_target,
        window_s=window_s,
        exit_code=raw.command.exit_code if raw.command else None,
        complete=not missing,
        missing=missing,
        sources=_sources(raw),
        totals=totals,
        runq_latency=hist_record(merge_hists(c.runq for c in comms.values())) if comms else None,
        run_length=hist_record(merge_hists(c.run for c in comms.values())) if comms else None,
        processes=processes,
        wake_pairs=_wake_pairs(raw) if raw.bpf.loaded else [],
        timeline=timeline,
        pressure=_pressure(raw, window_s),
        cgroups=[path for path, _ in sorted(raw.cgroups.items(), key=lambda kv: (-kv[1], kv[0]))],
        cgroup_cpu=_cgroup_cpu(raw, window_s, cpu_s),
        job_sizes=_job_sizes(comms, raw.bpf.exited),
        overhead=_overhead(raw, window_s),
    )
