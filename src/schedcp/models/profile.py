"""WorkloadProfile: what the analysis engine found out about how a workload uses the CPU.

This is the record the planner, the verifier, the MCP server and a human read, so it says
where every number came from (`sources`) and what could not be measured (`missing`). A
profile with `complete=False` is still useful, but a reader must not treat an absent section
as "zero": the section is None or empty *and* named in `missing`.

Units are in the field names (`_us`, `_s`, `_pct`). CPU percentages are of one CPU (a
process using two CPUs fully is 200%), as `top` shows them, because that is what a
performance engineer reads fastest.
"""

from __future__ import annotations

import json
import shlex
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schedcp.errors import AnalysisError
from schedcp.models.vocabulary import WorkloadClass

SCHEMA_VERSION = 1

Where = Literal["sandbox", "host"]
TargetKind = Literal["command", "pid", "cgroup"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Source(_Record):
    """One measurement source and whether it worked, e.g. ("bpf", True, "tp_btf sched_switch, ...")."""

    name: Literal["bpf", "procfs", "schedstat", "psi", "cgroup"]
    available: bool
    detail: str = Field("", description="what it measured, or why it was not available")


class Distribution(_Record):
    """Summary of a distribution of durations, in microseconds.

    Percentiles from log2-bucketed histograms are the upper bound of the bucket the
    percentile falls in (so within a factor of 2 of the truth, never below it); `max_us` and
    `mean_us` are exact.
    """

    count: int = Field(ge=0)
    mean_us: float = Field(ge=0)
    p50_us: float = Field(ge=0)
    p90_us: float = Field(ge=0)
    p99_us: float = Field(ge=0)
    max_us: float = Field(ge=0)


class HistogramBucket(_Record):
    le_us: float = Field(description="upper bound of the bucket in microseconds")
    count: int = Field(ge=0)


class Histogram(_Record):
    """A log2 histogram of durations plus its summary; empty buckets are left out."""

    buckets: list[HistogramBucket]
    summary: Distribution


class ProcessStats(_Record):
    """Everything measured for the tasks sharing one process name (comm).

    Per name rather than per pid because a batch of 40 `gzip` jobs or 64 server threads is
    one thing to a scheduler policy (and to the job-size policy's name hints)."""

    comm: str
    tasks: int = Field(ge=0, description="distinct threads seen with this name")
    cpu_s: float = Field(ge=0, description="CPU time used during the window")
    cpu_pct: float = Field(ge=0, description="cpu_s / window, in % of one CPU")
    runq_latency: Distribution | None = Field(None, description="wakeup/preemption to running")
    run_length: Distribution | None = Field(None, description="time on CPU per scheduling slice")
    voluntary_switches: int = Field(0, ge=0, description="switched out while blocking/sleeping")
    involuntary_switches: int = Field(0, ge=0, description="preempted while still runnable")
    migrations: int = Field(0, ge=0)
    runq_wait_s: float | None = Field(
        None, ge=0, description="time runnable but not running during the window (schedstat); None without schedstat"
    )
    runq_wait_mean_us: float | None = Field(None, ge=0, description="runq_wait_s per time slice (schedstat)")
    wakeups: int = Field(0, ge=0, description="times a task of this name was woken")
    forks: int = Field(0, ge=0, description="new tasks (threads or processes) created")
    execs: int = Field(0, ge=0)
    exits: int = Field(0, ge=0)


class WakePair(_Record):
    """Who wakes whom: tasks named `waker` woke tasks named `wakee` this many times."""

    waker: str
    wakee: str
    count: int = Field(ge=0)


class TimelineSample(_Record):
    """One procfs sample of the workload's tasks."""

    t_s: float = Field(ge=0, description="seconds since the start of the window")
    processes: int = Field(ge=0)
    threads: int = Field(ge=0)
    running: int = Field(ge=0, description="threads in state R at the sample")
    cpu_pct: float = Field(ge=0, description="CPU used since the previous sample, % of one CPU")


class Pressure(_Record):
    """Pressure stall information over the window (/proc/pressure or the cgroup's files).

    `some_pct`: share of the window in which at least one task was stalled on the resource;
    `full_pct`: share in which all non-idle tasks were (not reported for cpu at system level).
    """

    resource: Literal["cpu", "io", "memory"]
    scope: str = Field(description="'system' or the cgroup path the numbers are for")
    some_pct: float = Field(ge=0)
    full_pct: float | None = Field(None, ge=0)


class CgroupUsage(_Record):
    """CPU the workload used in one cgroup v2 (its sampled threads, by their process's cgroup)."""

    path: str = Field(description="cgroup v2 path, e.g. /schedcp_a")
    cpu_s: float = Field(ge=0)
    cpu_pct: float = Field(ge=0, description="cpu_s / window, in % of one CPU")
    share_pct: float = Field(ge=0, le=100, description="% of the workload's CPU time")
    weight: int | None = Field(None, ge=1, description="cpu.weight; None when unreadable (root, no cpu controller)")
    tasks: int = Field(ge=0, description="threads of the workload seen in it")
    start: bool = Field(False, description="the cgroup the workload started in (or the cgroup target itself)")


class JobSizes(_Record):
    """Run time (CPU time over the task's life) of the finished tasks with one name.

    This is the signal that a job-size-aware policy will win: many tasks of one kind with a
    skewed size distribution (a few long jobs among many short ones)."""

    comm: str
    count: int = Field(ge=1)
    cpu: Distribution = Field(description="CPU time per finished task, in microseconds")
    lifetime: Distribution | None = Field(None, description="wall time from fork to exit")
    skew: float = Field(ge=0, description="max / median CPU time; 1 = all equal")


class Totals(_Record):
    """Whole-workload numbers over the window."""

    cpu_s: float = Field(ge=0)
    cpu_pct: float = Field(ge=0, description="% of one CPU; 100 * ncpus = every CPU busy")
    cpu_util_pct: float = Field(ge=0, description="cpu_pct / ncpus: share of the machine's CPU capacity")
    peak_threads: int = Field(ge=0)
    peak_processes: int = Field(ge=0)
    mean_threads: float = Field(ge=0)
    voluntary_switches: int = Field(ge=0)
    involuntary_switches: int = Field(ge=0)
    switches_per_s: float = Field(ge=0)
    wakeups_per_s: float = Field(ge=0)
    migrations_per_s: float = Field(ge=0)
    forks: int = Field(ge=0)
    forks_per_s: float = Field(ge=0)
    execs: int = Field(ge=0)
    execs_per_s: float = Field(ge=0)
    task_lifetime: Distribution | None = Field(None, description="fork to exit of tasks that ended in the window")
    runq_wait_s: float | None = Field(None, ge=0, description="time runnable but not running (schedstat)")
    runq_wait_mean_us: float | None = Field(
        None, ge=0, description="mean wait per time slice (schedstat): the run-queue latency when BPF is unavailable"
    )


class Overhead(_Record):
    """What observing cost. `bpf_cpu_pct` is the tracer's own CPU time (kernel BPF run-time
    statistics); `collector_cpu_pct` the sampling process; `slowdown` is only set when the
    workload was also run untraced (then: traced wall time / untraced wall time, or the
    workload's own metric ratio for a benchmark)."""

    bpf_run_time_s: float | None = Field(None, ge=0)
    bpf_events: int | None = Field(None, ge=0)
    bpf_ns_per_event: float | None = Field(None, ge=0)
    bpf_cpu_pct: float | None = Field(None, ge=0, description="% of the machine's CPU capacity")
    collector_cpu_pct: float | None = Field(None, ge=0, description="% of the machine's CPU capacity")
    slowdown: float | None = Field(None, description="traced / untraced; 1.03 = 3% slower")
    slowdown_detail: str = ""


class Classification(_Record):
    """One class with how sure the rules are and the measured facts that made them say so."""

    workload_class: WorkloadClass
    confidence: float = Field(ge=0, le=1)
    evidence: list[str] = Field(description="each item a measured fact, with its number")


class Target(_Record):
    kind: TargetKind
    command: list[str] | None = None
    pid: int | None = None
    cgroup: str | None = None

    def text(self) -> str:
        """The target as a person types it: the command shell-quoted, the pid, or the cgroup path."""
        if self.kind == "command":
            return shlex.join(self.command or [])
        if self.kind == "pid":
            return str(self.pid)
        return self.cgroup or ""


class WorkloadProfile(_Record):
    """The analysis engine's output. JSON schema: `WorkloadProfile.model_json_schema()`."""

    schema_version: int = SCHEMA_VERSION
    id: str = Field("", description="assigned when stored")
    created: datetime
    host: str
    kernel: str
    where: Where
    ncpus: int = Field(ge=1)
    target: Target
    window_s: float = Field(ge=0, description="how long the workload was observed")
    exit_code: int | None = Field(None, description="the command's exit status (command targets)")
    complete: bool = Field(description="False if any measurement in `missing` was expected but absent")
    missing: list[str] = Field(default_factory=list, description="what could not be measured, and why")
    sources: list[Source]
    totals: Totals
    runq_latency: Histogram | None = None
    run_length: Histogram | None = None
    processes: list[ProcessStats] = Field(default_factory=list, description="by CPU time, largest first")
    wake_pairs: list[WakePair] = Field(default_factory=list, description="most frequent first")
    timeline: list[TimelineSample] = Field(default_factory=list)
    pressure: list[Pressure] = Field(default_factory=list)
    cgroups: list[str] = Field(default_factory=list, description="cgroup v2 paths the workload's tasks were in")
    cgroup_cpu: list[CgroupUsage] = Field(
        default_factory=list, description="CPU per cgroup, largest first (procfs samples; empty in older profiles)"
    )
    job_sizes: list[JobSizes] = Field(default_factory=list, description="names with >= 2 finished tasks")
    overhead: Overhead = Field(default_factory=Overhead)
    classes: list[Classification] = Field(default_factory=list, description="most confident first")
    class_margin: float | None = Field(
        None,
        description="confidence of the top class minus that of the best competing class (not the class the top "
        "one refines); None when no other class competes",
    )
    close_call: list[WorkloadClass] = Field(
        default_factory=list,
        description="the top class and its runner-up when the margin is under the classifier's CLOSE_MARGIN "
        "(a close call: consider policies for both); empty when the decision is clear",
    )
    summary: str = Field("", description="<= ~300 words for a person or an LLM")

    @property
    def primary_class(self) -> WorkloadClass | None:
        return self.classes[0].workload_class if self.classes else None


def parse_profile_json(text: str, origin: str) -> WorkloadProfile:
    """A profile from JSON text (`schedcp analyze --json` output or a file); `origin` names it in the error."""
    try:
        data = json.loads(text)
        if isinstance(data, dict) and "profile" in data and "totals" not in data:
            data = data["profile"]  # an envelope such as {"profile": {...}, ...}
        return WorkloadProfile.model_validate(data)
    except (json.JSONDecodeError, ValidationError) as exc:
        raise AnalysisError(f"{origin} is not a WorkloadProfile JSON: {exc}") from exc
