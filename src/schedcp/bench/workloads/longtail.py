"""Long-tail batch workloads: N short jobs and one long one, started at once; makespan is the verdict.

A scheduler that knows job sizes (here from the process name: every job runs as `lt_short_<tool>`
or `lt_long_<tool>`) can start the long job at once and fit the short ones around it, finishing
near the lower bound max(longest job, total work / CPUs); a fair scheduler shares the CPUs
equally, so the long job runs mostly alone at the end. With N short jobs of size S, a long job
of size kS and C CPUs, fair sharing ends at about ((N+1)/C + k - 1)S against the bound
max(k, (N+k)/C)S; the gap is widest when k = N/(C-1), hence the default shapes: 39 short jobs
and a long job with 39 times their input on the 2-vCPU sandbox (1.5x apart in theory), and on a
real host ("full") 20 short jobs per CPU with k scaled the same way.

The guest-side driver is schedcp/bench/guest/longtail.py: it generates the inputs in the
guest's /tmp (deterministic per seed), releases all jobs at once and reports each job's start,
end, CPU time, exit status and comm as one JSON object, parsed here into LongTailReport.

The work per job is set in each variant's unit (pool files per short job, or functions per C
file for compile), chosen so a short job takes 0.3-1 s of CPU in the emulated sandbox at size
"small". The long job gets `factor` times a short job's input; its measured size relative to a
short one (effective_factor) is lower where process start-up is a big part of a short job
(python, compile: start-up is slow under emulation), higher for sort (n log n).

Measured in the sandbox (2 vCPUs, TCG, default scheduler; whole command): tiny 4-10 s, small
16-39 s, medium 45-88 s, large 82-183 s (sort and python the slowest). "full" natively on a
2-CPU host: 12-60 s. Under the default scheduler makespan_over_bound was 1.23-1.43.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, Field, ValidationError

from schedcp.bench.workload import Prepared, Workload, WorkloadOutputError, check_size, guest_file, require_ok
from schedcp.models import CommandResult
from schedcp.models.bench import Metric, WorkloadInfo
from schedcp.models.vocabulary import SIZES, Size
from schedcp.runner import CommandRunner

GUEST_PYTHON = "/usr/bin/python3"
DRIVER = "longtail.py"
VERSION = "1"
WORKLOAD_CLASS = "batch-long-tail"
TAGS = ("lt_short_", "lt_long_")

# Tolerances for the consistency checks: the driver rounds to microseconds.
ABS_TOL_S = 2e-3
REL_TOL = 1e-3


@dataclass(frozen=True)
class Shape:
    """How many jobs, how much bigger the long one is, and the work of one short job."""

    short: int
    factor: int
    unit: int
    timeout_s: float

    def args(self) -> list[str]:
        return ["--short", str(self.short), "--factor", str(self.factor), "--unit", str(self.unit)]


def full_shape(cpus: int, unit: int) -> Shape:
    """For a real host: 20 short jobs per CPU, the long job as big as k = N/(C-1) short ones."""
    short = max(39, 20 * cpus - 1)
    factor = max(2, round(short / max(cpus - 1, 1)))
    return Shape(short, factor, unit, timeout_s=1800.0)


class LongTailJob(BaseModel):
    name: str
    long: bool
    comm: str
    start_s: float = Field(ge=0)
    end_s: float = Field(ge=0)
    cpu_s: float = Field(ge=0)
    rc: int


class LongTailReport(BaseModel):
    """The driver's JSON (extra fields are allowed, so a newer driver stays readable)."""

    format: int
    variant: str
    seed: int
    short_jobs: int = Field(ge=0)
    long_jobs: int = Field(1, ge=1, description="long jobs in the batch (variants: 1-3)")
    order: str = Field("last", description="where the long jobs were in the fork order")
    tags: bool = Field(True, description="jobs ran as lt_short_/lt_long_<tool>; False: as the tool itself")
    factor: int = Field(ge=1)
    unit: int = Field(ge=1)
    cpus: int = Field(ge=1)
    jobs: list[LongTailJob]
    makespan_s: float = Field(ge=0)
    mean_completion_s: float = Field(ge=0)
    long_job_s: float = Field(ge=0)
    total_job_s: float = Field(ge=0)
    total_cpu_s: float = Field(ge=0)
    long_cpu_s: float = Field(ge=0)
    effective_factor: float | None = None
    lower_bound_s: float = Field(gt=0)
    makespan_over_bound: float = Field(gt=0)
    generate_s: float = Field(ge=0, description="input generation and warm-up, not measured")
    driver_rt: bool = Field(description="the driver reaped jobs at SCHED_FIFO, outside the policy under test")

    @property
    def long_job(self) -> LongTailJob:
        """The long job that finished last (the only one, unless a variant has several)."""
        return max((j for j in self.jobs if j.long), key=lambda j: j.end_s)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL_S)


def _argv_value(argv: list[str], flag: str) -> int | None:
    """The value of `flag` on the driver's command line, if it is there."""
    for i, arg in enumerate(argv[:-1]):
        if arg == flag:
            try:
                return int(argv[i + 1])
            except ValueError:
                return None
    return None


def parse_report(result: CommandResult, variant: str, what: str) -> LongTailReport:
    """The driver's report, checked for consistency; WorkloadOutputError (with the output) if not."""
    require_ok(result, what)
    text = result.stdout.strip()
    if not text:
        raise WorkloadOutputError(f"{what} printed nothing on stdout", result)
    try:
        report = LongTailReport.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise WorkloadOutputError(
            f"{what} did not print a long-tail report: {where}: {first['msg']} ({exc.error_count()} errors)", result
        ) from exc

    def bad(why: str) -> WorkloadOutputError:
        return WorkloadOutputError(f"{what}: inconsistent report: {why}", result)

    if report.variant != variant:
        raise bad(f"variant {report.variant!r}, expected {variant!r}")
    shape = (("--short", report.short_jobs), ("--factor", report.factor), ("--unit", report.unit))
    for flag, value in (*shape, ("--long", report.long_jobs)):
        asked = _argv_value(result.argv, flag)
        if asked is not None and asked != value:
            raise bad(f"the command asked for {flag} {asked}, the report says {value}")
    jobs = report.jobs
    if len(jobs) != report.short_jobs + report.long_jobs:
        raise bad(f"{len(jobs)} jobs, expected {report.short_jobs} short + {report.long_jobs} long")
    if sum(j.long for j in jobs) != report.long_jobs:
        raise bad(f"{sum(j.long for j in jobs)} long jobs, expected {report.long_jobs}")
    if len({j.name for j in jobs}) != len(jobs):
        raise bad("job names repeat")
    failed = [j for j in jobs if j.rc != 0]
    if failed:
        raise bad(f"job {failed[0].name} exited with status {failed[0].rc} but the driver exited 0")
    for j in jobs:
        if j.end_s < j.start_s:
            raise bad(f"job {j.name} ended ({j.end_s} s) before it started ({j.start_s} s)")
    ends = [j.end_s for j in jobs]
    cpu = [j.cpu_s for j in jobs]
    expected = {
        "makespan_s": (report.makespan_s, max(ends)),
        "mean_completion_s": (report.mean_completion_s, sum(ends) / len(ends)),
        "long_job_s": (report.long_job_s, report.long_job.end_s),
        "total_cpu_s": (report.total_cpu_s, sum(cpu)),
        "long_cpu_s": (report.long_cpu_s, report.long_job.cpu_s),
        "lower_bound_s": (report.lower_bound_s, max(max(cpu), sum(cpu) / report.cpus)),
        "makespan_over_bound": (report.makespan_over_bound, report.makespan_s / report.lower_bound_s),
    }
    for name, (said, computed) in expected.items():
        if not _close(said, computed):
            raise bad(f"{name} is {said} but the jobs give {computed:.6f}")
    return report


class LongTailWorkload:
    """One variant of the long-tail batch; subclasses set the variant and its work per size."""

    variant: ClassVar[str]
    tool: ClassVar[str]
    does: ClassVar[str]
    # Work of one short job (the driver's --unit) per size; "full" is for native speed.
    units: ClassVar[dict[Size, int]]
    # Shapes for the 2-vCPU sandbox; "full" is computed from the runner's CPU count.
    shapes: ClassVar[dict[Size, tuple[int, int, float]]] = {
        "tiny": (7, 7, 120.0),
        "small": (39, 39, 300.0),
        "medium": (39, 39, 900.0),
        "large": (79, 79, 1800.0),
    }
    info: WorkloadInfo

    def __init__(self) -> None:
        self.info = WorkloadInfo(
            name=f"long-tail-{self.variant}",
            version=VERSION,
            summary=(
                f"long-tail batch: short jobs and one long job (tagged lt_short_/lt_long_{self.tool} by name) "
                f"started at once, each {self.does}; makespan against max(longest job, work / CPUs)"
            ),
            workload_class=WORKLOAD_CLASS,
            metrics=[
                Metric(
                    name="makespan_s",
                    unit="s",
                    better="lower",
                    description="from the release of all jobs to the end of the last one",
                ),
                Metric(
                    name="mean_completion_s",
                    unit="s",
                    better="lower",
                    description="mean over all jobs of the time from the release to the job's end",
                ),
                Metric(
                    name="long_job_s",
                    unit="s",
                    better="lower",
                    description="from the release to the end of the long job",
                ),
                Metric(
                    name="makespan_over_bound",
                    unit="ratio",
                    better="lower",
                    description="makespan / max(longest job CPU time, total job CPU time / CPUs); 1.0 is optimal",
                ),
            ],
            primary="makespan_s",
            sizes=list(SIZES),
            default_size="small",
        )

    def shape(self, size: Size, cpus: int = 2) -> Shape:
        check_size(self.info, size)
        if size == "full":
            return full_shape(cpus, self.units["full"])
        short, factor, timeout_s = self.shapes[size]
        return Shape(short, factor, self.units[size], timeout_s)

    def prepare(self, runner: CommandRunner, size: Size, build_dir: Path) -> Prepared:
        check_size(self.info, size)
        cpus = 2
        if size == "full":
            res = runner.run(["nproc"], timeout=30)
            try:
                cpus = int(res.stdout.strip())
            except ValueError as exc:
                raise WorkloadOutputError("cannot count the runner's CPUs with nproc", res) from exc
        shape = self.shape(size, cpus)
        driver = runner.stage(guest_file(DRIVER))
        argv = self.driver_argv(driver, shape)
        return Prepared(
            argv=argv,
            files={"driver": driver, "shape": shlex.join(shape.args())},
            timeout_s=shape.timeout_s,
        )

    def driver_argv(self, driver: str, shape: Shape) -> list[str]:
        """The guest command for one run (generated variants add their order and untagged names)."""
        return [GUEST_PYTHON, "-I", driver, "--variant", self.variant, *shape.args(), "--seed", "1"]

    def parse(self, result: CommandResult) -> dict[str, float]:
        report = parse_report(result, self.variant, self.info.name)
        return {
            "makespan_s": report.makespan_s,
            "mean_completion_s": report.mean_completion_s,
            "long_job_s": report.long_job_s,
            "makespan_over_bound": report.makespan_over_bound,
        }


class LongTailCompress(LongTailWorkload):
    variant = "compress"
    tool = "gzip"
    does = "gzip -6 over 512 KiB text files"
    units: ClassVar[dict[Size, int]] = {"tiny": 2, "small": 4, "medium": 12, "large": 12, "full": 64}


class LongTailChecksum(LongTailWorkload):
    variant = "checksum"
    tool = "sha256"
    does = "sha256sum over 2 MiB files"
    units: ClassVar[dict[Size, int]] = {"tiny": 4, "small": 8, "medium": 24, "large": 24, "full": 128}


class LongTailSort(LongTailWorkload):
    variant = "sort"
    tool = "sort"
    does = "a one-thread sort of 5000-line CSV logs by service, latency and time"
    # Sort holds its whole input in memory: the long job's (unit x factor pool files of 280 KiB)
    # must stay a few hundred MiB at most, so "full" keeps short jobs short (~0.1 s natively).
    units: ClassVar[dict[Size, int]] = {"tiny": 2, "small": 4, "medium": 12, "large": 12, "full": 16}


class LongTailAwk(LongTailWorkload):
    variant = "awk"
    tool = "awk"
    does = "an awk aggregation of 5000-line CSV logs"
    units: ClassVar[dict[Size, int]] = {"tiny": 3, "small": 6, "medium": 18, "large": 18, "full": 256}


class LongTailCompile(LongTailWorkload):
    variant = "compile"
    tool = "gcc"
    does = "gcc -O2 -c of generated C files (short: one file, long: factor files)"
    units: ClassVar[dict[Size, int]] = {"tiny": 1, "small": 1, "medium": 3, "large": 3, "full": 48}


class LongTailPython(LongTailWorkload):
    variant = "python"
    tool = "python"
    does = "a Python parse and aggregation of 5000-line CSV logs, run by the tagged interpreter"
    units: ClassVar[dict[Size, int]] = {"tiny": 2, "small": 3, "medium": 9, "large": 9, "full": 48}


def longtail_workloads() -> list[Workload]:
    """One workload per variant, for the registry."""
    return [LongTailCompress(), LongTailChecksum(), LongTailSort(), LongTailAwk(), LongTailCompile(), LongTailPython()]
