"""`schedcp policy`: the repository (list, show, search, add, history, remove, export, import,
best), building a policy, and running a command under one in the sandbox."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from schedcp.cli.common import (
    PASSTHROUGH,
    CmdArg,
    CwdOpt,
    DbOpt,
    JsonOpt,
    MemOpt,
    SetOpt,
    ShareOpt,
    TimeoutOpt,
    VcpuOpt,
    emit_json,
    err,
    handles_errors,
    out,
    session,
)
from schedcp.service import PolicyRunReport, WorkloadQuery

policy_app = typer.Typer(no_args_is_help=True, help="Scheduler policies: list, build, run.")


@policy_app.callback()
def _policy(ctx: typer.Context, db: DbOpt = None) -> None:
    """Scheduler policies: the repository (versions, search, results), build, run."""
    ctx.obj = {**(ctx.obj or {}), "db": db}


def _db(ctx: typer.Context) -> str | None:
    url = (ctx.obj or {}).get("db")
    return str(url) if url else None


def interval(low: float | None, high: float | None) -> str:
    return f"[{low:.2f}, {high:.2f}]" if low is not None and high is not None else "-"


# -- the repository ---------------------------------------------------------------------------


@policy_app.command("list")
@handles_errors
def policy_list(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="include removed policies")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the policies in the repository (the built-in library is imported on first use)."""
    from schedcp.service import policies

    with session(db=_db(ctx), quiet=True) as sctx:
        result = policies.list_policies(sctx, include_removed=all_)
    if as_json:
        emit_json(result)
        return
    # Two lines a policy at any width: name, version, id and the classes it suits, then the
    # summary cut to the line (`policy show NAME` has all of it).
    for p in result.policies:
        head = Text()
        head.append(p.name, style="bold")
        head.append(f" {p.version}  {p.version_id[:8]}")
        if p.removed_at:
            head.append("  removed", style="red")
        head.append("  suits: " + (", ".join(p.workload_classes) or "-"), style="dim")
        out.print(head, no_wrap=True, overflow="ellipsis")
        out.print(Text("    " + p.summary), no_wrap=True, overflow="ellipsis")


@policy_app.command("show")
@handles_errors
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
    from schedcp.service import policies

    with session(db=_db(ctx), quiet=True) as sctx:
        v = policies.show_policy(sctx, ref, include_source=source, extract_to=extract)
    if as_json:
        emit_json(v)
        return
    if v.author is None:
        out.print(f"[bold]{v.name}[/] {v.version} (folder {v.path}, id {v.version_id[:12]})")
    else:
        state = "head" if v.is_head else "not the head"
        created = (v.created_at or "")[:19]
        out.print(
            f"[bold]{v.name}[/] {v.version} — {v.summary}\n"
            f"version {v.version_id} ({state}{', policy removed' if v.removed else ''})\n"
            f"author {v.author}, added {created}, parent {v.parent[:12] if v.parent else '-'}, from {v.origin}"
        )
    if v.description:
        out.print(v.description)
    if v.workload_classes or v.unsuited_classes:
        suits, unsuited = ", ".join(v.workload_classes) or "-", ", ".join(v.unsuited_classes) or "-"
        out.print(f"suits: {suits}; unsuited: {unsuited}")
    if v.tunables:
        out.print("[bold]tunables[/] (--set NAME=VALUE)")
    for key, t in v.tunables.items():
        out.print(f"  [bold]{key}[/] {t.type}, default {t.show(t.default)}; {t.accepts()}", highlight=False)
        out.print(Padding(t.description, (0, 0, 0, 4)), highlight=False)
    if v.verifications:
        out.print(
            "verification: "
            + ", ".join(f"{'passed' if r.passed else 'FAILED'} {r.created_at[:19]}" for r in v.verifications[:5])
        )
    if v.latest_verification is not None:
        out.print("[bold]latest verification report[/]")
        out.print(Padding(Text(v.latest_verification.render()), (0, 0, 0, 2)))
    if v.benchmarks:
        table = Table("workload (metric)", "gain", "95% interval", "verdict", "measured", box=None, pad_edge=False)
        for b in v.benchmarks:
            table.add_row(
                f"{b.workload} ({b.metric})",
                f"{b.gain:.2f}x",
                interval(b.gain_low, b.gain_high),
                b.verdict,
                b.measured_at[:10],
            )
        out.print("[bold]benchmarks[/] (gain over the default scheduler, > 1 is better)")
        out.print(Padding(table, (0, 0, 0, 2)))
    if v.extracted is not None:
        out.print(f"files written to {v.extracted}")
    if v.source is not None:
        sys.stdout.write(v.source)


@policy_app.command("add")
@handles_errors
def policy_add(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="a policy folder (or its policy.toml), or a folder of policy folders")],
    author: Annotated[
        Literal["user", "agent"], typer.Option("--author", help="user or agent (builtin is reserved for the library)")
    ] = "user",
    parent: Annotated[
        str | None,
        typer.Option("--parent", help="the version this derives from: an id prefix, NAME@VERSION, or 'head'"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Store policy folders as versions (all or nothing). A new version of an existing name needs --parent."""
    from schedcp.service import policies

    with session(db=_db(ctx), quiet=True) as sctx:
        result = policies.add_policies(sctx, path, author, parent)
    if as_json:
        emit_json(result)
        return
    for r in result.added:
        parent_txt = f", parent {r.parent[:12]}" if r.parent else ""
        new = " (new policy)" if r.new_policy else ""
        out.print(f"{r.name}@{r.version[:12]}: {r.status}{new}{parent_txt}")


@policy_app.command("search")
@handles_errors
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
    from schedcp.service import policies

    query = WorkloadQuery(text=text, classes=class_ or [], features=feature or [])
    with session(db=_db(ctx), quiet=True) as sctx:
        result = policies.search_policies(sctx, query, limit=limit)
    if as_json:
        emit_json(result)
        return
    if not result.hits:
        out.print("no policy matches; `schedcp policy list` shows them all")
        return
    table = Table("#", "policy", "score", "why")
    for h in result.hits:
        table.add_row(str(h.rank), f"{h.name} {h.label}", f"{h.score:.2f}", "\n".join(h.reasons))
    out.print(table)


@policy_app.command("history")
@handles_errors
def policy_history(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Every version of a policy (also a removed one) with its author, parent, results, and the events."""
    from schedcp.service import policies

    with session(db=_db(ctx), quiet=True) as sctx:
        hist = policies.policy_history(sctx, name)
    if as_json:
        emit_json(hist)
        return
    removed = f", removed {hist.removed_at[:19]}" if hist.removed_at else ""
    out.print(f"[bold]{hist.name}[/] created {hist.created_at[:19]}{removed}")
    table = Table("version", "id", "parent", "author", "added", "results", "verified", "", box=None, pad_edge=False)
    for v in hist.versions:
        verified = "-" if v.verified is None else "passed" if v.verified else "FAILED"
        table.add_row(
            v.label,
            v.id[:8],
            v.parent[:8] if v.parent else "-",
            v.author,
            v.created_at[:10],
            str(v.benchmarks),
            verified,
            "head" if v.is_head else "",
        )
    out.print(table)
    for e in hist.events:
        out.print(f"[dim]{e.created_at[:19]} {e.kind} {e.version[:12] if e.version else ''} {e.detail}[/]")


@policy_app.command("remove")
@handles_errors
def policy_remove(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Remove a policy from list and search; its versions, results and history are kept."""
    from schedcp.service import policies

    with session(db=_db(ctx), quiet=True) as sctx:
        result = policies.remove_policy(sctx, name)
    if as_json:
        emit_json(result)
        return
    out.print(f"removed {name} ({result.versions} versions kept; `schedcp policy history {name}`)")


@policy_app.command("export")
@handles_errors
def policy_export(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="archive to write (tar.gz)")],
    policy: Annotated[list[str] | None, typer.Option("--policy", help="only this policy (repeatable)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write policies with all their versions, results and history to one archive file."""
    from schedcp.service import policies

    with session(db=_db(ctx), quiet=True) as sctx:
        report = policies.export_policies(sctx, file, policy)
    if as_json:
        emit_json(report)
        return
    out.print(
        f"wrote {report.archive}: {report.policies} policies, {report.versions} versions, "
        f"{report.benchmarks} benchmark results, {report.verifications} verification reports "
        f"(sha256 {report.sha256[:16]}…)"
    )


@policy_app.command("import")
@handles_errors
def policy_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="archive written by `schedcp policy export`")],
    as_json: JsonOpt = False,
) -> None:
    """Import an archive: every hash is checked first, then all of it is written in one transaction."""
    from schedcp.service import policies

    with session(db=_db(ctx), quiet=True) as sctx:
        report = policies.import_policies(sctx, file)
    if as_json:
        emit_json(report)
        return
    out.print(
        f"imported {report.archive}: {len(report.policies_added)} new policies, {report.versions_added} new "
        f"versions ({report.versions_present} already stored), {report.benchmarks_added} benchmark results, "
        f"{report.verifications_added} verification reports"
    )
    if report.heads_kept:
        out.print(f"kept the local head of {', '.join(report.heads_kept)} (the archive's is not a descendant)")


@policy_app.command("best")
@handles_errors
def policy_best(
    ctx: typer.Context,
    class_: Annotated[str | None, typer.Option("--class", help="workload class")] = None,
    workload: Annotated[str | None, typer.Option("--workload", help="benchmark workload name")] = None,
    all_: Annotated[bool, typer.Option("--all", help="include removed policies")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 10,
    as_json: JsonOpt = False,
) -> None:
    """The best measured policies for a workload class or workload: significant gains first, by their lower bound."""
    from schedcp.service import policies

    with session(db=_db(ctx), quiet=True) as sctx:
        result = policies.best_policies(sctx, class_, workload, include_removed=all_, limit=limit)
    if as_json:
        emit_json(result)
        return
    if not result.ranking:
        out.print("no benchmark results recorded for that yet")
        return
    title = "gain over the default scheduler on each workload's primary metric (> 1 is better)"
    table = Table("#", "policy@version", "workload (metric)", "gain", "95% interval", "verdict", box=None, title=title)
    for e in result.ranking:
        measured = Text(f"{e.workload} ({e.metric})")
        if e.tunables:  # the values the result was measured with
            measured.append("\n" + ", ".join(f"{k}={v}" for k, v in e.tunables.items()), style="dim")
        table.add_row(
            str(e.rank),
            f"{e.policy}@{e.version[:8]}",
            measured,
            f"{e.gain:.2f}x",
            interval(e.gain_low, e.gain_high),
            e.verdict,
        )
    out.print(table)


# -- build and run ----------------------------------------------------------------------------


@policy_app.command("build")
@handles_errors
def policy_build(
    name: str,
    set_: SetOpt = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="folder for the object")] = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Compile a policy with its tunables into a loadable BPF object (no VM needed)."""
    from schedcp.service import policies
    from schedcp.service.common import parse_assignments

    with session(quiet=True) as sctx:
        built = policies.build_policy(sctx, name, dict(parse_assignments(set_)), output)
    if as_json:
        emit_json(built)
    else:
        out.print(f"built {built.object} (sha256 {built.sha256[:16]}…) with {built.tunables}")


@policy_app.command("run", context_settings=PASSTHROUGH)
@handles_errors
def policy_run(
    name: str,
    command: CmdArg,
    set_: SetOpt = None,
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
    from schedcp.service import runs
    from schedcp.service.common import parse_assignments

    request = runs.PolicyRunRequest(
        policy=name,
        command=command,
        tunables=dict(parse_assignments(set_)),
        timeout_s=timeout,
        shares=share or [],
        workdir=Path.cwd() if share_cwd else None,
    )
    with session(vcpus=vcpus, memory=memory, quiet=as_json) as sctx:
        result = runs.run_policy(sctx, request)
    report = result.report
    if as_json:
        emit_json(result)
    else:
        if report.command is not None:
            sys.stdout.write(report.command.stdout)
            sys.stderr.write(report.command.stderr)
        print_report(report, result.boot.boot_s)
    raise typer.Exit(result.exit_status)


def print_report(report: PolicyRunReport, boot_s: float) -> None:
    """What the kernel said about a policy run, on stderr (stdout is the command's)."""
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
        why = (report.exit_reason or "") + ("; " + "; ".join(report.exit_details) if report.exit_details else "")
        table.add_row("[red]EJECTED[/]", f"[red]{why}[/]")
    err.print(table)
