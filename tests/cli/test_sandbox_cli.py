"""The CLI end to end on the real sandbox: exit codes and JSON are what scripts rely on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.json_shape import assert_shape
from schedcp.cli.main import app

EXIT_EJECTED = 3

FIXTURES = Path(__file__).parents[1] / "fixtures" / "policies"
pytestmark = pytest.mark.sandbox
runner = CliRunner()


def test_sandbox_run_returns_the_commands_exit_code() -> None:
    res = runner.invoke(app, ["sandbox", "run", "--", "sh", "-c", "echo from-guest; exit 7"])
    assert res.exit_code == 7, res.output
    assert "from-guest" in res.stdout


def test_sandbox_run_json() -> None:
    res = runner.invoke(app, ["sandbox", "run", "--json", "--", "uname", "-r"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert_shape("sandbox-run", data)
    assert data["result"]["stdout"].strip() == data["boot"]["kernel"]
    assert data["boot"]["boot_s"] > 0


def test_policy_run_fifo_json() -> None:
    res = runner.invoke(app, ["policy", "run", "fifo", "--set", "slice_ns=4ms", "--json", "--", "true"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert_shape("policy-run", data)
    report = data["report"]
    assert report["state_after_load"] == "enabled"
    assert report["ops_after_load"] == "fifo"
    assert report["loaded_tunables"]["slice_ns"] == 4_000_000
    assert report["detached"] is True


def test_policy_run_reports_an_ejection_with_exit_3() -> None:
    res = runner.invoke(app, ["policy", "run", str(FIXTURES / "stall"), "--", "true"])
    assert res.exit_code == EXIT_EJECTED, res.output
    assert "runnable task stall" in res.output


def test_demo_compares_with_the_default_scheduler() -> None:
    res = runner.invoke(app, ["demo", "--workload", "pipe", "--rounds", "1", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert_shape("demo", data)
    result = data["result"]
    assert result["baseline"]["name"] == "default"
    assert result["candidate"]["name"] == "fifo"
    sides = [(s["side"], s["warmup"]) for s in result["samples"]]
    assert sides == [("baseline", True), ("candidate", True), ("baseline", False), ("candidate", False)]
    assert all(s["scheduler_after_run"] == "enabled:fifo" for s in result["samples"] if s["side"] == "candidate")
    primary = next(m for m in result["metrics"] if m["name"] == result["workload"]["primary"])
    base, cand = primary["baseline"]["median"], primary["candidate"]["median"]
    assert base > 0
    assert cand > 0
    assert primary["comparison"]["ratio"] == pytest.approx(cand / base, rel=1e-6)


def test_sandbox_run_shares_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["sandbox", "run", "--", "sh", "-c", "pwd; echo made-in-guest > out.txt"])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == str(tmp_path.resolve())
    assert (tmp_path / "out.txt").read_text() == "made-in-guest\n"
    res = runner.invoke(app, ["sandbox", "run", "--no-share-cwd", "--", "sh", "-c", "pwd; echo x > out2.txt"])
    assert res.stdout.splitlines()[0] == "/tmp"
    assert not (tmp_path / "out2.txt").exists()
