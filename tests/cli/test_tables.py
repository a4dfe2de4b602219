"""Tables for people stay readable in an 80-column terminal: one or two lines a row, never wider."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from schedcp.bench.registry import all_workloads
from schedcp.bpf.policy import builtin_policies
from schedcp.cli.main import app


@pytest.fixture(autouse=True)
def narrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("SCHEDCP_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.setenv("SCHEDCP_DB", f"sqlite:///{tmp_path / 'repo.db'}")


def lines(*args: str) -> list[str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in out), "\n".join(line for line in out if len(line) > 80)
    return out


def test_policy_list_is_two_lines_a_policy() -> None:
    out = lines("policy", "list")
    assert len(out) == 2 * len(builtin_policies())
    assert out[0].startswith("central ")
    assert "suits: cpu-bound-batch" in out[0]


def test_bench_list_is_one_line_a_workload() -> None:
    out = lines("bench", "list")
    rows = [line for line in out if line.split() and line.split()[0] in all_workloads()]
    assert len(rows) == len(all_workloads())
    assert len(out) <= len(rows) + 4  # the header and the note


def test_policy_show_and_history_fit() -> None:
    shown = lines("policy", "show", "jobsize")
    assert any(line.startswith("  long_prefix str16, default `lt_long_`") for line in shown)
    assert len(lines("policy", "history", "fifo")) <= 4
