"""The audit service: what the MCP server calls once per tool call, and what `schedcp audit` reads."""

from __future__ import annotations

from pathlib import Path

from schedcp.repository import open_repository
from schedcp.service import Context
from schedcp.service.audit import AuditEntry, AuditLog, audit_log, record_call


def test_recording_a_call_is_cheap_and_reads_back_through_the_service(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'repo.db'}"
    ctx = Context.create(db_url=url)
    done = record_call(
        ctx, AuditEntry(client="agent", tool="deploy", arguments={"policy": "vtime"}, outcome="ok", duration_s=2.0)
    )
    assert done.id is not None
    assert done.created_at
    # No policy is needed to keep a record, so the built-in library was not imported for it.
    with open_repository(url, import_builtins=False) as repo, repo.db.transaction(write=False) as tx:
        assert tx.scalar("SELECT COUNT(*) FROM policies") == 0
    assert audit_log(ctx) == AuditLog(entries=[done])
    assert audit_log(ctx, tool="verify") == AuditLog(entries=[])
    assert audit_log(ctx, client="agent", outcome="ok", limit=1).entries == [done]
