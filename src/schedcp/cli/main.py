"""`schedcp` command line: a thin adapter over the service API; `--json` everywhere."""

from __future__ import annotations

import json
import logging
import statistics
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from schedcp import __version__
from schedcp.cli.analyze import analyze_app
from schedcp.config import Settings, load_settings
from schedcp.errors import SchedcpError
from schedcp.models.vocabulary import Size

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="schedcp: profile workloads, verify sched_ext policies, run them safely.",
)
sandbox_app = typer.Typer(no_args_is_help=True, help="The sched_ext sandbox VM.")
policy_app = typer.Typer(no_args_is_help=True, help="Scheduler policies: list, build, run.")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(policy_app, name="policy")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks: real workloads, A/B against the default scheduler.")
app.add_typer(bench_app, name="bench")
app.add_typer(analyze_app, name="analyze")

err = Console(stderr=True)
out = Console()
T = TypeVar("T")

EXIT_EJECTED = 3
EXIT_TIMEOUT = 124
PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=1, help="seconds the command may run")]
VcpuOpt = Annotated[int | None, typer.Option("--vcpus", min=1, help="guest CPUs (default: host cores)")]
MemOpt = Annotated[int | None, typer.Option("--memory", min=256, help="guest memory in MiB")]
ShareOpt = Annotated[list[Path] | None, typer.Option("--share", help="host folder the guest may write (repeatable)")]
CmdArg = Annotated[list[str], typer.Argument(help="the command to run, after --")]
CwdOpt = Annotated[
    bool,
    typer.Option(
        "--share-cwd/--no-share-cwd",
        help="share the current folder read-write with the guest and run the command there (default)",
    ),
]


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="log progress to stderr")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _settings(vcpus: int | None = None, memory: int | None = None) -> Settings:
    settings = load_settings()
    if vcpus is not None:
        settings.sandbox.vcpus = vcpus
    if memory is not None:
        settings.sandbox.memory_mb = memory
    return settings


def _guarded(fn: Callable[[], T]) -> T:
    """The CLI boundary: our errors become a message and exit 1, never a traceback."""
    try:
        return fn()
    except SchedcpError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from exc
    except OSError as exc:
        err.print(f"[bold red]error:[/] {exc}; check free space and permissions", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        err.print("interrupted; the sandbox was shut down")
        raise typer.Exit(130) from None


@contextmanager
def _status(text: str, quiet: bool) -> Iterator[None]:
    if quiet or not err.is_terminal:
        yield
        return
    with err.status(text):
        yield


def _emit_json(obj: BaseModel | dict[str, Any]) -> None:
    data = obj.model_dump(mode="json") if isinstance(obj, BaseModel) else obj
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _shares_and_cwd(share: list[Path] | None, share_cwd: bool) -> tuple[list[Path], Path | None]:
    """The folders the guest may write, and where the command runs: the current folder by default,
    as a container run with the project mounted would (the rest of the host is read-only)."""
    shares = [p.resolve() for p in share or []]
    cwd = Path.cwd().resolve()
    if not share_cwd or cwd == Path("/"):
        return shares, None
    return [*shares, cwd], cwd


def _parse_sets(sets: list[str] | None) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for item in sets or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SchedcpError(f"--set takes NAME=VALUE, got {item!r}")
        parsed[key.strip()] = value
    return parsed


@app.command()
def version() -> None:
    """Print schedcp's version."""
    out.print(__version__)


# -- sandbox ------------------------------------------------------------------------------


@sandbox_app.command("run", context_settings=PASSTHROUGH)
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
    from schedcp.sandbox import run_once

    def go() -> None:
        settings = _settings(vcpus, memory)
        with _status("booting the sched_ext sandbox...", as_json):
            shares, cwd = _shares_and_cwd(share, share_cwd)
            result, info = run_once(command, settings=settings, timeout=timeout, shares=shares, cwd=cwd)
        if as_json:
            _emit_json({"boot": info.model_dump(), "result": result.model_dump()})
        else:
            sys.stdout.write(result.stdout)
            sys.stderr.write(result.stderr)
            err.print(
                f"[dim]sandbox: kernel {info.kernel}, {info.accel}, {info.vcpus} vCPUs, "
                f"boot {info.boot_s:.1f} s, "
                f"command {result.duration_s:.2f} s, exit {result.rc}[/]"
            )
        if result.timed_out:
            err.print(f"[red]the command timed out after {timeout:g} s and was killed[/]")
            raise typer.Exit(EXIT_TIMEOUT)
        raise typer.Exit(result.rc if 0 <= result.rc < 256 else 1)

    _guarded(go)


@sandbox_app.command("info")
def sandbox_info(as_json: JsonOpt = False) -> None:
    """Show what the sandbox would boot: kernel, accelerator, QEMU; fails with advice if setup is missing."""
    from schedcp.sandbox.kernel import find_kernel
    from schedcp.sandbox.qemu import choose_accel, qemu_version

    def go() -> None:
        settings = load_settings()
        kernel = find_kernel(settings.kernels_dir, settings.sandbox.kernel)
        major, minor = qemu_version(settings.sandbox.qemu)
        info = {
            "kernel": kernel.release,
            "kernel_dir": str(kernel.root),
            "accel": choose_accel(settings.sandbox.accel),
            "qemu": f"{major}.{minor}",
            "vcpus": settings.sandbox.vcpus,
            "memory_mb": settings.sandbox.memory_mb,
            "sched_ext": kernel.config().get("CONFIG_SCHED_CLASS_EXT") == "y",
        }
        if as_json:
            _emit_json(info)
        else:
            for k, v in info.items():
                out.print(f"{k:>10}: {v}")

    _guarded(go)


# -- policies -----------------------------------------------------------------------------


DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="policy repository database URL (sqlite:///abs/path.db or postgresql://...); "
        "default $SCHEDCP_DB, then `db_url` in the config, then SQLite in the data folder",
    ),
]


@policy_app.callback()
def _policy(ctx: typer.Context, db: DbOpt = None) -> None:
    """Scheduler policies: the repository (versions, search, results), build, run."""
    ctx.obj = {**(ctx.obj or {}), "db": db}


def _db_url(ctx: typer.Context) -> str:
    url = (ctx.obj or {}).get("db")
    return str(url) if url else load_settings().repository_url


def _is_path(ref: str) -> bool:
    return "/" in ref or Path(ref).is_dir()


@policy_app.command("list")
def policy_list(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="include removed policies")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the policies in the repository (the built-in library is imported on first use)."""
    from schedcp.repository import open_repository

    def go() -> None:
        with open_repository(_db_url(ctx)) as repo:
            records = repo.list_policies(include_removed=all_)
        if as_json:
            _emit_json(
                {
                    "policies": [
                        {
                            **r.spec.model_dump(),
                            "version_id": r.head,
                            "author": r.author,
                            "versions": r.versions,
                            "origin": r.origin,
                            "updated_at": r.updated_at,
                            "removed_at": r.removed_at,
                        }
                        for r in records
                    ]
                }
            )
            return
        table = Table("name", "version", "id", "author", "summary", "suits")
        for r in records:
            name = r.name + (" [red](removed)[/]" if r.removed_at else "")
            table.add_row(name, r.label, r.head[:12], r.author, r.summary, ", ".join(r.workload_classes))
        out.print(table)

    _guarded(go)


@policy_app.command("show")
def policy_show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME[@VERSION]|DIR", help="a stored policy or a policy folder")],
    source: Annotated[bool, typer.Option("--source", help="also print the BPF C source")] = False,
    extract: Annotated[
        Path | None, typer.Option("--extract", help="write the version's files into DIR/<name>/ (to rebuild it)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one policy version: metadata, tunables, verification reports and benchmark results.

    VERSION is an id prefix (6+ hex digits) or the policy.toml version; a folder is read from disk.
    """
    from schedcp.bpf.policy import find_policy
    from schedcp.repository import open_repository
    from schedcp.repository.content import read_policy

    def go() -> None:
        if _is_path(ref):
            content = read_policy(find_policy(ref).path)
            if as_json:
                _emit_json({"path": content.origin, **content.spec.model_dump(), "version_id": content.id})
                return
            out.print(f"[bold]{content.name}[/] {content.spec.version} (folder {content.origin}, id {content.id[:12]})")
            _print_spec(content.spec, content.source if source else None)
            return
        with open_repository(_db_url(ctx)) as repo:
            v = repo.resolve(ref)
            benchmarks = repo.benchmarks(version=v.id)
            verifications = repo.verifications(v.id)
            folder = repo.checkout(v.ref, extract) if extract is not None else None
        if as_json:
            _emit_json(
                {
                    "path": v.origin if Path(v.origin).is_dir() else None,
                    **v.spec.model_dump(),
                    "version_id": v.id,
                    "parent": v.parent,
                    "author": v.author,
                    "created_at": v.created_at,
                    "docs_updated_at": v.docs_updated_at,
                    "origin": v.origin,
                    "is_head": v.is_head,
                    "removed": v.removed,
                    "extracted": str(folder) if folder else None,
                    "verifications": [r.model_dump(mode="json", exclude={"report"}) for r in verifications],
                    "benchmarks": [b.model_dump(mode="json") for b in benchmarks],
                }
            )
            return
        state = "head" if v.is_head else "not the head"
        out.print(
            f"[bold]{v.policy}[/] {v.label} — {v.spec.summary}\n"
            f"version {v.id} ({state}{', policy removed' if v.removed else ''})\n"
            f"author {v.author}, added {v.created_at[:19]}, parent {v.parent[:12] if v.parent else '-'}, "
            f"from {v.origin}"
        )
        _print_spec(v.spec, v.source if source else None)
        if verifications:
            out.print(
                "verification: "
                + ", ".join(f"{'passed' if r.passed else 'FAILED'} {r.created_at[:19]}" for r in verifications[:5])
            )
        if benchmarks:
            table = Table("workload", "class", "metric", "gain", "95% interval", "verdict", "measured")
            for b in benchmarks:
                table.add_row(
                    b.workload,
                    b.workload_class,
                    b.metric,
                    f"{b.gain:.3f}x",
                    _interval(b.gain_low, b.gain_high),
                    b.verdict,
                    b.measured_at[:19],
                )
            out.print(table)
        if folder is not None:
            out.print(f"files written to {folder}")

    _guarded(go)


def _interval(low: float | None, high: float | None) -> str:
    return f"[{low:.3f}, {high:.3f}]" if low is not None and high is not None else "-"


def _print_spec(spec: Any, source: str | None) -> None:
    if spec.description:
        out.print(spec.description)
    if spec.workload_classes or spec.unsuited_classes:
        out.print(
            f"suits: {', '.join(spec.workload_classes) or '-'}; unsuited: {', '.join(spec.unsuited_classes) or '-'}"
        )
    table = Table("tunable", "type", "default", "range", "unit", "description")
    for key, t in spec.tunables.items():
        table.add_row(key, t.type, str(t.default), f"[{t.min}, {t.max}]", t.unit or "", t.description)
    out.print(table)
    if source is not None:
        sys.stdout.write(source)


@policy_app.command("add")
def policy_add(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="a policy folder (or its policy.toml), or a folder of policy folders")],
    author: Annotated[str, typer.Option("--author", help="user or agent")] = "user",
    parent: Annotated[
        str | None,
        typer.Option("--parent", help="the version this derives from: an id prefix, NAME@VERSION, or 'head'"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Store policy folders as versions (all or nothing). A new version of an existing name needs --parent."""
    from schedcp.repository import open_repository

    def go() -> None:
        if author not in ("user", "agent"):
            raise SchedcpError(f"--author is user or agent, not {author!r} (builtin is reserved for the library)")
        with open_repository(_db_url(ctx)) as repo:
            results = repo.add_path(path, "agent" if author == "agent" else "user", parent)
        if as_json:
            _emit_json({"added": [r.model_dump() for r in results]})
            return
        for r in results:
            parent_txt = f", parent {r.parent[:12]}" if r.parent else ""
            new = " (new policy)" if r.new_policy else ""
            out.print(f"{r.name}@{r.version[:12]}: {r.status}{new}{parent_txt}")

    _guarded(go)


@policy_app.command("search")
def policy_search(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="what the workload needs, in words")] = "",
    class_: Annotated[
        list[str] | None, typer.Option("--class", help="workload class from a profile (repeatable)")
    ] = None,
    feature: Annotated[list[str] | None, typer.Option("--feature", help="profile feature (repeatable)")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="at most this many hits")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Rank the policies for a workload: full text over name, classes, summary and README, plus class fit."""
    from schedcp.repository import WorkloadQuery, open_repository

    def go() -> None:
        query = WorkloadQuery(text=text, classes=class_ or [], features=feature or [])
        with open_repository(_db_url(ctx)) as repo:
            hits = repo.search(query, limit=limit)
        if as_json:
            _emit_json({"query": query.model_dump(), "hits": [h.model_dump() for h in hits]})
            return
        if not hits:
            out.print("no policy matches; `schedcp policy list` shows them all")
            return
        table = Table("#", "policy", "score", "suits", "why")
        for h in hits:
            table.add_row(
                str(h.rank),
                f"{h.name} {h.label}",
                f"{h.score:.2f}",
                ", ".join(h.workload_classes),
                "\n".join(h.reasons),
            )
        out.print(table)

    _guarded(go)


@policy_app.command("history")
def policy_history(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Every version of a policy (also a removed one) with its author, parent, results, and the events."""
    from schedcp.repository import open_repository

    def go() -> None:
        with open_repository(_db_url(ctx)) as repo:
            hist = repo.history(name)
        if as_json:
            _emit_json(hist)
            return
        removed = f", removed {hist.removed_at[:19]}" if hist.removed_at else ""
        out.print(f"[bold]{hist.name}[/] created {hist.created_at[:19]}{removed}")
        table = Table("version", "id", "parent", "author", "added", "benchmarks", "verified", "")
        for v in hist.versions:
            verified = "-" if v.verified is None else "passed" if v.verified else "FAILED"
            table.add_row(
                v.label,
                v.id[:12],
                v.parent[:12] if v.parent else "-",
                v.author,
                v.created_at[:19],
                str(v.benchmarks),
                verified,
                "head" if v.is_head else "",
            )
        out.print(table)
        for e in hist.events:
            out.print(f"[dim]{e.created_at[:19]} {e.kind} {e.version[:12] if e.version else ''} {e.detail}[/]")

    _guarded(go)


@policy_app.command("remove")
def policy_remove(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Remove a policy from list and search; its versions, results and history are kept."""
    from schedcp.repository import open_repository

    def go() -> None:
        with open_repository(_db_url(ctx)) as repo:
            hist = repo.remove(name)
        if as_json:
            _emit_json({"removed": name, "removed_at": hist.removed_at, "versions": len(hist.versions)})
            return
        out.print(f"removed {name} ({len(hist.versions)} versions kept; `schedcp policy history {name}`)")

    _guarded(go)


@policy_app.command("export")
def policy_export(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="archive to write (tar.gz)")],
    policy: Annotated[list[str] | None, typer.Option("--policy", help="only this policy (repeatable)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write policies with all their versions, results and history to one archive file."""
    from schedcp.repository import open_repository

    def go() -> None:
        with open_repository(_db_url(ctx)) as repo:
            report = repo.export(file, policy)
        if as_json:
            _emit_json(report)
            return
        out.print(
            f"wrote {report.archive}: {report.policies} policies, {report.versions} versions, "
            f"{report.benchmarks} benchmark results, {report.verifications} verification reports "
            f"(sha256 {report.sha256[:16]}…)"
        )

    _guarded(go)


@policy_app.command("import")
def policy_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="archive written by `schedcp policy export`")],
    as_json: JsonOpt = False,
) -> None:
    """Import an archive: every hash is checked first, then all of it is written in one transaction."""
    from schedcp.repository import open_repository

    def go() -> None:
        with open_repository(_db_url(ctx)) as repo:
            report = repo.import_(file)
        if as_json:
            _emit_json(report)
            return
        out.print(
            f"imported {report.archive}: {len(report.policies_added)} new policies, {report.versions_added} new "
            f"versions ({report.versions_present} already stored), {report.benchmarks_added} benchmark results, "
            f"{report.verifications_added} verification reports"
        )
        if report.heads_kept:
            out.print(f"kept the local head of {', '.join(report.heads_kept)} (the archive's is not a descendant)")

    _guarded(go)


@policy_app.command("best")
def policy_best(
    ctx: typer.Context,
    class_: Annotated[str | None, typer.Option("--class", help="workload class")] = None,
    workload: Annotated[str | None, typer.Option("--workload", help="benchmark workload name")] = None,
    all_: Annotated[bool, typer.Option("--all", help="include removed policies")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 10,
    as_json: JsonOpt = False,
) -> None:
    """The best measured policies for a workload class or workload: significant gains first, by their lower bound."""
    from schedcp.repository import open_repository

    def go() -> None:
        with open_repository(_db_url(ctx)) as repo:
            entries = repo.best_for(workload_class=class_, workload=workload, include_removed=all_, limit=limit)
        if as_json:
            _emit_json({"workload_class": class_, "workload": workload, "ranking": [e.model_dump() for e in entries]})
            return
        if not entries:
            out.print("no benchmark results recorded for that yet")
            return
        table = Table(title="gain over the default scheduler on each workload's primary metric (> 1 is better)")
        table.add_column("#")
        table.add_column("policy", no_wrap=True)
        table.add_column("version", no_wrap=True)
        if any(e.tunables for e in entries):
            table.add_column("tunables")
        for col in ("workload", "metric", "gain", "95% interval", "verdict", "runs"):
            table.add_column(col)
        for e in entries:
            row = [str(e.rank), e.policy, e.version[:8]]
            if any(x.tunables for x in entries):
                row.append(", ".join(f"{k}={v}" for k, v in e.tunables.items()) or "defaults")
            row += [e.workload, e.metric, f"{e.gain:.3f}x", _interval(e.gain_low, e.gain_high), e.verdict]
            table.add_row(*row, str(e.results))
        out.print(table)

    _guarded(go)


@policy_app.command("build")
def policy_build(
    name: str,
    set_: Annotated[list[str] | None, typer.Option("--set", help="tunable NAME=VALUE (repeatable)")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="folder for the object")] = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Compile a policy with its tunables into a loadable BPF object (no VM needed)."""
    from schedcp.bpf.build import build_policy
    from schedcp.bpf.policy import find_policy
    from schedcp.sandbox.kernel import find_kernel

    def go() -> None:
        settings = load_settings()
        policy = find_policy(name)
        kernel = find_kernel(settings.kernels_dir, settings.sandbox.kernel)
        built = build_policy(policy, policy.resolve_tunables(_parse_sets(set_)), kernel, settings.cache_dir, output)
        info = {
            "policy": built.name,
            "object": str(built.obj),
            "sha256": built.sha256,
            "tunables": built.tunables,
        }
        if as_json:
            _emit_json(info)
        else:
            out.print(f"built {built.obj} (sha256 {built.sha256[:16]}…) with {built.tunables}")

    _guarded(go)


@policy_app.command("run", context_settings=PASSTHROUGH)
def policy_run(
    name: str,
    command: CmdArg,
    set_: Annotated[list[str] | None, typer.Option("--set", help="tunable NAME=VALUE (repeatable)")] = None,
    timeout: TimeoutOpt = 600.0,
    vcpus: VcpuOpt = None,
    memory: MemOpt = None,
    share: ShareOpt = None,
    share_cwd: CwdOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Run COMMAND in the sandbox under policy NAME (a built-in name or a policy folder).

    Exit status: the command's, 3 if the kernel ejected the policy, 124 if the command timed out.
    """
    from schedcp.runtime.session import run_policy_in_sandbox

    def go() -> None:
        settings = _settings(vcpus, memory)
        with _status(f"building {name}, booting the sandbox, running under {name}...", as_json):
            shares, cwd = _shares_and_cwd(share, share_cwd)
            report, info = run_policy_in_sandbox(name, command, _parse_sets(set_), timeout, settings, shares, cwd)
        if as_json:
            _emit_json({"boot": info.model_dump(), "report": report.model_dump(mode="json")})
        else:
            if report.command is not None:
                sys.stdout.write(report.command.stdout)
                sys.stderr.write(report.command.stderr)
            _print_report(report, info.boot_s)
        if report.ejected:
            raise typer.Exit(EXIT_EJECTED)
        if report.command is not None and report.command.timed_out:
            raise typer.Exit(EXIT_TIMEOUT)
        rc = report.command.rc if report.command is not None else 1
        raise typer.Exit(rc if 0 <= rc < 256 else 1)

    _guarded(go)


@app.command()
def demo(
    policy: Annotated[str, typer.Option(help="built-in policy to compare with the default scheduler")] = "fifo",
    rounds: Annotated[int, typer.Option(min=1, max=20, help="measured runs of each scheduler")] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Boot the sandbox and run perf's messaging benchmark under EEVDF and under POLICY, alternating."""
    from schedcp.demo import run_demo

    def go() -> None:
        result = run_demo(
            policy, rounds, progress=(lambda _m: None) if as_json else (lambda m: err.print(f"[dim]{m}[/]"))
        )
        if as_json:
            _emit_json(result)
            return
        _print_report(result.last_report, result.boot.boot_s)
        table = Table(title="perf bench sched messaging (seconds, lower is better)")
        table.add_column("scheduler")
        table.add_column("runs")
        table.add_column("median", justify="right")
        table.add_row(
            "EEVDF (default)",
            " ".join(f"{x:.3f}" for x in result.baseline_s),
            f"{statistics.median(result.baseline_s):.3f}",
        )
        table.add_row(
            result.policy,
            " ".join(f"{x:.3f}" for x in result.policy_s),
            f"{statistics.median(result.policy_s):.3f}",
        )
        out.print(table)
        out.print(
            f"[bold]{result.policy}: {result.speedup:.2f}x[/] the default scheduler's speed on this workload "
            f"(ratio of medians, {len(result.policy_s)} runs each, same boot; emulated sandbox, so only the "
            "ratio is meaningful)"
        )

    _guarded(go)


# -- benchmarks ---------------------------------------------------------------------------


@bench_app.command("list")
def bench_list(as_json: JsonOpt = False) -> None:
    """List the workloads with their metrics and what "better" means for each."""
    from schedcp.bench.registry import all_workloads

    def go() -> None:
        workloads = all_workloads()
        if as_json:
            _emit_json({"workloads": [w.info.model_dump() for w in workloads.values()]})
            return
        table = Table("workload", "class", "metrics (primary first)", "sizes", "summary")
        for w in workloads.values():
            ordered = sorted(w.info.metrics, key=lambda m: m.name != w.info.primary)
            metrics = "\n".join(f"{m.name} [{m.unit}] {m.better} is better" for m in ordered)
            sizes = ", ".join(s + (" (default)" if s == w.info.default_size else "") for s in w.info.sizes)
            table.add_row(w.info.name, w.info.workload_class, metrics, sizes, w.info.summary)
        out.print(table)

    _guarded(go)


@bench_app.command("run")
def bench_run(
    workload: str,
    policy: Annotated[str | None, typer.Option("--policy", help="candidate policy (name or folder)")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="candidate tunable NAME=VALUE (repeatable)")] = None,
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
    from schedcp.bench.service import bench_in_sandbox

    def go() -> None:
        settings = _settings(vcpus, memory)
        progress = (lambda _m: None) if as_json else (lambda m: err.print(f"[dim]{m}[/]"))
        outcome = bench_in_sandbox(
            workload, policy, _parse_sets(set_), baseline, repeat, size, settings, output, plot, progress
        )
        result, json_path, png = outcome.result, outcome.json_path, outcome.plot_path
        if as_json:
            paths = {"json": str(json_path), "plot": str(png) if png else None}
            _emit_json(
                {"result": result.model_dump(mode="json"), **paths, "recorded_version": outcome.recorded_version}
            )
            return
        _print_bench(result)
        out.print(f"result: {json_path}" + (f"\nplot:   {png}" if png else ""))
        if outcome.recorded_version:
            out.print(f"recorded in the repository for {policy}@{outcome.recorded_version[:12]}")

    _guarded(go)


@bench_app.command("suite")
def bench_suite(
    policy: Annotated[str, typer.Option("--policy", help="candidate policy (name or folder)")],
    workload: Annotated[
        list[str] | None, typer.Option("--workload", "-w", help="workload (repeatable; default all)")
    ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="candidate tunable NAME=VALUE (repeatable)")] = None,
    repeat: Annotated[int, typer.Option(min=1, max=100, help="measured runs a side, after one warm-up")] = 3,
    size: Annotated[Size | None, typer.Option(help="size for every workload (default: each one's default)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="folder for the results")] = None,
    vcpus: VcpuOpt = None,
    memory: MemOpt = None,
) -> None:
    """Default vs POLICY on every workload (or those given) in one sandbox boot; writes JSON, PNGs, summary.md."""
    from schedcp.bench.service import suite_in_sandbox, summary_markdown

    def go() -> None:
        results, folder = suite_in_sandbox(
            policy,
            workload,
            _parse_sets(set_),
            repeat,
            size,
            _settings(vcpus, memory),
            output,
            lambda m: err.print(f"[dim]{m}[/]"),
        )
        out.print(summary_markdown(results))
        out.print(f"results: {folder}")

    _guarded(go)


def _print_bench(result: Any) -> None:
    cand = result.candidate.name if result.candidate else None
    title = f"{result.workload.name} ({result.size}): {result.baseline.name}" + (f" vs {cand}" if cand else "")
    table = Table(title=title + f", {result.repeat} runs a side")
    for col in ("metric", "better", f"{result.baseline.name} median [min-max]"):
        table.add_column(col)
    if cand:
        for col in (f"{cand} median [min-max]", "ratio", "95% CI", "verdict"):
            table.add_column(col)
    for m in result.metrics:
        row = [f"{m.name} ({m.unit})", m.better, f"{m.baseline.median:.4g} [{m.baseline.min:.4g}-{m.baseline.max:.4g}]"]
        if m.candidate is not None and m.comparison is not None:
            c = m.comparison
            ci = f"[{c.ci_low:.3f}, {c.ci_high:.3f}]" if c.ci_low is not None and c.ci_high is not None else "-"
            color = {"better": "green", "worse": "red"}.get(c.verdict, "yellow")
            row += [
                f"{m.candidate.median:.4g} [{m.candidate.min:.4g}-{m.candidate.max:.4g}]",
                f"{c.ratio:.3f}",
                ci,
                f"[{color}]{c.verdict}[/]",
            ]
        table.add_row(*row)
    out.print(table)
    if result.note:
        out.print(f"[dim]{result.note}[/]")


def _print_report(report: Any, boot_s: float) -> None:
    table = Table(title=f"policy {report.policy}", show_header=False)
    table.add_row("object", report.object_sha256[:16] + "…")
    table.add_row("tunables", ", ".join(f"{k}={v}" for k, v in report.loaded_tunables.items()) or "-")
    table.add_row("boot / load", f"{boot_s:.1f} s / {report.load_s:.2f} s")
    table.add_row("after load", f"{report.state_after_load} ({report.ops_after_load or 'no scheduler'})")
    if report.command is not None:
        table.add_row(
            "command",
            f"exit {report.command.rc} in {report.command.duration_s:.2f} s"
            + (" (timed out)" if report.command.timed_out else ""),
        )
        table.add_row("after run", f"{report.state_after_run} ({report.ops_after_run or 'no scheduler'})")
    table.add_row("stats", ", ".join(f"{k}={v}" for k, v in report.stats.items()) or "-")
    table.add_row("detached", "yes" if report.detached else "NO")
    if report.ejected:
        why = report.exit_reason + ("; " + "; ".join(report.exit_details) if report.exit_details else "")
        table.add_row("[red]EJECTED[/]", f"[red]{why}[/]")
    err.print(table)


def main() -> None:
    app()
