"""The sandbox VM as a service: what it would boot, and running one command in it."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from schedcp.models import BootInfo, CommandResult
from schedcp.runner import boot_info
from schedcp.sandbox import find_kernel
from schedcp.sandbox.qemu import choose_accel, qemu_version
from schedcp.service.common import guest_folders
from schedcp.service.context import Context


class SandboxInfo(BaseModel):
    """What `sandbox info` reports: enough to know whether policies can be tested on this machine."""

    kernel: str = Field(description="the sched_ext kernel release the sandbox boots")
    kernel_dir: str
    accel: str = Field(description="kvm, or tcg (software emulation: only ratios between schedulers mean anything)")
    qemu: str
    vcpus: int
    memory_mb: int
    sched_ext: bool = Field(description="the kernel's config has CONFIG_SCHED_CLASS_EXT=y")


def info(ctx: Context) -> SandboxInfo:
    """The kernel, accelerator and QEMU the sandbox would use; fails with advice if setup is missing."""
    settings = ctx.settings
    kernel = find_kernel(settings.kernels_dir, settings.sandbox.kernel)
    major, minor = qemu_version(settings.sandbox.qemu)
    return SandboxInfo(
        kernel=kernel.release,
        kernel_dir=str(kernel.root),
        accel=choose_accel(settings.sandbox.accel),
        qemu=f"{major}.{minor}",
        vcpus=settings.sandbox.vcpus,
        memory_mb=settings.sandbox.memory_mb,
        sched_ext=kernel.config().get("CONFIG_SCHED_CLASS_EXT") == "y",
    )


class SandboxRunRequest(BaseModel):
    command: list[str] = Field(min_length=1, description="argv of the command to run in the guest")
    timeout_s: float = Field(600.0, gt=0, description="the command is killed after this")
    shares: list[Path] = Field(default_factory=list, description="host folders the guest may write")
    workdir: Path | None = Field(
        None, description="host folder shared read-write where the command runs; None: the guest's /tmp"
    )


class SandboxRunResult(BaseModel):
    boot: BootInfo
    result: CommandResult


def run(ctx: Context, request: SandboxRunRequest) -> SandboxRunResult:
    """Boot the sandbox, run one command, shut down (whatever happens)."""
    shares, cwd = guest_folders(request.shares, request.workdir)
    with ctx.runner("sandbox", shares) as vm:
        boot = boot_info(vm)
        assert boot is not None
        ctx.report(f"running {request.command[0]} in the sandbox")
        result = vm.run(request.command, timeout=request.timeout_s, cwd=cwd)
        return SandboxRunResult(boot=boot, result=result)
