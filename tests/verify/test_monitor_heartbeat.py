"""The monitor's per-CPU heartbeats (a real-time task pinned to each CPU): a CPU whose heartbeat
is late did not run at all, so the run is void (frozen), never a verdict on the policy; a
heartbeat on time leaves the probes' verdicts alone."""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from schedcp.verify.dynamic import DEFAULT_BOUNDS, monitor_script


def _monitor() -> ModuleType:
    spec = importlib.util.spec_from_file_location("schedcp_guest_monitor", monitor_script())
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _slots(mon: ModuleType, now_ns: int, beat_age_s: dict[int, float]) -> list[dict[str, Any]]:
    slots = [dict(mon.SLOT_EMPTY) for _ in range(mon.FILE_SLOTS)]
    for slot, *_ in mon.PROBES:  # every probe ran just now
        slots[slot] = {**mon.SLOT_EMPTY, "started_ns": 1, "last_ns": now_ns, "count": 10}
    for cpu, age in beat_age_s.items():
        slots[mon.BEAT_SLOT0 + cpu] = {**mon.SLOT_EMPTY, "started_ns": 1, "last_ns": now_ns - int(age * 1e9)}
    return slots


def _checked(tmp_path: Path, beat_age_s: dict[int, float]) -> Any:
    mon = _monitor()
    args = argparse.Namespace(
        dir=str(tmp_path),
        probe="probe",
        pin="",
        attach_wait=300.0,
        ops="",
        duration=35.0,
        vcpus=2,
        bounds=json.dumps(DEFAULT_BOUNDS.model_dump()),
        stress="full",
    )
    m = mon.Monitor(args)
    m.t0 = time.monotonic() - 10  # past the warm-up
    now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    m.check(_slots(mon, now, beat_age_s), now)
    return m


def test_a_cpu_whose_heartbeat_stopped_voids_the_run(tmp_path: Path) -> None:
    m = _checked(tmp_path, {0: 0.01, 1: 3.0})
    assert m.verdict is not None
    assert m.verdict["kind"] == "frozen"
    assert "CPU 1" in m.verdict["detail"]
    assert m.max_pause_s >= 2.9
    assert m.status(False, _slots(_monitor(), 0, {}))["cpu_heartbeat_late_s"]["1"] >= 2.9


def test_heartbeats_on_time_change_nothing(tmp_path: Path) -> None:
    m = _checked(tmp_path, {0: 0.02, 1: 0.06})
    assert m.verdict is None
    assert max(m.beat_gap_s.values()) < DEFAULT_BOUNDS.freeze_s
