"""Long-tail batch driver: N short jobs and one (or a few) long jobs, all released at once; standard library only.

Run in the guest as `/usr/bin/python3 -I longtail.py --variant compress --short 39 --factor 39 --unit 4`
(it runs on any Linux host too: it needs only a writable temporary folder and the tools).

What it does, in order:
1. Generates the inputs in a fresh folder under $TMPDIR (/tmp, a tmpfs in the sandbox). The
   bytes depend only on the variant, the parameters and --seed (random.Random seeded by strings).
2. Makes tagged symlinks `lt_short_<tool>` / `lt_long_<tool>` to the real binaries in <work>/bin,
   so every job's comm (/proc/<pid>/comm, from the executed file name) says which kind it is,
   as a deployment that tags its batch jobs would. The gcc driver is given -B<bin>/lt_<kind>_ so
   cc1 and as, which do the work, carry the tag too.
3. Runs each tool once on a tiny input (warm-up: binaries and Python modules come from the
   host over 9p in the sandbox; loading them is not scheduling work).
4. Forks every job; each child blocks on a shared pipe (the gate). Closing the gate's write end
   wakes all of them at once (pipe EOF wakes every reader), they record their first moment on a
   CPU and exec. By default the long job is forked LAST: started first, a plain FIFO policy would
   run it first by accident and look size-aware; last is the case where only knowing job sizes
   (the tag) helps. --order first|middle|spread and --long N (the variants a policy was not
   tuned on) place N long jobs elsewhere in the fork order; --no-tags runs every job under the
   tool's own name, so a policy must find the long jobs without being told. Nothing of steps
   1-3 is measured.
5. While the jobs run, the driver raises itself to SCHED_FIFO (when allowed) so that reaping,
   and with it each job's end time, does not depend on the policy under test; the jobs keep
   the normal policy (they were forked before).
6. Prints one JSON object on stdout. Exit status 1 if any job failed (its stderr goes to ours).

Timing: start_s is when the job's process first ran after the release, end_s when the driver
reaped it, both relative to the release. lower_bound_s = max(largest job CPU time, total job
CPU time / CPUs) from each job's rusage (os.wait4): no schedule can finish the batch sooner
with the work this run actually did. long_job_s is the (last) long job's end_s. effective_factor is
the long job's CPU time over a short job's mean: below --factor where process start-up is a
large part of a short job (slow under emulation), above it for sort (n log n).

Work: a short job processes --unit files from a small pool of distinct generated files (each
job starting at its own place in the pool; generating a file per job would take longer than
the jobs under emulation), the long job --unit x --factor files. compile is the exception:
every job has its own C files of --unit functions, one for a short job, --factor for the long.
"""

from __future__ import annotations

import os
import sys


def aggregate_csv(paths: list[str]) -> int:
    """The python variant's job: parse CSV logs and aggregate them, in plain Python.

    Per (service, level): count, mean and max latency, first timestamp; a log2 latency histogram
    per service; bytes per path prefix, the top ten printed. Fields are split on commas (the
    generated logs have no quoting): the csv and json modules would pull in `re` and friends,
    whose loading is most of a short job's CPU time under emulation.
    """
    stats: dict[tuple[str, str], list[float]] = {}
    histogram: dict[str, list[int]] = {}
    by_prefix: dict[str, int] = {}
    rows = 0
    for path in paths:
        with open(path) as f:
            for line in f:
                ts, _host, service, level, latency_s, size_s, url = line.rstrip("\n").split(",")
                latency = float(latency_s)
                entry = stats.get((service, level))
                if entry is None:
                    stats[(service, level)] = [1.0, latency, latency, float(ts)]
                else:
                    entry[0] += 1
                    entry[1] += latency
                    entry[2] = max(entry[2], latency)
                    entry[3] = min(entry[3], float(ts))
                buckets = histogram.setdefault(service, [0] * 16)
                buckets[min(int(latency).bit_length(), 15)] += 1
                prefix = url.rsplit("/", 1)[0]
                by_prefix[prefix] = by_prefix.get(prefix, 0) + int(size_s)
                rows += 1
    out = [f"rows {rows}"]
    out += [f"{s} {lvl} {e[0]:.0f} {e[1] / e[0]:.3f} {e[2]:.0f} {e[3]:.0f}" for (s, lvl), e in sorted(stats.items())]
    out += [f"{s} {' '.join(map(str, h))}" for s, h in sorted(histogram.items())]
    out += [f"{p} {b}" for p, b in sorted(by_prefix.items(), key=lambda kv: -kv[1])[:10]]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


# The python variant's jobs run this module's byte code (`python -E -s -S longtail.pyc
# --job-aggregate FILE...`, compiled once by the driver) and stop here, before the driver's
# imports: loading those would be a large share of a short job's CPU time (20-30 ms natively,
# about half a second under emulation).
if __name__ == "__main__" and sys.argv[1:2] == ["--job-aggregate"]:
    sys.exit(aggregate_csv(sys.argv[2:]))

import argparse  # noqa: E402
import hashlib  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import py_compile  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, NoReturn  # noqa: E402

FORMAT_VERSION = 1
RECORD = struct.Struct("=Id")  # job index, monotonic time of its first run after the release
RT_PRIORITY = 10
STDERR_TAIL = 4000
# The python jobs: no environment variables, user site or site module (it probes for
# site-packages folders, over 9p in the sandbox), as -I would do and more.
PYTHON_FLAGS = ("-E", "-s", "-S")

SERVICES = ("auth", "billing", "search", "cart", "media", "profile", "feed", "mail", "geo", "ads", "chat", "pay")
LEVELS = ("INFO",) * 14 + ("DEBUG",) * 4 + ("WARN",) * 2 + ("ERROR",)

# mawk and gawk both run this: per (service, level) count and mean latency, per service max bytes.
AWK_PROGRAM = (
    'BEGIN { FS = "," } '
    "{ k = $3 FS $4; n[k]++; lat[k] += $5; if ($6 + 0 > mx[$3]) mx[$3] = $6 + 0 } "
    'END { for (k in n) printf "%s %d %.3f\\n", k, n[k], lat[k] / n[k]; for (s in mx) print s, mx[s] }'
)


# -- input generation ----------------------------------------------------------------------


def rng_for(seed: int, *parts: object) -> random.Random:
    """An independent generator per file: its bytes do not depend on generation order."""
    return random.Random(":".join(str(p) for p in (seed, *parts)))


def vocabulary(rng: random.Random, n: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choices(letters, k=rng.randint(2, 10))) for _ in range(n)]


WORDS_PER_LINE = 12


def text_file(rng: random.Random, size: int) -> bytes:
    """Word salad from a 4000-word vocabulary, 12 words a line: gzip -6 makes it about 2.4x smaller.

    Generated in bulk (one choices() call), since Python runs ~20x slower under emulation.
    """
    words = vocabulary(rng, 4000)
    tokens = rng.choices(words, k=size // 6 + WORDS_PER_LINE)  # words average 6 bytes with the space
    lines = [" ".join(tokens[i : i + WORDS_PER_LINE]) for i in range(0, len(tokens), WORDS_PER_LINE)]
    data = ("\n".join(lines) + "\n").encode()
    while len(data) < size:  # never in practice; keeps the size exact whatever the word lengths
        data += data
    return data[:size]


def log_file(rng: random.Random, lines: int) -> bytes:
    """A CSV access log, ts,host,service,level,latency_ms,bytes,path, generated column by column."""
    words = vocabulary(rng, 300)
    latencies = [int(rng.expovariate(1 / 40.0)) + 1 for _ in range(512)]  # sampled, then drawn from
    ts = itertools.accumulate(rng.choices((0, 1, 1, 2), k=lines), initial=1_700_000_000 + rng.randrange(86_400))
    columns = zip(
        ts,
        rng.choices(range(32), k=lines),
        rng.choices(SERVICES, k=lines),
        rng.choices(LEVELS, k=lines),
        rng.choices(latencies, k=lines),
        rng.choices(range(100, 200_000), k=lines),
        rng.choices((1, 2, 3), k=lines),
        rng.choices(words, k=lines),
        rng.choices(range(10_000), k=lines),
        strict=False,  # ts has one more (the initial value)
    )
    out = [f"{t},web-{h:02d},{s},{lv},{lat},{b},/api/v{v}/{w}/{i}" for t, h, s, lv, lat, b, v, w, i in columns]
    return ("\n".join(out) + "\n").encode()


OPS = ("+", "-", "^", "|", "&", "*")


def c_function(rng: random.Random, name: str) -> str:
    """One function with loops, a switch and helpers, different constants each time (no dedup)."""
    k = [rng.randrange(1, 1 << 31) for _ in range(8)]
    s = [rng.randrange(1, 31) for _ in range(6)]
    ops = [rng.choice(OPS) for _ in range(8)]
    cases = "\n".join(
        f"        case {c}: acc = (acc {rng.choice(OPS)} (v << {rng.randrange(1, 13)})) + {rng.randrange(1 << 20)}u;"
        " break;"
        for c in range(8)
    )
    return f"""
static unsigned {name}_mix(unsigned x) {{
    x ^= x >> {s[0]}; x *= {k[0]}u; x ^= x >> {s[1]}; x *= {k[1]}u; x ^= x >> {s[2]};
    return x;
}}

struct {name}_acc {{ unsigned lo, hi; int n; }};

unsigned {name}(const unsigned *a, int n, unsigned seed) {{
    struct {name}_acc st = {{ seed ^ {k[2]}u, {k[3]}u, 0 }};
    unsigned acc = seed;
    for (int i = 0; i < n; i++) {{
        unsigned v = (a[i] {ops[0]} {k[4]}u) {ops[1]} {name}_mix(acc);
        switch ((v >> {s[3]}) & 7) {{
{cases}
        }}
        if (acc > {k[5]}u) acc = {name}_mix(acc {ops[2]} v);
        st.lo = (st.lo {ops[3]} v) + (unsigned)i; st.hi {ops[4]}= acc >> {s[4]}; st.n++;
    }}
    for (int j = 0; j < {rng.randrange(8, 64)}; j++) {{
        for (int m = 0; m < n && m < {rng.randrange(4, 32)}; m++)
            acc = (acc << {s[5]}) {ops[5]} (acc >> 3) {ops[6]} a[(j * {rng.randrange(1, 97)} + m) % n];
    }}
    return acc {ops[7]} st.lo {ops[0]} st.hi {ops[1]} (unsigned)st.n;
}}
"""


def c_file(rng: random.Random, prefix: str, functions: int) -> bytes:
    return "".join(c_function(rng, f"{prefix}_f{i}") for i in range(functions)).encode()


# -- variants ------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSpec:
    """What one job runs, minus the executable (the tagged symlink)."""

    args: list[str]
    cwd: str


@dataclass
class Setup:
    """Paths a variant needs while building its job commands."""

    work: Path
    inputs: Path
    bin: Path
    driver: Path
    seed: int
    unit: int
    long_jobs: frozenset[int] = frozenset()  # the indices of the long jobs
    tags: bool = True  # jobs run as lt_short_<tool> / lt_long_<tool>; False: as the tool itself

    @property
    def driver_pyc(self) -> Path:
        return self.driver.with_suffix(".pyc")


@dataclass(frozen=True)
class Variant:
    name: str
    tag: str  # the tool's name in the comm: lt_short_<tag>; kept short (comm holds 15 characters)
    program: str  # what is executed (looked up on PATH), or "python" for this interpreter
    about: str
    generate: Callable[[Setup, int, int], None]  # setup, all jobs, factor
    job: Callable[[Setup, int, int, bool], JobSpec]  # setup, job index, work units, is long
    warmup: Callable[[Setup], list[str]]  # arguments for a tiny run of the tool

    def symlink(self, setup: Setup, long: bool) -> Path:
        if not setup.tags:  # every job under the tool's own name: nothing tells their sizes
            return setup.bin / self.plain
        return setup.bin / f"lt_{'long' if long else 'short'}_{self.tag}"

    @property
    def plain(self) -> str:
        return "python3" if self.program == "python" else self.program


def pool(setup: Setup) -> list[Path]:
    return sorted(setup.inputs.glob("pool-*"))


def cycle(files: Sequence[Path], start: int, count: int) -> list[str]:
    """count files from the pool, starting at a job-specific place so jobs differ."""
    return [str(files[(start + j) % len(files)]) for j in range(count)]


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


TEXT_FILE_BYTES = 512 * 1024
HASH_FILE_BYTES = 2 * 1024 * 1024
LOG_FILE_LINES = 5000


# Jobs cycle through a small pool of distinct files (each job from its own starting place):
# generating a file per job would take far longer than the jobs themselves under emulation.
TEXT_POOL = 6
BYTES_POOL = 4
LOG_POOL = 6


def gen_text_pool(setup: Setup, n_short: int, factor: int) -> None:
    for i in range(TEXT_POOL):
        write(setup.inputs / f"pool-{i}.txt", text_file(rng_for(setup.seed, "text", i), TEXT_FILE_BYTES))


def gen_bytes_pool(setup: Setup, n_short: int, factor: int) -> None:
    for i in range(BYTES_POOL):
        write(setup.inputs / f"pool-{i}.bin", rng_for(setup.seed, "bytes", i).randbytes(HASH_FILE_BYTES))


def gen_log_pool(setup: Setup, n_short: int, factor: int) -> None:
    for i in range(LOG_POOL):
        write(setup.inputs / f"pool-{i}.csv", log_file(rng_for(setup.seed, "log", i), LOG_FILE_LINES))


def compile_sources(setup: Setup, index: int) -> Path:
    return setup.inputs / f"job-{index:03d}"


def gen_c_files(setup: Setup, n_jobs: int, factor: int) -> None:
    """Short job i compiles one file of --unit functions; a long job compiles factor such files."""
    for index in range(n_jobs):
        files = factor if index in setup.long_jobs else 1
        for f in range(files):
            rng = rng_for(setup.seed, "c", index, f)
            write(compile_sources(setup, index) / f"m{f:03d}.c", c_file(rng, f"j{index}m{f}", setup.unit))


def job_compress(setup: Setup, index: int, units: int, long: bool) -> JobSpec:
    return JobSpec(["-6", "-c", *cycle(pool(setup), index, units)], str(setup.work))


def job_checksum(setup: Setup, index: int, units: int, long: bool) -> JobSpec:
    return JobSpec(cycle(pool(setup), index, units), str(setup.work))


def job_sort(setup: Setup, index: int, units: int, long: bool) -> JobSpec:
    # One thread (GNU sort would use up to 8), a fixed buffer (no dependence on the machine's
    # memory): by service, then latency descending, then time.
    keys = ["-t", ",", "-k3,3", "-k5,5nr", "-k1,1n"]
    return JobSpec(["--parallel=1", "-S", "192M", *keys, "-o", os.devnull, *cycle(pool(setup), index, units)], "/")


def job_awk(setup: Setup, index: int, units: int, long: bool) -> JobSpec:
    return JobSpec([AWK_PROGRAM, *cycle(pool(setup), index, units)], str(setup.work))


def job_python(setup: Setup, index: int, units: int, long: bool) -> JobSpec:
    return JobSpec([*PYTHON_FLAGS, str(setup.driver_pyc), "--job-aggregate", *cycle(pool(setup), index, units)], "/")


def job_compile(setup: Setup, index: int, units: int, long: bool) -> JobSpec:
    src = compile_sources(setup, index)
    out = setup.work / "out" / src.name
    out.mkdir(parents=True, exist_ok=True)
    prefix = f"{setup.bin}/lt_{'long' if long else 'short'}_" if setup.tags else f"{setup.bin}/"
    return JobSpec([f"-B{prefix}", "-O2", "-c", *(str(p) for p in sorted(src.glob("*.c")))], str(out))


def warm_files(setup: Setup) -> list[str]:
    return [str(pool(setup)[0])]


def warm_compile(setup: Setup) -> list[str]:
    src = setup.work / "warm.c"
    src.write_text("int warm(int x) { return x * 3; }\n")
    return [f"-B{setup.bin}/lt_short_", "-O2", "-c", str(src), "-o", str(setup.work / "warm.o")]


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "compress",
            "gzip",
            "gzip",
            "gzip -6 -c over --unit 512 KiB text files (word salad, ~2.4x compressible)",
            gen_text_pool,
            job_compress,
            lambda s: ["-6", "-c", *warm_files(s)],
        ),
        Variant(
            "checksum",
            "sha256",
            "sha256sum",
            "sha256sum over --unit 2 MiB files of random bytes",
            gen_bytes_pool,
            job_checksum,
            warm_files,
        ),
        Variant(
            "sort",
            "sort",
            "sort",
            "sort (one thread) of --unit 5000-line CSV logs by service, latency, time",
            gen_log_pool,
            job_sort,
            lambda s: ["--parallel=1", "-t", ",", "-k3,3", "-o", os.devnull, *warm_files(s)],
        ),
        Variant(
            "awk",
            "awk",
            "awk",
            "awk aggregation (count, mean latency, max bytes per service and level) of --unit 5000-line logs",
            gen_log_pool,
            job_awk,
            lambda s: [AWK_PROGRAM, *warm_files(s)],
        ),
        Variant(
            "compile",
            "gcc",
            "gcc",
            "gcc -O2 -c of generated C files of --unit functions (short: 1 file, long: factor files)",
            gen_c_files,
            job_compile,
            warm_compile,
        ),
        Variant(
            "python",
            "python",
            "python",
            "Python parse and aggregation of --unit 5000-line CSV logs, run by the tagged interpreter",
            gen_log_pool,
            job_python,
            lambda s: [*PYTHON_FLAGS, str(s.driver_pyc), "--job-aggregate", *warm_files(s)],
        ),
    )
}


# -- running -------------------------------------------------------------------------------


@dataclass
class Job:
    name: str
    long: bool
    exe: Path
    spec: JobSpec
    stderr_path: Path
    pid: int = 0
    comm: str = ""
    start: float | None = None
    end: float | None = None
    rc: int | None = None
    cpu_s: float = 0.0


def resolve_program(variant: Variant) -> str:
    if variant.program == "python":
        return os.path.realpath(sys.executable)
    found = shutil.which(variant.program)
    if found is None:
        raise SystemExit(f"longtail: {variant.program} is not on PATH; the {variant.name} variant needs it")
    return os.path.realpath(found)


def make_symlinks(variant: Variant, setup: Setup, real: str) -> None:
    setup.bin.mkdir()
    for long in (False, True) if setup.tags else (False,):
        os.symlink(real, variant.symlink(setup, long))
    if variant.name == "compile":
        # gcc -B<bin>/lt_<kind>_ looks for <bin>/lt_<kind>_cc1 and _as before its own.
        cc1 = subprocess.run([real, "-print-prog-name=cc1"], capture_output=True, text=True, check=True).stdout.strip()
        as_ = shutil.which("as")
        if not os.path.isabs(cc1) or as_ is None:
            raise SystemExit(f"longtail: cannot find cc1 ({cc1!r}) or as ({as_!r}) for the compile variant")
        for prefix in ("lt_short_", "lt_long_") if setup.tags else ("",):
            os.symlink(os.path.realpath(cc1), setup.bin / f"{prefix}cc1")
            os.symlink(os.path.realpath(as_), setup.bin / f"{prefix}as")


def job_env() -> dict[str, str]:
    env = dict(os.environ)
    env["LC_ALL"] = "C"  # sort and awk: byte order, the same everywhere
    return env


def child(index: int, job: Job, gate: tuple[int, int], report: tuple[int, int], parent: int) -> NoReturn:
    """In the forked child: redirect, wait at the gate, record the first run, exec the tagged tool."""
    try:
        os.close(gate[1])
        os.close(report[0])
        os.chdir(job.spec.cwd)
        devnull = os.open(os.devnull, os.O_RDWR)
        err = os.open(job.stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.dup2(err, 2)
        os.read(gate[0], 1)  # EOF when the driver closes the gate: every job wakes at once
        now = time.monotonic()
        if os.getppid() != parent:  # the driver died before the release: do not run
            os._exit(125)
        os.write(report[1], RECORD.pack(index, now))
        argv = [str(job.exe), *job.spec.args]
        os.execve(job.exe, argv, job_env())
    except BaseException as exc:
        try:
            os.write(2, f"longtail: cannot start {job.name}: {exc}\n".encode())
        finally:
            os._exit(127)
    os._exit(127)


def become_realtime() -> bool:
    """So that reaping (the end times) does not wait for the policy under test."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(RT_PRIORITY))
    except (OSError, AttributeError):
        return False
    return True


def run_jobs(jobs: list[Job]) -> bool:
    """Fork all, release all at once, reap all; returns whether the driver reaped them at SCHED_FIFO."""
    gate = os.pipe()
    report = os.pipe()
    parent = os.getpid()
    started: list[Job] = []
    released = False
    try:
        for index, job in enumerate(jobs):
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                child(index, job, gate, report, parent)
            job.pid = pid
            started.append(job)
        os.close(gate[0])
        os.close(report[1])
        rt = become_realtime()
        t0 = time.monotonic()
        os.close(gate[1])
        released = True
        buf = b""
        while chunk := os.read(report[0], 4096):  # EOF once every job has exec'd (CLOEXEC) or died
            buf += chunk
        os.close(report[0])
        for index, when in RECORD.iter_unpack(buf[: len(buf) - len(buf) % RECORD.size]):
            jobs[index].start = when - t0
        by_pid = {job.pid: job for job in jobs}
        for job in jobs:  # every job has exec'd (or failed); zombies keep their comm until reaped
            try:
                job.comm = Path(f"/proc/{job.pid}/comm").read_text().strip()
            except OSError:
                job.comm = ""
        remaining = len(jobs)
        while remaining:
            pid, status, usage = os.wait4(-1, 0)
            now = time.monotonic()
            job_or_none = by_pid.get(pid)
            if job_or_none is None:
                continue
            job_or_none.end = now - t0
            job_or_none.rc = os.waitstatus_to_exitcode(status)
            job_or_none.cpu_s = usage.ru_utime + usage.ru_stime
            remaining -= 1
        if rt:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        return rt
    finally:
        if not released:
            for job in started:
                try:
                    os.kill(job.pid, 9)
                    os.waitpid(job.pid, 0)
                except OSError:
                    pass


def input_digest(inputs: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in inputs.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(inputs)).encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def summarise(variant: Variant, args: argparse.Namespace, jobs: list[Job], cpus: int) -> dict[str, Any]:
    ends = [j.end or 0.0 for j in jobs]
    durations = [(j.end or 0.0) - (j.start or 0.0) for j in jobs]
    cpu = [j.cpu_s for j in jobs]
    long_job = max((j for j in jobs if j.long), key=lambda j: j.end or 0.0)  # the last to finish
    short_cpu = [j.cpu_s for j in jobs if not j.long]
    lower = max(max(cpu), sum(cpu) / cpus)
    makespan = max(ends)
    mean_short_cpu = sum(short_cpu) / len(short_cpu) if short_cpu else 0.0
    return {
        "format": FORMAT_VERSION,
        "variant": variant.name,
        "about": variant.about,
        "seed": args.seed,
        "short_jobs": args.short,
        "long_jobs": args.long,
        "order": args.order,
        "tags": not args.no_tags,
        "factor": args.factor,
        "unit": args.unit,
        "cpus": cpus,
        "jobs": [
            {
                "name": j.name,
                "long": j.long,
                "comm": j.comm,
                "start_s": round(j.start if j.start is not None else -1.0, 6),
                "end_s": round(j.end or 0.0, 6),
                "cpu_s": round(j.cpu_s, 6),
                "rc": j.rc,
            }
            for j in jobs
        ],
        "makespan_s": round(makespan, 6),
        "mean_completion_s": round(sum(ends) / len(ends), 6),
        "long_job_s": round(long_job.end or 0.0, 6),
        "total_job_s": round(sum(durations), 6),
        "total_cpu_s": round(sum(cpu), 6),
        "long_cpu_s": round(long_job.cpu_s, 6),
        "effective_factor": round(long_job.cpu_s / mean_short_cpu, 3) if mean_short_cpu > 0 else None,
        "lower_bound_s": round(lower, 6),
        "makespan_over_bound": round(makespan / lower, 6) if lower > 0 else None,
    }


ORDERS = ("last", "first", "middle", "spread")


def long_positions(n_jobs: int, n_long: int, order: str) -> frozenset[int]:
    """Which of n_jobs (in fork order) are the long ones: the last, the first, the middle ones,
    or spread evenly. The order matters: forked last, only knowing sizes lets a policy run the
    long job first; forked first, a plain FIFO runs it first by accident."""
    if order == "first":
        return frozenset(range(n_long))
    if order == "middle":
        start = (n_jobs - n_long) // 2
        return frozenset(range(start, start + n_long))
    if order == "spread":
        return frozenset(round((k + 0.5) * n_jobs / n_long - 0.5) for k in range(n_long))
    return frozenset(range(n_jobs - n_long, n_jobs))


def run(args: argparse.Namespace) -> int:
    variant = VARIANTS[args.variant]
    cpus = len(os.sched_getaffinity(0))
    real = resolve_program(variant)
    work = Path(tempfile.mkdtemp(prefix=f"longtail-{variant.name}-"))
    try:
        t_gen = time.monotonic()
        n_jobs = args.short + args.long
        long_jobs = long_positions(n_jobs, args.long, args.order)
        setup = Setup(
            work, work / "in", work / "bin", work / "longtail.py", args.seed, args.unit, long_jobs, not args.no_tags
        )
        setup.inputs.mkdir()
        # The python jobs run this file's byte code from the tmpfs, compiled once here, not the
        # source from the (uncached) share it came from.
        shutil.copyfile(os.path.abspath(__file__), setup.driver)
        py_compile.compile(str(setup.driver), cfile=str(setup.driver_pyc), doraise=True)
        make_symlinks(variant, setup, real)
        variant.generate(setup, n_jobs, args.factor)
        input_bytes = sum(p.stat().st_size for p in setup.inputs.rglob("*") if p.is_file())
        digest = input_digest(setup.inputs) if args.print_input_digest else None
        (work / "err").mkdir()
        jobs = []
        longs = shorts = 0
        for i in range(n_jobs):  # in fork order; --order places the long jobs (module docstring)
            long = i in long_jobs
            name = (f"long-{longs}" if args.long > 1 else "long") if long else f"short-{shorts:02d}"
            longs, shorts = longs + long, shorts + (not long)
            jobs.append(
                Job(
                    name=name,
                    long=long,
                    exe=variant.symlink(setup, long),
                    spec=variant.job(setup, i, args.unit * args.factor if long else args.unit, long),
                    stderr_path=work / "err" / f"{i:03d}.txt",
                )
            )
        warm = subprocess.run(
            [str(variant.symlink(setup, False)), *variant.warmup(setup)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=work,
            env=job_env(),
            timeout=600,
        )
        if warm.returncode != 0:
            sys.stderr.write(f"longtail: the warm-up run of {variant.program} failed:\n{warm.stderr.decode()}\n")
            return 3
        generate_s = time.monotonic() - t_gen

        rt = run_jobs(jobs)

        out = summarise(variant, args, jobs, cpus)
        out.update(
            {
                "tool": real,
                "input_bytes": input_bytes,
                "generate_s": round(generate_s, 3),
                "driver_rt": rt,
            }
        )
        if digest is not None:
            out["input_sha256"] = digest
        if args.keep:
            out["workdir"] = str(work)
        failed = [j for j in jobs if j.rc != 0]
        for job in failed:
            try:
                text = job.stderr_path.read_text(errors="replace")[-STDERR_TAIL:]
            except OSError:
                text = "(no stderr)"
            sys.stderr.write(f"longtail: job {job.name} ({job.comm}) exited with status {job.rc}:\n{text}\n")
        print(json.dumps(out))
        return 1 if failed else 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="longtail.py",
        description="Run N short jobs and one long job at once and report makespan against its lower bound.",
    )
    p.add_argument("--variant", required=True, choices=sorted(VARIANTS))
    p.add_argument("--short", type=int, default=39, help="number of short jobs (default 39)")
    p.add_argument("--factor", type=positive, default=39, help="the long job does this many times a short job's work")
    p.add_argument(
        "--unit",
        type=positive,
        default=1,
        help="work of one short job: input files from the pool, or functions per C file for compile",
    )
    p.add_argument("--long", type=positive, default=1, help="number of long jobs (default 1)")
    p.add_argument(
        "--order",
        choices=ORDERS,
        default="last",
        help="where the long jobs are in the fork order: last (default), first, middle, or spread evenly",
    )
    p.add_argument(
        "--no-tags",
        action="store_true",
        help="every job runs under the tool's own name (no lt_short_/lt_long_ tags): sizes must be found",
    )
    p.add_argument("--seed", type=int, default=1, help="input generation seed (same seed, same bytes)")
    p.add_argument("--keep", action="store_true", help="keep the work folder (its path is in the JSON)")
    p.add_argument("--print-input-digest", action="store_true", help="add input_sha256 over the generated inputs")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--job-aggregate"]:
        return aggregate_csv(args_list[1:])
    args = parser().parse_args(args_list)
    if args.short < 0:
        parser().error("--short must be 0 or more")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
