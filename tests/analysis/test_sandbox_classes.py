"""The classifier on real benchmark workloads, profiled by `schedcp analyze workloads` in the sandbox.

What this asserts is what held in every recorded boot (docs/analysis.md, "Classification over
boots"), on a busy machine too: each workload's declared class is the top class, or the
classifier itself reports a close call that names it. Which of two close classes comes out on
top can depend on the machine's load; a confident wrong class would be a bug.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli.json_shape import assert_shape
from typer.testing import CliRunner

from schedcp.analysis.classify import CLOSE_MARGIN
from schedcp.cli.main import app
from schedcp.models.profile import WorkloadProfile

pytestmark = pytest.mark.sandbox

# A batch with a long tail, a request/response server, and a messaging pipeline: the three
# shapes the analysis engine was built for; tests/analysis/test_recorded_boots.py re-checks
# every workload at two sizes over the recorded boots.
WORKLOADS = ["long-tail-compress", "wakeup-latency", "messaging"]


def test_benchmark_workloads_get_their_declared_class(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'profiles.db'}"
    runner = CliRunner()
    res = runner.invoke(app, ["analyze", "workloads", *WORKLOADS, "--size", "tiny", "--db", db, "--json"])
    checks = json.loads(res.stdout)
    assert_shape("analyze-workloads", checks)
    table = json.dumps(checks, indent=1)
    assert [c["workload"] for c in checks] == WORKLOADS
    for check in checks:
        assert check["error"] is None, table
        assert check["found"] == check["declared"] or check["declared"] in check["close_call"], table
        assert check["close_call"] == [] or check["margin"] < CLOSE_MARGIN, table
        assert check["evidence"], f"{check['workload']}: a class without evidence\n{table}"
        assert check["bpf_cpu_pct"] is not None, f"{check['workload']}: no overhead figure"
        assert check["bpf_cpu_pct"] > 0
    assert res.exit_code == (0 if all(c["ok"] for c in checks) else 1), res.output
    stored = json.loads(runner.invoke(app, ["analyze", "list", "--db", db, "--json"]).stdout)["profiles"]
    assert len(stored) == len(WORKLOADS)
    for record in stored:
        shown = runner.invoke(app, ["analyze", "show", record["id"], "--db", db, "--json"])
        profile = WorkloadProfile.model_validate_json(shown.stdout)
        assert profile.where == "sandbox"
        assert profile.runq_latency is not None
        assert profile.runq_latency.summary.count > 0
        assert profile.summary
