"""`schedcp audit`: the MCP tool calls recorded in the repository, for people and with --json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from schedcp.cli.main import app
from schedcp.service import Context
from schedcp.service.audit import AuditEntry, record_call

pytestmark = pytest.mark.usefixtures("no_vm")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def js(*args: str) -> Any:
    done = invoke(*args, "--json")
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def record(db: str | None = None, **kw: Any) -> AuditEntry:
    entry = AuditEntry.model_validate({"arguments": {}, "duration_s": 0.02, **kw})
    return record_call(Context.create(db_url=db), entry)


@pytest.fixture
def calls() -> list[AuditEntry]:
    """Three calls of two clients, oldest first: a search, a refused deploy, a cancelled verify."""
    return [
        record(client="agent-a", tool="policy_search", outcome="ok", arguments={"query": "web server", "limit": 5}),
        record(
            client="agent-a",
            tool="deploy",
            outcome="refused",
            arguments={"policy": "vtime", "tunables": {"slice_ns": 5_000_000}, "reason": "try [bold]this[/]"},
            error="vtime@0123456789ab has no passing verification report\nrun `schedcp verify vtime` first",
            duration_s=1.25,
        ),
        record(client="agent-b", tool="verify", outcome="cancelled", arguments={"policy": "fifo"}, duration_s=30.0),
    ]


def test_an_empty_log_says_so() -> None:
    done = invoke("audit")
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == "no tool calls recorded"
    assert "with tool deploy" in invoke("audit", "--tool", "deploy").stdout
    assert js("audit") == {"entries": []}


def test_the_table_shows_each_call_newest_first_and_the_error_under_a_failed_one(
    calls: list[AuditEntry], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    done = invoke("audit")
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["time", "client", "tool", "outcome", "duration", "arguments"]
    assert [line.split()[2:5] for line in lines[1:] if not line.startswith(" ")] == [
        ["agent-b", "verify", "cancelled"],
        ["agent-a", "deploy", "refused"],
        ["agent-a", "policy_search", "ok"],
    ]
    deploy = lines.index(next(line for line in lines if " deploy " in line))
    assert calls[1].created_at[:19].replace("T", " ") in lines[deploy]
    assert "1.2 s" in lines[deploy]
    assert "policy=vtime" in lines[deploy]
    assert "reason=try [bold]this[/]" in lines[deploy], "arguments are printed as they are, never as markup"
    assert lines[deploy + 1] == "    error: vtime@0123456789ab has no passing verification report"
    assert "20 ms" in lines[-1]
    assert "limit=5, query=web server" in lines[-1]  # stored with sorted keys


def test_the_table_fits_80_columns_one_or_two_lines_a_call(
    calls: list[AuditEntry], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    lines = invoke("audit").stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    assert len(lines) == 1 + len(calls) + 1  # the header, a line a call, the refused deploy's error


def test_json_is_the_audit_log_and_the_filters_apply(calls: list[AuditEntry]) -> None:
    every = js("audit")
    assert [e["tool"] for e in every["entries"]] == ["verify", "deploy", "policy_search"]
    assert every["entries"][1] == calls[1].model_dump(mode="json")
    assert [e["tool"] for e in js("audit", "--client", "agent-a")["entries"]] == ["deploy", "policy_search"]
    assert [e["client"] for e in js("audit", "--tool", "verify")["entries"]] == ["agent-b"]
    assert [e["tool"] for e in js("audit", "--outcome", "refused")["entries"]] == ["deploy"]
    assert js("audit", "--client", "agent-b", "--outcome", "ok") == {"entries": []}
    assert [e["tool"] for e in js("audit", "--limit", "1")["entries"]] == ["verify"]


def test_db_reads_another_repository(calls: list[AuditEntry], tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path / 'other.db'}"
    record(other, client="elsewhere", tool="status", outcome="error", error="boom")
    assert [e["client"] for e in js("audit", "--db", other)["entries"]] == ["elsewhere"]
    assert len(js("audit")["entries"]) == len(calls)


def test_an_unknown_outcome_is_a_usage_error() -> None:
    done = invoke("audit", "--outcome", "maybe")
    assert done.exit_code == 2
    assert "refused" in done.output
