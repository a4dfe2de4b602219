"""`schedcp verify`: the execution verifier over one policy version or a third-party object."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from schedcp.cli.common import DbOpt, JsonOpt, MemOpt, SetOpt, VcpuOpt, emit_json, handles_errors, out, session

STAGE_NAMES = ("compile", "lint", "kernel-verifier", "dynamic", "performance")


@handles_errors
def verify(
    policy: Annotated[
        str | None, typer.Argument(help="NAME, NAME@VERSION, a version id prefix, or a policy folder")
    ] = None,
    set_: SetOpt = None,
    workload: Annotated[
        str | None, typer.Option("--workload", help="the performance gate's benchmark (default: the policy's class)")
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="a shorter stress run and a smaller benchmark")] = False,
    obj: Annotated[
        Path | None, typer.Option("--object", help="vet a sched_ext object built elsewhere (FILE.bpf.o)")
    ] = None,
    until: Annotated[
        str, typer.Option("--until", help=f"the last stage to run: {', '.join(STAGE_NAMES)}")
    ] = "performance",
    tolerance: Annotated[
        float, typer.Option("--tolerance", min=0, max=0.99, help="how much worse than the default may pass (0.1)")
    ] = 0.10,
    latency_ms: Annotated[
        float | None, typer.Option("--latency-ms", min=1, help="p99 wakeup-latency bound of the probe (ms)")
    ] = None,
    store: Annotated[bool, typer.Option("--store/--no-store", help="keep the report in the repository")] = True,
    db: DbOpt = None,
    vcpus: VcpuOpt = None,
    memory: MemOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a policy before it may reach a kernel: compile, lint, the kernel's verifier, a stress
    run with probes, and a benchmark against the default scheduler. Stops at the first failure.

    Exit status 1 when a stage failed (the report says what to fix), else 0 (with --until, only
    the stages asked for ran: the report is then not a pass, and is not stored).
    """
    from schedcp.service import verify as service
    from schedcp.service.common import parse_assignments

    if until not in STAGE_NAMES:
        raise typer.BadParameter(f"--until must be one of {', '.join(STAGE_NAMES)}")
    request = service.VerifyRequest(
        policy=policy,
        object=obj,
        tunables=dict(parse_assignments(set_)),
        workload=workload,
        quick=quick,
        until=until,  # checked above
        tolerance=tolerance,
        latency_ms=latency_ms,
        store=store,
    )
    with session(db=db, vcpus=vcpus, memory=memory, quiet=as_json) as ctx:
        done = service.verify(ctx, request)
    if as_json:
        emit_json(done)
    else:
        # soft_wrap: the report's own lines, unwrapped (a terminal wraps them; a log keeps them whole)
        out.print(done.report.render(), highlight=False, markup=False, soft_wrap=True)
        if done.recorded is not None:
            out.print(f"report {done.recorded} stored with the version", highlight=False, soft_wrap=True)
        elif done.note:
            out.print(done.note, highlight=False, markup=False, soft_wrap=True)
    if done.report.stopped_at is not None:
        raise typer.Exit(1)
