"""`schedcp analyze` through typer's CliRunner, with the engine and the runner replaced by fakes
(no VM, no BPF): the CLI and the service layer under it, for real.

The real engine is covered by the analysis host and sandbox tests; here: argument handling (the
command after `--`, --pid/--cgroup imply the host, durations), output, storage, exit codes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from analysis.profile_builder import BENCHMARK_PROFILES
from typer.testing import CliRunner, Result

from schedcp.analysis import engine
from schedcp.analysis.classify import classify
from schedcp.analysis.summary import summarize
from schedcp.cli.main import app
from schedcp.errors import AnalysisError
from schedcp.models.profile import Target, WorkloadProfile
from schedcp.service import Context


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, ["analyze", *args])


def finished(name: str, **update: Any) -> WorkloadProfile:
    p = BENCHMARK_PROFILES[name][0]().model_copy(update=update)
    p.classes = classify(p)
    p.summary = summarize(p)
    return p


class FakeEngine:
    """Stands in for `engine.analyze`: records each call, returns a finished profile for its target."""

    def __init__(self, profile: WorkloadProfile | None = None, error: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.profile = profile or finished("wakeup-latency")
        self.error = error

    def analyze(self, runner: Any, target: Target, *, where: str, **kw: Any) -> WorkloadProfile:
        assert runner.where == where, "the engine must get the runner the service opened for `where`"
        self.calls.append({"where": where, "target": target, **kw})
        if self.error is not None:
            raise self.error
        return self.profile.model_copy(update={"target": target, "where": where}, deep=True)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
        monkeypatch.setattr(engine, "analyze", self.analyze)
        return self


class FakeRunner:
    def __init__(self, where: str) -> None:
        self.where = where


@contextmanager
def fake_runner(self: Context, where: str = "sandbox", shares: Any = ()) -> Iterator[FakeRunner]:
    yield FakeRunner(where)


@pytest.fixture(autouse=True)
def no_vm(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here boots anything: the service gets a fake runner wherever it asks for one."""
    monkeypatch.setattr(Context, "runner", fake_runner)


@pytest.fixture(autouse=True)
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test has its own SQLite repository (through $SCHEDCP_DB) and no user config."""
    monkeypatch.setenv("SCHEDCP_CONFIG", str(tmp_path / "no-config.toml"))
    url = f"sqlite:///{tmp_path / 'repo.db'}"
    monkeypatch.setenv("SCHEDCP_DB", url)
    return url


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    return FakeEngine().install(monkeypatch)


def stored_ids() -> list[str]:
    result = invoke("list", "--json")
    assert result.exit_code == 0, result.output
    return [r["id"] for r in json.loads(result.stdout)["profiles"]]


def test_command_after_dashes_runs_in_the_sandbox(fake: FakeEngine) -> None:
    result = invoke("--", "perf", "bench", "sched", "pipe", "-l", "10", "--json")
    assert result.exit_code == 0, result.output
    (call,) = fake.calls
    assert call["where"] == "sandbox"
    assert call["target"] == Target(kind="command", command=["perf", "bench", "sched", "pipe", "-l", "10", "--json"])
    assert call["trace"] is True
    assert call["duration_s"] is None
    assert "latency-critical-server" in result.stdout
    assert "stored as p-" in result.stdout
    assert len(stored_ids()) == 1


def test_host_options_and_durations(fake: FakeEngine) -> None:
    result = invoke("--host", "--no-trace", "--duration", "2m", "--interval", "500ms", "--", "sleep", "1")
    assert result.exit_code == 0, result.output
    (call,) = fake.calls
    assert call["where"] == "host"
    assert call["trace"] is False
    assert call["duration_s"] == 120.0
    assert call["interval_s"] == 0.5


def test_pid_and_cgroup_attach_on_the_host(fake: FakeEngine) -> None:
    assert invoke("--pid", "4242", "--duration", "10s").exit_code == 0
    assert invoke("--cgroup", "/sys/fs/cgroup/work.slice", "--duration", "1.5").exit_code == 0
    assert [c["where"] for c in fake.calls] == ["host", "host"]
    assert fake.calls[0]["target"] == Target(kind="pid", pid=4242)
    assert fake.calls[0]["duration_s"] == 10.0
    assert fake.calls[1]["target"] == Target(kind="cgroup", cgroup="/sys/fs/cgroup/work.slice")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pid", "1", "--sandbox", "--duration", "1s"], "sandbox VM cannot see"),
        (["--cgroup", "/x", "--sandbox", "--duration", "1s"], "sandbox VM cannot see"),
        (["--pid", "1"], "needs --duration"),
        (["--pid", "1", "--duration", "1s", "--", "true"], "give one target"),
        (["--duration", "ten", "--", "true"], "not a duration"),
        (["--duration", "0s", "--", "true"], "more than 0"),
        (["--"], "nothing after --"),
    ],
)
def test_bad_arguments_are_usage_errors_and_run_nothing(fake: FakeEngine, args: list[str], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())
    assert fake.calls == []


def test_json_output_and_file(fake: FakeEngine, tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    result = invoke("--json", "-o", str(out), "--", "./server")
    assert result.exit_code == 0, result.output
    printed = WorkloadProfile.model_validate_json(result.stdout)
    written = WorkloadProfile.model_validate_json(out.read_text())
    assert printed == written
    assert printed.id.startswith("p-")
    assert stored_ids() == [printed.id]


def test_no_store(fake: FakeEngine) -> None:
    result = invoke("--no-store", "--", "./server")
    assert result.exit_code == 0, result.output
    assert "stored as" not in result.stdout
    assert stored_ids() == []


def test_partial_profile_is_printed_and_stored(monkeypatch: pytest.MonkeyPatch) -> None:
    partial = finished("pipe", complete=False, missing=["bpf: the tracer failed to load (test)"])
    FakeEngine(partial).install(monkeypatch)
    result = invoke("--", "./pipe")
    assert result.exit_code == 0, result.output
    assert "partial profile" in result.stderr
    assert "the tracer failed to load" in result.stderr
    assert "pipeline-messaging" in result.stdout
    assert len(stored_ids()) == 1


def test_engine_errors_exit_1_and_store_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeEngine(error=AnalysisError("no such command: ./nope; check the path")).install(monkeypatch)
    result = invoke("--", "./nope")
    assert result.exit_code == 1
    assert "error: no such command: ./nope" in result.stderr
    assert "Traceback" not in result.output
    assert stored_ids() == []


def test_schema() -> None:
    result = invoke("--schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "WorkloadProfile"
    assert "Classification" in schema["$defs"]


def test_no_target_prints_help() -> None:
    result = invoke()
    assert result.exit_code == 0
    assert "--pid" in result.output


def test_list_show_diff(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    FakeEngine(finished("wakeup-latency")).install(monkeypatch)
    assert invoke("--", "./server").exit_code == 0
    FakeEngine(finished("pipe")).install(monkeypatch)
    assert invoke("--", "./pipe").exit_code == 0

    listed = json.loads(invoke("list", "--json").stdout)["profiles"]
    by_class = {r["primary_class"]: r["id"] for r in listed}
    assert set(by_class) == {"latency-critical-server", "pipeline-messaging"}
    only = json.loads(invoke("list", "--json", "--class", "pipeline-messaging").stdout)["profiles"]
    assert [r["id"] for r in only] == [by_class["pipeline-messaging"]]
    table = invoke("list")
    assert table.exit_code == 0
    assert by_class["pipeline-messaging"] in table.stdout

    a, b = by_class["latency-critical-server"], by_class["pipeline-messaging"]
    shown = invoke("show", a[:7])
    assert shown.exit_code == 0, shown.output
    assert f"stored as {a}" in shown.stdout
    shown_json = WorkloadProfile.model_validate_json(invoke("show", a, "--json").stdout)
    assert shown_json.id == a

    diff = invoke("diff", a[:8], b[:8])
    assert diff.exit_code == 0, diff.output
    assert "class: latency-critical-server -> pipeline-messaging (changed)" in diff.stdout
    diff_json = json.loads(invoke("diff", a, b, "--json").stdout)
    assert diff_json["class_changed"] is True

    file = tmp_path / "b.json"
    file.write_text(invoke("show", b, "--json").stdout)
    from_file = invoke("diff", a, str(file))
    assert from_file.exit_code == 0, from_file.output
    assert "pipeline-messaging" in from_file.stdout


def test_unknown_ids_exit_1() -> None:
    result = invoke("show", "p-abcdef")
    assert result.exit_code == 1
    assert "no stored profile 'p-abcdef'" in result.stderr
    result = invoke("diff", "p-ab", "p-abcdef")
    assert result.exit_code == 1
    assert "not a profile id" in result.stderr


def test_overhead(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from schedcp.bench.stats import compare

    calls: list[tuple[int, str]] = []
    profile = finished("wakeup-latency")

    def fake_overhead(runner: FakeRunner, repeat: int, size: str, **kw: Any) -> engine.OverheadReport:
        assert runner.where == "sandbox"
        calls.append((repeat, size))
        ratio = compare([100.0, 101.0], [98.0, 99.0], "higher")
        return engine.OverheadReport(
            workload="wakeup-latency",
            size=size,
            repeat=repeat,
            untraced={"rps": [100.0]},
            traced={"rps": [98.0]},
            rps=ratio,
            request_p99=ratio,
            slowdown=1.02,
            bpf_cpu_pct=0.8,
            profile=profile,
        )

    monkeypatch.setattr(engine, "measure_overhead", fake_overhead)
    out = tmp_path / "overhead.json"
    result = invoke("overhead", "--repeat", "2", "--size", "tiny", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert calls == [(2, "tiny")]
    assert "slowdown 1.020x" in result.stdout
    assert json.loads(out.read_text())["slowdown"] == 1.02
    assert len(stored_ids()) == 1


def test_show_a_bare_recording_classifies_it() -> None:
    """A profile file without classes (a test recording) is classified for display."""
    path = Path(__file__).resolve().parents[1] / "data" / "analysis" / "profiles" / "host-cyclictest.json"
    profile = json.loads(path.read_text())["profile"]
    assert profile["classes"] == []
    result = invoke("show", str(path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["classes"][0]["workload_class"] == "periodic-soft-realtime"
