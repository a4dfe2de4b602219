"""engine.collect() against a scripted runner: the collector's command line, and what the engine
does with a collector that timed out, failed, printed nothing usable or left pins behind."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from schedcp.analysis.engine import PIN_PREFIX, collect
from schedcp.config import SandboxSettings, Settings
from schedcp.errors import AnalysisError
from schedcp.models import CommandResult
from schedcp.models.profile import Target

DATA = Path(__file__).parent.parent / "data" / "analysis"
CMD = Target(kind="command", command=["perf", "bench", "sched", "pipe"])


class ScriptedRunner:
    """Answers the collector's run with a canned result and every other command with success."""

    def __init__(self, collector: CommandResult) -> None:
        self.collector = collector
        self.calls: list[list[str]] = []
        self.timeouts: list[float | None] = []

    def run(
        self,
        argv: Sequence[str],
        timeout: float | None = None,
        *,
        check: bool = False,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        input: bytes | None = None,
    ) -> CommandResult:
        self.calls.append(list(argv))
        self.timeouts.append(timeout)
        if "--id" in argv:
            return self.collector
        return CommandResult(argv=list(argv), rc=0)

    def stage(self, path: Path) -> str:
        return f"/staged/{path.name}"

    def collector_argv(self) -> list[str]:
        return next(c for c in self.calls if "--id" in c)

    def run_id(self) -> str:
        argv = self.collector_argv()
        return argv[argv.index("--id") + 1]


def document(**changes: Any) -> str:
    doc = json.loads((DATA / "host-pipe-forkloop.json").read_text())
    for key, value in changes.items():
        if key == "bpf":
            doc["bpf"].update(value)
        else:
            doc[key] = value
    return json.dumps(doc)


def test_the_collector_command_line(tmp_path: Path) -> None:
    obj = tmp_path / "sched_trace.bpf.o"
    obj.write_bytes(b"\x7fELF")
    runner = ScriptedRunner(CommandResult(argv=[], rc=0, stdout=document()))
    collect(runner, CMD, tracer_object=obj, interval_s=0.5, timeout_s=30)
    argv = runner.collector_argv()
    assert argv[1:3] == ["-I", "/staged/collect.py"]
    assert argv[argv.index("--object") + 1] == "/staged/sched_trace.bpf.o"
    assert argv[argv.index("--interval") + 1] == "0.5"
    assert argv[argv.index("--timeout") + 1] == "30"
    assert argv[-5:] == ["--", "perf", "bench", "sched", "pipe"]
    # The runner's limit is a backstop above the collector's own.
    assert runner.timeouts[runner.calls.index(argv)] is not None
    assert runner.timeouts[runner.calls.index(argv)] > 30


def test_attach_targets_pass_pid_or_cgroup_and_the_duration() -> None:
    runner = ScriptedRunner(CommandResult(argv=[], rc=0, stdout=document()))
    collect(runner, Target(kind="pid", pid=4242), duration_s=5, trace=False)
    argv = runner.collector_argv()
    assert "--object" not in argv
    assert argv[argv.index("--pid") + 1] == "4242"
    assert argv[argv.index("--duration") + 1] == "5"
    runner = ScriptedRunner(CommandResult(argv=[], rc=0, stdout=document()))
    collect(runner, Target(kind="cgroup", cgroup="work.slice"), duration_s=2, trace=False)
    assert runner.collector_argv()[-2:] == ["--cgroup", "work.slice"]


def test_attaching_without_a_duration_is_refused_before_running_anything() -> None:
    runner = ScriptedRunner(CommandResult(argv=[], rc=0, stdout=document()))
    with pytest.raises(AnalysisError, match="needs a duration"):
        collect(runner, Target(kind="pid", pid=1))
    with pytest.raises(AnalysisError, match="no command"):
        collect(runner, Target(kind="command", command=[]))
    assert runner.calls == []


def test_a_collector_killed_at_the_backstop_has_its_pins_removed_by_the_engine(tmp_path: Path) -> None:
    runner = ScriptedRunner(CommandResult(argv=[], rc=-9, timed_out=True, stderr="..."))
    with pytest.raises(AnalysisError, match="did not finish"):
        collect(runner, CMD, trace=False)
    assert ["rm", "-rf", PIN_PREFIX + runner.run_id()] in runner.calls


def test_pins_the_collector_could_not_remove_are_removed_by_the_engine() -> None:
    doc = document(bpf={"pins_removed": False, "pin_dir": "/sys/fs/bpf/schedcp_analyze_x"})
    runner = ScriptedRunner(CommandResult(argv=[], rc=0, stdout=doc))
    collect(runner, CMD, trace=False)
    assert ["rm", "-rf", "/sys/fs/bpf/schedcp_analyze_x"] in runner.calls


def test_a_bad_target_reported_by_the_collector_is_an_analysis_error() -> None:
    doc = document(fatal="no process with pid 77")
    runner = ScriptedRunner(CommandResult(argv=[], rc=2, stdout=doc))
    with pytest.raises(AnalysisError, match="no process with pid 77"):
        collect(runner, Target(kind="pid", pid=77), duration_s=1, trace=False)


def test_output_that_is_not_a_report_is_an_analysis_error_with_the_stderr() -> None:
    runner = ScriptedRunner(CommandResult(argv=[], rc=1, stdout="", stderr="Traceback: boom"))
    with pytest.raises(AnalysisError, match="boom"):
        collect(runner, CMD, trace=False)


def test_a_tracer_that_cannot_be_built_gives_a_collection_without_bpf(tmp_path: Path) -> None:
    settings = Settings(cache_dir=tmp_path, sandbox=SandboxSettings(kernel="no-such-kernel"))
    doc = (DATA / "host-nobpf.json").read_text()
    runner = ScriptedRunner(CommandResult(argv=[], rc=0, stdout=doc))
    raw = collect(runner, CMD, settings=settings)
    assert "--object" not in runner.collector_argv()
    assert raw.missing[0].startswith("bpf: the tracer could not be built")
    assert [m for m in raw.missing if m.startswith("bpf:")] == [raw.missing[0]]  # said once
    assert raw.bpf.error is not None
    assert "no sandbox kernel" in raw.bpf.error
