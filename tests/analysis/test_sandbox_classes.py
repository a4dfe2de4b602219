"""The classifier on real benchmark workloads, run under the collector in the sandbox VM."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedcp.analysis.workloads import check_workloads, render_checks
from schedcp.sandbox import Sandbox

pytestmark = pytest.mark.sandbox

# A batch with a long tail, a request/response server, and a messaging pipeline: the three
# shapes the issue names; the recordings in tests/data/analysis/profiles cover the rest.
WORKLOADS = ["long-tail-compress", "wakeup-latency", "messaging"]


def test_benchmark_workloads_get_their_declared_class(vm: Sandbox, tmp_path: Path) -> None:
    checks = check_workloads(vm, where="sandbox", names=WORKLOADS, size="tiny", build_dir=tmp_path)
    table = render_checks(checks)
    assert [c.workload for c in checks] == WORKLOADS
    for check in checks:
        assert check.error is None, table
        assert check.ok, table
        assert check.confidence is not None
        assert check.confidence >= 0.5, table
        assert check.evidence, f"{check.workload}: a class without evidence\n{table}"
        assert check.bpf_cpu_pct is not None, f"{check.workload}: no overhead figure"
        assert check.bpf_cpu_pct > 0
        assert check.profile is not None
        assert check.profile.runq_latency is not None
        assert check.profile.runq_latency.summary.count > 0
        assert check.profile.summary
        assert check.profile.where == "sandbox"
    assert f"{len(WORKLOADS)} of {len(WORKLOADS)} workloads got their declared class" in table
