"""`schedcp audit`: the MCP server's log of tool calls, newest first, from the repository."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.text import Text

from schedcp.cli.common import DbOpt, JsonOpt, emit_json, handles_errors, out, session
from schedcp.service.audit import AuditOutcome

# Widest a client or tool name is shown; longer names are cut (--json has everything whole).
NAME_CHARS = 20
# The arguments are cut here even on a wide terminal: enough to recognise a call.
ARGUMENTS_CHARS = 60


def _shorten(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _arguments(arguments: dict[str, Any]) -> str:
    """`name=value, ...` on one line, strings unquoted, cut to ARGUMENTS_CHARS."""
    text = ", ".join(
        f"{k}={v if isinstance(v, str) else json.dumps(v, separators=(',', ':'))}" for k, v in arguments.items()
    )
    return _shorten(" ".join(text.split()), ARGUMENTS_CHARS)


@handles_errors
def audit(
    limit: Annotated[int, typer.Option("--limit", min=1, help="calls to show")] = 50,
    client: Annotated[str | None, typer.Option("--client", help="only the calls of this MCP client")] = None,
    tool: Annotated[str | None, typer.Option("--tool", help="only the calls of this tool")] = None,
    outcome: Annotated[AuditOutcome | None, typer.Option("--outcome", help="only the calls that ended so")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The MCP tool calls recorded in the repository, newest first: who called which tool, with
    which arguments (policy source as its sha256), how it ended and how long it took."""
    from schedcp.service import audit as service

    with session(db=db, quiet=True) as ctx:
        result = service.audit_log(ctx, limit=limit, client=client, tool=tool, outcome=outcome)
    if as_json:
        emit_json(result)
        return
    if not result.entries:
        wanted = ", ".join(f"{k} {v}" for k, v in (("client", client), ("tool", tool), ("outcome", outcome)) if v)
        out.print("no tool calls recorded" + (f" with {wanted}" if wanted else ""), highlight=False, markup=False)
        return
    # One line a call at any width, as `history` does, and the error's first line under a call
    # that failed: aligned columns, the arguments cut to what is left of the line. Text, never
    # markup: arguments and errors may hold [brackets].
    wc = min(NAME_CHARS, max(len("client"), *(len(e.client) for e in result.entries)))
    wt = min(NAME_CHARS, max(len("tool"), *(len(e.tool) for e in result.entries)))
    header = f"{'time':19}  {'client':{wc}}  {'tool':{wt}}  {'outcome':9}  {'duration':>8}  arguments"
    out.print(Text(header, style="bold"), no_wrap=True, overflow="ellipsis")
    for e in result.entries:
        line = Text(f"{e.created_at[:19].replace('T', ' '):19}  ")
        line.append(f"{_shorten(e.client, wc):{wc}}  {_shorten(e.tool, wt):{wt}}  ")
        line.append(f"{e.outcome:9}", style="" if e.outcome == "ok" else "bold red")
        line.append(f"  {_duration(e.duration_s):>8}  {_arguments(e.arguments)}")
        out.print(line, no_wrap=True, overflow="ellipsis")
        if e.error:
            out.print(Text(f"    error: {e.error.splitlines()[0]}", style="dim"), no_wrap=True, overflow="ellipsis")
