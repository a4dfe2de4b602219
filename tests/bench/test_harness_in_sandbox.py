"""The benchmark harness on the real sandbox: default vs fifo, complete and plausible records."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cli.json_shape import assert_shape
from typer.testing import CliRunner

from schedcp.bench.harness import run_ab
from schedcp.bench.registry import get_workload
from schedcp.bench.report import load_json, save_json
from schedcp.bpf import loader
from schedcp.bpf.build import BuiltPolicy
from schedcp.cli.main import app
from schedcp.config import Settings
from schedcp.errors import PolicyEjected
from schedcp.sandbox import Sandbox

pytestmark = pytest.mark.sandbox
Build = Callable[..., BuiltPolicy]


@pytest.mark.parametrize("workload", ["wakeup-latency", "long-tail-compress"])
def test_default_vs_fifo_record_is_complete(
    workload: str, vm: Sandbox, build: Build, settings: Settings, tmp_path: Path
) -> None:
    assert vm.info is not None
    fifo = build("fifo")
    result = run_ab(
        vm, get_workload(workload), "tiny", settings.cache_dir / "bench-build", candidate=fifo, repeat=2, boot=vm.info
    )
    assert [s.side for s in result.samples] == ["baseline", "candidate"] * 3
    assert result.emulated == (vm.info.accel == "tcg")
    assert result.candidate is not None
    assert result.candidate.object_sha256 == fifo.sha256
    names = {m.name for m in get_workload(workload).info.metrics}
    for sample in result.samples:
        assert set(sample.metrics) == names
        assert all(v > 0 for v in sample.metrics.values()), sample.metrics
        if sample.side == "candidate":
            # The policy really scheduled the candidate runs.
            assert sample.scheduler_after_run == "enabled:fifo"
            assert sample.policy_stats["nr_enqueued"] + sample.policy_stats["nr_direct_dispatched"] > 0
        else:
            assert sample.scheduler_after_run is None
    for metric in result.metrics:
        assert metric.baseline.n == 2
        assert metric.candidate is not None
        assert metric.comparison is not None
        assert metric.comparison.ratio > 0
    assert load_json(save_json(result, tmp_path / "r.json")) == result
    assert loader.read_state(vm).state == "disabled"


def test_ejection_during_a_benchmark_is_reported_as_an_ejection(vm: Sandbox, build: Build, settings: Settings) -> None:
    with pytest.raises(PolicyEjected, match="runnable task stall"):
        run_ab(vm, get_workload("messaging"), "tiny", settings.cache_dir / "bench-build", candidate=build("stall"))
    assert loader.read_state(vm).state == "disabled"
    assert vm.ping()


def test_build_workload_builds_in_the_guest(vm: Sandbox, settings: Settings) -> None:
    result = run_ab(
        vm, get_workload("build"), "tiny", settings.cache_dir / "bench-build", repeat=1, compare_candidate=False
    )
    assert result.metric("wall_s").baseline.median > 0


def test_cli_bench_run_writes_json_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "msg.json"
    args = [
        "bench",
        "run",
        "messaging",
        "--policy",
        "fifo",
        "--size",
        "tiny",
        "--repeat",
        "2",
        "--plot",
        "-o",
        str(out),
    ]
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    printed = json.loads(res.stdout)
    assert_shape("bench-run", printed)
    data = json.loads(out.read_text())
    assert printed["result"] == data
    assert printed["json"] == str(out)
    assert data["workload"]["name"] == "messaging"
    assert data["candidate"]["name"] == "fifo"
    assert Path(printed["plot"]) == out.with_suffix(".png")
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
