"""`schedcp bench`: the workloads, one A/B run, a suite of them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from schedcp.cli.common import JsonOpt, MemOpt, SetOpt, VcpuOpt, emit_json, handles_errors, out, session
from schedcp.service import SIZES, BenchResult, Size

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks: real workloads, A/B against the default scheduler.")


@bench_app.command("list")
@handles_errors
def bench_list(
    variants: Annotated[
        str | None, typer.Option("--variants", help="list this class's generated variants instead (batch-long-tail)")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="the variants' seed")] = 1,
    count: Annotated[int, typer.Option(min=1, max=64, help="how many variants")] = 8,
    as_json: JsonOpt = False,
) -> None:
    """List the workloads with their metrics and what "better" means for each."""
    from schedcp.service import bench

    if variants is not None:
        with session(quiet=True) as ctx:
            found = bench.list_variants(ctx, variants, seed, count)
        if as_json:
            emit_json(found)
            return
        for v in found.variants:
            out.print(f"{v.name:18} {v.description}", highlight=False, soft_wrap=True)
        out.print(f"[dim]`bench suite --policy P --variants {variants} --seed {seed} --count {count}` runs them all[/]")
        return
    with session(quiet=True) as ctx:
        result = bench.list_workloads(ctx)
    if as_json:
        emit_json(result)
        return
    table = Table("workload", "class", "primary metric", box=None, pad_edge=False)
    for column in table.columns:
        column.no_wrap = True
    every = list(SIZES)
    odd: list[str] = []
    for w in result.workloads:
        primary = next(m for m in w.metrics if m.name == w.primary)
        table.add_row(w.name, w.workload_class, f"{primary.name} {'↓' if primary.better == 'lower' else '↑'}")
        if list(w.sizes) != every or w.default_size != "small":
            odd.append(f"{w.name}: {', '.join(w.sizes)} (default {w.default_size})")
    out.print(table)
    note = f"sizes {', '.join(every)} (default small)" + (f"; except {'; '.join(odd)}" if odd else "")
    out.print(f"[dim]↓ lower is better, ↑ higher is better. {note}. Every metric: `--json` or docs/benchmarks.md[/]")


@bench_app.command("run")
@handles_errors
def bench_run(
    workload: str,
    policy: Annotated[str | None, typer.Option("--policy", help="candidate policy (name or folder)")] = None,
    set_: SetOpt = None,
    baseline: Annotated[str, typer.Option(help="'default' (the kernel's scheduler) or a policy")] = "default",
    repeat: Annotated[int, typer.Option(min=1, max=100, help="measured runs a side, after one warm-up")] = 3,
    size: Annotated[Size | None, typer.Option(help="workload size (see `bench list`)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="JSON result file")] = None,
    plot: Annotated[bool, typer.Option("--plot", help="also write a PNG (next to the JSON)")] = False,
    vcpus: VcpuOpt = None,
    memory: MemOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run WORKLOAD under the baseline and the candidate alternately in one sandbox boot; report ratios.

    Exit status: 0, 3 if the kernel ejected a policy during a run, 1 on any other error.
    """
    from schedcp.service import bench
    from schedcp.service.common import parse_assignments

    request = bench.BenchRunRequest(
        workload=workload,
        policy=policy,
        tunables=dict(parse_assignments(set_)),
        baseline=baseline,
        repeat=repeat,
        size=size,
        output=output,
        plot=plot,
    )
    with session(vcpus=vcpus, memory=memory, quiet=as_json) as ctx:
        done = bench.run_benchmark(ctx, request)
    if as_json:
        emit_json(done)
        return
    print_bench(done.result)
    out.print(f"result: {done.json_path}" + (f"\nplot:   {done.plot}" if done.plot else ""))
    if done.recorded_version:
        out.print(f"recorded in the repository for {policy}@{done.recorded_version[:12]}")


@bench_app.command("suite")
@handles_errors
def bench_suite(
    policy: Annotated[str, typer.Option("--policy", help="candidate policy (name or folder)")],
    workload: Annotated[
        list[str] | None, typer.Option("--workload", "-w", help="workload (repeatable; default all)")
    ] = None,
    variants: Annotated[
        str | None,
        typer.Option("--variants", help="run a class's generated variants (workloads no policy was tuned on)"),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="the variants' seed")] = 1,
    count: Annotated[int, typer.Option(min=1, max=64, help="how many variants")] = 8,
    set_: SetOpt = None,
    repeat: Annotated[int, typer.Option(min=1, max=100, help="measured runs a side, after one warm-up")] = 3,
    size: Annotated[Size | None, typer.Option(help="size for every workload (default: each one's default)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="folder for the results")] = None,
    vcpus: VcpuOpt = None,
    memory: MemOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Default vs POLICY on every workload (or those given) in one sandbox boot; writes JSON, PNGs, summary.md."""
    from schedcp.service import bench
    from schedcp.service.common import parse_assignments

    request = bench.SuiteRequest(
        policy=policy,
        workloads=workload or [],
        variants=variants,
        seed=seed,
        count=count,
        tunables=dict(parse_assignments(set_)),
        repeat=repeat,
        size=size,
        output=output,
    )
    with session(vcpus=vcpus, memory=memory, quiet=as_json) as ctx:
        done = bench.run_suite(ctx, request)
    if as_json:
        emit_json(done)
        return
    typer.echo(done.summary)  # plain: a Markdown table must not be wrapped
    out.print(f"results: {done.folder}")


def print_bench(result: BenchResult) -> None:
    """Per metric: each side's median and range, the ratio with its interval, and the verdict."""
    cand = result.candidate.name if result.candidate else None
    title = f"{result.workload.name} ({result.size}): {result.baseline.name}" + (f" vs {cand}" if cand else "")
    table = Table(title=title + f", {result.repeat} runs a side")
    table.add_column("metric")
    table.add_column(result.baseline.name, justify="right")
    if cand:
        for col in (cand, "ratio", "95% CI", "verdict"):
            table.add_column(col, justify="right" if col != "verdict" else "left")
    for m in result.metrics:
        arrow = "↓" if m.better == "lower" else "↑"
        row = [f"{m.name} {arrow}", f"{m.baseline.median:.4g}"]
        if m.candidate is not None and m.comparison is not None:
            c = m.comparison
            ci = f"{c.ci_low:.2f}-{c.ci_high:.2f}" if c.ci_low is not None and c.ci_high is not None else "-"
            color = {"better": "green", "worse": "red"}.get(c.verdict, "yellow")
            row += [f"{m.candidate.median:.4g}", f"{c.ratio:.3f}", ci, f"[{color}]{c.verdict}[/]"]
        table.add_row(*row)
    out.print(table)
    out.print("[dim]medians; ↓ lower is better, ↑ higher is better; ratio = candidate / baseline[/]")
    if result.note:
        out.print(f"[dim]{result.note}[/]")
