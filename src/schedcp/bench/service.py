"""`schedcp bench run` as one call: build the policies, boot one sandbox, run the A/B, save."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from schedcp.bench.harness import run_ab
from schedcp.bench.registry import get_workload
from schedcp.bench.report import default_name, save_json
from schedcp.bench.report import plot as draw
from schedcp.bpf.build import BuiltPolicy, build_policy
from schedcp.bpf.policy import Policy, find_policy
from schedcp.config import Settings, load_settings
from schedcp.errors import VersionNotFound
from schedcp.fsutil import atomic_write
from schedcp.models.bench import DEFAULT, BenchResult
from schedcp.models.vocabulary import Size
from schedcp.sandbox import Sandbox, find_kernel
from schedcp.sandbox.kernel import Kernel

log = logging.getLogger(__name__)


def _build(name: str, overrides: dict[str, str], kernel: Kernel, settings: Settings, out: Path) -> BuiltPolicy | None:
    if name == DEFAULT:
        return None
    policy = find_policy(name)
    return build_policy(policy, policy.resolve_tunables(overrides), kernel, settings.cache_dir, out)


@dataclass
class BenchOutcome:
    result: BenchResult
    json_path: Path
    plot_path: Path | None
    recorded_version: str | None = None  # the repository version the result was recorded against


def record_in_repository(result: BenchResult, policy: Policy, settings: Settings) -> str | None:
    """Record a result against the exact repository version that ran.

    Only against the default scheduler (what "best known policy" compares), and only when that
    exact content is in the repository: a benchmark never creates versions behind the user's back.
    Returns the version id, or None when nothing was recorded.
    """
    from schedcp.repository import open_repository
    from schedcp.repository.content import read_policy

    if result.baseline.name != DEFAULT or result.candidate is None:
        return None
    version = read_policy(policy).id
    with open_repository(settings=settings) as repo:
        try:
            repo.version(version)
        except VersionNotFound:
            log.info(
                "%s@%s is not in the repository; `schedcp policy add` it to keep its results", policy.name, version
            )
            return None
        repo.record_benchmark(version, result.workload.name, result)
    return version


def bench_in_sandbox(
    workload_name: str,
    policy: str | None = None,
    overrides: dict[str, str] | None = None,
    baseline: str = DEFAULT,
    repeat: int = 3,
    size: Size | None = None,
    settings: Settings | None = None,
    output: Path | None = None,
    plot: bool = False,
    progress: Callable[[str], None] = log.info,
) -> BenchOutcome:
    """Run one benchmark, save it (JSON, optional PNG) and record it in the repository."""
    settings = settings or load_settings()
    workload = get_workload(workload_name)
    size = size or workload.info.default_size
    kernel = find_kernel(settings.kernels_dir, settings.sandbox.kernel)
    with tempfile.TemporaryDirectory(prefix="schedcp-bench-") as tmp:
        out = Path(tmp)
        base = _build(baseline, {}, kernel, settings, out / "baseline")
        cand = _build(policy, overrides or {}, kernel, settings, out / "candidate") if policy else None
        with Sandbox(settings, kernel=kernel) as vm:
            progress(f"sandbox up in {vm.info.boot_s:.1f} s ({vm.info.accel})" if vm.info else "sandbox up")
            result = run_ab(
                vm,
                workload,
                size,
                settings.cache_dir / "bench-build",
                baseline=base,
                candidate=cand,
                repeat=repeat,
                compare_candidate=policy is not None,
                boot=vm.info,
                progress=progress,
            )
    json_path = output or settings.results_dir / f"{default_name(result)}.json"
    save_json(result, json_path)
    png = draw(result, json_path.with_suffix(".png")) if plot else None
    recorded = record_in_repository(result, cand.policy, settings) if cand is not None else None
    return BenchOutcome(result, json_path, png, recorded)


def suite_in_sandbox(
    policy: str,
    workloads: list[str] | None = None,
    overrides: dict[str, str] | None = None,
    repeat: int = 3,
    size: Size | None = None,
    settings: Settings | None = None,
    out_dir: Path | None = None,
    progress: Callable[[str], None] = log.info,
) -> tuple[list[BenchResult], Path]:
    """Default vs `policy` on several workloads in one boot; writes each JSON + PNG and summary.md."""
    from schedcp.bench.registry import all_workloads

    settings = settings or load_settings()
    names = workloads or list(all_workloads())
    chosen = [get_workload(n) for n in names]  # fail on a bad name before booting
    kernel = find_kernel(settings.kernels_dir, settings.sandbox.kernel)
    results: list[BenchResult] = []
    with tempfile.TemporaryDirectory(prefix="schedcp-bench-") as tmp:
        cand = _build(policy, overrides or {}, kernel, settings, Path(tmp))
        with Sandbox(settings, kernel=kernel) as vm:
            progress(f"sandbox up in {vm.info.boot_s:.1f} s ({vm.info.accel})" if vm.info else "sandbox up")
            for workload in chosen:
                results.append(
                    run_ab(
                        vm,
                        workload,
                        size or workload.info.default_size,
                        settings.cache_dir / "bench-build",
                        candidate=cand,
                        repeat=repeat,
                        boot=vm.info,
                        progress=progress,
                    )
                )
    out_dir = out_dir or settings.results_dir / f"suite-{results[0].created.replace(':', '')}-{policy}"
    out_dir.mkdir(parents=True, exist_ok=True)
    for result in results:
        save_json(result, out_dir / f"{result.workload.name}.json")
        draw(result, out_dir / f"{result.workload.name}.png")
    atomic_write(out_dir / "summary.md", summary_markdown(results).encode())
    if cand is not None:
        for result in results:
            record_in_repository(result, cand.policy, settings)
    return results, out_dir


def summary_markdown(results: list[BenchResult]) -> str:
    """One row per workload and metric: medians, ratio, interval, verdict (for READMEs and notes)."""
    if not results:
        return ""
    first = results[0]
    cand = first.candidate.name if first.candidate else "-"
    lines = [
        f"{first.baseline.name} vs {cand}, {first.repeat} runs a side after a warm-up, one boot "
        f"({first.boot.accel if first.boot else '?'}, {first.boot.vcpus if first.boot else '?'} vCPUs, "
        f"kernel {first.boot.kernel if first.boot else '?'}), {first.created[:10]}.",
        "Ratio = median(candidate) / median(baseline); 95% bootstrap interval.",
        "",
        f"| workload (size) | metric | better | {first.baseline.name} | {cand} | ratio | 95% CI | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for m in r.metrics:
            c = m.comparison
            if c is None or m.candidate is None:
                continue
            ci = f"[{c.ci_low:.3f}, {c.ci_high:.3f}]" if c.ci_low is not None and c.ci_high is not None else "-"
            lines.append(
                f"| {r.workload.name} ({r.size}) | {m.name} ({m.unit}) | {m.better} | {m.baseline.median:.4g} | "
                f"{m.candidate.median:.4g} | {c.ratio:.3f} | {ci} | {c.verdict} |"
            )
    return "\n".join(lines) + "\n"
