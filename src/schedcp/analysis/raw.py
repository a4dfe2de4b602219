"""The collector's JSON document (guest/collect.py's stdout), as typed records.

The collector is standard-library Python that runs in the guest, so it cannot share these
models; they are the contract for what it prints. Everything the collector may fail to
produce is optional here: a run stopped by SIGTERM halfway still yields a document, and
measure.py turns its gaps into `missing` entries rather than crashing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Raw(BaseModel):
    # Tolerant of additions: a newer collector may report more than this reader knows.
    model_config = ConfigDict(extra="ignore")


class RawHist(_Raw):
    """A log2 histogram from the tracer: slots[b] counts durations in [2^(b-1), 2^b) ns
    (slot 0: 0 ns); the last slot of the tracer's array is open-ended."""

    count: int = 0
    sum_ns: int = 0
    max_ns: int = 0
    slots: list[int] = Field(default_factory=list)


class RawCommStats(_Raw):
    comm: str
    runq: RawHist = Field(default_factory=RawHist)
    run: RawHist = Field(default_factory=RawHist)
    job_cpu: RawHist = Field(default_factory=RawHist)
    job_life: RawHist = Field(default_factory=RawHist)
    voluntary: int = 0
    involuntary: int = 0
    migrations: int = 0
    wakeups: int = 0
    wakeups_new: int = 0
    forks: int = 0
    execs: int = 0
    exits: int = 0
    tasks: int = 0


class RawWakePair(_Raw):
    waker: str
    wakee: str
    count: int


class RawExited(_Raw):
    """One finished thread: exact CPU time and lifetime (bounded map; histograms are not)."""

    tid: int
    tgid: int
    comm: str
    cpu_ns: int
    life_ns: int


class RawProgram(_Raw):
    name: str
    run_time_ns: int
    run_cnt: int
    recursion_misses: int = 0


class RawBpf(_Raw):
    loaded: bool = False
    error: str | None = None
    object: str | None = None
    stats: str = "off"
    load_s: float | None = None
    pin_dir: str | None = None
    pins_removed: bool | None = None
    programs: list[RawProgram] = Field(default_factory=list)
    comm_stats: list[RawCommStats] = Field(default_factory=list)
    wake_pairs: list[RawWakePair] = Field(default_factory=list)
    exited: list[RawExited] = Field(default_factory=list)
    drops: dict[str, int] = Field(default_factory=dict)
    still_tracked: int | None = None


class RawCommand(_Raw):
    pid: int
    exit_code: int | None = None
    signal: int | None = None
    stopped: Literal["duration", "timeout", "terminated"] | None = None
    rusage_cpu_s: float | None = None
    rusage_nvcsw: int | None = None
    rusage_nivcsw: int | None = None
    stdout: str = ""
    stdout_truncated: bool = False
    stderr_tail: str = ""


class RawSample(_Raw):
    t_s: float
    processes: int
    threads: int
    running: int
    cpu_ns: int


class RawThread(_Raw):
    """A thread seen by the sampler: schedstat deltas between its first and last sighting."""

    tid: int
    pid: int
    comm: str
    born_in_window: bool
    run_ns: int
    wait_ns: int
    slices: int


class RawCgroupCpu(_Raw):
    """CPU of the workload's sampled threads in one cgroup (by their process's cgroup at each sample)."""

    cpu_ns: int = 0
    tasks: int = 0
    weight: int | None = None


class RawPsi(_Raw):
    some: int | None = None
    full: int | None = None


PsiScope = dict[str, RawPsi | None]  # resource -> totals (us), None when unreadable


class RawPressure(_Raw):
    start: dict[str, PsiScope] = Field(default_factory=dict)  # "system" / "cgroup" -> ...
    end: dict[str, PsiScope] = Field(default_factory=dict)


class RawTarget(_Raw):
    kind: Literal["command", "pid", "cgroup"]
    command: list[str] | None = None
    pid: int | None = None
    cgroup: str | None = None
    cgroup_dir: str | None = None


class RawCollector(_Raw):
    self_cpu_s: float = 0.0
    tools_cpu_s: float = 0.0


class RawSetup(_Raw):
    wall_s: float = 0.0
    cpu_s: float = 0.0


class RawCollection(_Raw):
    """Everything one collector run printed."""

    schema_version: int
    id: str
    host: str
    kernel: str
    ncpus: int
    clk_tck: int = 100
    interval_s: float = 1.0
    fatal: str | None = None
    target: RawTarget
    started_at: float | None = None
    window_s: float | None = None
    stop_reason: Literal["exited", "duration", "timeout", "vanished"] | None = None
    target_vanished_s: float | None = None
    setup: RawSetup = Field(default_factory=RawSetup)
    bpf: RawBpf = Field(default_factory=RawBpf)
    command: RawCommand | None = None
    collector: RawCollector | None = None
    pressure: RawPressure = Field(default_factory=RawPressure)
    samples: list[RawSample] = Field(default_factory=list)
    threads: list[RawThread] = Field(default_factory=list)
    cgroups: dict[str, int] = Field(default_factory=dict)
    cgroup_cpu: dict[str, RawCgroupCpu] = Field(default_factory=dict)
    start_cgroups: list[str] = Field(default_factory=list)
    schedstat: bool = False
    errors: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
