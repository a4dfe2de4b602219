"""The dynamic stage's judgement, on recorded monitor reports: what a frozen guest, a late
ejection and a clean run turn into (the runs themselves are test_sandbox_verify's)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from schedcp.bpf import loader
from schedcp.bpf.policy import VerifySpec
from schedcp.verify import dynamic
from schedcp.verify.dynamic import DynamicRun, frozen_for, judge

PROBES = {
    name: {"kind": "spin", "count": 1000, "max_gap_s": 0.5}
    for name in ("normal", "nice19", "pinned", "batch", "idle", "fork", "fair-a", "fair-b")
}
PROBES["sleeper"] = {"kind": "sleep", "count": 900, "late_max_ms": 80.0, "late_p99_ms": 60.0}


def _run(
    verdict: dict[str, Any] | None = None, pause: float = 0.05, ejection: loader.Ejection | None = None
) -> DynamicRun:
    status = {"done": True, "probes": PROBES, "class_switches": 30, "max_pause_s": pause, "verdict": verdict}
    return DynamicRun(status=status, heartbeat_max_s=0.4, state_after="disabled", ejection=ejection, wall_s=40.0)


def test_a_clean_run_passes_and_reports_the_monitors_pause() -> None:
    evidence, findings = judge(_run(pause=0.12))
    assert findings == []
    assert "the real-time monitor's longest pause: 0.12 s" in evidence
    assert frozen_for(_run()) is None


def test_a_frozen_run_is_recognised_with_its_pause() -> None:
    run = _run({"kind": "frozen", "detail": "the monitor (real-time) did not run for 6.1 s", "at_s": 12.0}, pause=6.1)
    assert frozen_for(run) == pytest.approx(6.1)
    _, findings = judge(run)
    assert [f.rule for f in findings] == ["frozen"]
    assert "host" in findings[0].fix


def test_an_ejection_the_monitor_did_not_time_says_no_time() -> None:
    ejection = loader.Ejection(reason="runtime error (x: RCU CPU stall on CPUs ())", details=[])
    _, findings = judge(_run({"kind": "ejected", "detail": ejection.reason, "at_s": None}, ejection=ejection))
    assert findings[0].message == "the kernel ejected the policy: runtime error (x: RCU CPU stall on CPUs ())"
    _, findings = judge(_run({"kind": "ejected", "detail": ejection.reason, "at_s": 12.5}, ejection=ejection))
    assert findings[0].message.startswith("the kernel ejected the policy after 12.5 s: ")


def _stage_with(runs: list[DynamicRun], monkeypatch: pytest.MonkeyPatch) -> Any:
    left = list(runs)
    monkeypatch.setattr(dynamic, "run_probes", lambda *a, **k: left.pop(0))
    built = SimpleNamespace(policy=SimpleNamespace(spec=SimpleNamespace(verify=VerifySpec())))
    result = dynamic.dynamic_stage(None, built, vcpus=2, build_dir=None, quick=True)  # type: ignore[arg-type]
    assert not left, "every run was used"
    return result


FROZEN = {"kind": "frozen", "detail": "the monitor (real-time) did not run for 7.0 s", "at_s": 9.0}


def test_a_frozen_run_is_repeated_and_the_repeat_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _stage_with([_run(FROZEN, pause=7.0), _run()], monkeypatch)
    assert result.passed
    assert any(e.startswith("run 1 void: the guest stopped for 7.0 s") for e in result.evidence)
    bad = _run({"kind": "starvation", "detail": "the pinned probe has not run for 6.2 s", "at_s": 20.0})
    result = _stage_with([_run(FROZEN, pause=7.0), bad], monkeypatch)
    assert not result.passed
    assert [f.rule for f in result.findings] == ["starvation"]


def test_three_frozen_runs_fail_the_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = [_run(FROZEN, pause=7.0) for _ in range(dynamic.FROZEN_ATTEMPTS)]
    result = _stage_with(runs, monkeypatch)
    assert not result.passed
    assert [f.rule for f in result.findings] == ["frozen"]
    assert sum(e.startswith("run ") and " void: " in e for e in result.evidence) == dynamic.FROZEN_ATTEMPTS
