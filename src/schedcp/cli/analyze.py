"""`schedcp analyze`: profile a workload (run a command, or attach to a pid or cgroup), store and compare profiles.

    schedcp analyze -- CMD ARGS...              run CMD in the sandbox (or --host) and profile it
    schedcp analyze --pid PID --duration 10s    attach to a running process on this machine
    schedcp analyze --cgroup PATH --duration 10s
    schedcp analyze list | show ID | diff A B | overhead
    schedcp analyze --schema                    the JSON schema of a WorkloadProfile

A thin adapter over schedcp.analysis (engine, diff) and the repository (stored profiles). `--`
separates our options from the command, so the command's own options are never taken for ours;
the group class below takes everything after `--` as the command before the subcommand parser
sees it.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from schedcp.errors import SchedcpError
from schedcp.models.vocabulary import Size

if TYPE_CHECKING:
    from schedcp.analysis.engine import OverheadReport
    from schedcp.config import Settings
    from schedcp.models.profile import Target, WorkloadProfile

COMMAND_KEY = "schedcp.analyze.command"
out = Console()
err = Console(stderr=True)


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

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="repository database URL (sqlite:///abs/path.db or postgresql://...); "
        "default $SCHEDCP_DB, then `db_url` in the config, then SQLite in the data folder",
    ),
]

_DURATION = re.compile(r"^\s*(?P<value>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """'10s', '500ms', '2m', '1h' or a bare number of seconds -> seconds (> 0)."""
    m = _DURATION.match(text)
    if not m:
        raise typer.BadParameter(f"{text!r} is not a duration; use e.g. 10s, 500ms, 2m")
    seconds = float(m["value"]) * _UNIT_S[m["unit"] or "s"]
    if seconds <= 0:
        raise typer.BadParameter(f"{text!r}: the duration must be more than 0")
    return seconds


def _guarded(fn: Callable[[], None]) -> None:
    """The CLI boundary of main.py: our errors become a message and exit 1."""
    from schedcp.cli.main import _guarded as guarded

    guarded(fn)


def _db_url(ctx: typer.Context, db: str | None) -> str:
    from schedcp.config import load_settings

    url = db or (ctx.obj or {}).get("db")
    return str(url) if url else load_settings().repository_url


def _settings(vcpus: int | None, memory: int | None) -> Settings:
    from schedcp.cli.main import _settings as settings

    return settings(vcpus, memory)


def _status(text: str, quiet: bool) -> AbstractContextManager[None]:
    """A spinner on a terminal, nothing otherwise (or with --json)."""
    from schedcp.cli.main import _status as status

    return status(text, quiet)


def _emit(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


# -- the profile on a terminal ----------------------------------------------------------------


def print_profile(profile: WorkloadProfile, stored_id: str | None) -> None:
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
        table = Table("class", "confidence", "evidence", title="classes (most confident first)")
        for c in profile.classes:
            table.add_row(c.workload_class, f"{c.confidence:.2f}", "\n".join(f"- {e}" for e in c.evidence))
        out.print(table)
    else:
        out.print("no class: too little activity to judge")
    if profile.processes:
        table = Table(
            "process", "tasks", "cpu %", "vol/invol switches", "wakeups", "runq p99", "run p50", title="top processes"
        )
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
    if stored_id:
        out.print(f"stored as [bold]{stored_id}[/] (`schedcp analyze show {stored_id}`)")


# -- analyze (the group's callback) ----------------------------------------------------------


def _target(command: list[str] | None, pid: int | None, cgroup: str | None) -> Target:
    from schedcp.models.profile import Target

    given = [name for name, v in (("a command after --", command), ("--pid", pid), ("--cgroup", cgroup)) if v]
    if len(given) > 1:
        raise typer.BadParameter(f"give one target, not {' and '.join(given)}")
    if command:
        return Target(kind="command", command=command)
    if pid is not None:
        return Target(kind="pid", pid=pid)
    assert cgroup is not None
    return Target(kind="cgroup", cgroup=cgroup)


def run_analysis(
    target: Target,
    host: bool,
    duration_s: float | None,
    interval_s: float,
    trace: bool,
    timeout_s: float,
    settings: Settings | None,
) -> WorkloadProfile:
    """Call the engine on this machine or in one sandbox boot (tests replace the engine functions)."""
    from schedcp.analysis import engine

    kw: dict[str, Any] = {"duration_s": duration_s, "interval_s": interval_s, "trace": trace, "timeout_s": timeout_s}
    if host:
        return engine.analyze_on_host(target, **kw)
    return engine.analyze_in_sandbox(target, settings=settings, **kw)


def _store(url: str, profile: WorkloadProfile) -> str:
    from schedcp.repository import open_repository

    with open_repository(url) as repo:
        return repo.save_profile(profile)


@analyze_app.callback()
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
    vcpus: Annotated[int | None, typer.Option("--vcpus", min=1, help="guest CPUs (default: host cores)")] = None,
    memory: Annotated[int | None, typer.Option("--memory", min=256, help="guest memory in MiB")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Profile a workload and say what kind it is; stores the profile (see `analyze list`).

    Exit status: 0 with a profile (a partial one says on stderr what is missing and has
    "complete": false), 1 if nothing could be analysed (no such command, pid or cgroup; no sandbox).
    """
    ctx.obj = {**(ctx.obj or {}), "db": db}
    command: list[str] | None = ctx.meta.get(COMMAND_KEY)
    if ctx.invoked_subcommand is not None:
        if command is not None or pid is not None or cgroup is not None:
            raise typer.BadParameter(f"a target cannot be combined with the {ctx.invoked_subcommand} subcommand")
        return
    if schema:
        from schedcp.models.profile import WorkloadProfile

        _emit(WorkloadProfile.model_json_schema())
        return
    if not command and pid is None and cgroup is None:
        if command is not None:
            raise typer.BadParameter("nothing after --: give the command to analyze, e.g. `analyze -- make -j2`")
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    target = _target(command, pid, cgroup)
    if target.kind != "command":
        if host is False:
            raise typer.BadParameter(
                f"--{target.kind} attaches to a {target.kind} on this machine, which the sandbox VM cannot see; "
                "drop --sandbox (or run the workload in the sandbox with `analyze -- CMD`)"
            )
        if duration is None:
            raise typer.BadParameter(f"--{target.kind} needs --duration (e.g. --duration 10s)")
        host = True
    duration_s = parse_duration(duration) if duration is not None else None
    interval_s = parse_duration(interval)

    def go() -> None:
        settings = None if host else _settings(vcpus, memory)
        with _status(f"analysing the {target.kind} on {'this host' if host else 'the sandbox'}...", as_json):
            profile = run_analysis(target, bool(host), duration_s, interval_s, not no_trace, timeout, settings)
        stored = None if no_store else _store(_db_url(ctx, db), profile)
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(profile.model_dump_json(indent=2) + "\n")
        if as_json:
            _emit(profile.model_dump(mode="json"))
            if not profile.complete:
                err.print("partial profile, not measured: " + "; ".join(profile.missing), highlight=False)
        else:
            print_profile(profile, stored)
            if output is not None:
                out.print(f"profile written to {output}")

    _guarded(go)


# -- subcommands ------------------------------------------------------------------------------


@analyze_app.command("list")
def analyze_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000)] = 20,
    class_: Annotated[str | None, typer.Option("--class", help="only profiles whose primary class is this")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stored profiles, newest first."""
    from schedcp.repository import open_repository

    def go() -> None:
        with open_repository(_db_url(ctx, db)) as repo:
            records = repo.list_profiles(limit=limit, workload_class=class_)
        if as_json:
            _emit({"profiles": [r.model_dump() for r in records]})
            return
        if not records:
            out.print("no stored profiles" + (f" of class {class_}" if class_ else ""))
            return
        table = Table()
        table.add_column("id", no_wrap=True)
        table.add_column("created", no_wrap=True)
        for col in ("class", "where", "host", "target", "complete"):
            table.add_column(col)
        for r in records:
            table.add_row(
                r.id,
                r.created[:19],
                r.primary_class or "-",
                r.where,
                r.host,
                r.target[:60],
                "yes" if r.complete else "NO",
            )
        out.print(table)

    _guarded(go)


def _load(ctx: typer.Context, db: str | None, ref: str) -> WorkloadProfile:
    """A stored profile by id (prefix), or a profile JSON file."""
    from schedcp.models.profile import parse_profile_json
    from schedcp.repository import open_repository

    path = Path(ref)
    if path.suffix == ".json" or path.is_file():
        try:
            text = path.read_text()
        except OSError as exc:
            raise SchedcpError(f"cannot read the profile file {path}: {exc}") from exc
        profile = parse_profile_json(text, str(path))
        if not profile.classes and not profile.summary:  # a bare profile (e.g. from a test recording)
            from schedcp.analysis.classify import classify
            from schedcp.analysis.summary import summarize

            profile.classes = classify(profile)
            profile.summary = summarize(profile)
        return profile
    with open_repository(_db_url(ctx, db)) as repo:
        return repo.get_profile(ref)


@analyze_app.command("show")
def analyze_show(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(metavar="ID|FILE", help="a stored profile's id (or a unique prefix) or a JSON file")
    ],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a stored profile (or a profile JSON file)."""

    def go() -> None:
        profile = _load(ctx, db, ref)
        if as_json:
            _emit(profile.model_dump(mode="json"))
        else:
            print_profile(profile, profile.id or None)

    _guarded(go)


@analyze_app.command("diff")
def analyze_diff(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(metavar="A", help="profile id (prefix) or JSON file: the reference")],
    b: Annotated[str, typer.Argument(metavar="B", help="profile id (prefix) or JSON file: compared with A")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare two profiles: key metrics side by side with B/A ratios, class and top-process changes."""
    from schedcp.analysis.diff import diff_profiles

    def go() -> None:
        result = diff_profiles(_load(ctx, db, a), _load(ctx, db, b))
        if as_json:
            _emit(result.model_dump(mode="json"))
        else:
            out.print(result.render(), highlight=False, markup=False)

    _guarded(go)


def overhead_in_sandbox(settings: Settings, repeat: int, size: Size) -> OverheadReport:
    """One sandbox boot: the wakeup-latency benchmark untraced and traced, alternating."""
    from schedcp.analysis import engine
    from schedcp.sandbox import Sandbox

    with Sandbox(settings) as vm:
        return engine.measure_overhead(vm, repeat=repeat, size=size, settings=settings)


@analyze_app.command("overhead")
def analyze_overhead(
    ctx: typer.Context,
    repeat: Annotated[int, typer.Option("--repeat", min=1, max=50, help="measured rounds, after one warm-up")] = 3,
    size: Annotated[Size, typer.Option("--size", help="wakeup-latency size (see `bench list`)")] = "small",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the report JSON here")] = None,
    db: DbOpt = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="do not store the traced profile")] = False,
    vcpus: Annotated[int | None, typer.Option("--vcpus", min=1, help="guest CPUs (default: host cores)")] = None,
    memory: Annotated[int | None, typer.Option("--memory", min=256, help="guest memory in MiB")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure the tracer's cost: wakeup-latency run untraced and traced in one sandbox boot."""

    def go() -> None:
        with _status("measuring the tracer's overhead in the sandbox...", as_json):
            report = overhead_in_sandbox(_settings(vcpus, memory), repeat, size)
        stored = None if no_store else _store(_db_url(ctx, db), report.profile)
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(report.model_dump_json(indent=2) + "\n")
        if as_json:
            _emit(report.model_dump(mode="json"))
            return
        out.print(report.detail(), highlight=False)
        bpf = f"{report.bpf_cpu_pct:.2f}% of the CPUs" if report.bpf_cpu_pct is not None else "not measured"
        per_event = f", {report.bpf_ns_per_event:.0f} ns per event" if report.bpf_ns_per_event is not None else ""
        out.print(f"slowdown {report.slowdown:.3f}x (untraced rps / traced rps); tracer CPU {bpf}{per_event}")
        if stored:
            out.print(f"traced profile stored as {stored}")
        if output is not None:
            out.print(f"report written to {output}")

    _guarded(go)


def workloads_in_sandbox(
    settings: Settings, names: list[str], size: Size | None, progress: Callable[[Any], None]
) -> list[Any]:
    """One sandbox boot: every named benchmark workload profiled and its class checked."""
    import tempfile

    from schedcp.analysis.workloads import check_workloads
    from schedcp.sandbox import Sandbox

    with tempfile.TemporaryDirectory(prefix="schedcp-analyze-") as tmp, Sandbox(settings) as vm:
        return check_workloads(
            vm,
            where="sandbox",
            names=names,
            size=size,
            build_dir=Path(tmp),
            settings=settings,
            progress=progress,
        )


@analyze_app.command("workloads")
def analyze_workloads(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None, typer.Argument(help="benchmark workloads (default: all; see `bench list`)")
    ] = None,
    size: Annotated[Size | None, typer.Option("--size", help="workload size (default: each one's default)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the checks as JSON here")] = None,
    db: DbOpt = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="do not store the profiles")] = False,
    vcpus: Annotated[int | None, typer.Option("--vcpus", min=1, help="guest CPUs (default: host cores)")] = None,
    memory: Annotated[int | None, typer.Option("--memory", min=256, help="guest memory in MiB")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Profile the benchmark workloads in one sandbox boot and check each gets its declared class.

    Exit status: 0 if every workload got its declared class, 1 otherwise.
    """

    def go() -> None:
        url = None if no_store else _db_url(ctx, db)

        def progress(check: Any) -> None:
            if check.profile is not None and url is not None:
                _store(url, check.profile)
            if not as_json:
                verdict = "ok" if check.ok else f"MISMATCH (found {check.found or check.error})"
                err.print(f"{check.workload}: {check.declared} -> {verdict}", highlight=False)

        checks = workloads_in_sandbox(_settings(vcpus, memory), list(names or []), size, progress)
        data = [c.model_dump(mode="json") for c in checks]
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(json.dumps(data, indent=2) + "\n")
        if as_json:
            _emit(data)
        else:
            from schedcp.analysis.workloads import render_checks

            typer.echo(render_checks(checks))  # plain: a Markdown table must not be wrapped
        if not all(c.ok for c in checks):
            raise typer.Exit(1)

    _guarded(go)
