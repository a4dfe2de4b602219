"""check_workloads without a VM: the workloads and the engine replaced by fakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from schedcp.analysis import workloads as wl
from schedcp.analysis.classify import classify
from schedcp.bench.workload import Prepared
from schedcp.errors import SchedcpError
from schedcp.models.bench import WorkloadInfo
from schedcp.models.profile import WorkloadProfile

from .profile_builder import messaging, wakeup_server


class FakeWorkload:
    def __init__(self, name: str, cls: str, fail: bool = False) -> None:
        self.info = WorkloadInfo(
            name=name, version="1", summary="fake", workload_class=cls, metrics=[], primary="", sizes=["tiny", "small"]
        )
        self.fail = fail
        self.sizes_seen: list[str] = []

    def prepare(self, runner: Any, size: str, build_dir: Path) -> Prepared:
        self.sizes_seen.append(size)
        if self.fail:
            raise SchedcpError(f"{self.info.name}: cannot build\nsecond line of detail")
        return Prepared(argv=[self.info.name], timeout_s=10)


def _profiles(by_cmd: dict[str, WorkloadProfile]) -> Any:
    def fake_analyze(runner: Any, target: Any, **kw: Any) -> WorkloadProfile:
        profile = by_cmd[target.command[0]]
        profile.classes = classify(profile)
        return profile

    return fake_analyze


def test_declared_and_found_classes_are_compared_and_a_failure_does_not_stop_the_rest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fakes = {
        "srv": FakeWorkload("srv", "latency-critical-server"),
        "broken": FakeWorkload("broken", "cpu-bound-batch", fail=True),
        "msg-as-server": FakeWorkload("msg-as-server", "latency-critical-server"),
    }
    monkeypatch.setattr(wl, "get_workload", lambda name: fakes[name])
    monkeypatch.setattr(wl, "analyze", _profiles({"srv": wakeup_server(), "msg-as-server": messaging()}))
    seen: list[str] = []
    checks = wl.check_workloads(
        object(),  # type: ignore[arg-type]
        where="host",
        names=list(fakes),
        size="large",  # none of the fakes has it: each falls back to its default
        build_dir=tmp_path,
        progress=lambda c: seen.append(c.workload),
    )
    assert seen == ["srv", "broken", "msg-as-server"]
    srv, broken, wrong = checks
    assert srv.ok
    assert srv.found == "latency-critical-server"
    assert srv.evidence
    assert srv.size == "small"
    assert fakes["srv"].sizes_seen == ["small"]
    assert not broken.ok
    assert broken.found is None
    assert broken.error == "broken: cannot build"
    assert not wrong.ok
    assert wrong.found == "pipeline-messaging"
    table = wl.render_checks(checks)
    assert "1 of 3 workloads got their declared class" in table
    assert "error: broken: cannot build" in table
    assert "pipeline-messaging ✗" in table
