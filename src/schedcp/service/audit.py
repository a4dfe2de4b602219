"""The audit log of MCP tool calls: the MCP server records every call, `schedcp audit` reads them.

Recording and reading go through here rather than straight to the repository so that both
interfaces use one API (the MCP server may not import the repository; docs/architecture.md).
The audit log needs no policy, so the repository is opened without importing the built-in
library: a record per tool call must stay cheap.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from schedcp.models.audit import AuditEntry, AuditOutcome
from schedcp.service.context import Context

__all__ = ["AuditEntry", "AuditLog", "AuditOutcome", "audit_log", "record_call"]


class AuditLog(BaseModel):
    """Recorded tool calls, newest first (`schedcp audit --json`)."""

    entries: list[AuditEntry] = Field(description="newest first, at most the limit asked for")


def record_call(ctx: Context, entry: AuditEntry) -> AuditEntry:
    """Keep one tool call in the repository; returns it with its id and time."""
    with ctx.repository(import_builtins=False) as repo:
        return repo.record_audit(entry)


def audit_log(
    ctx: Context,
    limit: int = 50,
    client: str | None = None,
    tool: str | None = None,
    outcome: AuditOutcome | None = None,
) -> AuditLog:
    """Newest first: every recorded call, or those of one client, tool and/or outcome."""
    with ctx.repository(import_builtins=False) as repo:
        return AuditLog(entries=repo.audit_log(limit=limit, client=client, tool=tool, outcome=outcome))
