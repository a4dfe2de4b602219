"""Deployment events: the fleet's record of who ran which scheduler where, and why it changed."""

from __future__ import annotations

import json
from typing import Any

from schedcp.models.deployment import DeploymentEvent
from schedcp.repository.db import Tx, now


def record_event(tx: Tx, event: DeploymentEvent) -> DeploymentEvent:
    """Store one event (its created_at is set now when empty); returns it with its id."""
    created = event.created_at or now()
    rid = tx.scalar(
        "INSERT INTO deployment_events(kind, host, kernel, policy, version_id, tunables, object_sha256, "
        "reason, evidence, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            event.kind,
            event.host,
            event.kernel,
            event.policy,
            event.version_id,
            json.dumps(event.tunables, sort_keys=True),
            event.object_sha256,
            event.reason,
            json.dumps(event.evidence),
            created,
        ),
    )
    return event.model_copy(update={"id": int(rid), "created_at": created})


def history(tx: Tx, host: str | None, limit: int) -> list[DeploymentEvent]:
    """Newest first; one host's events, or every host's when `host` is None."""
    where, params = ("WHERE host = ?", (host,)) if host is not None else ("", ())
    rows = tx.execute(f"SELECT * FROM deployment_events {where} ORDER BY id DESC LIMIT ?", (*params, limit))
    return [_event(r) for r in rows]


def _event(row: dict[str, Any]) -> DeploymentEvent:
    return DeploymentEvent(
        id=int(row["id"]),
        kind=row["kind"],
        host=row["host"],
        kernel=row["kernel"],
        policy=row["policy"],
        version_id=row["version_id"],
        tunables=json.loads(row["tunables"]),
        object_sha256=row["object_sha256"],
        reason=row["reason"],
        evidence=json.loads(row["evidence"]),
        created_at=row["created_at"],
    )
