"""The audit log of MCP tool calls: kept whatever the outcome, read newest first, filtered, on both backends."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schedcp.errors import RepositoryError
from schedcp.models.audit import AuditEntry
from schedcp.repository import PolicyRepository, open_repository


def _call(client: str = "claude-code", tool: str = "policy_search", outcome: str = "ok", **kw: object) -> AuditEntry:
    return AuditEntry.model_validate(
        {"client": client, "tool": tool, "arguments": {}, "outcome": outcome, "duration_s": 0.25, **kw}
    )


def test_a_call_round_trips_with_its_id_time_and_nested_arguments(repo: PolicyRepository) -> None:
    arguments = {
        "policy": "vtime",
        "tunables": {"slice_ns": 5_000_000, "direct_idle": True},
        "canary": ["nginx", 1234],
        "source_sha256": "ab" * 32,
        "reason": None,
    }
    error = "no passing report\nrun verify"
    stored = repo.record_audit(_call(tool="deploy", arguments=arguments, outcome="refused", error=error, duration_s=2))
    assert stored.id is not None
    assert stored.created_at
    [back] = repo.audit_log()
    assert back == stored
    assert back.arguments == arguments
    assert back.error == "no passing report\nrun verify"
    assert back.duration_s == 2.0
    ok = repo.record_audit(_call())
    assert ok.error is None
    assert repo.audit_log(limit=1)[0].error is None


def test_calls_are_read_newest_first_and_limited(repo: PolicyRepository) -> None:
    ids = [repo.record_audit(_call(tool=f"t{i}")).id for i in range(5)]
    log = repo.audit_log()
    assert [e.tool for e in log] == ["t4", "t3", "t2", "t1", "t0"]
    assert [e.id for e in log] == ids[::-1]
    assert [e.created_at for e in log] == sorted((e.created_at for e in log), reverse=True)
    assert [e.tool for e in repo.audit_log(limit=2)] == ["t4", "t3"]


def test_filters_by_client_tool_and_outcome_combine(repo: PolicyRepository) -> None:
    repo.record_audit(_call("agent-a", "deploy", "ok"))
    repo.record_audit(_call("agent-a", "deploy", "refused", error="not verified"))
    repo.record_audit(_call("agent-b", "deploy", "error", error="boom"))
    repo.record_audit(_call("agent-b", "verify", "cancelled"))
    repo.record_audit(_call("agent-a", "verify", "ok"))

    def seen(**kw: str) -> list[tuple[str, str, str]]:
        return [(e.client, e.tool, e.outcome) for e in repo.audit_log(**kw)]  # type: ignore[arg-type]

    assert seen(client="agent-b") == [("agent-b", "verify", "cancelled"), ("agent-b", "deploy", "error")]
    assert seen(tool="verify") == [("agent-a", "verify", "ok"), ("agent-b", "verify", "cancelled")]
    assert seen(outcome="refused") == [("agent-a", "deploy", "refused")]
    assert seen(client="agent-a", tool="deploy") == [("agent-a", "deploy", "refused"), ("agent-a", "deploy", "ok")]
    assert seen(client="agent-a", tool="deploy", outcome="ok") == [("agent-a", "deploy", "ok")]
    assert seen(client="nobody") == []
    assert len(repo.audit_log(limit=3, client="agent-a")) == 3


def test_an_unknown_outcome_is_refused_by_the_model_and_by_the_database(repo: PolicyRepository) -> None:
    with pytest.raises(ValidationError, match="outcome"):
        _call(outcome="maybe")
    # Past the model (as another writer of the shared database could be): the CHECK refuses it.
    bad = AuditEntry.model_construct(client="x", tool="deploy", arguments={}, outcome="maybe", duration_s=0.1)
    with pytest.raises(RepositoryError, match="nothing was written"):
        repo.record_audit(bad)
    assert repo.audit_log() == []


def test_a_schema_4_repository_gains_the_audit_log_and_keeps_its_data(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An existing database (deployment events, repository metadata) upgrades in place to schema 5."""
    from schedcp.repository import db as dbmod

    with monkeypatch.context() as m:
        m.setattr(dbmod, "MIGRATIONS", dbmod.MIGRATIONS[:4])
        m.setattr(dbmod, "SCHEMA_VERSION", 4)
        with dbmod.open_database(db_url) as old, old.transaction() as tx:
            tx.execute(
                "INSERT INTO deployment_events(kind, host, kernel, policy, version_id, tunables, object_sha256, "
                "reason, evidence, created_at) VALUES ('breaker', 'a', '7.3', 'vtime', 'v1', '{}', NULL, 'old', "
                "'[]', '2026-12-01T00:00:00')"
            )
            tx.execute("INSERT INTO repository_meta(key, value) VALUES ('kept', 'yes')")
        with dbmod.open_database(db_url, migrate=False) as old, old.transaction(write=False) as tx:
            assert tx.scalar("SELECT MAX(version) FROM schema_migrations") == 4
    with open_repository(db_url, import_builtins=False) as repo:
        assert repo.db.schema_version() == dbmod.SCHEMA_VERSION >= 5
        assert [(e.kind, e.reason) for e in repo.deployment_history("a")] == [("breaker", "old")]
        with repo.db.transaction(write=False) as tx:
            assert tx.scalar("SELECT value FROM repository_meta WHERE key = 'kept'") == "yes"
        assert repo.audit_log() == []
        stored = repo.record_audit(_call(tool="deploy"))
        assert repo.audit_log() == [stored]
