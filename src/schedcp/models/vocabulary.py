"""The words every layer must agree on: workload classes and benchmark sizes.

A workload class is a search key. The classifier assigns it to a profile, a benchmark
workload declares the class it stands for, a policy's policy.toml lists the classes it suits
(and those it does not), and the repository ranks policies and results by it. If the
classifier can say a name and a policy cannot (or the other way round), the planner's search
silently finds nothing, so there is exactly one list, here, and every other place validates
against it. docs/classes.md is generated from `CLASS_DESCRIPTIONS` and `SIZE_DESCRIPTIONS`
(with the workloads and policies that use each class) by `python -m schedcp.bench.classdoc`,
and checked by a test.
"""

from __future__ import annotations

from typing import Literal, get_args

WorkloadClass = Literal[
    "cpu-bound-batch",
    "batch-long-tail",
    "latency-critical-server",
    "pipeline-messaging",
    "mixed-interactive-batch",
    "periodic-soft-realtime",
    "io-bound",
    "fork-heavy-build",
    "multi-tenant",
]
WORKLOAD_CLASSES: tuple[WorkloadClass, ...] = get_args(WorkloadClass)

CLASS_DESCRIPTIONS: dict[WorkloadClass, str] = {
    "cpu-bound-batch": (
        "Tasks that compute for long stretches without blocking (compression, encoding, simulations): "
        "what matters is total throughput, so long slices and few switches win."
    ),
    "batch-long-tail": (
        "A batch of jobs of one kind released together, with skewed sizes (a few long jobs among many "
        "short ones): the makespan depends on starting the long job early. Refines cpu-bound-batch."
    ),
    "latency-critical-server": (
        "Threads woken by requests, each doing a little work and waiting again (web servers, RPC, "
        "databases): wakeup-to-run latency and request tail latency matter more than throughput."
    ),
    "pipeline-messaging": (
        "Tasks that hand messages to each other as fast as they can (pipes, queues, actor systems): "
        "very many short voluntary switches; waking the partner quickly, ideally on a warm CPU, wins."
    ),
    "mixed-interactive-batch": (
        "Latency-sensitive threads beside CPU hogs on the same machine: the interactive side must "
        "preempt the batch side without starving it."
    ),
    "periodic-soft-realtime": (
        "Tasks woken by timers at a fixed period that do a little work each time (audio, control "
        "loops, cyclictest): lateness of each period matters, throughput does not."
    ),
    "io-bound": (
        "Tasks that mostly wait for storage or network (PSI io stalls, idle CPUs): the CPU scheduler "
        "has little to win; do not let it add latency when they wake."
    ),
    "fork-heavy-build": (
        "A stream of short-lived processes of many names (compilers, linkers, make): fork, exec and "
        "exit dominate; placing new tasks quickly on idle CPUs wins. Refines cpu-bound-batch."
    ),
    "multi-tenant": (
        "The work is split between cgroups (containers, tenants) with cpu.weight: each should get its "
        "weight's share however many tasks it runs. Ranks above the class of what the tenants run."
    ),
}

# Names policy.toml files used before the vocabulary (schedcp 0.1, November 2026), and the class
# each meant; None: no class of its own (a policy's general-purpose character is its summary's job).
# Only stored versions are read with this map: a policy folder must use the names above.
LEGACY_CLASSES: dict[str, WorkloadClass | None] = {
    "throughput": "cpu-bound-batch",
    "throughput-server": None,
    "build": "fork-heavy-build",
    "containers": "multi-tenant",
    "fairness": None,
    "latency-critical": "latency-critical-server",
    "interactive": "mixed-interactive-batch",
    "mixed-priority": "mixed-interactive-batch",
    "general-purpose": None,
    "cache-heavy": None,
}

Size = Literal["tiny", "small", "medium", "large", "full"]
SIZES: tuple[Size, ...] = get_args(Size)
DEFAULT_SIZE: Size = "small"
SIZE_DESCRIPTIONS: dict[Size, str] = {
    "tiny": "a few seconds in the emulated sandbox: for tests",
    "small": "about a minute at most in the emulated 2-vCPU sandbox: the default",
    "medium": "several minutes in the sandbox",
    "large": "tens of minutes in the sandbox; for a real host",
    "full": "the real thing (e.g. a kernel build); for a real host",
}

TunableValue = int | bool | str
"""A policy tunable's value: an integer (u32/u64/s32/s64, in the unit its name says), a bool, or
a short string (str16: a task-name prefix)."""
