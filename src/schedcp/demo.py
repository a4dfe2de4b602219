"""The main job as it stands: boot the sandbox, run a real workload under the kernel's default
scheduler and under a built-in policy, alternating in the same boot, and report the ratio.

Absolute times from the emulated sandbox are not the workload's real speed; only the ratio
between schedulers measured in the same boot means anything.
"""

from __future__ import annotations

import logging
import re
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from schedcp.bpf.build import build_policy
from schedcp.bpf.policy import find_policy
from schedcp.config import Settings, load_settings
from schedcp.errors import PolicyEjected, SandboxError
from schedcp.models import BootInfo
from schedcp.runtime.session import PolicyRunReport, run_under_policy
from schedcp.sandbox import Sandbox, find_kernel

log = logging.getLogger(__name__)

MESSAGING = ["perf", "bench", "sched", "messaging", "-g", "2", "-l", "200"]
_TOTAL = re.compile(r"Total time:\s*([0-9.]+)\s*\[sec\]")


class DemoResult(BaseModel):
    policy: str
    workload: list[str]
    boot: BootInfo
    baseline_s: list[float] = Field(description="perf's total time under the default scheduler (EEVDF)")
    policy_s: list[float]
    speedup: float = Field(description="median baseline time / median policy time; > 1 means the policy is faster")
    last_report: PolicyRunReport


def parse_messaging(stdout: str) -> float:
    m = _TOTAL.search(stdout)
    if not m:
        raise SandboxError(f"perf bench sched messaging printed no total time:\n{stdout[-2000:]}")
    return float(m.group(1))


def run_demo(
    policy_name: str = "fifo",
    rounds: int = 3,
    settings: Settings | None = None,
    progress: Callable[[str], None] = log.info,
) -> DemoResult:
    settings = settings or load_settings()
    policy = find_policy(policy_name)
    kernel = find_kernel(settings.kernels_dir, settings.sandbox.kernel)
    base: list[float] = []
    cand: list[float] = []
    report: PolicyRunReport | None = None
    with tempfile.TemporaryDirectory(prefix="schedcp-demo-") as tmp:
        built = build_policy(policy, policy.resolve_tunables(), kernel, settings.cache_dir, Path(tmp))
        progress(f"built {policy.name} ({built.sha256[:12]}); booting the sandbox")
        with Sandbox(settings, kernel=kernel) as vm:
            assert vm.info is not None
            progress(f"sandbox up in {vm.info.boot_s:.1f} s ({vm.info.accel}, {vm.info.vcpus} vCPUs, {vm.info.kernel})")
            # One unmeasured warm-up of each, then alternate so drift hits both sides equally.
            vm.run(MESSAGING, timeout=300, check=True)
            for i in range(rounds + 1):
                r = vm.run(MESSAGING, timeout=300, check=True)
                report = run_under_policy(vm, built, MESSAGING, timeout=300)
                if report.ejected:
                    raise PolicyEjected(
                        f"{policy.name} was ejected by the kernel: {report.exit_reason}",
                        report.exit_reason or "",
                    )
                if report.command is None or not report.command.ok:
                    raise SandboxError(
                        f"the workload failed under {policy.name}: "
                        f"{report.command.stderr[-2000:] if report.command else 'not run'}"
                    )
                if i == 0:
                    continue
                base.append(parse_messaging(r.stdout))
                cand.append(parse_messaging(report.command.stdout))
                progress(f"round {i}/{rounds}: EEVDF {base[-1]:.3f} s, {policy.name} {cand[-1]:.3f} s")
            assert report is not None
            return DemoResult(
                policy=policy.name,
                workload=MESSAGING,
                boot=vm.info,
                baseline_s=base,
                policy_s=cand,
                speedup=round(statistics.median(base) / statistics.median(cand), 3),
                last_report=report,
            )
