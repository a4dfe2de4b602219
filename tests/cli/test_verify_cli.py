"""`schedcp verify` without a VM: the static stages, exit codes, and bad input that boots nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from schedcp.cli.main import app

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "verify" / "corpus"


pytestmark = pytest.mark.usefixtures("no_vm")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, ["verify", *args])


def test_policy_or_object_not_both() -> None:
    neither = invoke()
    assert neither.exit_code == 1
    assert "a policy or an object" in neither.output
    both = invoke("fifo", "--object", "/nonexistent.bpf.o")
    assert both.exit_code == 1


def test_bad_stage_and_bad_tunable() -> None:
    assert invoke("fifo", "--until", "deploy").exit_code == 2
    bad = invoke("fifo", "--set", "slice_ns=1h", "--until", "lint")
    assert bad.exit_code == 1
    assert "slice_ns" in bad.output


@pytest.mark.bpf
def test_static_failure_stops_before_any_vm() -> None:
    done = invoke(str(CORPUS / "syntax_error"))  # all stages asked for: the compile stage stops it
    assert done.exit_code == 1, done.output
    assert "FAILED at compile" in done.output
    assert "syntax_error.bpf.c:" in done.output
    assert "what to fix:" in done.output


@pytest.mark.bpf
def test_partial_run_is_not_a_pass_and_not_stored() -> None:
    done = invoke("fifo", "--until", "lint", "--json")
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["report"]["passed"] is False
    assert data["report"]["stopped_at"] is None
    assert [s["stage"] for s in data["report"]["stages"] if s["skipped"] is None] == ["compile", "lint"]
    assert data["recorded"] is None
    assert "partial" in data["note"]
