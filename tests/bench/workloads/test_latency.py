"""The latency workloads: parsers on output captured in the sandbox, and wakeup_server natively.

The *.result.json files in tests/data/bench/ are CommandResults of real runs in the sandbox
(Debian 7.3 kernel under TCG, default scheduler), captured with each workload's own
prepare(); they keep argv, because the cyclictest parser checks the thread count against it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from schedcp.bench.workload import Workload, WorkloadOutputError, build_c_program, c_source
from schedcp.bench.workloads.latency import (
    Cyclictest,
    MixedInteractiveBatch,
    StressNgMix,
    WakeupLatency,
    latency_workloads,
    parse_stress_ng_metrics,
)
from schedcp.models import CommandResult
from schedcp.models.vocabulary import SIZES

DATA = Path(__file__).parents[2] / "data" / "bench"
NAMES = ["wakeup-latency", "mixed-interactive-batch", "cyclictest", "stress-ng-mix"]
CPU_US = 1000  # every captured server run burns 1 ms of CPU per request


def _workload(name: str) -> Workload:
    return {w.info.name: w for w in latency_workloads()}[name]


def _captured(name: str, size: str = "small") -> CommandResult:
    return CommandResult.model_validate_json((DATA / f"{name}-{size}.result.json").read_text())


def _with(result: CommandResult, **changes: object) -> CommandResult:
    return result.model_copy(update=changes)


# -- parsers on real output ------------------------------------------------------------------


@pytest.mark.parametrize("size", ["tiny", "small"])
@pytest.mark.parametrize("name", NAMES)
def test_every_declared_metric_is_parsed_finite_and_positive(name: str, size: str) -> None:
    workload = _workload(name)
    metrics = workload.parse(_captured(name, size))
    assert set(metrics) == {m.name for m in workload.info.metrics}
    assert workload.info.primary in metrics
    for key, value in metrics.items():
        assert math.isfinite(value), (key, value)
        assert value > 0, (key, value)


def test_workload_infos_are_consistent() -> None:
    infos = [w.info for w in latency_workloads()]
    assert [i.name for i in infos] == NAMES
    for info in infos:
        assert info.sizes == list(SIZES)
        assert info.default_size in info.sizes
        assert len({m.name for m in info.metrics}) == len(info.metrics)
        assert all(m.name.endswith(("_us", "_s", "rps")) for m in info.metrics)


def test_wakeup_latency_values_are_plausible() -> None:
    m = WakeupLatency().parse(_captured("wakeup-latency"))
    assert m["wakeup_p50_us"] <= m["wakeup_p99_us"] <= m["wakeup_p999_us"]
    assert m["request_p50_us"] <= m["request_p99_us"]
    # A request burns CPU_US of CPU time, so it cannot complete sooner than that.
    assert m["request_p50_us"] >= CPU_US
    # 2 vCPUs, 1 ms of CPU per request: at most 2000 requests per second.
    assert 0 < m["rps"] <= 2000


def test_mixed_interactive_batch_values_are_plausible() -> None:
    m = MixedInteractiveBatch().parse(_captured("mixed-interactive-batch"))
    assert CPU_US <= m["request_p50_us"] <= m["request_p99_us"]
    assert 0 < m["rps"] <= 2000
    assert m["hog_bogo_ops_s"] > 0


def test_mixed_hog_throughput_is_the_stress_ng_cpu_row() -> None:
    result = _captured("mixed-interactive-batch")
    expected = parse_stress_ng_metrics(result.stderr)["cpu"].bogo_ops_per_s
    assert MixedInteractiveBatch().parse(result)["hog_bogo_ops_s"] == expected


def test_cyclictest_combines_threads() -> None:
    result = _captured("cyclictest")
    m = Cyclictest().parse(result)
    assert m["latency_min_us"] <= m["latency_avg_us"] <= m["latency_max_us"]
    # The captured run: thread 0 Min 7 Avg 2877 Max 278775 over 2840 cycles, thread 1 Min 9
    # Avg 2595 Max 438058 over 3165 cycles (wide values run into the label: "Act:438058").
    assert m["latency_min_us"] == 7
    assert m["latency_max_us"] == 438058
    assert m["latency_avg_us"] == pytest.approx((2877 * 2840 + 2595 * 3165) / (2840 + 3165))


def test_stress_ng_mix_geomean() -> None:
    m = StressNgMix().parse(_captured("stress-ng-mix"))
    assert m["geomean_bogo_ops_s"] == pytest.approx(math.sqrt(m["cpu_bogo_ops_s"] * m["switch_bogo_ops_s"]))
    assert m["cpu_bogo_ops_s"] < m["geomean_bogo_ops_s"] < m["switch_bogo_ops_s"]


def test_stress_ng_rows_in_other_versions_formats() -> None:
    # Synthesized from the 0.15 layout: older versions label the rows "info:", newer ones may
    # append columns; header and "miscellaneous metrics" rows are not stressor rows.
    text = (
        "stress-ng: info:  [7] stressor       bogo ops real time  usr time  sys time   bogo ops/s\n"
        "stress-ng: info:  [7] cpu                 623      5.01      5.14      0.30       124.39         114.47\n"
        "stress-ng: metrc: [7] switch            20809      5.03      0.39      4.16      4138.94        4569.96"
        "         41.23          2048\n"
        "stress-ng: metrc: [7] switch            479142.57 nanosecs per context switch (pipe method)\n"
    )
    rows = parse_stress_ng_metrics(text)
    assert set(rows) == {"cpu", "switch"}
    assert rows["cpu"].bogo_ops == 623
    assert rows["cpu"].bogo_ops_per_s == 124.39
    assert rows["switch"].bogo_ops_per_cpu_s == 4569.96


# -- parsers rejecting what they cannot trust ------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_failed_and_timed_out_runs_are_errors(name: str) -> None:
    workload, result = _workload(name), _captured(name)
    with pytest.raises(WorkloadOutputError, match="exited with status 1") as info:
        workload.parse(_with(result, rc=1))
    assert info.value.result is not None
    with pytest.raises(WorkloadOutputError, match="timed out"):
        workload.parse(_with(result, timed_out=True, rc=-9))


@pytest.mark.parametrize("name", NAMES)
def test_garbage_and_empty_output_are_errors(name: str) -> None:
    workload, result = _workload(name), _captured(name)
    for stdout, stderr in (("", ""), ("hello\n", "Segmentation fault\n")):
        with pytest.raises(WorkloadOutputError) as info:
            workload.parse(_with(result, stdout=stdout, stderr=stderr))
        assert info.value.result is not None


@pytest.mark.parametrize("name", ["wakeup-latency", "mixed-interactive-batch"])
def test_truncated_server_json_is_an_error(name: str) -> None:
    result = _captured(name)
    with pytest.raises(WorkloadOutputError, match="not wakeup_server's JSON"):
        _workload(name).parse(_with(result, stdout=result.stdout[: len(result.stdout) // 2]))


@pytest.mark.parametrize("name", ["mixed-interactive-batch", "cyclictest", "stress-ng-mix"])
def test_stress_ng_output_cut_before_its_metrics_is_an_error(name: str) -> None:
    result = _captured(name)
    cut = result.stderr[: result.stderr.index("stress-ng: metrc:")]
    with pytest.raises(WorkloadOutputError, match="no --metrics-brief row"):
        _workload(name).parse(_with(result, stderr=cut))


def test_stress_ng_mix_without_the_switch_row_is_an_error() -> None:
    result = _captured("stress-ng-mix")
    stderr = "\n".join(line for line in result.stderr.splitlines() if " switch " not in line)
    with pytest.raises(WorkloadOutputError, match="row for switch"):
        StressNgMix().parse(_with(result, stderr=stderr))


def test_a_server_run_without_requests_is_an_error() -> None:
    result = _captured("wakeup-latency")
    report = json.loads(result.stdout)
    report["requests"] = 0
    report["rps"] = 0.0
    report["request_us"].update(count=0, p50=0, p90=0, p99=0, p999=0, max=0)
    with pytest.raises(WorkloadOutputError, match="no request completed"):
        WakeupLatency().parse(_with(result, stdout=json.dumps(report)))


def test_unordered_percentiles_are_an_error() -> None:
    result = _captured("wakeup-latency")
    report = json.loads(result.stdout)
    report["wakeup_us"]["p99"] = report["wakeup_us"]["max"] + 1
    with pytest.raises(WorkloadOutputError, match="not ordered"):
        WakeupLatency().parse(_with(result, stdout=json.dumps(report)))


def test_cyclictest_missing_a_thread_is_an_error() -> None:
    result = _captured("cyclictest")
    stdout = "\n".join(line for line in result.stdout.splitlines() if not line.startswith("T: 1 "))
    with pytest.raises(WorkloadOutputError, match="reported 1 threads, expected 2"):
        Cyclictest().parse(_with(result, stdout=stdout))


def test_the_servers_bad_option_exit_in_the_sandbox_is_an_error() -> None:
    result = CommandResult.model_validate_json((DATA / "wakeup-latency-bad-option.result.json").read_text())
    assert result.rc == 2
    assert "-m expects an integer" in result.stderr
    with pytest.raises(WorkloadOutputError, match="exited with status 2"):
        WakeupLatency().parse(result)


# -- prepare -----------------------------------------------------------------------------------


def _runtime_s(name: str, size: str) -> int:
    if name == "wakeup-latency":
        return WakeupLatency().params(size).runtime_s
    if name == "mixed-interactive-batch":
        return MixedInteractiveBatch().params(size).server.runtime_s
    if name == "cyclictest":
        return Cyclictest().params(size).duration_s
    return StressNgMix().params(size).timeout_s


class RecordingRunner:
    """A CommandRunner that only stages (prepare never runs anything)."""

    def __init__(self) -> None:
        self.staged: list[Path] = []

    def run(self, *args: object, **kwargs: object) -> CommandResult:
        raise AssertionError("prepare must not run commands")

    def stage(self, path: Path) -> str:
        self.staged.append(path)
        return f"/guest/{path.name}"


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", NAMES)
def test_prepare_builds_stages_and_allows_time(name: str, size: str, tmp_path: Path) -> None:
    runner = RecordingRunner()
    prepared = _workload(name).prepare(runner, size, tmp_path)  # type: ignore[arg-type]
    assert all(p.exists() for p in runner.staged)
    assert set(prepared.files.values()) <= set(prepared.argv)
    assert all(v.startswith("/guest/") for v in prepared.files.values())
    assert prepared.timeout_s >= 2 * _runtime_s(name, size) + 60
    if name == "cyclictest":
        assert "-p" not in prepared.argv, "the measured threads must stay SCHED_OTHER by default"


def test_an_unknown_size_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="has sizes"):
        WakeupLatency().prepare(RecordingRunner(), "huge", tmp_path)  # type: ignore[arg-type]


def test_the_rt_cyclictest_variant_asks_for_fifo(tmp_path: Path) -> None:
    prepared = Cyclictest(rt_priority=50).prepare(RecordingRunner(), "tiny", tmp_path)  # type: ignore[arg-type]
    assert prepared.argv[-3:] == ["--policy=fifo", "-p", "50"]


# -- wakeup_server natively on the host ------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_c_program(c_source("wakeup_server.c"), tmp_path_factory.mktemp("build"))


def _run_server(server: Path, *args: str, timeout: float = 30) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    proc = subprocess.run([str(server), *args], capture_output=True, text=True, timeout=timeout)
    return proc, time.monotonic() - t0


def test_server_compiles_without_warnings(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            "gcc",
            "-Wall",
            "-Wextra",
            "-O2",
            "-pthread",
            "-o",
            str(tmp_path / "x"),
            str(c_source("wakeup_server.c")),
            "-lm",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_server_json_report(server: Path) -> None:
    proc, _ = _run_server(server, "-m", "2", "-w", "2", "-r", "1", "-c", "200", "-s", "100", "-j")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report) >= {"wakeup_us", "request_us", "rps", "requests", "runtime_s", "config"}
    for key in ("wakeup_us", "request_us"):
        h = report[key]
        assert h["count"] > 0
        assert 0 <= h["p50"] <= h["p90"] <= h["p99"] <= h["p999"] <= h["max"], h
    assert report["request_us"]["p50"] >= 200  # each request burns 200 us of CPU
    assert report["requests"] == report["request_us"]["count"]
    assert report["runtime_s"] == pytest.approx(1.0, abs=0.1)
    assert report["rps"] == pytest.approx(report["requests"] / report["runtime_s"], rel=1e-3)
    assert report["config"] | {"online_cpus": 0} == {
        "message_threads": 2,
        "workers": 2,
        "runtime_s": 1,
        "cpu_us": 200,
        "sleep_us": 100,
        "online_cpus": 0,
    }
    command = CommandResult(argv=[str(server)], rc=0, stdout=proc.stdout, stderr=proc.stderr)
    assert set(WakeupLatency().parse(command)) == {m.name for m in WakeupLatency().info.metrics}


def test_server_text_report(server: Path) -> None:
    proc, _ = _run_server(server, "-m", "1", "-w", "1", "-r", "1", "-c", "100")
    assert proc.returncode == 0, proc.stderr
    assert "request latency (us)" in proc.stdout
    assert "requests/s" in proc.stdout


@pytest.mark.parametrize(
    "args",
    [["-m", "0"], ["-w", "abc"], ["-r", "1x"], ["-c", "-5"], ["-s"], ["-x"], ["extra"], ["-m", "256", "-w", "256"]],
)
def test_server_rejects_bad_options(server: Path, args: list[str]) -> None:
    proc, _ = _run_server(server, *args, "-r", "1")
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert proc.stderr.strip()


@pytest.mark.skipif(shutil.which("stress-ng") is None, reason="stress-ng is not installed (scripts/setup-host.sh)")
def test_server_stops_on_time_under_cpu_contention(server: Path) -> None:
    hogs = subprocess.Popen(
        ["stress-ng", "--cpu", "8", "--timeout", "20s", "--temp-path", "/tmp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        proc, wall = _run_server(server, "-m", "4", "-w", "8", "-r", "1", "-c", "20000", "-j")
    finally:
        os.killpg(hogs.pid, signal.SIGTERM)
        hogs.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert wall < 2.0, f"wakeup_server -r 1 took {wall:.2f} s beside 8 CPU hogs"
