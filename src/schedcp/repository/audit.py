"""The audit log: one row per MCP tool call, what was asked and how it ended, newest first."""

from __future__ import annotations

import json
from typing import Any

from schedcp.models.audit import AuditEntry, AuditOutcome
from schedcp.repository.db import Tx, now


def record(tx: Tx, entry: AuditEntry) -> AuditEntry:
    """Store one call (its created_at is set now when empty); returns it with its id."""
    created = entry.created_at or now()
    rid = tx.scalar(
        "INSERT INTO audit_log(created_at, client, tool, arguments, outcome, error, duration_s) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            created,
            entry.client,
            entry.tool,
            json.dumps(entry.model_dump(mode="json", include={"arguments"})["arguments"], sort_keys=True),
            entry.outcome,
            entry.error,
            entry.duration_s,
        ),
    )
    return entry.model_copy(update={"id": int(rid), "created_at": created})


def entries(
    tx: Tx,
    limit: int,
    client: str | None = None,
    tool: str | None = None,
    outcome: AuditOutcome | None = None,
) -> list[AuditEntry]:
    """Newest first, at most `limit`; each filter given keeps the calls that match it exactly."""
    conditions: list[str] = []
    params: list[Any] = []
    for column, value in (("client", client), ("tool", tool), ("outcome", outcome)):
        if value is not None:
            conditions.append(f"{column} = ?")
            params.append(value)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = tx.execute(f"SELECT * FROM audit_log {where} ORDER BY id DESC LIMIT ?", (*params, limit))
    return [_entry(r) for r in rows]


def _entry(row: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        id=int(row["id"]),
        created_at=row["created_at"],
        client=row["client"],
        tool=row["tool"],
        arguments=json.loads(row["arguments"]),
        outcome=row["outcome"],
        error=row["error"],
        duration_s=float(row["duration_s"]),
    )
