"""Benchmarks as a service: the workloads, one A/B run, a suite; results saved and recorded.

A result is written as JSON (and a PNG on request) and recorded in the repository against the
exact policy version that ran, when that version is stored and the baseline is the kernel's
default scheduler: that is what `policy best` ranks. A benchmark never adds versions behind the
user's back.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from schedcp.bench.harness import run_ab
from schedcp.bench.registry import all_workloads, get_workload
from schedcp.bench.report import default_name, save_json, summary_markdown
from schedcp.bench.report import plot as draw
from schedcp.bench.variants import long_tail_variants, variant_names
from schedcp.bpf.build import BuiltPolicy
from schedcp.errors import SchedcpError, VersionNotFound
from schedcp.fsutil import atomic_write
from schedcp.models.bench import DEFAULT, BenchResult, WorkloadInfo
from schedcp.models.vocabulary import Size, TunableValue
from schedcp.repository.content import read_policy
from schedcp.runner import boot_info
from schedcp.service.common import build
from schedcp.service.context import Context

log = logging.getLogger(__name__)


class WorkloadList(BaseModel):
    workloads: list[WorkloadInfo]


def list_workloads(ctx: Context) -> WorkloadList:
    """Every benchmark workload with its class, metrics (primary first is `primary`) and sizes."""
    return WorkloadList(workloads=[w.info for w in all_workloads().values()])


class BenchRunRequest(BaseModel):
    workload: str
    policy: str | None = Field(None, description="candidate policy (name or folder); None: measure the baseline only")
    tunables: dict[str, TunableValue] = Field(default_factory=dict, description="the candidate's tunables")
    baseline: str = Field(DEFAULT, description="'default' (the kernel's scheduler) or a policy")
    repeat: int = Field(3, ge=1, le=100, description="measured runs a side, after one warm-up each")
    size: Size | None = Field(None, description="None: the workload's default size")
    output: Path | None = Field(None, description="the result JSON; default: the data folder's results/")
    plot: bool = Field(False, description="also write a PNG next to the JSON")


class BenchRunResult(BaseModel):
    # "json" both ways: `--json` prints it under that name, and an MCP client validates the
    # structured result against the schema, which must name the key the same way.
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    result: BenchResult
    json_path: Path = Field(alias="json", description="the result JSON")
    plot: Path | None = None
    recorded_version: str | None = Field(None, description="the repository version the result was recorded against")


def run_benchmark(ctx: Context, request: BenchRunRequest) -> BenchRunResult:
    """Baseline and candidate alternately in one sandbox boot; save, plot, record."""
    workload = get_workload(request.workload)
    size = request.size or workload.info.default_size
    with tempfile.TemporaryDirectory(prefix="schedcp-bench-") as tmp:
        out = Path(tmp)
        base = _build(ctx, request.baseline, {}, out / "baseline")
        cand = build(ctx, request.policy, request.tunables, out / "candidate") if request.policy else None
        # The version that runs, read now: a stored version's checkout is gone after this block.
        version = read_policy(cand.policy).id if cand is not None else None
        with ctx.runner("sandbox") as vm:
            result = run_ab(
                vm,
                workload,
                size,
                ctx.settings.cache_dir / "bench-build",
                baseline=base,
                candidate=cand,
                repeat=request.repeat,
                compare_candidate=request.policy is not None,
                boot=boot_info(vm),
                progress=ctx.report,
            )
    json_path = request.output or ctx.settings.results_dir / f"{default_name(result)}.json"
    save_json(result, json_path)
    png = draw(result, json_path.with_suffix(".png")) if request.plot else None
    recorded = record_result(ctx, result, cand.policy.name, version) if cand is not None and version else None
    return BenchRunResult(result=result, json_path=json_path, plot=png, recorded_version=recorded)


class VariantInfo(BaseModel):
    name: str = Field(description="what `bench run` and `bench suite --workload` take")
    description: str
    family: str = Field(description="the program the jobs run")
    short_jobs: int
    long_jobs: int
    factor: int = Field(description="a long job's work over a short job's")
    order: str = Field(description="where the long jobs are in the start order")


class VariantList(BaseModel):
    workload_class: str
    seed: int
    variants: list[VariantInfo]


def list_variants(ctx: Context, workload_class: str, seed: int = 1, count: int = 8) -> VariantList:
    """A class's generated variants (workloads no policy was tuned on), deterministic per seed."""
    names = variant_names(workload_class, seed, count)  # refuses a class without variants
    specs = [s for s in long_tail_variants(seed, count) if s.name in names]
    return VariantList(
        workload_class=workload_class,
        seed=seed,
        variants=[
            VariantInfo(
                name=v.name,
                description=v.describe(),
                family=v.family,
                short_jobs=v.short,
                long_jobs=v.long,
                factor=v.factor,
                order=v.order,
            )
            for v in specs
        ],
    )


class SuiteRequest(BaseModel):
    policy: str = Field(description="candidate policy (name or folder)")
    workloads: list[str] = Field(default_factory=list, description="empty: every workload (or the variants)")
    variants: str | None = Field(None, description="also run this class's generated variants (bench list --variants)")
    seed: int = Field(1, ge=0, description="the variants' seed")
    count: int = Field(8, ge=1, le=64, description="how many variants")
    tunables: dict[str, TunableValue] = Field(default_factory=dict)
    repeat: int = Field(3, ge=1, le=100)
    size: Size | None = Field(None, description="for every workload that has it; None: each one's default")
    output: Path | None = Field(None, description="folder for the results; default: the data folder's results/")


class SuiteResult(BaseModel):
    folder: Path = Field(description="one JSON and PNG per workload, and summary.md")
    results: list[BenchResult]
    recorded_versions: list[str | None] = Field(description="per result, the version it was recorded against")
    summary: str = Field(description="the Markdown table written to summary.md")


def run_suite(ctx: Context, request: SuiteRequest) -> SuiteResult:
    """Default vs the policy on several workloads in one boot; writes each JSON + PNG and summary.md."""
    extra = variant_names(request.variants, request.seed, request.count) if request.variants else []
    names = [*request.workloads, *extra] or list(all_workloads())
    chosen = [get_workload(n) for n in names]  # a bad name fails before anything boots
    results: list[BenchResult] = []
    with tempfile.TemporaryDirectory(prefix="schedcp-bench-") as tmp:
        cand = build(ctx, request.policy, request.tunables, Path(tmp))
        version = read_policy(cand.policy).id  # before a stored version's checkout is removed
        with ctx.runner("sandbox") as vm:
            for i, workload in enumerate(chosen, 1):
                size = request.size if request.size in workload.info.sizes else workload.info.default_size
                ctx.report(f"workload {i}/{len(chosen)}: {workload.info.name} ({size})")
                results.append(
                    run_ab(
                        vm,
                        workload,
                        size,
                        ctx.settings.cache_dir / "bench-build",
                        candidate=cand,
                        repeat=request.repeat,
                        boot=boot_info(vm),
                        progress=ctx.report,
                    )
                )
    stamp = results[0].created.replace(":", "")
    folder = request.output or ctx.settings.results_dir / f"suite-{stamp}-{cand.name}"
    folder.mkdir(parents=True, exist_ok=True)
    for result in results:
        save_json(result, folder / f"{result.workload.name}.json")
        draw(result, folder / f"{result.workload.name}.png")
    summary = summary_markdown(results)
    atomic_write(folder / "summary.md", summary.encode())
    recorded = [record_result(ctx, r, cand.policy.name, version) for r in results]
    return SuiteResult(folder=folder, results=results, recorded_versions=recorded, summary=summary)


def _build(ctx: Context, name: str, tunables: dict[str, TunableValue], out: Path) -> BuiltPolicy | None:
    return None if name == DEFAULT else build(ctx, name, tunables, out)


def record_result(ctx: Context, result: BenchResult, name: str, version: str) -> str | None:
    """Record a result against the exact repository version that ran (see the module docstring).

    Returns the version id, or None when nothing was recorded.
    """
    if result.baseline.name != DEFAULT or result.candidate is None:
        return None
    with ctx.repository() as repo:
        try:
            repo.version(version)
        except VersionNotFound:
            log.info("%s@%s is not in the repository; `schedcp policy add` it to keep its results", name, version[:12])
            return None
        repo.record_benchmark(version, result.workload.name, result)
    return version


def speedup(result: BenchResult) -> float:
    """How many times better the candidate did on the primary metric (> 1: better), for one-line reports."""
    metric = result.metric(result.workload.primary)
    if metric.comparison is None:
        raise SchedcpError(f"{result.workload.name}: no comparison on {metric.name}; the candidate was not measured")
    return metric.comparison.gain
