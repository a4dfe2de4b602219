"""What an agent needs to know about the machine before it picks a scheduler: the kernel, whether
it has sched_ext, whether the sandbox can run, the CPU topology, and what schedules now.

Everything here reads /proc and /sys only; nothing boots and nothing changes. A part that cannot
be read (no sandbox kernel yet, a container without /sys) is reported as such instead of
failing the whole answer: the agent still learns the rest.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from pydantic import BaseModel, Field

from schedcp.errors import SchedcpError
from schedcp.models.deployment import SchedulerStatus
from schedcp.service.context import Context
from schedcp.service.runtime import status
from schedcp.service.sandbox import SandboxInfo, info

SYS_CPU = Path("/sys/devices/system/cpu")


class CpuTopology(BaseModel):
    """The CPUs a scheduler places tasks on, grouped the way placement decisions care about."""

    online: list[int] = Field(description="online CPU ids")
    packages: int = Field(description="physical packages (sockets)")
    cores: int = Field(description="physical cores")
    threads_per_core: int = Field(description="SMT siblings per core (1: no SMT)")
    llc_groups: list[list[int]] = Field(
        description="CPUs sharing a last-level cache: a task moved within a group keeps its warm cache"
    )
    numa_nodes: int


class SystemInfo(BaseModel):
    host: str
    kernel: str = Field(description="the host kernel's release")
    arch: str
    host_sched_ext: bool = Field(description="this kernel has sched_ext: policies can be deployed here")
    scheduler: SchedulerStatus | None = Field(None, description="what schedules this host now")
    scheduler_error: str | None = None
    sandbox: SandboxInfo | None = Field(None, description="the sched_ext VM schedcp verifies and benchmarks in")
    sandbox_error: str | None = Field(None, description="why the sandbox cannot run here, and what to do")
    cpus: CpuTopology


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def parse_cpu_list(text: str) -> list[int]:
    """The kernel's CPU list format ("0-3,8,10-11") into ids."""
    cpus: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
    return cpus


def topology(root: Path = SYS_CPU) -> CpuTopology:
    """From sysfs; without it (a restricted container), every online CPU is its own core."""
    online = parse_cpu_list(_read(root / "online") or "") or list(range(os.cpu_count() or 1))
    packages: set[str] = set()
    cores: set[tuple[str, str]] = set()
    llcs: dict[str, list[int]] = {}
    for cpu in online:
        topo = root / f"cpu{cpu}" / "topology"
        package = _read(topo / "physical_package_id") or "0"
        packages.add(package)
        cores.add((package, _read(topo / "core_id") or str(cpu)))
        index = max((root / f"cpu{cpu}" / "cache").glob("index*"), default=None, key=lambda p: p.name)
        shared = _read(index / "shared_cpu_list") if index is not None else None
        llcs.setdefault(shared or str(cpu), []).append(cpu)
    nodes = len(list(Path("/sys/devices/system/node").glob("node[0-9]*"))) or 1
    return CpuTopology(
        online=online,
        packages=len(packages),
        cores=len(cores),
        threads_per_core=max(1, len(online) // max(1, len(cores))),
        llc_groups=sorted(llcs.values()),
        numa_nodes=nodes,
    )


def system_info(ctx: Context) -> SystemInfo:
    """The host, its scheduler and CPUs, and the sandbox; parts that fail say why instead."""
    uname = platform.uname()
    scheduler: SchedulerStatus | None = None
    scheduler_error = None
    try:
        scheduler = status(ctx, "host")
    except SchedcpError as exc:
        scheduler_error = str(exc)
    sandbox: SandboxInfo | None = None
    sandbox_error = None
    try:
        sandbox = info(ctx)
    except SchedcpError as exc:
        sandbox_error = str(exc)
    return SystemInfo(
        host=uname.node,
        kernel=uname.release,
        arch=uname.machine,
        host_sched_ext=Path("/sys/kernel/sched_ext").is_dir(),
        scheduler=scheduler,
        scheduler_error=scheduler_error,
        sandbox=sandbox,
        sandbox_error=sandbox_error,
        cpus=topology(),
    )
