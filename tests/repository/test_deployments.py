"""Deployment events: every host's changes kept in one repository, newest first, per host or all."""

from __future__ import annotations

import pytest

from schedcp.models.deployment import DeploymentEvent
from schedcp.repository import PolicyRepository, open_repository


def _event(host: str, kind: str = "deploy", policy: str | None = "vtime", **kw: object) -> DeploymentEvent:
    return DeploymentEvent.model_validate({"kind": kind, "host": host, "kernel": "7.3.4", "policy": policy, **kw})


def test_events_round_trip_and_filter_by_host(repo: PolicyRepository) -> None:
    first = repo.record_deployment(
        _event("a", tunables={"slice_ns": 5_000_000, "direct_idle": True}, version_id="v1", evidence=["attached"])
    )
    assert first.id is not None
    assert first.created_at
    repo.record_deployment(_event("b", kind="refused", reason="canary", evidence=["no passing report"]))
    repo.record_deployment(_event("a", kind="rollback", policy=None, reason="p99 over bound"))
    mine = repo.deployment_history("a")
    assert [(e.kind, e.policy) for e in mine] == [("rollback", None), ("deploy", "vtime")]
    assert mine[1].tunables == {"slice_ns": 5_000_000, "direct_idle": True}
    assert mine[1].evidence == ["attached"]
    assert mine[0].reason == "p99 over bound"
    every = repo.deployment_history(None)
    assert [e.host for e in every] == ["a", "b", "a"]
    assert repo.deployment_history(None, limit=1)[0].kind == "rollback"
    assert repo.deployment_history("nowhere") == []


def test_breaker_and_restore_events_are_kept(repo: PolicyRepository) -> None:
    repo.record_deployment(_event("a", kind="breaker", reason="circuit breaker: ejected", evidence=["tripped"]))
    repo.record_deployment(_event("a", kind="restore", reason="last-known-good at boot"))
    assert [e.kind for e in repo.deployment_history("a")] == ["restore", "breaker"]


def test_events_recorded_before_migration_4_survive_it(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A repository of schema 3 (before the breaker's event kinds) upgrades with its events."""
    from schedcp.repository import db as dbmod

    with monkeypatch.context() as m:
        m.setattr(dbmod, "MIGRATIONS", dbmod.MIGRATIONS[:3])
        m.setattr(dbmod, "SCHEMA_VERSION", 3)
        with dbmod.open_database(db_url) as old, old.transaction() as tx:
            tx.execute(
                "INSERT INTO deployment_events(kind, host, kernel, policy, version_id, tunables, object_sha256, "
                "reason, evidence, created_at) VALUES ('deploy', 'a', '7.3', 'vtime', 'v1', '{}', NULL, 'old', "
                "'[]', '2026-12-01T00:00:00')"
            )
    with open_repository(db_url, import_builtins=False) as repo:
        assert repo.db.schema_version() == dbmod.SCHEMA_VERSION >= 4
        kept = repo.deployment_history("a")
        assert [(e.kind, e.reason) for e in kept] == [("deploy", "old")]
        later = repo.record_deployment(_event("a", kind="breaker"))
        assert later.id is not None
        assert kept[0].id is not None
        assert later.id > kept[0].id
