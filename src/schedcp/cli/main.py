"""`schedcp` command line: a thin adapter over the service API (schedcp.service); `--json` everywhere.

Each command parses its options, calls one service function and renders the result. The
subcommand groups live in their own modules (sandbox, policy, bench, analyze); shared options,
the error boundary and the progress display in common.py.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from schedcp import __version__
from schedcp.cli.analyze import analyze_app
from schedcp.cli.audit import audit
from schedcp.cli.bench import bench_app, print_bench
from schedcp.cli.common import JsonOpt, MemOpt, VcpuOpt, emit_json, handles_errors, out, session
from schedcp.cli.policy import policy_app
from schedcp.cli.runtime import deploy, history, restore, rollback, status, watch
from schedcp.cli.sandbox import sandbox_app
from schedcp.cli.serve import serve
from schedcp.cli.verify import verify

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="schedcp: profile workloads, verify sched_ext policies, run them safely.",
)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(policy_app, name="policy")
app.add_typer(bench_app, name="bench")
app.add_typer(analyze_app, name="analyze")
app.command("verify")(verify)
app.command("deploy")(deploy)
app.command("status")(status)
app.command("rollback")(rollback)
app.command("history")(history)
app.command("watch")(watch)
app.command("restore")(restore)
app.command("audit")(audit)
app.command("serve")(serve)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="log progress to stderr")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )


@app.command()
def version() -> None:
    """Print schedcp's version."""
    out.print(__version__)


@app.command()
@handles_errors
def demo(
    policy: Annotated[str, typer.Option(help="built-in policy to compare with the default scheduler")] = "fifo",
    workload: Annotated[str, typer.Option(help="benchmark workload (see `bench list`)")] = "messaging",
    rounds: Annotated[int, typer.Option(min=1, max=20, help="measured runs of each scheduler")] = 3,
    vcpus: VcpuOpt = None,
    memory: MemOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Boot the sandbox and run a benchmark under EEVDF and under POLICY, alternating; report the speed-up."""
    from schedcp.service import bench

    request = bench.BenchRunRequest(workload=workload, policy=policy, repeat=rounds)
    with session(vcpus=vcpus, memory=memory, quiet=as_json) as ctx:
        done = bench.run_benchmark(ctx, request)
    if as_json:
        emit_json(done)
        return
    result = done.result
    print_bench(result)
    primary = result.metric(result.workload.primary)
    out.print(
        f"[bold]{policy}: {bench.speedup(result):.2f}x[/] the default scheduler on {result.workload.name}'s "
        f"{primary.name} (ratio of medians, {result.repeat} runs each, same boot; "
        + ("emulated sandbox, so only the ratio means anything)" if result.emulated else "same machine)")
    )
    out.print(f"result: {done.json_path}")


def main() -> None:
    app()
