"""What running a command (in the sandbox or on the host) and booting the sandbox report."""

from __future__ import annotations

from pydantic import BaseModel, Field


class CommandResult(BaseModel):
    """One command run in the sandbox (or on the host)."""

    argv: list[str]
    rc: int
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    truncated: bool = Field(False, description="output beyond the agent's cap was dropped")
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out


class BootInfo(BaseModel):
    """How a sandbox boot went; kept so timings can be reported and compared."""

    kernel: str
    accel: str
    vcpus: int
    memory_mb: int
    boot_s: float = Field(description="host wall time from starting QEMU to a ready guest agent")
    guest_uptime_s: float = Field(description="guest uptime when its agent became ready")
