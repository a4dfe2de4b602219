"""`perf bench sched messaging` (hackbench) and `perf bench sched pipe`, from Debian's linux-perf."""

from __future__ import annotations

import re
from pathlib import Path

from schedcp.bench.workload import Prepared, WorkloadOutputError, check_size, require_ok
from schedcp.models import CommandResult
from schedcp.models.bench import Metric, WorkloadInfo
from schedcp.models.vocabulary import Size
from schedcp.runner import CommandRunner

_TOTAL = re.compile(r"Total time:\s*([0-9.]+)\s*\[sec\]")
_USECS = re.compile(r"([0-9.]+)\s+usecs/op")
_OPS = re.compile(r"([0-9.]+)\s+ops/sec")
# messaging: groups x loops; each group is 20 senders + 20 receivers.
_MESSAGING_SIZES: dict[Size, tuple[int, int]] = {
    "tiny": (1, 50),
    "small": (2, 500),
    "medium": (4, 1000),
    "large": (8, 2000),
    "full": (16, 5000),
}
# pipe: round trips.
_PIPE_SIZES: dict[Size, int] = {
    "tiny": 20_000,
    "small": 200_000,
    "medium": 500_000,
    "large": 1_000_000,
    "full": 2_000_000,
}


class Messaging:
    """Groups of senders and receivers exchanging small messages over sockets: many short
    wakeups between communicating tasks, the classic pipeline/messaging scheduler test."""

    info = WorkloadInfo(
        name="messaging",
        version="1",
        summary="perf bench sched messaging: sender/receiver groups over sockets (hackbench)",
        workload_class="pipeline-messaging",
        metrics=[Metric(name="total_s", unit="s", better="lower", description="time to pass every message")],
        primary="total_s",
        sizes=list(_MESSAGING_SIZES),
    )

    def prepare(self, runner: CommandRunner, size: Size, build_dir: Path) -> Prepared:
        check_size(self.info, size)
        groups, loops = _MESSAGING_SIZES[size]
        argv = ["perf", "bench", "sched", "messaging", "-g", str(groups), "-l", str(loops)]
        return Prepared(argv=argv, timeout_s=600)

    def parse(self, result: CommandResult) -> dict[str, float]:
        require_ok(result, "perf bench sched messaging")
        m = _TOTAL.search(result.stdout)
        if not m:
            raise WorkloadOutputError("perf bench sched messaging printed no 'Total time'", result)
        return {"total_s": float(m.group(1))}


class Pipe:
    """Two tasks ping-ponging over a pipe: pure wakeup/context-switch cost between a pair."""

    info = WorkloadInfo(
        name="pipe",
        version="1",
        summary="perf bench sched pipe: two tasks ping-pong over a pipe",
        workload_class="pipeline-messaging",
        metrics=[
            Metric(name="usecs_per_op", unit="us", better="lower", description="round-trip cost"),
            Metric(name="ops_per_sec", unit="ops/s", better="higher", description="round trips per second"),
        ],
        primary="usecs_per_op",
        sizes=list(_PIPE_SIZES),
    )

    def prepare(self, runner: CommandRunner, size: Size, build_dir: Path) -> Prepared:
        check_size(self.info, size)
        return Prepared(argv=["perf", "bench", "sched", "pipe", "-l", str(_PIPE_SIZES[size])], timeout_s=600)

    def parse(self, result: CommandResult) -> dict[str, float]:
        require_ok(result, "perf bench sched pipe")
        usecs, ops = _USECS.search(result.stdout), _OPS.search(result.stdout)
        if not usecs or not ops:
            raise WorkloadOutputError("perf bench sched pipe printed no usecs/op or ops/sec", result)
        return {"usecs_per_op": float(usecs.group(1)), "ops_per_sec": float(ops.group(1))}
