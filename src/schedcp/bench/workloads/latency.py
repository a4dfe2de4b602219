"""Latency-oriented workloads: request/response wakeups, interactive work beside batch hogs,
periodic soft real-time timers, and a CPU + context-switch stress mix.

Every workload here runs inside the sandbox (or on a host with sched_ext) through a
CommandRunner. Sizes: "tiny" (a few seconds, for tests), "small" (the default, about 10 s of
measurement under emulation), "medium", "large", and "full" (values meant for a real host).
The sandbox is emulated, so numbers are only comparable between runs in the same sandbox
(for instance a policy against the default scheduler in the same session), never to
numbers from real hardware.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from schedcp.bench.workload import (
    Prepared,
    Workload,
    WorkloadOutputError,
    build_c_program,
    c_source,
    check_size,
    guest_file,
    require_ok,
)
from schedcp.models import CommandResult
from schedcp.models.bench import Metric, WorkloadInfo
from schedcp.models.vocabulary import SIZES, Size
from schedcp.runner import CommandRunner

SERVER_SOURCE = "wakeup_server.c"
HOGS_SCRIPT = "with_cpu_hogs.sh"
# Wall time on top of a run's own duration before the runner kills it: program start-up and
# stress-ng forking its hogs take seconds under emulation.
TIMEOUT_SLACK_S = 120.0


# -- output of wakeup_server -j --------------------------------------------------------------


class LatencySummary(BaseModel):
    """One histogram's summary, in microseconds, as wakeup_server prints it."""

    model_config = ConfigDict(extra="ignore")

    p50: float
    p90: float
    p99: float
    p999: float
    max: float
    count: int


class ServerReport(BaseModel):
    """What `wakeup_server -j` prints: one JSON object."""

    model_config = ConfigDict(extra="ignore")

    wakeup_us: LatencySummary
    request_us: LatencySummary
    rps: float
    requests: int
    runtime_s: float
    config: dict[str, int]


def parse_server_report(result: CommandResult, what: str) -> ServerReport:
    """The server's JSON from stdout; an error unless it holds at least one measured request."""
    text = result.stdout.strip()
    try:
        report = ServerReport.model_validate(json.loads(text))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise WorkloadOutputError(f"{what}: stdout is not wakeup_server's JSON report ({exc})", result) from exc
    if report.requests <= 0 or report.request_us.count <= 0 or report.wakeup_us.count <= 0 or report.rps <= 0:
        raise WorkloadOutputError(
            f"{what}: no request completed in {report.runtime_s:.1f} s; the threads never ran (a stalled scheduler?)",
            result,
        )
    for name, summary in (("wakeup_us", report.wakeup_us), ("request_us", report.request_us)):
        values = [summary.p50, summary.p90, summary.p99, summary.p999, summary.max]
        if any(v < 0 or not math.isfinite(v) for v in values) or values != sorted(values):
            raise WorkloadOutputError(f"{what}: {name} percentiles are not ordered: {values}", result)
    return report


@dataclass(frozen=True)
class ServerParams:
    """One wakeup_server configuration (its command-line options)."""

    message_threads: int
    workers: int
    runtime_s: int
    cpu_us: int = 1000
    sleep_us: int = 2000

    def argv(self, binary: str) -> list[str]:
        return [
            binary,
            "-m",
            str(self.message_threads),
            "-w",
            str(self.workers),
            "-r",
            str(self.runtime_s),
            "-c",
            str(self.cpu_us),
            "-s",
            str(self.sleep_us),
            "-j",
        ]


def _stage_server(runner: CommandRunner, build_dir: Path) -> str:
    return runner.stage(build_c_program(c_source(SERVER_SOURCE), build_dir))


# -- stress-ng --metrics-brief ---------------------------------------------------------------


@dataclass(frozen=True)
class StressorMetrics:
    """One stressor's row of stress-ng's --metrics-brief table (all instances together)."""

    bogo_ops: int
    real_s: float
    usr_s: float
    sys_s: float
    bogo_ops_per_s: float  # over real (wall) time
    bogo_ops_per_cpu_s: float  # over usr + sys time


# 0.15 prints the table as "stress-ng: metrc: [PID] cpu  4674  3.00  2.63  0.05  1556.01  1743.42";
# older versions used "info:" for the same rows, and newer ones may append more columns.
_STRESS_NG_ROW = re.compile(
    r"^stress-ng: (?:metrc|info): +\[\d+\] +(?P<name>[a-z][a-z0-9-]*) +(?P<ops>\d+)"
    r" +(?P<real>[\d.]+) +(?P<usr>[\d.]+) +(?P<sys>[\d.]+) +(?P<rate>[\d.]+) +(?P<cpu_rate>[\d.]+)(?: |$)",
    re.MULTILINE,
)


def parse_stress_ng_metrics(text: str) -> dict[str, StressorMetrics]:
    """The per-stressor rows of --metrics-brief output, by stressor name."""
    rows: dict[str, StressorMetrics] = {}
    for m in _STRESS_NG_ROW.finditer(text):
        rows[m["name"]] = StressorMetrics(
            bogo_ops=int(m["ops"]),
            real_s=float(m["real"]),
            usr_s=float(m["usr"]),
            sys_s=float(m["sys"]),
            bogo_ops_per_s=float(m["rate"]),
            bogo_ops_per_cpu_s=float(m["cpu_rate"]),
        )
    return rows


def _require_stressors(result: CommandResult, what: str, names: list[str]) -> dict[str, StressorMetrics]:
    rows = parse_stress_ng_metrics(result.stderr)
    missing = [n for n in names if n not in rows]
    if missing:
        raise WorkloadOutputError(f"{what}: stress-ng printed no --metrics-brief row for {', '.join(missing)}", result)
    for name in names:
        if rows[name].bogo_ops <= 0 or rows[name].bogo_ops_per_s <= 0:
            raise WorkloadOutputError(f"{what}: stress-ng's {name} stressor did no work", result)
    return rows


def _hogged(script: str, hogs: int, max_s: float, argv: list[str]) -> list[str]:
    """argv run beside `hogs` stress-ng CPU hogs (0: one per online CPU) by the guest script."""
    return ["sh", script, str(hogs), str(math.ceil(max_s)), "--", *argv]


# -- wakeup-latency --------------------------------------------------------------------------

_WAKEUP_SIZES: Mapping[Size, ServerParams] = {
    "tiny": ServerParams(message_threads=1, workers=2, runtime_s=2),
    "small": ServerParams(message_threads=2, workers=2, runtime_s=10),
    "medium": ServerParams(message_threads=2, workers=4, runtime_s=20),
    "large": ServerParams(message_threads=4, workers=4, runtime_s=40),
    "full": ServerParams(message_threads=4, workers=8, runtime_s=30),
}


class WakeupLatency:
    """Request/response wakeup latency, in the spirit of schbench (our own program).

    wakeup_server's message threads hand requests to their worker threads by futex wakeups:
    each round a message thread wakes each of its workers, every worker burns `cpu_us` of
    CPU time, and the message thread waits for all of them, then thinks for `sleep_us`
    before the next round. It reports the workers' wakeup latency (post to running) and the
    requests' end-to-end latency (post until the message thread saw the completion).

    Primary metric: request p99. It is what a client of a latency-critical service sees,
    and it contains the wakeup latency of both the worker and the message thread plus any
    time the worker lost to preemption mid-request, so a policy cannot improve it by waking
    workers eagerly and then preempting them; wakeup p99 alone could be gamed that way.
    """

    def __init__(self) -> None:
        self.info = WorkloadInfo(
            name="wakeup-latency",
            version="1",
            summary="message threads wake worker threads with requests; wakeup and request latency percentiles",
            workload_class="latency-critical-server",
            metrics=[
                Metric(name="wakeup_p50_us", unit="us", better="lower", description="median worker wakeup latency"),
                Metric(name="wakeup_p99_us", unit="us", better="lower", description="99th percentile wakeup latency"),
                Metric(
                    name="wakeup_p999_us", unit="us", better="lower", description="99.9th percentile wakeup latency"
                ),
                Metric(name="request_p50_us", unit="us", better="lower", description="median request latency"),
                Metric(name="request_p99_us", unit="us", better="lower", description="99th percentile request latency"),
                Metric(name="rps", unit="requests/s", better="higher", description="completed requests per second"),
            ],
            primary="request_p99_us",
            sizes=list(SIZES),
        )

    def params(self, size: Size) -> ServerParams:
        check_size(self.info, size)
        return _WAKEUP_SIZES[size]

    def prepare(self, runner: CommandRunner, size: Size, build_dir: Path) -> Prepared:
        params = self.params(size)
        binary = _stage_server(runner, build_dir)
        return Prepared(
            argv=params.argv(binary),
            files={"wakeup_server": binary},
            timeout_s=2 * params.runtime_s + TIMEOUT_SLACK_S,
        )

    def parse(self, result: CommandResult) -> dict[str, float]:
        require_ok(result, self.info.name)
        report = parse_server_report(result, self.info.name)
        return {
            "wakeup_p50_us": report.wakeup_us.p50,
            "wakeup_p99_us": report.wakeup_us.p99,
            "wakeup_p999_us": report.wakeup_us.p999,
            "request_p50_us": report.request_us.p50,
            "request_p99_us": report.request_us.p99,
            "rps": report.rps,
        }


# -- mixed-interactive-batch -----------------------------------------------------------------


@dataclass(frozen=True)
class MixedParams:
    hogs: int  # stress-ng CPU hogs; 0 means one per online CPU
    server: ServerParams


_MIXED_SIZES: Mapping[Size, MixedParams] = {
    "tiny": MixedParams(hogs=2, server=ServerParams(message_threads=1, workers=2, runtime_s=2)),
    "small": MixedParams(hogs=4, server=ServerParams(message_threads=2, workers=2, runtime_s=10)),
    "medium": MixedParams(hogs=4, server=ServerParams(message_threads=2, workers=4, runtime_s=20)),
    "large": MixedParams(hogs=8, server=ServerParams(message_threads=4, workers=4, runtime_s=40)),
    "full": MixedParams(hogs=0, server=ServerParams(message_threads=4, workers=8, runtime_s=30)),
}


class MixedInteractiveBatch:
    """The wakeup-latency server (which sleeps between rounds) beside stress-ng CPU hogs.

    The guest script with_cpu_hogs.sh starts `stress-ng --cpu HOGS --cpu-method int64`,
    waits until every hog runs, runs the server, then stops the hogs with SIGINT so their
    --metrics-brief row covers about the same window. The hogs also run for the few
    hundred milliseconds the script needs around the server, so hog throughput is a
    slightly diluted measure of the contended window (equally so for every policy).

    Primary metric: server request p99, the interactive side a policy for this class is
    meant to protect; hog throughput is reported so that protecting it by starving the
    batch work shows up.
    """

    def __init__(self) -> None:
        self.info = WorkloadInfo(
            name="mixed-interactive-batch",
            version="1",
            summary="wakeup_server beside stress-ng CPU hogs: interactive latency and batch throughput",
            workload_class="mixed-interactive-batch",
            metrics=[
                Metric(name="request_p50_us", unit="us", better="lower", description="server median request latency"),
                Metric(name="request_p99_us", unit="us", better="lower", description="server 99th pct request latency"),
                Metric(name="wakeup_p99_us", unit="us", better="lower", description="server 99th pct wakeup latency"),
                Metric(name="rps", unit="requests/s", better="higher", description="server requests per second"),
                Metric(
                    name="hog_bogo_ops_s",
                    unit="bogo-ops/s",
                    better="higher",
                    description="stress-ng cpu hogs' bogo operations per second of wall time, all hogs together",
                ),
            ],
            primary="request_p99_us",
            sizes=list(SIZES),
        )

    def params(self, size: Size) -> MixedParams:
        check_size(self.info, size)
        return _MIXED_SIZES[size]

    def prepare(self, runner: CommandRunner, size: Size, build_dir: Path) -> Prepared:
        params = self.params(size)
        binary = _stage_server(runner, build_dir)
        script = runner.stage(guest_file(HOGS_SCRIPT))
        max_s = params.server.runtime_s + TIMEOUT_SLACK_S
        return Prepared(
            argv=_hogged(script, params.hogs, max_s, params.server.argv(binary)),
            files={"wakeup_server": binary, "with_cpu_hogs": script},
            timeout_s=2 * params.server.runtime_s + TIMEOUT_SLACK_S,
        )

    def parse(self, result: CommandResult) -> dict[str, float]:
        require_ok(result, self.info.name)
        report = parse_server_report(result, self.info.name)
        hog = _require_stressors(result, self.info.name, ["cpu"])["cpu"]
        return {
            "request_p50_us": report.request_us.p50,
            "request_p99_us": report.request_us.p99,
            "wakeup_p99_us": report.wakeup_us.p99,
            "rps": report.rps,
            "hog_bogo_ops_s": hog.bogo_ops_per_s,
        }


# -- cyclictest ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CyclictestParams:
    threads: int
    interval_us: int
    duration_s: int
    hogs: int  # 0 means one per online CPU


_CYCLICTEST_SIZES: Mapping[Size, CyclictestParams] = {
    "tiny": CyclictestParams(threads=1, interval_us=1000, duration_s=2, hogs=2),
    "small": CyclictestParams(threads=2, interval_us=1000, duration_s=10, hogs=2),
    "medium": CyclictestParams(threads=2, interval_us=1000, duration_s=20, hogs=4),
    "large": CyclictestParams(threads=4, interval_us=1000, duration_s=40, hogs=4),
    "full": CyclictestParams(threads=8, interval_us=1000, duration_s=60, hogs=0),
}

# "T: 0 (  176) P: 0 I:1000 C:   2451 Min:      4 Act:  165 Avg: 1407 Max:   87257"
_CYCLICTEST_ROW = re.compile(
    r"^T: *(?P<thread>\d+) +\( *\d+\) +P: *(?P<prio>\d+) +I: *(?P<interval>\d+) +C: *(?P<count>\d+)"
    r" +Min: *(?P<min>\d+) +Act: *\d+ +Avg: *(?P<avg>\d+) +Max: *(?P<max>\d+)\s*$",
    re.MULTILINE,
)


class Cyclictest:
    """Periodic timer wakeups (rt-tests' cyclictest) under CPU load from stress-ng hogs.

    cyclictest's threads sleep until an absolute time every `interval_us` and record how
    late they woke. By default the measured threads are normal SCHED_OTHER tasks (no -p):
    sched_ext only schedules tasks of the fair class, so a cyclictest thread at real-time
    priority would be scheduled by the kernel's RT class and bypass the policy under test
    entirely. Without competing load every thread finds an idle CPU and the numbers say
    little about the policy, hence the hogs beside it (with_cpu_hogs.sh).
    `Cyclictest(rt_priority=N)` gives the SCHED_FIFO variant, a reference that the policy
    should not affect.

    Metrics are over all threads: min of mins, max of maxes, and the average weighted by
    each thread's cycle count. Primary metric: max, the worst deadline miss, which is what
    soft real-time work (audio, control loops) fails on.
    """

    def __init__(self, rt_priority: int | None = None) -> None:
        self.rt_priority = rt_priority
        name = "cyclictest" if rt_priority is None else "cyclictest-fifo"
        self.info = WorkloadInfo(
            name=name,
            version="1",
            summary="cyclictest timer wakeup latency beside stress-ng CPU hogs"
            + (" (SCHED_OTHER threads)" if rt_priority is None else f" (SCHED_FIFO priority {rt_priority})"),
            workload_class="periodic-soft-realtime",
            metrics=[
                Metric(name="latency_min_us", unit="us", better="lower", description="smallest wakeup lateness"),
                Metric(
                    name="latency_avg_us", unit="us", better="lower", description="mean wakeup lateness (all cycles)"
                ),
                Metric(name="latency_max_us", unit="us", better="lower", description="largest wakeup lateness"),
                Metric(
                    name="hog_bogo_ops_s",
                    unit="bogo-ops/s",
                    better="higher",
                    description="stress-ng cpu hogs' bogo operations per second of wall time",
                ),
            ],
            primary="latency_max_us",
            sizes=list(SIZES),
        )

    def params(self, size: Size) -> CyclictestParams:
        check_size(self.info, size)
        return _CYCLICTEST_SIZES[size]

    def prepare(self, runner: CommandRunner, size: Size, build_dir: Path) -> Prepared:
        p = self.params(size)
        script = runner.stage(guest_file(HOGS_SCRIPT))
        argv = ["cyclictest", "-q", "-t", str(p.threads), "-i", str(p.interval_us), "-d", "0", "-D", str(p.duration_s)]
        if self.rt_priority is not None:
            argv += ["--policy=fifo", "-p", str(self.rt_priority)]
        return Prepared(
            argv=_hogged(script, p.hogs, p.duration_s + TIMEOUT_SLACK_S, argv),
            files={"with_cpu_hogs": script},
            timeout_s=2 * p.duration_s + TIMEOUT_SLACK_S,
        )

    def parse(self, result: CommandResult) -> dict[str, float]:
        require_ok(result, self.info.name)
        rows = list(_CYCLICTEST_ROW.finditer(result.stdout))
        if not rows:
            raise WorkloadOutputError(f"{self.info.name}: cyclictest printed no per-thread summary line", result)
        expected = _option_value(result.argv, "-t", after="cyclictest")
        if expected is not None and len(rows) != expected:
            raise WorkloadOutputError(
                f"{self.info.name}: cyclictest reported {len(rows)} threads, expected {expected}", result
            )
        counts = [int(r["count"]) for r in rows]
        if min(counts) <= 0:
            raise WorkloadOutputError(f"{self.info.name}: a cyclictest thread completed no cycle", result)
        hog = _require_stressors(result, self.info.name, ["cpu"])["cpu"]
        return {
            "latency_min_us": float(min(int(r["min"]) for r in rows)),
            "latency_avg_us": sum(int(r["avg"]) * c for r, c in zip(rows, counts, strict=True)) / sum(counts),
            "latency_max_us": float(max(int(r["max"]) for r in rows)),
            "hog_bogo_ops_s": hog.bogo_ops_per_s,
        }


def _option_value(argv: list[str], option: str, after: str) -> int | None:
    """The integer following `option` in argv, looking only past the program named `after`."""
    try:
        start = next(i for i, a in enumerate(argv) if Path(a).name == after)
    except StopIteration:
        return None
    for i in range(start + 1, len(argv) - 1):
        if argv[i] == option and argv[i + 1].isdigit():
            return int(argv[i + 1])
    return None


# -- stress-ng-mix ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StressMixParams:
    cpu: int  # 0 means one per online CPU (stress-ng's own convention)
    switch: int
    timeout_s: int


_STRESS_MIX_SIZES: Mapping[Size, StressMixParams] = {
    "tiny": StressMixParams(cpu=1, switch=1, timeout_s=2),
    "small": StressMixParams(cpu=2, switch=2, timeout_s=10),
    "medium": StressMixParams(cpu=4, switch=4, timeout_s=20),
    "large": StressMixParams(cpu=4, switch=4, timeout_s=40),
    "full": StressMixParams(cpu=0, switch=0, timeout_s=60),
}


class StressNgMix:
    """stress-ng's cpu stressor (pure computation) beside its switch stressor (pairs of
    processes passing messages over pipes, a context switch per message).

    Metrics: each stressor's bogo-ops per second of wall time, and their geometric mean.
    Primary metric: the geometric mean. The two rates differ by orders of magnitude and
    their bogo ops are different units, so a sum would be the switch rate alone; the ratio
    of two runs' geometric means is the geometric mean of the per-stressor ratios, so it
    weighs a 10 % change in either stressor equally and rewards neither starving the
    compute hogs for fast switching nor the reverse.
    """

    def __init__(self) -> None:
        self.info = WorkloadInfo(
            name="stress-ng-mix",
            version="1",
            summary="stress-ng cpu + switch stressors: batch throughput and context-switch rate",
            workload_class="cpu-bound-batch",
            metrics=[
                Metric(
                    name="cpu_bogo_ops_s",
                    unit="bogo-ops/s",
                    better="higher",
                    description="cpu stressor (int64 method) bogo ops per second of wall time",
                ),
                Metric(
                    name="switch_bogo_ops_s",
                    unit="bogo-ops/s",
                    better="higher",
                    description="switch stressor messages (context switches) per second of wall time",
                ),
                Metric(
                    name="geomean_bogo_ops_s",
                    unit="bogo-ops/s",
                    better="higher",
                    description="geometric mean of the two rates",
                ),
            ],
            primary="geomean_bogo_ops_s",
            sizes=list(SIZES),
        )

    def params(self, size: Size) -> StressMixParams:
        check_size(self.info, size)
        return _STRESS_MIX_SIZES[size]

    def prepare(self, runner: CommandRunner, size: Size, build_dir: Path) -> Prepared:
        p = self.params(size)
        argv = [
            "stress-ng",
            "--cpu",
            str(p.cpu),
            "--cpu-method",
            "int64",
            "--switch",
            str(p.switch),
            "--timeout",
            f"{p.timeout_s}s",
            "--metrics-brief",
            "--temp-path",
            "/tmp",
        ]
        return Prepared(argv=argv, timeout_s=2 * p.timeout_s + TIMEOUT_SLACK_S)

    def parse(self, result: CommandResult) -> dict[str, float]:
        require_ok(result, self.info.name)
        rows = _require_stressors(result, self.info.name, ["cpu", "switch"])
        cpu, switch = rows["cpu"].bogo_ops_per_s, rows["switch"].bogo_ops_per_s
        return {
            "cpu_bogo_ops_s": cpu,
            "switch_bogo_ops_s": switch,
            "geomean_bogo_ops_s": math.sqrt(cpu * switch),
        }


def latency_workloads() -> list[Workload]:
    """One of each workload in this module, for the registry."""
    return [WakeupLatency(), MixedInteractiveBatch(), Cyclictest(), StressNgMix()]
