"""Classify a WorkloadProfile: transparent rules, each a small function over named thresholds.

How it works, in two steps.

1. Group roles. The tasks of each process name (ProcessStats) are one group, and each group
   gets a role from its own numbers:
   - a *hog* uses real CPU and runs for 5 ms or more between blocks, longer than a scheduler
     slice: stress-ng's cpu workers, gzip/sort jobs, cc1;
   - a *waker* group blocks and is woken often, and gets one of three kinds by scoring:
     *handoff* (tasks pass messages to each other as fast as they can: perf's messaging and
     pipe, stress-ng's switch stressor), *server* (woken with a request, does real work per
     wakeup, waits again; some wakeups come from timers: wakeup_server), *periodic* (woken by a
     timer, does almost nothing, sleeps again: cyclictest).
   Where a number is missing (no BPF: no wake pairs, no per-wakeup counts) the check that
   needs it is skipped rather than guessed, and the groups fall back to procfs numbers
   (voluntary switches stand in for wakeups; CPU time per switch for the run length).
2. Workload rules. Each class has a rule made of checks (a weight, passed/failed/not
   measured, and a sentence with the measured number). Some checks are gates: if a gate
   fails the class is not reported. Confidence = weight passed / weight measured, scaled down
   by how much of the rule could be measured at all (a rule judged on half its evidence is
   worth less) and by a whole-profile factor when BPF data is missing.

Refinements: `batch-long-tail` and `fork-heavy-build` are kinds of CPU-bound batch work. When
one of them is reported, `cpu-bound-batch` is kept but placed below it. `multi-tenant` (the
workload's CPU split between cgroups it put its tasks into, from the profile's `cgroup_cpu`) is
about how the work is organised, not what each task does: it ranks above every other class.

The sandbox is emulated (QEMU TCG, ~16x slower than native for CPU work), so the thresholds
are ratios (shares of the workload's CPU, involuntary share, wakeups from peers, processes per
exec) wherever possible; the few absolute ones (CPU time per wakeup) sit between the native and
the emulated values measured for the benchmark workloads. docs/analysis.md lists them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from schedcp.models.profile import CgroupUsage, Classification, JobSizes, ProcessStats, WorkloadProfile
from schedcp.models.vocabulary import WorkloadClass

# -- thresholds ----------------------------------------------------------------------------

# Hogs. A task that runs 5 ms of CPU or more between blocks (at most 200 blocks per CPU-second)
# is compute-bound in scheduler terms: it outlasts a slice (stress-ng's cpu workers: 0.3 blocks
# per CPU-s; cc1 in the sandbox, reading headers over 9p: 165; a request/response thread: 2000+;
# perf messaging: 1000+). Whether it is then preempted more than it blocks does not matter: cc1
# in the sandbox blocks more (9p reads) yet runs 15 ms of CPU per block. A group below 10% of
# one CPU is a bystander (a parent shell, a driver waiting for its children).
HOG_MAX_VOLUNTARY_PER_CPU_S = 200.0
# ...or 2 per task: a short job blocks once or twice in its life (reading its input, at exit)
# however short it is (native long-tail gzip jobs: 26 ms of CPU, 1 voluntary switch each).
HOG_MAX_VOLUNTARY_PER_TASK = 2
HOG_MIN_CPU_PCT = 10.0

# Wakers: any other group woken at least 20 times a second (below that a wakeup is an event, not
# a pattern) and at least 10 times in the window. No limit on involuntary switches: two pipe
# partners on one CPU preempt each other on every wakeup (40% involuntary measured on our host).
WAKER_MIN_WAKEUPS_PER_S = 20.0
WAKER_MIN_WAKEUPS = 10

# Waker kinds. Peer share = the share of a group's wakeups that came from a non-hog task of the
# workload, among the wakeups whose waker is known (wake pairs; BPF only). Wakeups recorded with
# the idle task as waker ("swapper") are left out. The tracer records the waker at sched_waking,
# in the waker's context, so there "swapper" is an interrupt that arrived while the CPU was idle
# (a timer, a device): no task woke it. Profiles recorded before that change took the waker at
# sched_wakeup, which fires on the wakee's CPU for a remote wakeup, so there 82% of perf pipe's
# partner wakeups on a 2-CPU host carried "swapper"; leaving it out reads both alike. Below 20%
# of wakeups with a known waker the share is not used.
# Handoff partners and servers are woken by their peers (perf pipe, messaging, stress-ng switch,
# wakeup_server: 99-100% of the known wakers); a periodic task by timers, which fire while
# something else runs (cyclictest beside hogs: 0%).
HANDOFF_MIN_PEER_SHARE = 0.9
SERVER_MIN_PEER_SHARE = 0.3
PERIODIC_MAX_PEER_SHARE = 0.3
IDLE_WAKER = "swapper"
PEER_MIN_KNOWN_SHARE = 0.2
# CPU time per wakeup: a handoff does little more than the switch itself (perf pipe: 15 us
# native, ~250 us emulated); a server request does real work (wakeup_server: 1 ms of CPU per
# worker request, >= 450 us per wakeup native and emulated); a periodic task almost nothing
# (cyclictest: 15 us native). 300 us sits between them on both.
HANDOFF_MAX_CPU_PER_WAKEUP_US = 300.0
SERVER_MIN_CPU_PER_WAKEUP_US = 300.0
# ...but a burst: 5 ms of CPU per wakeup is a batch step between I/O waits, not a request.
SERVER_MAX_CPU_PER_WAKEUP_US = 5000.0
PERIODIC_MAX_CPU_PER_WAKEUP_US = 400.0
# CPU per task: handoff partners are busy passing messages (perf pipe: 34% of a CPU each);
# a server thread or a timer task is idle most of the time (wakeup_server 9-15%, cyclictest 1%).
HANDOFF_MIN_TASK_CPU_PCT = 20.0
SERVER_MAX_TASK_CPU_PCT = 25.0
PERIODIC_MAX_TASK_CPU_PCT = 20.0
# Many tasks of one name exchanging messages: perf messaging runs 40 per group.
HANDOFF_MANY_TASKS = 16
# A periodic task is never preempted mid-period (cyclictest: 0 involuntary switches in 6000).
PERIODIC_MAX_INVOLUNTARY_SHARE = 0.1
# Who wakes a group weighs most in its kind: over every recorded boot the peer share of servers
# was 0.77-1.0, of handoff partners 0.9-1.0, of cyclictest 0-0.05, while the absolute numbers
# moved with the machine's load: with two CPU hogs on the host, cyclictest in the emulated
# sandbox used 905 us of CPU per wakeup (above PERIODIC_MAX_CPU_PER_WAKEUP_US) and was 12%
# involuntary (above PERIODIC_MAX_INVOLUNTARY_SHARE), which at weight 2 tied it with "server"
# and made cyclictest mixed-interactive-batch. At weight 3 it stays periodic (0.67 vs 0.5).
PEER_CHECK_WEIGHT = 3.0

# Workload rules.
# The dominant kind of work must hold at least 40% of the workload's CPU to name the workload
# (and 70% to be the whole story); hogs above 30% make it a batch or a mixed workload instead.
DOMINANT_MIN_CPU_SHARE = 0.4
DOMINANT_FULL_CPU_SHARE = 0.7
ALONE_MAX_HOG_SHARE = 0.3
BATCH_MIN_HOG_SHARE = 0.3
MIXED_MIN_HOG_SHARE = 0.2
# Machine-level utilisation: batch work fills the CPUs; a server waits for requests.
BATCH_MIN_UTIL_PCT = 70.0
SERVER_MAX_UTIL_PCT = 90.0
MIXED_MIN_UTIL_PCT = 80.0
# Message passing switches constantly: perf pipe ~45k/s native, thousands/s emulated.
PIPELINE_MIN_SWITCHES_PER_S = 1000.0
# Mostly voluntary: tasks block on each other (perf pipe: 60-82% voluntary, messaging 92%).
PIPELINE_MIN_VOLUNTARY_SHARE = 0.5
SERVER_MIN_WAKEUPS_PER_S = 100.0
# Hogs preempted, not blocking; and their slices much longer than the wakers' bursts.
MIXED_MIN_HOG_INVOLUNTARY_SHARE = 0.8
MIXED_MIN_RUN_LENGTH_RATIO = 2.0
PERIODIC_MIN_TASK_WAKEUPS_PER_S = 50.0
# Interactive threads are woken often each (wakeup_server: ~200/s per thread), unlike a batch
# driver woken when a child exits (the long-tail driver: a few per second).
INTERACTIVE_MIN_TASK_WAKEUPS_PER_S = 20.0
# ...but that rate alone does not tell a batch's driver from a service: at the tiny sizes the
# long-tail driver, reading and writing its inputs before the jobs start, was woken 4-18 times a
# second per task in the sandbox (20+ once in CI, which made long-tail-compress look like
# mixed-interactive-batch), and a rate scales with the machine's speed. What does tell them
# apart: a driver's CPU hogs are a batch of its own children, so the batch's jobs wake it as
# they exit (the long-tail driver: 1-4 exit wakeups per finished job) or it forked at least as
# many tasks as jobs finished (the compile variant, whose jobs are woken by their gcc drivers:
# 10 forks for 8 jobs). A service beside batch work shares neither: wakeup_server beside
# stress-ng had no batch of finished jobs at all. A waker group that drives the batch is not
# the interactive side of a mixed workload.
DRIVER_MIN_EXIT_WAKEUPS_PER_JOB = 0.5
DRIVER_MIN_FORKS_PER_JOB = 1.0

# Builds: a compiler process per file, each short-lived. Exec turnover (execs / processes alive
# at once) tells a build (make -j2 of Lua: 125 execs, 10 processes alive at once: 12.5; the tiny
# 4-object build in the sandbox: 3.8) from a batch released at once (the long-tail benchmark: 40
# jobs alive together, turnover 1-3; it is told apart by its jobs' waiting too). Processes alive at once:
# the larger of the sampled peak and the sum of task lifetimes over the window (procfs sampling
# misses short jobs: a native long-tail run of 1.7 s showed a sampled peak of 2).
BUILD_MIN_EXECS = 20
BUILD_MIN_TURNOVER = 3.0
BUILD_MIN_EXEC_NAMES = 3
BUILD_MIN_FORKS_PER_CPU_S = 1.0
# In a build the short-lived processes do the work (cc1, as: 95% of the CPU); a script starting
# awk and mkdir beside long-running hogs is not a build. Short-lived: a median lifetime under half
# the window (the tiny sandbox build's cc1: 30%; stress-ng hogs stopped at the end: 81%).
BUILD_MIN_SHORT_LIVED_CPU_SHARE = 0.5
SHORT_LIVED_MAX_WINDOW_SHARE = 0.5
BUILD_TOOLS = frozenset(
    {"make", "gmake", "ninja", "cc1", "cc1plus", "as", "ld", "ld.bfd", "ld.gold", "ld.lld", "collect2", "ar"}
    | {"rustc", "javac", "go", "compile", "clang", "cc", "gcc", "g++", "c++", "sh", "bash"}
)

# Long tail: at least 8 finished jobs of one name make a batch; a job 4x the batch median (or a
# max/median skew of 4 within the name) is a long tail worth a job-size-aware policy (the
# benchmark: 39 short + 1 long job of 39x the work). Jobs released together wait for a CPU most
# of their lives: median lifetime at least 4x median CPU time (native long-tail: 22x; a -j2 build
# on 2 CPUs: ~1-2x); without lifetimes, the sampled peak of processes reaches half the batch.
LONGTAIL_MIN_JOBS = 8
LONGTAIL_MIN_SKEW = 4.0
LONGTAIL_STRONG_SKEW = 10.0
# A job at least 2x the median qualifies as the long one at all (the tiny benchmark sizes, where
# process start-up shrinks the long job's 7x input to 2.6-3.5x of CPU)...
LONGTAIL_MIN_LONG_JOB_FACTOR = 2.0
# ...and it matters when it alone is half the ideal makespan (all the batch's CPU / CPUs): then a
# scheduler that starts it late stretches the makespan (small long-tail sizes: 0.6-0.7; native
# long-tail-compress 0.95; a build's biggest cc1: 0.38).
LONGTAIL_MIN_TAIL_SHARE = 0.5
# The batch must be the workload's work, not the shell utilities of a wrapper script: its jobs
# (and the long one) hold at least 30% of the CPU (the benchmarks: ~90%).
LONGTAIL_MIN_CPU_SHARE = 0.3
LONGTAIL_MIN_CONCURRENT_SHARE = 0.5
LONGTAIL_MIN_WAIT_RATIO = 4.0
# Steps of one long job run one after another, each alone on a CPU: lifetime under 2x CPU time
# (long-tail-compile's lt_long_cc1: 1.1x, while its short jobs waited 21x).
LONGTAIL_SERIAL_MAX_WAIT_RATIO = 2.0
LONGTAIL_MIN_UTIL_PCT = 60.0
# A long job in the benchmark exits alone (1 task); allow 2 (a job and its helper thread).
LONGTAIL_MAX_LONG_TASKS = 2

# I/O: PSI io "some" above 10% of the window means tasks of the workload (or the machine) were
# stalled on I/O for a noticeable share of time; with low CPU use it explains where time went.
IO_MIN_SOME_PCT = 10.0
IO_STRONG_SOME_PCT = 30.0
IO_MAX_UTIL_PCT = 50.0
IO_FALLBACK_MAX_UTIL_PCT = 10.0
# Without PSI, idle CPUs only say the workload waits for something: a guess, never a finding.
IO_NO_PSI_MAX_CONFIDENCE = 0.3

# Multi-tenant: the workload put its tasks into 2 or more cgroups (other than the one it started
# in, or the cgroup target itself) and each got a real share of its CPU: 10% or more, as for a
# significant group (cgroup-weights: 25-50% and 50-75%; a wrapper shell left in the start cgroup
# holds under 1%). Together the tenants must be at least half of the workload's CPU (its work,
# not a side job in a cgroup), and most of it (80%) to be the whole story. Weights only decide
# anything while the tenants compete for the CPUs (70% busy, as for batch work).
TENANT_MIN_CPU_SHARE = 0.1
TENANTS_MIN_CPU_SHARE = 0.5
TENANTS_FULL_CPU_SHARE = 0.8
TENANTS_MIN_UTIL_PCT = 70.0
MIN_TENANTS = 2

# A group matters to the workload's class if it uses 10% of its CPU, or is woken for a quarter
# of its wakeups (cyclictest: 1% of the CPU beside hogs, but nearly every wakeup). Below both it
# is a bystander: perf's parent process, the shell of a wrapper script.
SIGNIFICANT_CPU_SHARE = 0.1
SIGNIFICANT_WAKEUP_SHARE = 0.25

# CPU time in the totals but in no process's numbers (tasks that came and went between procfs
# samples): above 20% of the total it becomes a group of its own, or the rules would miss it.
UNATTRIBUTED_MIN_SHARE = 0.2

# Confidence bookkeeping. A rule judged on only part of its weight keeps at least 50% of its
# score; a profile without BPF data is worth 80% (no wake pairs, no run-queue latency).
MIN_COVERAGE_FACTOR = 0.5
NO_BPF_FACTOR = 0.8
# A refinement reported with at least this confidence sits this much above the class it refines.
REFINEMENT_MIN_CONFIDENCE = 0.5
REFINEMENT_MARGIN = 0.05
# Classes below this confidence are not reported.
MIN_CONFIDENCE = 0.2

Role = Literal["hog", "waker", "other"]
Kind = Literal["handoff", "server", "periodic"]
KINDS: tuple[Kind, ...] = ("handoff", "server", "periodic")


# -- derived numbers -----------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _us(x: float) -> str:
    """A duration for people: 850 us, 4.2 ms, 1.3 s."""
    if x >= 1e6:
        return f"{x / 1e6:.1f} s"
    if x >= 1e3:
        return f"{x / 1e3:.1f} ms"
    return f"{x:.0f} us"


def _rate(x: float) -> str:
    return f"{x:.0f}/s" if x >= 10 else f"{x:.1f}/s"


@dataclass
class Group:
    """The tasks of one process name, with the numbers the rules use."""

    comm: str
    tasks: int
    cpu_s: float
    cpu_pct: float
    share: float  # of the workload's CPU time
    voluntary: int
    involuntary: int
    wakeups: int
    wakeups_from_bpf: bool
    run_p50_us: float | None
    runq_p99_us: float | None
    exits: int
    window_s: float
    role: Role = "other"
    kind: Kind | None = None
    peer_share: float | None = None
    kind_scores: dict[Kind, float] = field(default_factory=dict)

    @property
    def switches(self) -> int:
        return self.voluntary + self.involuntary

    @property
    def involuntary_share(self) -> float:
        return self.involuntary / self.switches if self.switches else 0.0

    @property
    def voluntary_share(self) -> float:
        return self.voluntary / self.switches if self.switches else 0.0

    @property
    def wakeups_per_s(self) -> float:
        return self.wakeups / self.window_s if self.window_s > 0 else 0.0

    @property
    def task_cpu_pct(self) -> float:
        return self.cpu_pct / max(self.tasks, 1)

    @property
    def cpu_per_wakeup_us(self) -> float | None:
        return self.cpu_s * 1e6 / self.wakeups if self.wakeups else None

    @property
    def run_length_us(self) -> float | None:
        """Median slice from BPF, else the mean from procfs (CPU time per switch)."""
        if self.run_p50_us is not None:
            return self.run_p50_us
        return self.cpu_s * 1e6 / self.switches if self.switches else None

    def label(self) -> str:
        return f"{self.comm} ({self.tasks} task{'s' if self.tasks != 1 else ''})"


@dataclass
class Signals:
    """Everything the rules read, computed once from the profile."""

    profile: WorkloadProfile
    bpf: bool
    groups: list[Group]
    cpu_s: float
    util_pct: float
    window_s: float
    missing: list[str]

    def role_share(self, role: Role) -> float:
        return sum(g.share for g in self.groups if g.role == role)

    def kind_share(self, kind: Kind) -> float:
        return sum(g.share for g in self.groups if g.kind == kind)

    def of_kind(self, kind: Kind) -> list[Group]:
        return sorted((g for g in self.groups if g.kind == kind), key=lambda g: -g.cpu_s)

    def significant(self, g: Group) -> bool:
        """A group that is part of what the workload does, not a bystander (a parent, a shell)."""
        wakeups = sum(x.wakeups for x in self.groups)
        return g.share >= SIGNIFICANT_CPU_SHARE or (wakeups > 0 and g.wakeups / wakeups >= SIGNIFICANT_WAKEUP_SHARE)

    def of_role(self, role: Role) -> list[Group]:
        return sorted((g for g in self.groups if g.role == role), key=lambda g: -g.cpu_s)

    @property
    def switches(self) -> int:
        t = self.profile.totals
        return t.voluntary_switches + t.involuntary_switches

    @property
    def switches_per_s(self) -> float:
        t = self.profile.totals
        if t.switches_per_s > 0:
            return t.switches_per_s
        return self.switches / self.window_s if self.window_s > 0 else 0.0

    @property
    def wakeups_per_s(self) -> float:
        t = self.profile.totals
        if self.bpf and t.wakeups_per_s > 0:
            return t.wakeups_per_s
        return t.voluntary_switches / self.window_s if self.window_s > 0 else 0.0


def _bpf_available(profile: WorkloadProfile) -> bool:
    return any(s.name == "bpf" and s.available for s in profile.sources)


def _group(p: ProcessStats, total_cpu_s: float, window_s: float, bpf: bool) -> Group:
    wakeups_from_bpf = bpf and p.wakeups > 0
    return Group(
        comm=p.comm,
        tasks=p.tasks,
        cpu_s=p.cpu_s,
        cpu_pct=p.cpu_pct,
        share=p.cpu_s / total_cpu_s if total_cpu_s > 0 else 0.0,
        voluntary=p.voluntary_switches,
        involuntary=p.involuntary_switches,
        # Without BPF every voluntary switch is a sleep that ends in a wakeup.
        wakeups=p.wakeups if wakeups_from_bpf else p.voluntary_switches,
        wakeups_from_bpf=wakeups_from_bpf,
        run_p50_us=p.run_length.p50_us if p.run_length and p.run_length.count else None,
        runq_p99_us=p.runq_latency.p99_us if p.runq_latency and p.runq_latency.count else None,
        exits=p.exits,
        window_s=window_s,
    )


def _rest_group(profile: WorkloadProfile, window_s: float, bpf: bool, procs: list[ProcessStats]) -> Group | None:
    """What the totals hold beyond the per-process numbers, as one group (all of it without them).

    Short-lived tasks can finish between two procfs samples and never appear per process while
    the totals (from the parent's or the cgroup's counters) include them.
    """
    t = profile.totals
    cpu_s = t.cpu_s - sum(p.cpu_s for p in procs)
    if cpu_s <= UNATTRIBUTED_MIN_SHARE * t.cpu_s or cpu_s <= 0:
        return None
    vol = max(t.voluntary_switches - sum(p.voluntary_switches for p in procs), 0)
    inv = max(t.involuntary_switches - sum(p.involuntary_switches for p in procs), 0)
    wakeups = vol
    if bpf and t.wakeups_per_s > 0:
        wakeups = max(round(t.wakeups_per_s * window_s) - sum(p.wakeups for p in procs), 0)
    whole = not procs
    run = profile.run_length.summary if profile.run_length and whole else None
    runq = profile.runq_latency.summary if profile.runq_latency and whole else None
    return Group(
        comm="(all tasks)" if whole else "(not attributed to a process)",
        tasks=max(t.peak_threads - sum(p.tasks for p in procs), 1),
        cpu_s=cpu_s,
        cpu_pct=100 * cpu_s / window_s if window_s > 0 else 0.0,
        share=cpu_s / t.cpu_s,
        voluntary=vol,
        involuntary=inv,
        wakeups=wakeups,
        wakeups_from_bpf=bpf and t.wakeups_per_s > 0,
        run_p50_us=run.p50_us if run and run.count else None,
        runq_p99_us=runq.p99_us if runq and runq.count else None,
        exits=0,
        window_s=window_s,
    )


def signals(profile: WorkloadProfile) -> Signals:
    """Groups with roles and kinds, and the whole-workload numbers."""
    bpf = _bpf_available(profile)
    window_s = profile.window_s
    total_cpu = max(sum(p.cpu_s for p in profile.processes), profile.totals.cpu_s)
    missing: list[str] = []
    if not bpf:
        missing.append("BPF tracing (wakeups approximated by voluntary switches; no wake pairs or latency histograms)")
    t = profile.totals
    procs = profile.processes
    if (
        procs
        and t.voluntary_switches + t.involuntary_switches > 0
        and not any(p.voluntary_switches or p.involuntary_switches for p in procs)
    ):
        # Switch counts in the totals but in no process: per-process numbers cannot say who blocks.
        missing.append("per-process context switches (the workload is judged as one group)")
        procs = []
    groups = [_group(p, total_cpu, window_s, bpf) for p in procs]
    rest = _rest_group(profile, window_s, bpf, procs)
    if rest is not None:
        groups.append(rest)
        missing.append(f"per-process numbers for {_pct(rest.share)} of the CPU time (judged as one group)")
    util = profile.totals.cpu_util_pct
    if util <= 0 and profile.totals.cpu_pct > 0:
        util = profile.totals.cpu_pct / profile.ncpus
    sig = Signals(profile, bpf, groups, total_cpu, util, window_s, missing)
    for g in groups:
        g.role = _role(g)
    nonhog_comms = {g.comm for g in groups if g.role != "hog"}
    for g in groups:
        if g.role == "waker":
            g.peer_share = _peer_share(profile, g, nonhog_comms) if bpf else None
            scores: dict[Kind, float] = {k: _kind_score(g, k) for k in KINDS}
            # Ties go to the kind whose wake-pair check passed (the most telling evidence), then
            # to the order of KINDS.
            best: Kind = max(KINDS, key=lambda k: (scores[k], _peer_check(g, k) is True))
            g.kind, g.kind_scores = best, scores
    return sig


def _role(g: Group) -> Role:
    if g.cpu_s <= 0:
        return "other"
    blocks_rarely = g.voluntary <= max(
        HOG_MAX_VOLUNTARY_PER_CPU_S * g.cpu_s, HOG_MAX_VOLUNTARY_PER_TASK * max(g.tasks, 1)
    )
    if g.cpu_pct >= HOG_MIN_CPU_PCT and blocks_rarely:
        return "hog"
    if g.wakeups >= WAKER_MIN_WAKEUPS and g.wakeups_per_s >= WAKER_MIN_WAKEUPS_PER_S:
        return "waker"
    return "other"


def _peer_share(profile: WorkloadProfile, g: Group, peers: set[str]) -> float | None:
    """Share of g's wakeups with a known waker that came from a non-hog task of the workload.

    None without wake pairs, or when too few of g's wakeups have a known (non-idle) waker.
    """
    if not profile.wake_pairs or not g.wakeups_from_bpf or g.wakeups == 0:
        return None
    idle = sum(p.count for p in profile.wake_pairs if p.wakee == g.comm and p.waker.startswith(IDLE_WAKER))
    known = g.wakeups - idle
    if known < PEER_MIN_KNOWN_SHARE * g.wakeups or known <= 0:
        return None
    from_peers = sum(p.count for p in profile.wake_pairs if p.wakee == g.comm and p.waker in peers)
    return min(1.0, from_peers / known)


def _peer_check(g: Group, kind: Kind) -> bool | None:
    """Whether the group's wakers fit the kind (None: not measured)."""
    peer = g.peer_share
    if peer is None:
        return None
    if kind == "handoff":
        return peer >= HANDOFF_MIN_PEER_SHARE
    if kind == "server":
        return peer >= SERVER_MIN_PEER_SHARE
    return peer <= PERIODIC_MAX_PEER_SHARE


def _kind_score(g: Group, kind: Kind) -> float:
    """Weighted share of the kind's checks this group passes (unmeasured checks left out)."""
    cpw = g.cpu_per_wakeup_us
    checks: list[tuple[float, bool | None]]
    if kind == "handoff":
        checks = [
            (PEER_CHECK_WEIGHT, _peer_check(g, kind)),
            (1.5, g.tasks >= HANDOFF_MANY_TASKS or (cpw is not None and cpw < HANDOFF_MAX_CPU_PER_WAKEUP_US)),
            (1.5, g.tasks >= HANDOFF_MANY_TASKS or g.task_cpu_pct >= HANDOFF_MIN_TASK_CPU_PCT),
        ]
    elif kind == "server":
        checks = [
            (PEER_CHECK_WEIGHT, _peer_check(g, kind)),
            (1.5, cpw is not None and SERVER_MIN_CPU_PER_WAKEUP_US <= cpw <= SERVER_MAX_CPU_PER_WAKEUP_US),
            (1.5, g.tasks < HANDOFF_MANY_TASKS and g.task_cpu_pct < SERVER_MAX_TASK_CPU_PCT),
        ]
    else:
        checks = [
            (PEER_CHECK_WEIGHT, _peer_check(g, kind)),
            (1.0, g.involuntary_share <= PERIODIC_MAX_INVOLUNTARY_SHARE),
            (1.0, cpw is not None and cpw <= PERIODIC_MAX_CPU_PER_WAKEUP_US),
            (1.0, g.task_cpu_pct <= PERIODIC_MAX_TASK_CPU_PCT),
        ]
    known = [(w, ok) for w, ok in checks if ok is not None]
    total = sum(w for w, _ in known)
    return sum(w for w, ok in known if ok) / total if total else 0.0


def describe_group(g: Group) -> str:
    """One sentence of numbers about a group, for evidence."""
    parts = [f"{g.label()} used {_pct(g.share)} of the workload's CPU ({g.cpu_pct:.0f}% of one CPU)"]
    if g.switches:
        parts.append(f"{g.switches} switches, {_pct(g.involuntary_share)} involuntary")
    if g.wakeups and g.role != "hog":
        what = "wakeups" if g.wakeups_from_bpf else "sleeps"
        parts.append(f"{_rate(g.wakeups_per_s)} {what}")
        if g.cpu_per_wakeup_us is not None:
            parts.append(f"{_us(g.cpu_per_wakeup_us)} CPU per wakeup")
    run = g.run_length_us
    if run is not None:
        parts.append(f"{'median' if g.run_p50_us is not None else 'mean'} run length {_us(run)}")
    if g.peer_share is not None:
        parts.append(f"{_pct(g.peer_share)} of known wakers in its own workload")
    return ", ".join(parts)


# -- rules ---------------------------------------------------------------------------------


@dataclass
class Check:
    """One fact a rule weighs: passed (True), failed (False) or not measured (None)."""

    weight: float
    passed: bool | None
    evidence: str
    gate: bool = False


def _score(cls: WorkloadClass, checks: list[Check], sig: Signals) -> Classification | None:
    """Gates must pass; confidence = passed / measured weight, scaled by coverage and BPF."""
    if any(c.gate and c.passed is False for c in checks):
        return None
    total = sum(c.weight for c in checks)
    known = [c for c in checks if c.passed is not None]
    known_w = sum(c.weight for c in known)
    if known_w <= 0:
        return None
    score = sum(c.weight for c in known if c.passed) / known_w
    coverage = known_w / total
    score *= MIN_COVERAGE_FACTOR + (1 - MIN_COVERAGE_FACTOR) * coverage
    if not sig.bpf:
        score *= NO_BPF_FACTOR
    if score < MIN_CONFIDENCE:
        return None
    evidence = [c.evidence for c in checks if c.passed]
    evidence += [f"not measured: {c.evidence}" for c in checks if c.passed is None]
    evidence += [f"missing: {m}" for m in sig.missing]
    return Classification(workload_class=cls, confidence=round(min(score, 1.0), 3), evidence=evidence)


def _top(groups: list[Group]) -> Group | None:
    return groups[0] if groups else None


def rule_pipeline(sig: Signals) -> Classification | None:
    """Tasks hand messages to each other: very many switches, tiny bursts, woken by peers."""
    share = sig.kind_share("handoff")
    hogs = sig.role_share("hog")
    top = _top(sig.of_kind("handoff"))
    checks = [
        Check(
            1.0,
            share >= DOMINANT_MIN_CPU_SHARE,
            f"message-passing tasks used {_pct(share)} of the CPU" + (f": {describe_group(top)}" if top else ""),
            gate=True,
        ),
        Check(1.0, hogs <= ALONE_MAX_HOG_SHARE, f"CPU hogs used {_pct(hogs)} of the CPU", gate=True),
        Check(1.0, share >= DOMINANT_FULL_CPU_SHARE, f"message passing is {_pct(share)} of all CPU time"),
        Check(
            1.0,
            sig.switches_per_s >= PIPELINE_MIN_SWITCHES_PER_S,
            f"{_rate(sig.switches_per_s)} context switches",
        ),
        Check(
            1.0,
            sig.switches > 0 and sig.profile.totals.voluntary_switches / sig.switches >= PIPELINE_MIN_VOLUNTARY_SHARE,
            f"{_pct(sig.profile.totals.voluntary_switches / sig.switches if sig.switches else 0)} of switches "
            "voluntary (tasks block on each other, not preempted)",
        ),
        Check(
            1.5,
            None if top is None or top.peer_share is None else top.peer_share >= HANDOFF_MIN_PEER_SHARE,
            "wake pairs: tasks woken by their partners"
            + (f" ({_pct(top.peer_share)} of {top.comm}'s wakeups)" if top and top.peer_share is not None else ""),
        ),
    ]
    pairs = _pair_text(sig)
    if pairs and checks[-1].passed:
        checks[-1].evidence += f"; top pairs {pairs}"
    return _score("pipeline-messaging", checks, sig)


def rule_server(sig: Signals) -> Classification | None:
    """Request/response: threads woken by peers with work to do, short bursts, then wait again."""
    share = sig.kind_share("server")
    hogs = sig.role_share("hog")
    top = _top(sig.of_kind("server"))
    wps = sig.wakeups_per_s
    checks = [
        Check(
            1.0,
            share >= DOMINANT_MIN_CPU_SHARE,
            f"request/response threads used {_pct(share)} of the CPU" + (f": {describe_group(top)}" if top else ""),
            gate=True,
        ),
        Check(1.0, hogs <= ALONE_MAX_HOG_SHARE, f"CPU hogs used {_pct(hogs)} of the CPU", gate=True),
        Check(1.0, share >= DOMINANT_FULL_CPU_SHARE, f"request handling is {_pct(share)} of all CPU time"),
        Check(1.0, wps >= SERVER_MIN_WAKEUPS_PER_S, f"{_rate(wps)} wakeups in total"),
        Check(
            1.5,
            None if top is None or top.peer_share is None else top.peer_share >= SERVER_MIN_PEER_SHARE,
            "wake pairs: woken by other threads of the workload (requests, completions)"
            + (f" ({_pct(top.peer_share)} from its own workload)" if top and top.peer_share is not None else ""),
        ),
        Check(
            0.5,
            sig.util_pct < SERVER_MAX_UTIL_PCT,
            f"the CPUs were {sig.util_pct:.0f}% busy: threads wait for requests rather than saturate",
        ),
    ]
    lat = _latency_text(sig, top)
    if lat:
        checks[0].evidence += f"; {lat}"
    return _score("latency-critical-server", checks, sig)


def batch_drivers(sig: Signals) -> dict[str, str]:
    """Waker groups that drive a batch of CPU hogs (see DRIVER_MIN_EXIT_WAKEUPS_PER_JOB), with why.

    A batch here is a hog name with LONGTAIL_MIN_JOBS or more finished tasks (job sizes come
    from the tracer: without BPF nothing is a driver and the rules judge as before).
    """
    p = sig.profile
    hogs = {g.comm for g in sig.groups if g.role == "hog"}
    batch = [j for j in p.job_sizes if j.comm in hogs and j.count >= LONGTAIL_MIN_JOBS]
    jobs = sum(j.count for j in batch)
    if not jobs:
        return {}
    names = {j.comm for j in batch}
    forks = {x.comm: x.forks for x in p.processes}
    drivers: dict[str, str] = {}
    for g in sig.groups:
        if g.role != "waker":
            continue
        exits = sum(w.count for w in p.wake_pairs if w.wakee == g.comm and w.waker in names)
        if exits >= DRIVER_MIN_EXIT_WAKEUPS_PER_JOB * jobs:
            drivers[g.comm] = (
                f"{g.comm} is the driver of a batch of {jobs} jobs: woken {exits} times by them as they ended"
            )
        elif forks.get(g.comm, 0) >= DRIVER_MIN_FORKS_PER_JOB * jobs:
            drivers[g.comm] = f"{g.comm} is the driver of a batch of {jobs} jobs: it started {forks[g.comm]} tasks"
    return drivers


def rule_mixed(sig: Signals) -> Classification | None:
    """CPU hogs beside request/response threads: the hogs' long slices delay the short bursts."""
    hogs = sig.of_role("hog")
    hog_share = sig.role_share("hog")
    drivers = batch_drivers(sig)
    servers = [
        g
        for g in sig.of_kind("server")
        if sig.significant(g)
        and g.wakeups_per_s / max(g.tasks, 1) >= INTERACTIVE_MIN_TASK_WAKEUPS_PER_S
        and g.comm not in drivers
    ]
    top_hog, top_srv = _top(hogs), _top(servers)
    hog_inv = sum(g.involuntary for g in hogs) / max(sum(g.switches for g in hogs), 1) if hogs else 0.0
    ratio: float | None = None
    if top_hog and top_srv and top_hog.run_length_us and top_srv.run_length_us:
        ratio = top_hog.run_length_us / top_srv.run_length_us
    checks = [
        Check(
            1.0,
            hog_share >= MIXED_MIN_HOG_SHARE,
            f"CPU hogs used {_pct(hog_share)} of the CPU" + (f": {describe_group(top_hog)}" if top_hog else ""),
            gate=True,
        ),
        Check(
            1.0,
            top_srv is not None,
            "interactive threads beside them: "
            + (describe_group(top_srv) if top_srv else "none")
            + "".join(f" (not {why})" for why in drivers.values()),
            gate=True,
        ),
        Check(
            1.0,
            bool(hogs) and hog_inv >= MIXED_MIN_HOG_INVOLUNTARY_SHARE,
            f"{_pct(hog_inv)} of the hogs' switches involuntary (they never block)",
        ),
        Check(
            1.0,
            None if ratio is None else ratio >= MIXED_MIN_RUN_LENGTH_RATIO,
            f"hog slices {ratio:.1f}x the interactive bursts" if ratio is not None else "run lengths of both groups",
        ),
        Check(0.5, sig.util_pct >= MIXED_MIN_UTIL_PCT, f"the CPUs were {sig.util_pct:.0f}% busy"),
    ]
    lat = _latency_text(sig, top_srv)
    if lat:
        checks[1].evidence += f"; {lat}"
    return _score("mixed-interactive-batch", checks, sig)


def rule_periodic(sig: Signals) -> Classification | None:
    """A task woken by a timer at a regular rate that runs for a moment and sleeps again."""
    top = max((g for g in sig.of_kind("periodic") if sig.significant(g)), key=lambda g: g.wakeups, default=None)
    hog_share = sig.role_share("hog")
    per_task = top.wakeups_per_s / max(top.tasks, 1) if top else 0.0
    io = _io_some_pct(sig)
    checks = [
        Check(
            1.0,
            top is not None,
            "timer-driven task: " + (describe_group(top) if top else "none"),
            gate=True,
        ),
        Check(
            1.0,
            top is not None and top.involuntary_share <= PERIODIC_MAX_INVOLUNTARY_SHARE,
            f"{_pct(top.involuntary_share) if top else '-'} of its switches involuntary: "
            "it finishes each period's work",
        ),
        Check(
            1.5,
            None if top is None or top.peer_share is None else top.peer_share <= PERIODIC_MAX_PEER_SHARE,
            "wake pairs: not woken by other tasks of the workload (timers)"
            + (f" (only {_pct(top.peer_share)} from them)" if top and top.peer_share is not None else ""),
        ),
        Check(
            1.0,
            top is not None and top.task_cpu_pct <= PERIODIC_MAX_TASK_CPU_PCT,
            f"{top.task_cpu_pct:.1f}% of a CPU per task" if top else "CPU per task",
        ),
        Check(
            1.0,
            None
            if top is None or top.cpu_per_wakeup_us is None
            else top.cpu_per_wakeup_us <= PERIODIC_MAX_CPU_PER_WAKEUP_US,
            f"{_us(top.cpu_per_wakeup_us)} CPU per wakeup: little work each period"
            if top is not None and top.cpu_per_wakeup_us is not None
            else "CPU per wakeup",
        ),
        Check(
            0.5,
            per_task >= PERIODIC_MIN_TASK_WAKEUPS_PER_S,
            f"{_rate(per_task)} wakeups per task (a period of about {_us(1e6 / per_task) if per_task else '-'})",
        ),
        Check(
            0.5,
            hog_share >= MIXED_MIN_HOG_SHARE,
            f"beside CPU hogs using {_pct(hog_share)} of the CPU: timely wakeups need preemption",
        ),
        Check(
            1.0,
            None if io is None else io < IO_MIN_SOME_PCT,
            f"not waiting on I/O (PSI io some {io:.1f}%)" if io is not None else "I/O pressure (PSI)",
        ),
    ]
    lat = _latency_text(sig, top)
    if lat:
        checks[0].evidence += f"; {lat}"
    return _score("periodic-soft-realtime", checks, sig)


def rule_cpu_batch(sig: Signals) -> Classification | None:
    """Throughput work: hogs (and message passing at full speed) fill the CPUs; nothing waits on time."""
    hogs = sig.of_role("hog")
    hog_share = sig.role_share("hog")
    throughput = hog_share + sig.kind_share("handoff")
    interactive = [g for g in sig.groups if g.kind in ("server", "periodic") and sig.significant(g)]
    t = sig.profile.totals
    turnover = t.execs / _alive(sig)
    checks = [
        Check(
            1.0,
            hog_share >= BATCH_MIN_HOG_SHARE,
            f"CPU hogs used {_pct(hog_share)} of the CPU" + (f": {describe_group(hogs[0])}" if hogs else ""),
            gate=True,
        ),
        Check(1.0, sig.util_pct >= BATCH_MIN_UTIL_PCT, f"the CPUs were {sig.util_pct:.0f}% busy"),
        Check(
            1.0,
            throughput >= DOMINANT_FULL_CPU_SHARE,
            f"throughput work (hogs and full-speed message passing) is {_pct(throughput)} of the CPU",
        ),
        Check(
            3.0,
            not interactive,
            "no latency-sensitive tasks beside it"
            if not interactive
            else f"latency-sensitive tasks beside it: {', '.join(g.comm for g in interactive)}",
        ),
        Check(
            2.0,
            t.execs < BUILD_MIN_EXECS or turnover < BUILD_MIN_TURNOVER,
            f"few short-lived processes ({t.execs} execs, {turnover:.1f} per process alive at once)",
        ),
    ]
    return _score("cpu-bound-batch", checks, sig)


def _long_job(sig: Signals, batch_comm: str, median_us: float) -> Group | None:
    """Another finished, single-task name whose CPU time dwarfs the batch's median job."""
    best: Group | None = None
    for g in sig.groups:
        if g.comm == batch_comm or g.exits < 1 or g.tasks > LONGTAIL_MAX_LONG_TASKS:
            continue
        per_task_us = g.cpu_s * 1e6 / max(g.tasks, 1)
        if per_task_us >= LONGTAIL_MIN_LONG_JOB_FACTOR * median_us and (best is None or g.cpu_s > best.cpu_s):
            best = g
    return best


def _wait_ratio(j: JobSizes) -> float | None:
    """Median lifetime / median CPU time: how many jobs shared a CPU with each one."""
    if j.lifetime is None or not j.lifetime.count or j.cpu.p50_us <= 0:
        return None
    return j.lifetime.p50_us / j.cpu.p50_us


def _batch(sig: Signals) -> JobSizes | None:
    """The batch: among names with >= 8 finished jobs whose tasks are CPU hogs (jobs that compute;
    not perf messaging's communicating processes, not a gcc driver waiting for its cc1), those
    released together if any, then the most CPU. None without such a name."""
    hogs = {g.comm for g in sig.groups if g.role == "hog"}
    pool = [j for j in sig.profile.job_sizes if j.count >= LONGTAIL_MIN_JOBS and j.comm in hogs]
    together = [j for j in pool if (r := _wait_ratio(j)) is not None and r >= LONGTAIL_MIN_WAIT_RATIO]
    return max(together or pool, key=lambda j: (j.count * j.cpu.mean_us, j.count), default=None)


def _serial_chain(p: WorkloadProfile, batch: JobSizes) -> JobSizes | None:
    """Another name whose jobs ran one at a time (each lived about its CPU time) while the batch waited:
    one long job made of steps (long-tail-compile: a gcc driver running 39 cc1 one after another)."""
    if (_wait_ratio(batch) or 0.0) < LONGTAIL_MIN_WAIT_RATIO:
        return None
    best: JobSizes | None = None
    for j in p.job_sizes:
        wait = _wait_ratio(j)
        if j.comm == batch.comm or wait is None or wait >= LONGTAIL_SERIAL_MAX_WAIT_RATIO:
            continue
        if j.count * j.cpu.mean_us >= LONGTAIL_MIN_LONG_JOB_FACTOR * batch.cpu.p50_us and (
            best is None or j.count * j.cpu.mean_us > best.count * best.cpu.mean_us
        ):
            best = j
    return best


def rule_long_tail(sig: Signals) -> Classification | None:
    """A batch of jobs of one kind with skewed sizes: the case a job-size-aware policy wins."""
    p = sig.profile
    batch = _batch(sig)
    if batch is None:
        return None
    median = batch.cpu.p50_us
    long_job = _long_job(sig, batch.comm, median) if median > 0 else None
    long_us = (long_job.cpu_s * 1e6 / max(long_job.tasks, 1)) if long_job else 0.0
    chain = _serial_chain(p, batch) if median > 0 else None
    chain_us = chain.count * chain.cpu.mean_us if chain else 0.0
    skew = max(batch.skew, long_us / median if median > 0 else 0.0, chain_us / median if median > 0 else 0.0)
    longest_us = max(long_us, chain_us, batch.cpu.max_us)
    work_us = batch.count * batch.cpu.mean_us + max(long_us, chain_us)
    batch_share = work_us / 1e6 / sig.cpu_s if sig.cpu_s > 0 else 0.0
    tail_share = longest_us / (work_us / p.ncpus) if work_us > 0 else 0.0
    if batch.lifetime is not None and batch.lifetime.count and median > 0:
        wait_ratio = batch.lifetime.p50_us / median
        together = wait_ratio >= LONGTAIL_MIN_WAIT_RATIO
        together_text = f"released together: a job lived {wait_ratio:.0f}x its CPU time (waiting for a CPU)"
    else:
        together = p.totals.peak_processes / batch.count >= LONGTAIL_MIN_CONCURRENT_SHARE
        together_text = f"released together: up to {p.totals.peak_processes} processes at once for {batch.count} jobs"
    if chain is not None and chain_us >= long_us:
        chain_wait = _wait_ratio(chain) or 0.0
        long_text = (
            f"a serial chain: {chain.count} {chain.comm} jobs ran one at a time (each lived {chain_wait:.1f}x its "
            f"CPU time), {_us(chain_us)} CPU in all, {chain_us / median:.0f}x the median: one long job"
        )
    elif long_job:
        long_text = f"a long job {long_job.comm} of {_us(long_us)} CPU, {long_us / median:.0f}x the median"
    else:
        long_text = f"max/median CPU time {batch.skew:.1f} within {batch.comm}"
    checks = [
        Check(
            1.0,
            True,
            f"{batch.count} finished {batch.comm} jobs, median {_us(median)} CPU, max {_us(batch.cpu.max_us)}",
            gate=True,
        ),
        Check(1.0, skew >= LONGTAIL_MIN_LONG_JOB_FACTOR, long_text, gate=True),
        Check(
            1.0,
            batch_share >= LONGTAIL_MIN_CPU_SHARE,
            f"the jobs are {_pct(batch_share)} of the workload's CPU",
            gate=True,
        ),
        Check(
            2.0,
            tail_share >= LONGTAIL_MIN_TAIL_SHARE,
            f"the longest job alone is {_pct(tail_share)} of the ideal makespan (all the jobs' CPU / {p.ncpus} CPUs)",
        ),
        Check(1.0, skew >= LONGTAIL_MIN_SKEW, f"job sizes skewed {skew:.1f}x"),
        Check(1.0, skew >= LONGTAIL_STRONG_SKEW, f"skew {skew:.0f}x: one job dominates the makespan"),
        Check(1.5, together, together_text),
        Check(1.0, sig.util_pct >= LONGTAIL_MIN_UTIL_PCT, f"the CPUs were {sig.util_pct:.0f}% busy"),
    ]
    return _score("batch-long-tail", checks, sig)


def _alive(sig: Signals) -> float:
    """Processes alive at once: the sampled peak, or task lifetimes / window if that is more."""
    t = sig.profile.totals
    alive = float(max(t.peak_processes, 1))
    life = t.task_lifetime
    if life is not None and life.count and sig.window_s > 0:
        alive = max(alive, life.mean_us * life.count / 1e6 / sig.window_s)
    return alive


def rule_build(sig: Signals) -> Classification | None:
    """A build: a stream of short-lived compiler processes of many names."""
    p = sig.profile
    t = p.totals
    alive = _alive(sig)
    turnover = t.execs / alive
    exited = sorted({g.comm for g in sig.groups if g.exits >= 1})
    tools = sorted(set(exited) & BUILD_TOOLS | {g.comm for g in sig.groups} & {"make", "ninja"})
    fork_rate = t.forks / sig.cpu_s if sig.cpu_s > 0 else 0.0
    life = t.task_lifetime
    short_share = _short_lived_cpu_share(sig)
    checks = [
        Check(
            1.0,
            t.execs >= BUILD_MIN_EXECS,
            f"{t.execs} execs and {t.forks} forks ({t.execs_per_s:.1f} execs/s)",
            gate=True,
        ),
        Check(
            1.0,
            None if short_share is None else short_share >= BUILD_MIN_SHORT_LIVED_CPU_SHARE,
            f"short-lived processes did {_pct(short_share or 0)} of the work",
            gate=True,
        ),
        Check(
            2.0,
            turnover >= BUILD_MIN_TURNOVER,
            f"{turnover:.1f} execs per process alive at once ({alive:.1f}): processes come and go",
        ),
        Check(
            1.0,
            len(exited) >= BUILD_MIN_EXEC_NAMES,
            f"{len(exited)} names of short-lived processes ({', '.join(exited[:8])})",
        ),
        Check(1.0, bool(tools), f"build tools: {', '.join(tools) or 'none'}"),
        Check(1.0, fork_rate >= BUILD_MIN_FORKS_PER_CPU_S, f"{fork_rate:.1f} forks per CPU-second"),
    ]
    if life is not None and life.count:
        checks[0].evidence += f"; median task lifetime {_us(life.p50_us)}"
    wait = _batch_wait_ratio(sig)
    checks.append(
        Check(
            2.0,
            None if wait is None else wait[1] < LONGTAIL_MIN_WAIT_RATIO,
            f"jobs started as CPUs came free ({wait[0]} lived {wait[1]:.1f}x its CPU time), not released at once"
            if wait
            else "job lifetimes",
        )
    )
    return _score("fork-heavy-build", checks, sig)


def _short_lived_cpu_share(sig: Signals) -> float | None:
    """Share of the CPU used by names whose finished tasks lived under half the window (None: no lifetimes)."""
    lived = [j for j in sig.profile.job_sizes if j.lifetime is not None and j.lifetime.count]
    if not lived or sig.cpu_s <= 0 or sig.window_s <= 0:
        return None
    short = {
        j.comm
        for j in lived
        if j.lifetime is not None and j.lifetime.p50_us / 1e6 <= SHORT_LIVED_MAX_WINDOW_SHARE * sig.window_s
    }
    return sum(g.cpu_s for g in sig.groups if g.comm in short) / sig.cpu_s


def _batch_wait_ratio(sig: Signals) -> tuple[str, float] | None:
    """The batch's name and median lifetime / median CPU time, when lifetimes were measured."""
    batch = _batch(sig)
    ratio = _wait_ratio(batch) if batch else None
    return (batch.comm, ratio) if batch and ratio is not None else None


def rule_io(sig: Signals) -> Classification | None:
    """Time goes to waiting on I/O, not CPU: PSI io says tasks stalled; the CPUs are mostly idle."""
    io = [x for x in sig.profile.pressure if x.resource == "io"]
    best = max(io, key=lambda x: x.some_pct, default=None)
    if best is None:
        checks = [
            Check(
                1.0,
                sig.util_pct < IO_FALLBACK_MAX_UTIL_PCT and sig.profile.totals.voluntary_switches > 0,
                f"the CPUs were only {sig.util_pct:.0f}% busy while tasks slept",
                gate=True,
            ),
            Check(3.0, None, "I/O pressure (PSI): /proc/pressure/io was not read"),
        ]
        guess = _score("io-bound", checks, sig)
        if guess is not None:
            guess.confidence = min(guess.confidence, IO_NO_PSI_MAX_CONFIDENCE)
        return guess
    checks = [
        Check(
            2.0,
            best.some_pct >= IO_MIN_SOME_PCT,
            f"PSI io some {best.some_pct:.1f}% ({best.scope}): tasks stalled on I/O",
            gate=True,
        ),
        Check(1.0, best.some_pct >= IO_STRONG_SOME_PCT, f"I/O stalls {best.some_pct:.0f}% of the window"),
        Check(1.0, sig.util_pct < IO_MAX_UTIL_PCT, f"the CPUs were only {sig.util_pct:.0f}% busy", gate=True),
    ]
    return _score("io-bound", checks, sig)


def _io_some_pct(sig: Signals) -> float | None:
    io = [x.some_pct for x in sig.profile.pressure if x.resource == "io"]
    return max(io) if io else None


def _cgroup_text(c: CgroupUsage) -> str:
    weight = f"weight {c.weight}" if c.weight is not None else "weight unknown"
    return f"{c.path} {c.share_pct:.0f}% ({weight})"


def rule_multi_tenant(sig: Signals) -> Classification | None:
    """The workload's CPU is split between cgroups it put its tasks into: tenants, each of which
    should get its cpu.weight's share however many tasks it runs."""
    usage = sig.profile.cgroup_cpu
    if not usage:
        return None  # not measured (profiles from before per-cgroup CPU, or no cgroup v2)
    tenants = [c for c in usage if not c.start and c.share_pct >= 100 * TENANT_MIN_CPU_SHARE]
    share = sum(c.share_pct for c in tenants) / 100
    weights = [c.weight for c in tenants if c.weight is not None]
    differ: bool | None = len(set(weights)) > 1 if len(weights) == len(tenants) and tenants else None
    start = [c for c in usage if c.start]
    listed = ", ".join(_cgroup_text(c) for c in tenants) or "none"
    checks = [
        Check(
            1.0,
            len(tenants) >= MIN_TENANTS,
            f"{len(tenants)} cgroup{'s' if len(tenants) != 1 else ''}: {listed}",
            gate=True,
        ),
        Check(
            1.0,
            share >= TENANTS_MIN_CPU_SHARE,
            f"the tenants' cgroups hold {_pct(share)} of the workload's CPU"
            + (f" (started in {', '.join(_cgroup_text(c) for c in start)})" if start else ""),
            gate=True,
        ),
        Check(1.0, share >= TENANTS_FULL_CPU_SHARE, f"tenants are {_pct(share)} of all CPU time"),
        Check(
            1.0,
            sig.util_pct >= TENANTS_MIN_UTIL_PCT,
            f"the CPUs were {sig.util_pct:.0f}% busy: the tenants compete for them",
        ),
        Check(
            0.5,
            differ,
            f"cpu.weight differs between tenants ({' vs '.join(str(w) for w in weights)}): unequal shares asked for"
            if differ is not None
            else "cpu.weight of every tenant",
        ),
    ]
    return _score("multi-tenant", checks, sig)


def _pair_text(sig: Signals, n: int = 3) -> str:
    return ", ".join(f"{p.waker}->{p.wakee} x{p.count}" for p in sig.profile.wake_pairs[:n])


def _latency_text(sig: Signals, g: Group | None) -> str:
    """Run-queue latency, for the group if known, else for the workload."""
    if g is not None and g.runq_p99_us is not None:
        return f"{g.comm} run-queue latency p99 {_us(g.runq_p99_us)}"
    h = sig.profile.runq_latency
    if h is not None and h.summary.count:
        return f"run-queue latency p50 {_us(h.summary.p50_us)}, p99 {_us(h.summary.p99_us)}"
    return ""


RULES: tuple[Callable[[Signals], Classification | None], ...] = (
    rule_pipeline,
    rule_server,
    rule_mixed,
    rule_periodic,
    rule_cpu_batch,
    rule_long_tail,
    rule_build,
    rule_io,
    rule_multi_tenant,
)
# Classes that are kinds of another: when reported, they rank above it.
REFINES: dict[WorkloadClass, WorkloadClass] = {
    "batch-long-tail": "cpu-bound-batch",
    "fork-heavy-build": "cpu-bound-batch",
}


# Ties in confidence: the more specific class first.
TIE_ORDER: tuple[WorkloadClass, ...] = (
    "multi-tenant",
    "batch-long-tail",
    "fork-heavy-build",
    "mixed-interactive-batch",
    "periodic-soft-realtime",
    "latency-critical-server",
    "pipeline-messaging",
    "cpu-bound-batch",
    "io-bound",
)


def _apply_refinements(found: dict[WorkloadClass, Classification]) -> None:
    for refined, general in REFINES.items():
        r, g = found.get(refined), found.get(general)
        if r is None or g is None or r.confidence < REFINEMENT_MIN_CONFIDENCE:
            continue
        if g.confidence >= r.confidence:
            g.confidence = round(max(r.confidence - REFINEMENT_MARGIN, 0.0), 3)
            g.evidence.append(f"refined by {refined}, which fits better")


# Classes about how the work is organised rather than what each task does: when reported with
# REFINEMENT_MIN_CONFIDENCE or more they rank above every other class (cgroup-weights' hogs are
# also cpu-bound-batch, but a policy that ignores the tenants' weights gets it wrong whatever it
# does with the hogs), which stays the next class, saying what the tenants run.
OUTRANKS: tuple[WorkloadClass, ...] = ("multi-tenant",)


def _apply_outranking(found: dict[WorkloadClass, Classification]) -> None:
    for cls in OUTRANKS:
        top = found.get(cls)
        if top is None or top.confidence < REFINEMENT_MIN_CONFIDENCE:
            continue
        for other in found.values():
            if other.workload_class != cls and other.confidence >= top.confidence:
                other.confidence = round(max(top.confidence - REFINEMENT_MARGIN, 0.0), 3)
                other.evidence.append(f"ranked below {cls}: how the CPU is split between cgroups matters first")


# A decision is a close call when the best competing class is within CLOSE_MARGIN of the top
# one: the profile then names both (`close_call`), so a planner considers policies for each.
# Competing means a different answer to "what kind of workload is this": not the class the top
# one refines (batch-long-tail vs cpu-bound-batch is one answer, stated twice), and nothing
# beside a class that outranks the rest (multi-tenant says how the CPU is split; the class
# below it says what the tenants run). docs/analysis.md gives the margins measured over the
# recorded boots that set this value.
CLOSE_MARGIN = 0.15


@dataclass(frozen=True)
class Decision:
    """The top class, the best class competing with it, and how far apart they are."""

    top: Classification | None
    runner_up: Classification | None
    margin: float | None  # top - runner-up confidence; None when nothing competes

    @property
    def close(self) -> bool:
        return self.margin is not None and self.margin < CLOSE_MARGIN


def decide(classes: list[Classification]) -> Decision:
    """The decision a list of classes (most confident first, as `classify` returns it) stands for."""
    if not classes:
        return Decision(None, None, None)
    top = classes[0]
    if top.workload_class in OUTRANKS and top.confidence >= REFINEMENT_MIN_CONFIDENCE:
        return Decision(top, None, None)
    refined = REFINES.get(top.workload_class)
    rivals = [c for c in classes[1:] if c.workload_class != refined]
    if not rivals:
        return Decision(top, None, None)
    return Decision(top, rivals[0], round(top.confidence - rivals[0].confidence, 3))


def classify(profile: WorkloadProfile) -> list[Classification]:
    """Every class whose rule fires, most confident first (empty if the profile shows no activity)."""
    if profile.totals.cpu_s <= 0 and not profile.processes:
        return []
    sig = signals(profile)
    found: dict[WorkloadClass, Classification] = {}
    for rule in RULES:
        c = rule(sig)
        if c is not None:
            found[c.workload_class] = c
    _apply_refinements(found)
    _apply_outranking(found)
    return sorted(found.values(), key=lambda c: (-c.confidence, TIE_ORDER.index(c.workload_class)))
