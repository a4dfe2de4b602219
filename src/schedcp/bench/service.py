"""`schedcp bench run` as one call: build the policies, boot one sandbox, run the A/B, save."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

from schedcp.bench.harness import DEFAULT, BenchResult, run_ab
from schedcp.bench.registry import get_workload
from schedcp.bench.report import default_name, save_json
from schedcp.bench.report import plot as draw
from schedcp.bpf.build import BuiltPolicy, build_policy
from schedcp.bpf.policy import find_policy
from schedcp.config import Settings, load_settings
from schedcp.sandbox import Sandbox, find_kernel
from schedcp.sandbox.kernel import Kernel

log = logging.getLogger(__name__)


def _build(name: str, overrides: dict[str, str], kernel: Kernel, settings: Settings, out: Path) -> BuiltPolicy | None:
    if name == DEFAULT:
        return None
    policy = find_policy(name)
    return build_policy(policy, policy.resolve_tunables(overrides), kernel, settings.cache_dir, out)


def bench_in_sandbox(
    workload_name: str,
    policy: str | None = None,
    overrides: dict[str, str] | None = None,
    baseline: str = DEFAULT,
    repeat: int = 3,
    size: str | None = None,
    settings: Settings | None = None,
    output: Path | None = None,
    plot: bool = False,
    progress: Callable[[str], None] = log.info,
) -> tuple[BenchResult, Path, Path | None]:
    """Run one benchmark; returns the result, where its JSON went and where its plot went."""
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
    return result, json_path, png
