"""`schedcp analyze`: profile a workload (run a command, or attach to a pid or cgroup), store and
compare profiles.

    schedcp analyze -- CMD ARGS...              run CMD in the sandbox (or --host) and profile it
    schedcp analyze --pid PID --duration 10s    attach to a running process on this machine
    schedcp analyze --cgroup PATH --duration 10s
    schedcp analyze list | show ID | diff A B | overhead | workloads
    schedcp analyze --schema                    the JSON schema of a WorkloadProfile

`--` separates our options from the command, so the command's own options are never taken for
ours; the group class below takes everything after `--` as the command before the subcommand
parser sees it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from schedcp.cli.common import (
    DbOpt,
    JsonOpt,
    MemOpt,
    VcpuOpt,
    emit_json,
    err,
    handles_errors,
    out,
    parse_duration,
    session,
)
from schedcp.service import Size, WorkloadProfile

COMMAND_KEY = "schedcp.analyze.command"


class _CommandAfterDashes(TyperGroup):
    """A group whose callback also takes a command after `--`: `analyze [OPTIONS] -- CMD...`.

    Click would take the first word after `--` for a subcommand name; here, when no subcommand
    name comes before the `--`, the rest is stored in ctx.meta for the callback instead.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if "--" in args:
            i = args.index("--")
            before, command = args[:i], args[i + 1 :]
            if not any(a in self.commands for a in before):
                ctx.meta[COMMAND_KEY] = command
                args = before
        result: list[str] = super().parse_args(ctx, args)
        return result


analyze_app = typer.Typer(
    cls=_CommandAfterDashes,
    invoke_without_command=True,
    no_args_is_help=False,
    help="Profile a workload: `analyze -- CMD`, `analyze --pid PID --duration 10s`, `analyze --cgroup PATH ...`.",
)


def _db(ctx: typer.Context, db: str | None) -> str | None:
    url = db or (ctx.obj or {}).get("db")
    return str(url) if url else None


# -- the profile on a terminal ----------------------------------------------------------------


def print_profile(profile: WorkloadProfile) -> None:
    """Summary, classes with evidence, top processes, what is missing, and the stored id."""
    out.print(
        f"[bold]{profile.target.kind} {profile.target.text()}[/] — {profile.where} {profile.host}, "
        f"kernel {profile.kernel}, {profile.ncpus} CPUs, {profile.window_s:.1f} s"
        + (f", exit {profile.exit_code}" if profile.exit_code is not None else ""),
        highlight=False,
    )
    if profile.summary:
        out.print(profile.summary, highlight=False, markup=False)
    if profile.classes:
        table = Table("class", "conf.", "evidence", title="classes (most confident first)")
        for c in profile.classes:
            table.add_row(c.workload_class, f"{c.confidence:.2f}", "\n".join(f"- {e}" for e in c.evidence))
        out.print(table)
    else:
        out.print("no class: too little activity to judge")
    if profile.processes:
        table = Table("process", "tasks", "cpu %", "vol/invol", "wakeups", "runq p99", "run p50", title="top processes")
        for p in profile.processes[:8]:
            table.add_row(
                p.comm,
                str(p.tasks),
                f"{p.cpu_pct:.1f}",
                f"{p.voluntary_switches}/{p.involuntary_switches}",
                str(p.wakeups),
                f"{p.runq_latency.p99_us:.0f} us" if p.runq_latency else "-",
                f"{p.run_length.p50_us:.0f} us" if p.run_length else "-",
            )
        out.print(table)
    if not profile.complete or profile.missing:
        err.print(
            "[yellow]partial profile[/], not measured: " + ("; ".join(profile.missing) or "(unspecified)"),
            highlight=False,
        )
    if profile.id:
        out.print(f"stored as [bold]{profile.id}[/] (`schedcp analyze show {profile.id}`)")


# -- analyze (the group's callback) ----------------------------------------------------------


@analyze_app.callback()
@handles_errors
def analyze(
    ctx: typer.Context,
    pid: Annotated[int | None, typer.Option("--pid", min=1, help="attach to this process (and its threads)")] = None,
    cgroup: Annotated[
        str | None, typer.Option("--cgroup", help="attach to this cgroup v2 (a path under /sys/fs/cgroup)")
    ] = None,
    host: Annotated[
        bool | None,
        typer.Option(
            "--host/--sandbox",
            help="where to run: this machine, or the sched_ext sandbox VM (the default for a command; "
            "--pid and --cgroup always mean this machine)",
        ),
    ] = None,
    duration: Annotated[
        str | None,
        typer.Option(
            "--duration", help="how long to observe (10s, 500ms, 2m); a command is stopped after it (default: runs out)"
        ),
    ] = None,
    interval: Annotated[str, typer.Option("--interval", help="procfs sampling interval")] = "1s",
    no_trace: Annotated[bool, typer.Option("--no-trace", help="procfs only, no BPF tracing")] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="seconds a command may run")] = 600.0,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="also write the profile JSON here")] = None,
    db: DbOpt = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="do not store the profile in the repository")] = False,
    schema: Annotated[bool, typer.Option("--schema", help="print the JSON schema of a profile and exit")] = False,
    vcpus: VcpuOpt = None,
    memory: MemOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Profile a workload and say what kind it is; stores the profile (see `analyze list`).

    Exit status: 0 with a profile (a partial one says on stderr what is missing and has
    "complete": false), 1 if nothing could be analysed (no such command, pid or cgroup; no sandbox).
    """
    from schedcp.service import analyze as service

    ctx.obj = {**(ctx.obj or {}), "db": db}
    command: list[str] | None = ctx.meta.get(COMMAND_KEY)
    if ctx.invoked_subcommand is not None:
        if command is not None or pid is not None or cgroup is not None:
            raise typer.BadParameter(f"a target cannot be combined with the {ctx.invoked_subcommand} subcommand")
        return
    if schema:
        emit_json(service.profile_schema())
        return
    given = [name for name, v in (("a command after --", command), ("--pid", pid), ("--cgroup", cgroup)) if v]
    if len(given) > 1:
        raise typer.BadParameter(f"give one target, not {' and '.join(given)}")
    if not given:
        if command is not None:
            raise typer.BadParameter("nothing after --: give the command to analyze, e.g. `analyze -- make -j2`")
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    duration_s = parse_duration(duration) if duration is not None else None
    how = {"interval_s": parse_duration(interval), "trace": not no_trace, "store": not no_store, "output": output}
    with session(db=db, vcpus=vcpus, memory=memory, quiet=as_json) as sctx:
        if command:
            where = "host" if host else "sandbox"
            request = service.AnalyzeRequest(
                command=command, where=where, duration_s=duration_s, timeout_s=timeout, **how
            )
            profile = service.analyze_command(sctx, request)
        else:
            if host is False:
                raise typer.BadParameter(
                    f"{given[0]} attaches to a process on this machine, which the sandbox VM cannot see; "
                    "drop --sandbox (or run the workload in the sandbox with `analyze -- CMD`)"
                )
            if duration_s is None:
                raise typer.BadParameter(f"{given[0]} needs --duration (e.g. --duration 10s)")
            attach = service.AttachRequest(pid=pid, cgroup=cgroup, duration_s=duration_s, **how)
            profile = service.attach(sctx, attach)
    if as_json:
        emit_json(profile)
        if not profile.complete:
            err.print("partial profile, not measured: " + "; ".join(profile.missing), highlight=False)
        return
    print_profile(profile)
    if output is not None:
        out.print(f"profile written to {output}")


# -- subcommands ------------------------------------------------------------------------------


@analyze_app.command("list")
@handles_errors
def analyze_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000)] = 20,
    class_: Annotated[str | None, typer.Option("--class", help="only profiles whose primary class is this")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stored profiles, newest first."""
    from schedcp.service import analyze as service

    with session(db=_db(ctx, db), quiet=True) as sctx:
        result = service.list_profiles(sctx, limit=limit, workload_class=class_)
    if as_json:
        emit_json(result)
        return
    if not result.profiles:
        out.print("no stored profiles" + (f" of class {class_}" if class_ else ""))
        return
    table = Table("id", "created", "class", "where", "target")
    table.columns[0].no_wrap = True
    table.columns[4].overflow = "ellipsis"
    table.columns[4].no_wrap = True
    for r in result.profiles:
        partial = "" if r.complete else " [yellow](partial)[/]"
        table.add_row(r.id, r.created[:16].replace("T", " "), r.primary_class or "-", r.where, r.target + partial)
    out.print(table)


@analyze_app.command("show")
@handles_errors
def analyze_show(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(metavar="ID|FILE", help="a stored profile's id (or a unique prefix) or a JSON file")
    ],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a stored profile (or a profile JSON file)."""
    from schedcp.service import analyze as service

    with session(db=_db(ctx, db), quiet=True) as sctx:
        profile = service.show_profile(sctx, ref)
    if as_json:
        emit_json(profile)
    else:
        print_profile(profile)


@analyze_app.command("diff")
@handles_errors
def analyze_diff(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(metavar="A", help="profile id (prefix) or JSON file: the reference")],
    b: Annotated[str, typer.Argument(metavar="B", help="profile id (prefix) or JSON file: compared with A")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare two profiles: key metrics side by side with B/A ratios, class and top-process changes."""
    from schedcp.service import analyze as service

    with session(db=_db(ctx, db), quiet=True) as sctx:
        result = service.compare_profiles(sctx, a, b)
    if as_json:
        emit_json(result)
    else:
        out.print(result.render(), highlight=False, markup=False)


@analyze_app.command("overhead")
@handles_errors
def analyze_overhead(
    ctx: typer.Context,
    repeat: Annotated[int, typer.Option("--repeat", min=1, max=50, help="measured rounds, after one warm-up")] = 3,
    size: Annotated[Size, typer.Option("--size", help="wakeup-latency size (see `bench list`)")] = "small",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the report JSON here")] = None,
    db: DbOpt = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="do not store the traced profile")] = False,
    vcpus: VcpuOpt = None,
    memory: MemOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure the tracer's cost: wakeup-latency run untraced and traced in one sandbox boot."""
    from schedcp.service import analyze as service

    request = service.OverheadRequest(repeat=repeat, size=size, store=not no_store, output=output)
    with session(db=_db(ctx, db), vcpus=vcpus, memory=memory, quiet=as_json) as sctx:
        report = service.measure_overhead(sctx, request)
    if as_json:
        emit_json(report)
        return
    out.print(report.detail(), highlight=False)
    bpf = f"{report.bpf_cpu_pct:.2f}% of the CPUs" if report.bpf_cpu_pct is not None else "not measured"
    per_event = f", {report.bpf_ns_per_event:.0f} ns per event" if report.bpf_ns_per_event is not None else ""
    out.print(f"slowdown {report.slowdown:.3f}x (untraced rps / traced rps); tracer CPU {bpf}{per_event}")
    if report.profile.id:
        out.print(f"traced profile stored as {report.profile.id}")
    if output is not None:
        out.print(f"report written to {output}")


@analyze_app.command("workloads")
@handles_errors
def analyze_workloads(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None, typer.Argument(help="benchmark workloads (default: all; see `bench list`)")
    ] = None,
    size: Annotated[Size | None, typer.Option("--size", help="workload size (default: each one's default)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the checks as JSON here")] = None,
    db: DbOpt = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="do not store the profiles")] = False,
    vcpus: VcpuOpt = None,
    memory: MemOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Profile the benchmark workloads in one sandbox boot and check each gets its declared class.

    Exit status: 0 if every workload got its declared class, 1 otherwise.
    """
    from schedcp.service import analyze as service

    request = service.WorkloadsRequest(names=names or [], size=size, store=not no_store, output=output)
    with session(db=_db(ctx, db), vcpus=vcpus, memory=memory, quiet=as_json) as sctx:
        checks = service.check_workloads(sctx, request)
    if as_json:
        emit_json(checks)
    else:
        typer.echo(checks.render())  # plain: a Markdown table must not be wrapped
    if checks.matched < len(checks.root):
        raise typer.Exit(1)
