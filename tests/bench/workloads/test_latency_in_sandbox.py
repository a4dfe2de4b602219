"""wakeup-latency end to end in the sandbox: build on the host, stage, run in the guest, parse."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from schedcp.bench.workloads.latency import WakeupLatency
from schedcp.sandbox import Sandbox

pytestmark = pytest.mark.sandbox


def test_wakeup_latency_tiny_runs_in_the_sandbox(vm: Sandbox, tmp_path: Path) -> None:
    workload = WakeupLatency()
    prepared = workload.prepare(vm, "tiny", tmp_path)
    result = vm.run(prepared.argv, timeout=prepared.timeout_s)
    metrics = workload.parse(result)
    assert set(metrics) == {m.name for m in workload.info.metrics}
    for name, value in metrics.items():
        assert math.isfinite(value), (name, value)
        assert value > 0, (name, value)
    # The server stops at its deadline: 2 s of runtime, plus start-up under emulation.
    assert result.duration_s < 2 + 5, result.duration_s
