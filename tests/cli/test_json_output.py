"""Every `--json` output keeps its keys (tests/cli/data/json-shapes.json; docs/cli-json.md).

The commands that need no VM run here through typer's CliRunner on a fresh repository; those
that boot the sandbox are checked where their sandbox tests already run them
(tests/cli/test_sandbox_cli.py, tests/bench/test_harness_in_sandbox.py,
tests/analysis/test_sandbox_analysis.py), so no VM is booted twice for it.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.json_shape import EXPECTED, assert_shape, differences, shape
from schedcp.bench.harness import summarize
from schedcp.bench.registry import get_workload
from schedcp.bpf.policy import find_policy
from schedcp.cli.main import app
from schedcp.models.bench import BenchResult, Sample, SchedulerChoice
from schedcp.repository import open_repository

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RECORDING = FIXTURES.parent / "data" / "analysis" / "profiles" / "sandbox-pipe-tiny.json"


@pytest.fixture(autouse=True)
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SCHEDCP_CONFIG", str(tmp_path / "no-config.toml"))
    url = f"sqlite:///{tmp_path / 'repo.db'}"
    monkeypatch.setenv("SCHEDCP_DB", url)
    return url


def js(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def fifo_result() -> BenchResult:
    """A benchmark result of the built-in fifo on pipe, as `bench run` records it (no VM)."""
    info = get_workload("pipe").info
    samples = [
        Sample(side=side, round=r, warmup=r == 0, metrics={m.name: value for m in info.metrics}, duration_s=1.0)
        for r in range(3)
        for side, value in (("baseline", 10.0 + r), ("candidate", 7.0 + r))
    ]
    tunables = find_policy("fifo").resolve_tunables()
    return BenchResult(
        id="json0shape01",
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        host="test",
        workload=info,
        size="tiny",
        repeat=2,
        baseline=SchedulerChoice(name="default"),
        candidate=SchedulerChoice(name="fifo", tunables=tunables, object_sha256="0" * 64),
        boot=None,
        emulated=True,
        samples=samples,
        metrics=summarize(info, samples),
    )


def test_repository_commands_keep_their_json_keys(db: str, tmp_path: Path) -> None:
    assert_shape("policy-list", js("policy", "list", "--json"))
    assert_shape("policy-search", js("policy", "search", "latency", "--json"))
    assert_shape("policy-history", js("policy", "history", "fifo", "--json"))
    assert_shape("policy-show-folder", js("policy", "show", str(FIXTURES / "policies" / "good"), "--json"))
    assert_shape("policy-show", js("policy", "show", "fifo", "--json"))
    good = tmp_path / "good"
    shutil.copytree(FIXTURES / "policies" / "good", good)
    assert_shape("policy-add", js("policy", "add", str(good), "--json"))
    assert_shape("policy-remove", js("policy", "remove", "good", "--json"))
    with open_repository(db) as repo:
        repo.record_benchmark(repo.get("fifo").id, "pipe", fifo_result())
    assert_shape("policy-best", js("policy", "best", "--json"))
    shown = js("policy", "show", "fifo", "--json")
    assert shown["benchmarks"], "the recorded result must be shown"
    assert_shape("policy-show-results", shown)
    archive = tmp_path / "a.tar.gz"
    assert_shape("policy-export", js("policy", "export", str(archive), "--json"))
    assert_shape("policy-import", js("policy", "import", str(archive), "--json"))


def test_bench_list_keeps_its_json_keys() -> None:
    assert_shape("bench-list", js("bench", "list", "--json"))


def test_analyze_commands_on_stored_profiles_keep_their_json_keys() -> None:
    shown = js("analyze", "show", str(RECORDING), "--json")
    assert shown["classes"], "a bare recording is classified for display"
    assert_shape("analyze-show", shown)
    assert_shape("analyze-diff", js("analyze", "diff", str(RECORDING), str(RECORDING), "--json"))
    assert_shape("analyze-schema", js("analyze", "--schema"))
    assert_shape("analyze-list", {"profiles": []} | js("analyze", "list", "--json"))


@pytest.mark.bpf
def test_build_and_sandbox_info_keep_their_json_keys(tmp_path: Path) -> None:
    assert_shape("policy-build", js("policy", "build", "fifo", "-o", str(tmp_path), "--json"))
    assert_shape("sandbox-info", js("sandbox", "info", "--json"))


def test_audit_keeps_its_json_keys(db: str) -> None:
    from schedcp.service import Context
    from schedcp.service.audit import AuditEntry, record_call

    entry = AuditEntry(
        client="agent", tool="deploy", arguments={"policy": "vtime"}, outcome="refused", error="no", duration_s=0.1
    )
    record_call(Context.create(db_url=db), entry)
    assert_shape("audit", js("audit", "--json"))


def test_the_shape_check_catches_a_renamed_or_missing_key() -> None:
    expected = json.loads(EXPECTED.read_text())["policy-remove"]
    assert differences(expected, shape({"removed": "x", "removed_at": None, "versions": 2})) == []
    assert differences(expected, shape({"removed": "x", "removed_at": None, "kept": 2})) == [
        "$.versions: missing",
        "$.kept: new",
    ]
    nested = {"a": {"[]": {"b": "scalar"}}}
    assert differences(nested, shape({"a": [{"c": 1}]})) == ["$.a.[].b: missing", "$.a.[].c: new"]
    assert differences(nested, shape({"a": []})) == []  # an empty list says nothing about its items


def test_runtime_commands_keep_their_json_keys() -> None:
    """status, rollback, history, restore and watch on this host (deploy's result is the sandbox test's)."""
    CliRunner().invoke(app, ["deploy", "vtime", "--reason", "shape"])  # refused or failed: an event either way
    assert_shape("status", js("status", "--json"))
    assert_shape("history", js("history", "--all-hosts", "--json"))
    assert_shape("restore", js("restore", "--json"))
    assert_shape("watch", js("watch", "--for", "2", "--interval", "1", "--json"))
