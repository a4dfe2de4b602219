"""Workloads by name: what `schedcp bench list` shows and `bench run NAME` runs."""

from __future__ import annotations

from schedcp.bench.variants import variant_workload
from schedcp.bench.workload import Workload
from schedcp.bench.workloads.build import Build
from schedcp.bench.workloads.cgroup import CgroupWeights
from schedcp.bench.workloads.latency import latency_workloads
from schedcp.bench.workloads.longtail import longtail_workloads
from schedcp.bench.workloads.perf import Messaging, Pipe
from schedcp.errors import SchedcpError


def all_workloads() -> dict[str, Workload]:
    workloads: list[Workload] = [
        *latency_workloads(),
        *longtail_workloads(),
        Messaging(),
        Pipe(),
        Build(),
        CgroupWeights(),
    ]
    return {w.info.name: w for w in workloads}


def get_workload(name: str) -> Workload:
    """A workload by name: a fixed one (`bench list`), or a generated variant (long-tail-v1-3)."""
    workloads = all_workloads()
    if name not in workloads and (variant := variant_workload(name)) is not None:
        return variant
    if name not in workloads:
        raise SchedcpError(f"no workload named {name!r}; `schedcp bench list` shows them: {', '.join(workloads)}")
    return workloads[name]
