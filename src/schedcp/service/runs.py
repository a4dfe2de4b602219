"""Run a command under a policy in the sandbox: `schedcp policy run`, and the path the verifier and
the runtime will take (build exactly what was asked for, attach, confirm, run, detach, report)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import BaseModel, Field

from schedcp.models import BootInfo
from schedcp.models.vocabulary import TunableValue
from schedcp.runner import boot_info
from schedcp.runtime.session import PolicyRunReport, run_under_policy
from schedcp.service.common import build, guest_folders
from schedcp.service.context import Context


class PolicyRunRequest(BaseModel):
    policy: str = Field(description="a policy name (built-in) or a policy folder")
    command: list[str] = Field(min_length=1, description="argv of the command to run under the policy")
    tunables: dict[str, TunableValue] = Field(
        default_factory=dict, description="tunable overrides; text values take units (slice_ns=5ms)"
    )
    timeout_s: float = Field(600.0, gt=0)
    shares: list[Path] = Field(default_factory=list, description="host folders the guest may write")
    workdir: Path | None = Field(None, description="host folder shared read-write where the command runs")


class PolicyRunResult(BaseModel):
    boot: BootInfo
    report: PolicyRunReport

    @property
    def exit_status(self) -> int:
        """What a shell should see: 3 if the kernel ejected the policy, 124 if the command timed out,
        else the command's own status (1 if it did not run)."""
        report = self.report
        if report.ejected:
            return 3
        if report.command is None:
            return 1
        if report.command.timed_out:
            return 124
        rc = report.command.rc
        return rc if 0 <= rc < 256 else 1


def run_policy(ctx: Context, request: PolicyRunRequest) -> PolicyRunResult:
    """Build the policy with its tunables, boot a sandbox, run the command under it, report."""
    shares, cwd = guest_folders(request.shares, request.workdir)
    with tempfile.TemporaryDirectory(prefix="schedcp-build-") as tmp:
        built = build(ctx, request.policy, request.tunables, Path(tmp))
        ctx.report(f"built {built.name} ({built.sha256[:12]})")
        with ctx.runner("sandbox", shares) as vm:
            boot = boot_info(vm)
            assert boot is not None
            ctx.report(f"running under {built.name}: {' '.join(request.command)}")
            report = run_under_policy(vm, built, request.command, timeout=request.timeout_s, cwd=cwd)
            return PolicyRunResult(boot=boot, report=report)
