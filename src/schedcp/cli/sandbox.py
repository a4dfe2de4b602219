"""`schedcp sandbox`: what the sandbox would boot, and running one command in it."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from schedcp.cli.common import (
    PASSTHROUGH,
    CmdArg,
    CwdOpt,
    JsonOpt,
    MemOpt,
    ShareOpt,
    TimeoutOpt,
    VcpuOpt,
    emit_json,
    err,
    handles_errors,
    out,
    session,
)

EXIT_TIMEOUT = 124

sandbox_app = typer.Typer(no_args_is_help=True, help="The sched_ext sandbox VM.")


@sandbox_app.command("run", context_settings=PASSTHROUGH)
@handles_errors
def sandbox_run(
    command: CmdArg,
    timeout: TimeoutOpt = 600.0,
    vcpus: VcpuOpt = None,
    memory: MemOpt = None,
    share: ShareOpt = None,
    share_cwd: CwdOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Boot the sandbox, run COMMAND in it, shut it down; exits with the command's exit code."""
    from schedcp.service import sandbox

    request = sandbox.SandboxRunRequest(
        command=command, timeout_s=timeout, shares=share or [], workdir=Path.cwd() if share_cwd else None
    )
    with session(vcpus=vcpus, memory=memory, quiet=as_json) as ctx:
        done = sandbox.run(ctx, request)
    result, info = done.result, done.boot
    if as_json:
        emit_json(done)
    else:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        err.print(
            f"[dim]sandbox: kernel {info.kernel}, {info.accel}, {info.vcpus} vCPUs, boot {info.boot_s:.1f} s, "
            f"command {result.duration_s:.2f} s, exit {result.rc}[/]"
        )
    if result.timed_out:
        err.print(f"[red]the command timed out after {timeout:g} s and was killed[/]")
        raise typer.Exit(EXIT_TIMEOUT)
    raise typer.Exit(result.rc if 0 <= result.rc < 256 else 1)


@sandbox_app.command("info")
@handles_errors
def sandbox_info(as_json: JsonOpt = False) -> None:
    """Show what the sandbox would boot: kernel, accelerator, QEMU; fails with advice if setup is missing."""
    from schedcp.service import sandbox

    with session(quiet=True) as ctx:
        info = sandbox.info(ctx)
    if as_json:
        emit_json(info)
        return
    for key, value in info.model_dump().items():
        out.print(f"{key:>10}: {value}", highlight=False)
