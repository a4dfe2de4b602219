"""Progress of a long operation, as every layer reports it.

A benchmark, a workload analysis or a verification runs for minutes in the emulated sandbox.
The capability doing the work reports each step as a `Progress`; the service layer passes it
to whoever called (the CLI draws a progress bar, the MCP server sends progress notifications)
and uses the same call as the point where a cancelled request stops.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, Field


class Progress(BaseModel):
    """One step of a long operation: what happened, and how far along it is when that is known."""

    message: str
    done: int | None = Field(None, ge=0, description="steps finished, counting this one")
    total: int | None = Field(None, ge=1, description="steps in all; None when unknown")


ProgressFn = Callable[[Progress], None]


def ignore_progress(_: Progress) -> None:
    """The default listener: nobody is watching."""
