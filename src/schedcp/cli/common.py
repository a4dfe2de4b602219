"""What every `schedcp` command shares: options, the error boundary, progress, JSON output.

A command parses its options, opens a `session` (the service Context with a progress display),
calls one service function, and renders the result: a table or text for people, or with
`--json` the result model exactly as the service returns it.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar

from schedcp.service import Context, Progress, SchedcpError

out = Console()
err = Console(stderr=True)
log = logging.getLogger("schedcp.cli")

P = ParamSpec("P")
R = TypeVar("R")

PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="repository database URL (sqlite:///abs/path.db or postgresql://...); "
        "default $SCHEDCP_DB, then `db_url` in the config, then SQLite in the data folder",
    ),
]
VcpuOpt = Annotated[int | None, typer.Option("--vcpus", min=1, help="guest CPUs (default: host cores)")]
MemOpt = Annotated[int | None, typer.Option("--memory", min=256, help="guest memory in MiB")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=1, help="seconds the command may run")]
ShareOpt = Annotated[list[Path] | None, typer.Option("--share", help="host folder the guest may write (repeatable)")]
CwdOpt = Annotated[
    bool,
    typer.Option(
        "--share-cwd/--no-share-cwd",
        help="share the current folder read-write with the guest and run the command there (default)",
    ),
]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="tunable NAME=VALUE (repeatable), e.g. slice_ns=5ms")]
CmdArg = Annotated[list[str], typer.Argument(help="the command to run, after --")]


def handles_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """The CLI boundary: our errors become a message and their exit code, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except SchedcpError as exc:
            err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from exc
        except OSError as exc:
            err.print(f"[bold red]error:[/] {exc}; check free space and permissions", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from exc
        except KeyboardInterrupt:
            err.print("interrupted; the sandbox was shut down")
            raise typer.Exit(130) from None

    return wrapper


class _Display:
    """Progress on stderr: a live bar on a terminal, plain lines otherwise, nothing with --json."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Bar | None = None
        self.task: TaskID | None = None

    def __call__(self, step: Progress) -> None:
        if self.quiet:
            return
        if self.bar is None:
            err.print(f"[dim]{step.message}[/]", highlight=False)
            return
        assert self.task is not None
        self.bar.update(self.task, description=step.message, completed=step.done or 0, total=step.total)

    @contextmanager
    def live(self) -> Iterator[None]:
        if self.quiet or not err.is_terminal:
            yield
            return
        columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
        with Bar(*columns, TimeElapsedColumn(), console=err, transient=True) as bar:
            self.bar, self.task = bar, bar.add_task("starting", total=None)
            try:
                yield
            finally:
                self.bar = None


@contextmanager
def session(
    db: str | None = None, vcpus: int | None = None, memory: int | None = None, quiet: bool = False
) -> Iterator[Context]:
    """The service Context for one command, with its progress shown while the block runs."""
    display = _Display(quiet)
    ctx = Context.create(db_url=db, vcpus=vcpus, memory_mb=memory, progress=display)
    with display.live():
        yield ctx


def emit_json(result: BaseModel | dict[str, Any] | list[Any]) -> None:
    """The result as JSON on stdout: the service's model, serialized by its own field names."""
    data = result.model_dump(mode="json", by_alias=True) if isinstance(result, BaseModel) else result
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


_DURATION = re.compile(r"^\s*(?P<value>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """'10s', '500ms', '2m', '1h' or a bare number of seconds -> seconds (> 0)."""
    m = _DURATION.match(text)
    if not m:
        raise typer.BadParameter(f"{text!r} is not a duration; use e.g. 10s, 500ms, 2m")
    value = float(m["value"]) * _UNIT_S[m["unit"] or "s"]
    if value <= 0:
        raise typer.BadParameter(f"{text!r}: the duration must be more than 0")
    return value
