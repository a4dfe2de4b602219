"""Build synthetic WorkloadProfiles for the classifier, summary, store, diff and CLI tests.

Each `proc(...)` is one process name with the numbers the collector would report; `make_profile`
fills the totals from them so a test states only what its case is about. The numbers in the
benchmark-shaped profiles (`BENCHMARK_PROFILES`) are what the workloads were measured to do
natively on a 2-CPU host (procfs/schedstat) or estimated for the emulated sandbox, noted at each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from schedcp.models.profile import (
    CgroupUsage,
    Distribution,
    Histogram,
    HistogramBucket,
    JobSizes,
    Pressure,
    ProcessStats,
    Source,
    Target,
    TimelineSample,
    Totals,
    WakePair,
    WorkloadProfile,
)

CREATED = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)


def dist(p50: float, p99: float | None = None, count: int = 100, mx: float | None = None) -> Distribution:
    p99 = p99 if p99 is not None else p50 * 4
    mx = mx if mx is not None else p99 * 2
    return Distribution(count=count, mean_us=p50 * 1.2, p50_us=p50, p90_us=(p50 + p99) / 2, p99_us=p99, max_us=mx)


def proc(
    comm: str,
    tasks: int,
    cpu_s: float,
    vol: int,
    inv: int,
    *,
    window_s: float = 10.0,
    wakeups: int | None = None,
    run_p50_us: float | None = None,
    runq_p99_us: float | None = None,
    forks: int = 0,
    execs: int = 0,
    exits: int = 0,
) -> ProcessStats:
    return ProcessStats(
        comm=comm,
        tasks=tasks,
        cpu_s=cpu_s,
        cpu_pct=100 * cpu_s / window_s,
        runq_latency=dist(runq_p99_us / 4, runq_p99_us, count=max(vol + inv, 1)) if runq_p99_us else None,
        run_length=dist(run_p50_us, count=max(vol + inv, 1)) if run_p50_us else None,
        voluntary_switches=vol,
        involuntary_switches=inv,
        wakeups=vol if wakeups is None else wakeups,
        forks=forks,
        execs=execs,
        exits=exits,
    )


def make_profile(
    procs: Sequence[ProcessStats],
    *,
    window_s: float = 10.0,
    ncpus: int = 2,
    bpf: bool = True,
    pairs: Sequence[tuple[str, str, int]] = (),
    job_sizes: Sequence[JobSizes] = (),
    forks: int | None = None,
    execs: int | None = None,
    peak_processes: int | None = None,
    io_some_pct: float | None = None,
    runq: tuple[float, float] | None = (50.0, 2000.0),
    run: tuple[float, float] | None = (200.0, 4000.0),
    command: list[str] | None = None,
    created: datetime = CREATED,
    cgroups: Sequence[tuple[str, float, int | None, bool]] = (),
) -> WorkloadProfile:
    """A complete profile from per-process numbers; bpf=False drops what only BPF measures."""
    cpu_s = sum(p.cpu_s for p in procs)
    vol = sum(p.voluntary_switches for p in procs)
    inv = sum(p.involuntary_switches for p in procs)
    wakeups = sum(p.wakeups for p in procs)
    forks_ = sum(p.forks for p in procs) if forks is None else forks
    execs_ = sum(p.execs for p in procs) if execs is None else execs
    threads = sum(p.tasks for p in procs)
    if not bpf:
        procs = [p.model_copy(update={"wakeups": 0, "runq_latency": None, "run_length": None}) for p in procs]
    missing = [] if bpf else ["bpf: tracing unavailable (test)"]
    pressure = [] if io_some_pct is None else [Pressure(resource="io", scope="system", some_pct=io_some_pct)]

    def hist(p50: float, p99: float) -> Histogram:
        return Histogram(
            buckets=[HistogramBucket(le_us=p50, count=50), HistogramBucket(le_us=p99, count=50)],
            summary=dist(p50, p99, count=max(vol + inv, 1)),
        )

    return WorkloadProfile(
        created=created,
        host="testhost",
        kernel="7.3.4-test",
        where="sandbox",
        ncpus=ncpus,
        target=Target(kind="command", command=command or ["./workload"]),
        window_s=window_s,
        exit_code=0,
        complete=bpf,
        missing=missing,
        sources=[
            Source(name="bpf", available=bpf, detail="test" if bpf else "not loaded (test)"),
            Source(name="procfs", available=True, detail="test"),
            Source(name="psi", available=io_some_pct is not None, detail="test"),
        ],
        totals=Totals(
            cpu_s=cpu_s,
            cpu_pct=100 * cpu_s / window_s,
            cpu_util_pct=100 * cpu_s / window_s / ncpus,
            peak_threads=threads,
            peak_processes=peak_processes if peak_processes is not None else max(len(procs), 1),
            mean_threads=float(threads),
            voluntary_switches=vol,
            involuntary_switches=inv,
            switches_per_s=(vol + inv) / window_s,
            wakeups_per_s=wakeups / window_s if bpf else 0.0,
            migrations_per_s=0.0,
            forks=forks_,
            forks_per_s=forks_ / window_s,
            execs=execs_,
            execs_per_s=execs_ / window_s,
        ),
        runq_latency=hist(*runq) if bpf and runq else None,
        run_length=hist(*run) if bpf and run else None,
        processes=sorted(procs, key=lambda p: -p.cpu_s),
        wake_pairs=[WakePair(waker=a, wakee=b, count=n) for a, b, n in pairs] if bpf else [],
        timeline=[
            TimelineSample(
                t_s=float(i), processes=len(procs), threads=threads, running=2, cpu_pct=100 * cpu_s / window_s
            )
            for i in range(3)
        ],
        pressure=pressure,
        job_sizes=list(job_sizes),
        cgroup_cpu=[
            CgroupUsage(
                path=path,
                cpu_s=share * cpu_s,
                cpu_pct=100 * share * cpu_s / window_s,
                share_pct=100 * share,
                weight=weight,
                tasks=2,
                start=start,
            )
            for path, share, weight, start in cgroups
        ],
    )


# -- the benchmark workloads, as the collector would see them --------------------------------
# W = 10 s windows on 2 CPUs unless noted. "native" numbers were measured on the 2-CPU build
# host with procfs/schedstat (see docs/analysis.md); the emulated ones scale CPU time per
# syscall-heavy wakeup by ~10-16x as QEMU TCG does.


def pipe(emulated: bool = False) -> WorkloadProfile:
    # perf bench sched pipe: 2 tasks ping-pong; native 15 us CPU per wakeup, 45k wakeups/s, 18% involuntary.
    per_s = 4000 if emulated else 45000
    cpu = 8.0 if emulated else 6.8
    p = proc("sched-pipe", 2, cpu, per_s * 10, per_s * 2, run_p50_us=200 if emulated else 12, exits=2)
    return make_profile([p, proc("perf", 1, 0.02, 3, 0)], pairs=[("sched-pipe", "sched-pipe", per_s * 10)])


def messaging(emulated: bool = False) -> WorkloadProfile:
    # perf bench sched messaging -g 2: 81 processes; native 58 us CPU per wakeup, 8% involuntary,
    # run-queue wait 25x the run length. Emulated: CPU per wakeup ~900 us.
    vol = 22000 if emulated else 230000
    p = proc(
        "sched-messaging", 81, 19.0, vol, vol // 12, run_p50_us=800 if emulated else 53, runq_p99_us=40000, exits=80
    )
    return make_profile([p], pairs=[("sched-messaging", "sched-messaging", vol)], forks=81, execs=1, peak_processes=81)


def wakeup_server(emulated: bool = False) -> WorkloadProfile:
    # wakeup_server -m 2 -w 2: native 465 us CPU per wakeup, 2229 wakeups/s, 18% involuntary,
    # 104% of one CPU over 7 threads; a quarter of the wakeups are the message threads' timers.
    wps = 1500 if emulated else 2229
    cpu = 12.0 if emulated else 10.4
    p = proc("wakeup_server", 7, cpu, wps * 10, wps * 2, run_p50_us=381, runq_p99_us=2000)
    return make_profile([p], pairs=[("wakeup_server", "wakeup_server", wps * 10 * 3 // 4)])


def mixed(emulated: bool = False) -> WorkloadProfile:
    # the server beside 4 stress-ng hogs: native hogs 124% of one CPU (1.5 ms slices, all involuntary),
    # server 64% (426 us CPU per wakeup, 1491 wakeups/s, run-queue wait 2x its run length).
    wps = 1000 if emulated else 1491
    hog = proc("stress-ng-cpu", 4, 12.4, 4, 2517 * 3, run_p50_us=1553)
    srv = proc("wakeup_server", 7, 6.4, wps * 10, wps * 2, run_p50_us=350, runq_p99_us=8000)
    pairs = [("wakeup_server", "wakeup_server", wps * 10 * 3 // 4), ("stress-ng-cpu", "wakeup_server", wps * 2)]
    return make_profile([hog, srv, proc("sh", 1, 0.01, 10, 1)], pairs=pairs, runq=(300.0, 8000.0))


def cyclictest(emulated: bool = False) -> WorkloadProfile:
    # cyclictest -t 2 -i 1000 beside 2 hogs: native 15 us per wakeup, 1944 wakeups/s, no involuntary switch;
    # hogs 186% of one CPU. Woken by timers: the recorded waker is whatever ran (a hog) or the idle task.
    cpu = 1.0 if emulated else 0.3
    cyc = proc("cyclictest", 3, cpu, 19440, 0, run_p50_us=150 if emulated else 15, runq_p99_us=4000)
    hog = proc("stress-ng-cpu", 2, 18.6, 2, 6247 * 3, run_p50_us=942)
    pairs = [("stress-ng-cpu", "cyclictest", 15000), ("cyclictest", "cyclictest", 300)]
    return make_profile([hog, cyc, proc("sh", 1, 0.01, 9, 1)], pairs=pairs)


def stress_ng_mix(emulated: bool = False) -> WorkloadProfile:
    # stress-ng --cpu 2 --switch 2: native switch stressor 4 us per wakeup, 273k wakeups/s, 98% of one CPU;
    # cpu hogs 89% of one CPU, all involuntary.
    wps = 20000 if emulated else 273000
    sw = proc("stress-ng-switc", 4, 9.8, wps * 10, wps * 2, run_p50_us=60 if emulated else 3)
    hog = proc("stress-ng-cpu", 2, 8.9, 2, 8370, run_p50_us=3258)
    pairs = [("stress-ng-switc", "stress-ng-switc", wps * 10)]
    return make_profile([sw, hog, proc("stress-ng", 1, 0.01, 3, 3)], pairs=pairs)


def long_tail(variant: str = "gzip", emulated: bool = True) -> WorkloadProfile:
    # long-tail-*: a driver forks 39 short jobs and 1 long one (39x the input) at once; they never block.
    short = proc(f"lt_short_{variant}", 39, 39 * 0.5, 40, 39 * 60, run_p50_us=3000, exits=39, execs=39)
    long = proc(f"lt_long_{variant}", 1, 0.5 * 39, 1, 1500, run_p50_us=3000, exits=1, execs=1)
    driver = proc("python3", 1, 0.3, 45, 5, forks=40)
    jobs = [JobSizes(comm=short.comm, count=39, cpu=dist(500_000, 700_000, count=39, mx=800_000), skew=1.6)]
    return make_profile([short, long, driver], window_s=25.0, job_sizes=jobs, forks=40, execs=41, peak_processes=41)


def build(emulated: bool = True) -> WorkloadProfile:
    # make -j2 of Lua: ~35 C files, gcc -> cc1 -> as each, then ar/ld; <10 processes at once.
    w = 54.0
    procs = [
        proc("cc1", 35, 70.0, 80, 9000, window_s=w, run_p50_us=4000, exits=35, execs=35),
        proc("as", 35, 10.0, 40, 900, window_s=w, exits=35, execs=35),
        proc("gcc", 37, 5.0, 300, 100, window_s=w, exits=37, execs=37, forks=72),
        proc("make", 1, 1.0, 200, 20, window_s=w, forks=40),
        proc("collect2", 2, 0.5, 10, 10, window_s=w, exits=2, execs=2),
        proc("ld", 2, 1.0, 10, 30, window_s=w, exits=2, execs=2),
        proc("ar", 1, 0.2, 2, 5, window_s=w, exits=1, execs=1),
    ]
    jobs = [
        JobSizes(comm="cc1", count=35, cpu=dist(1_500_000, 9_000_000, count=35, mx=12_000_000), skew=8.0),
        JobSizes(comm="as", count=35, cpu=dist(250_000, 600_000, count=35, mx=700_000), skew=2.8),
    ]
    return make_profile(procs, window_s=w, job_sizes=jobs, forks=115, execs=112, peak_processes=8)


def cgroup_weights(emulated: bool = True) -> WorkloadProfile:
    # cgroup_hogs.sh at size small: 4 stress-ng hogs in /schedcp_a (weight 100) and 2 in /schedcp_b
    # (weight 300) on 2 CPUs; the script's shell and its sleep stay in the start cgroup.
    hogs = proc("stress-ng-cpu", 6, 19.6, 12, 9000, run_p50_us=4000)
    parents = proc("stress-ng", 2, 0.1, 40, 4)
    shell = proc("sh", 1, 0.05, 20, 2, forks=4, execs=4)
    cgroups = [("/schedcp_b", 0.7, 300, False), ("/schedcp_a", 0.29, 100, False), ("/", 0.01, None, True)]
    return make_profile([hogs, parents, shell], cgroups=cgroups, forks=12, execs=6, peak_processes=9)


def io_bound() -> WorkloadProfile:
    p = proc("dd", 1, 0.8, 4000, 20)
    return make_profile([p], io_some_pct=45.0, runq=(20.0, 300.0))


BENCHMARK_PROFILES: dict[str, tuple[Callable[[], WorkloadProfile], str]] = {
    "pipe": (pipe, "pipeline-messaging"),
    "pipe-emulated": (lambda: pipe(True), "pipeline-messaging"),
    "messaging": (messaging, "pipeline-messaging"),
    "messaging-emulated": (lambda: messaging(True), "pipeline-messaging"),
    "wakeup-latency": (wakeup_server, "latency-critical-server"),
    "wakeup-latency-emulated": (lambda: wakeup_server(True), "latency-critical-server"),
    "mixed-interactive-batch": (mixed, "mixed-interactive-batch"),
    "mixed-interactive-batch-emulated": (lambda: mixed(True), "mixed-interactive-batch"),
    "cyclictest": (cyclictest, "periodic-soft-realtime"),
    "cyclictest-emulated": (lambda: cyclictest(True), "periodic-soft-realtime"),
    "stress-ng-mix": (stress_ng_mix, "cpu-bound-batch"),
    "stress-ng-mix-emulated": (lambda: stress_ng_mix(True), "cpu-bound-batch"),
    "long-tail-compress": (lambda: long_tail("gzip"), "batch-long-tail"),
    "long-tail-compile": (lambda: long_tail("cc1"), "batch-long-tail"),
    "build": (build, "fork-heavy-build"),
    "io": (io_bound, "io-bound"),
    "cgroup-weights": (cgroup_weights, "multi-tenant"),
}


def long_tail_compile() -> WorkloadProfile:
    # long-tail-compile: each job is lt_short_gcc -> lt_short_cc1 -> lt_short_as; the gcc drivers wait.
    w = 40.0
    procs = [
        proc("lt_short_cc1", 39, 30.0, 60, 3000, window_s=w, exits=39, execs=39),
        proc("lt_long_cc1", 1, 28.0, 5, 2500, window_s=w, exits=1, execs=1),
        proc("lt_short_as", 39, 8.0, 40, 500, window_s=w, exits=39, execs=39),
        proc("lt_long_as", 1, 3.0, 2, 200, window_s=w, exits=1, execs=1),
        proc("lt_short_gcc", 39, 4.0, 200, 200, window_s=w, exits=39, execs=39, forks=78),
        proc("lt_long_gcc", 1, 0.2, 5, 5, window_s=w, exits=1, execs=1, forks=2),
        proc("python3", 1, 0.3, 45, 5, window_s=w, forks=40),
    ]
    jobs = [
        JobSizes(comm="lt_short_cc1", count=39, cpu=dist(750_000, 900_000, count=39, mx=1_000_000), skew=1.3),
        JobSizes(comm="lt_short_as", count=39, cpu=dist(200_000, 250_000, count=39, mx=260_000), skew=1.3),
        JobSizes(comm="lt_short_gcc", count=39, cpu=dist(100_000, 120_000, count=39, mx=130_000), skew=1.3),
    ]
    return make_profile(procs, window_s=w, job_sizes=jobs, forks=120, execs=121, peak_processes=85)


BENCHMARK_PROFILES["long-tail-compile"] = (long_tail_compile, "batch-long-tail")
