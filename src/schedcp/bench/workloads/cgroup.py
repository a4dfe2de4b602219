"""Multi-tenant workload: CPU hogs in two cgroups with different cpu.weight.

The guest script schedcp/bench/guest/cgroup_hogs.sh makes two cgroups, a (light, weight 100)
and b (heavy, weight 300), runs stress-ng CPU hogs in each, and reports the CPU time each
cgroup got over a measured window (`usage_usec` from cpu.stat, which the kernel accounts under
any scheduling class) and each stress-ng's bogo-ops per second.

The light tenant runs more hogs than the heavy one (by default 4 against 2 on the 2-vCPU
sandbox): a scheduler that is fair between tasks instead of between cgroups gives the light
tenant two thirds of the CPUs instead of the quarter its weight asks for, so weights only hold
when the scheduler honours cgroups. The heavy tenant can use its 75 % (1.5 CPUs) with its
2 hogs.

Metrics: how far the heavy cgroup's measured CPU share is from the share its weight asks for
(share_error_pct, percentage points; the primary metric, since honouring cpu.weight is what a
multi-tenant scheduler is for), and the work done: both tenants' bogo-ops per second together
and the heavy tenant's alone. The bogo-ops rates cover each stress-ng's whole life (about a
second of start-up under emulation before the window, and the stop after it), the CPU shares
only the window.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from schedcp.bench.workload import Prepared, WorkloadOutputError, check_size, guest_file, require_ok
from schedcp.bench.workloads.latency import parse_stress_ng_metrics
from schedcp.models import CommandResult
from schedcp.models.bench import Metric, WorkloadInfo
from schedcp.models.vocabulary import SIZES, Size
from schedcp.runner import CommandRunner

SCRIPT = "cgroup_hogs.sh"
# Wall time on top of the window before the runner kills a run: forking the hogs and stopping
# them take seconds under emulation.
TIMEOUT_SLACK_S = 120.0


@dataclass(frozen=True)
class CgroupParams:
    """One cgroup_hogs.sh configuration: group a is the light tenant, b the heavy one."""

    weight_a: int
    weight_b: int
    hogs_a: int
    hogs_b: int
    seconds: int

    def argv(self, script: str) -> list[str]:
        return [
            "sh",
            script,
            str(self.weight_a),
            str(self.weight_b),
            str(self.hogs_a),
            str(self.seconds),
            str(self.hogs_b),
        ]


_SIZES: Mapping[Size, CgroupParams] = {
    "tiny": CgroupParams(weight_a=100, weight_b=300, hogs_a=2, hogs_b=2, seconds=3),
    "small": CgroupParams(weight_a=100, weight_b=300, hogs_a=4, hogs_b=2, seconds=10),
    "medium": CgroupParams(weight_a=100, weight_b=300, hogs_a=4, hogs_b=2, seconds=20),
    "large": CgroupParams(weight_a=100, weight_b=300, hogs_a=8, hogs_b=4, seconds=40),
    # For a real host of up to 16 CPUs: more hogs than CPUs, the heavy tenant's 75 % usable.
    "full": CgroupParams(weight_a=100, weight_b=300, hogs_a=32, hogs_b=16, seconds=60),
}

# "group b: cpu.weight 300, 2 hogs, cpu_usec 14987654"
_GROUP = re.compile(
    r"^group (?P<g>[ab]): cpu\.weight (?P<weight>\d+), (?P<hogs>\d+) hogs, cpu_usec (?P<usec>-?\d+)\s*$",
    re.MULTILINE,
)
_WINDOW = re.compile(r"^window_s (?P<s>[\d.]+)\s*$", re.MULTILINE)
_SECTION = re.compile(r"^--- group (?P<g>[ab]) stress-ng ---\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Group:
    """What cgroup_hogs.sh reported for one cgroup."""

    weight: int
    hogs: int
    cpu_usec: int
    bogo_ops_per_s: float


@dataclass(frozen=True)
class CgroupReport:
    window_s: float
    light: Group  # group a
    heavy: Group  # group b

    @property
    def heavy_share(self) -> float:
        """The heavy group's fraction of the CPU time both groups got in the window."""
        return self.heavy.cpu_usec / (self.light.cpu_usec + self.heavy.cpu_usec)

    @property
    def heavy_weight_share(self) -> float:
        return self.heavy.weight / (self.light.weight + self.heavy.weight)


def parse_cgroup_report(result: CommandResult, what: str) -> CgroupReport:
    """cgroup_hogs.sh's stdout; an error unless both groups and both stress-ng rows are there."""
    text = result.stdout
    window = _WINDOW.search(text)
    if window is None:
        raise WorkloadOutputError(f"{what}: cgroup_hogs.sh printed no 'window_s' line", result)
    groups = {m["g"]: m for m in _GROUP.finditer(text)}
    if set(groups) != {"a", "b"}:
        raise WorkloadOutputError(f"{what}: cgroup_hogs.sh did not report both cgroups (got {sorted(groups)})", result)
    sections = list(_SECTION.finditer(text))
    if [s["g"] for s in sections] != ["a", "b"]:
        raise WorkloadOutputError(f"{what}: cgroup_hogs.sh did not print both groups' stress-ng output", result)
    bodies = {
        "a": text[sections[0].end() : sections[1].start()],
        "b": text[sections[1].end() :],
    }
    parsed: dict[str, Group] = {}
    for g in ("a", "b"):
        rows = parse_stress_ng_metrics(bodies[g])
        if "cpu" not in rows or rows["cpu"].bogo_ops <= 0 or rows["cpu"].bogo_ops_per_s <= 0:
            raise WorkloadOutputError(f"{what}: group {g}'s stress-ng printed no cpu row with work done", result)
        m = groups[g]
        usec = int(m["usec"])
        if usec <= 0:
            raise WorkloadOutputError(f"{what}: group {g} got no CPU time in the window", result)
        parsed[g] = Group(
            weight=int(m["weight"]),
            hogs=int(m["hogs"]),
            cpu_usec=usec,
            bogo_ops_per_s=rows["cpu"].bogo_ops_per_s,
        )
    window_s = float(window["s"])
    if window_s <= 0:
        raise WorkloadOutputError(f"{what}: measured window of {window_s} s", result)
    return CgroupReport(window_s=window_s, light=parsed["a"], heavy=parsed["b"])


class CgroupWeights:
    """Two tenants' CPU hogs in cgroups of cpu.weight 100 and 300 (see the module docstring)."""

    def __init__(self) -> None:
        self.info = WorkloadInfo(
            name="cgroup-weights",
            version="1",
            summary="stress-ng CPU hogs in two cgroups of cpu.weight 100 (more hogs) and 300 (fewer hogs): "
            "does each cgroup get its weight's share of the CPU, and how much work gets done",
            workload_class="multi-tenant",
            metrics=[
                Metric(
                    name="share_error_pct",
                    unit="pct-points",
                    better="lower",
                    description="distance between the heavy cgroup's share of the CPU time in the window and "
                    "the share its weight asks for (75 %)",
                ),
                Metric(
                    name="total_bogo_ops_s",
                    unit="bogo-ops/s",
                    better="higher",
                    description="both cgroups' stress-ng cpu bogo operations per second of wall time",
                ),
                Metric(
                    name="heavy_bogo_ops_s",
                    unit="bogo-ops/s",
                    better="higher",
                    description="the heavy (weight 300) cgroup's stress-ng cpu bogo operations per second",
                ),
            ],
            primary="share_error_pct",
            sizes=list(SIZES),
        )

    def params(self, size: Size) -> CgroupParams:
        check_size(self.info, size)
        return _SIZES[size]

    def prepare(self, runner: CommandRunner, size: Size, build_dir: Path) -> Prepared:
        params = self.params(size)
        script = runner.stage(guest_file(SCRIPT))
        return Prepared(
            argv=params.argv(script),
            files={"cgroup_hogs": script},
            timeout_s=2 * params.seconds + TIMEOUT_SLACK_S,
        )

    def parse(self, result: CommandResult) -> dict[str, float]:
        require_ok(result, self.info.name)
        report = parse_cgroup_report(result, self.info.name)
        return {
            "share_error_pct": 100.0 * abs(report.heavy_share - report.heavy_weight_share),
            "total_bogo_ops_s": report.light.bogo_ops_per_s + report.heavy.bogo_ops_per_s,
            "heavy_bogo_ops_s": report.heavy.bogo_ops_per_s,
        }
