"""Write a BenchResult as JSON and as a PNG that shows every run, not just the summary."""

from __future__ import annotations

import json
from pathlib import Path

from schedcp.errors import SchedcpError
from schedcp.fsutil import atomic_write
from schedcp.models.bench import BenchResult


def default_name(result: BenchResult) -> str:
    cand = result.candidate.name if result.candidate else "baseline-only"
    stamp = result.created.replace(":", "").replace("-", "").replace("+0000", "Z")
    return f"{stamp}-{result.workload.name}-{result.baseline.name}-vs-{cand}-{result.id}"


def save_json(result: BenchResult, path: Path) -> Path:
    return atomic_write(path, (result.model_dump_json(indent=2) + "\n").encode())


def load_json(path: Path) -> BenchResult:
    try:
        return BenchResult.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        raise SchedcpError(f"cannot read benchmark result {path}: {exc}") from exc


def plot(result: BenchResult, path: Path) -> Path:
    """One panel per metric: every measured run of each side (warm-up hollow), medians as bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = result.metrics
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics) + 1, 4), squeeze=False)
    sides = [("baseline", result.baseline.name)]
    if result.candidate is not None:
        sides.append(("candidate", result.candidate.name))
    for ax, metric in zip(axes[0], metrics, strict=True):
        for x, (side, label) in enumerate(sides):
            stats = metric.baseline if side == "baseline" else metric.candidate
            if stats is None:
                continue
            ax.bar(x, stats.median, color=f"C{x}", alpha=0.35, width=0.6, label=f"{label} (median)")
            measured = [s.metrics[metric.name] for s in result.samples if s.side == side and not s.warmup]
            warm = [s.metrics[metric.name] for s in result.samples if s.side == side and s.warmup]
            ax.scatter([x] * len(measured), measured, color=f"C{x}", zorder=3)
            ax.scatter([x] * len(warm), warm, facecolors="none", edgecolors=f"C{x}", zorder=3)
        ax.set_xticks(range(len(sides)), [label for _, label in sides])
        ax.set_ylabel(f"{metric.name} ({metric.unit}), {metric.better} is better")
        title = metric.name
        if metric.comparison is not None:
            c = metric.comparison
            interval = f" [{c.ci_low:.2f}, {c.ci_high:.2f}]" if c.ci_low is not None and c.ci_high is not None else ""
            title += f"\nratio {c.ratio:.2f}{interval}\n{c.verdict}"
        ax.set_title(title, fontsize=9)
    fig.suptitle(
        f"{result.workload.name} ({result.size}), {result.repeat} runs a side after a warm-up"
        + ("\nemulated sandbox: compare ratios, not absolute values" if result.emulated else ""),
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path


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
