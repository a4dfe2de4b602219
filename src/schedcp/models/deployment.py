"""What runs as a machine's scheduler, and the record of every change to it.

The runtime produces these and the repository keeps the events, so that many hosts sharing
one repository give one history (`schedcp history --all-hosts`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from schedcp.models.vocabulary import TunableValue

EventKind = Literal["deploy", "rollback", "refused", "failed", "breaker", "restore"]


class DeploymentEvent(BaseModel):
    """One change (or refused change) of a host's scheduler, with why."""

    id: int | None = Field(None, description="the repository's id, once stored")
    kind: EventKind
    host: str
    kernel: str = Field(description="the kernel release (uname -r) where it happened")
    policy: str | None = Field(None, description="the policy deployed or removed; None: the kernel's own")
    version_id: str | None = None
    tunables: dict[str, TunableValue] = Field(default_factory=dict)
    object_sha256: str | None = None
    reason: str = Field("", description="why, in plain words (an operator's, or what went wrong)")
    evidence: list[str] = Field(default_factory=list)
    created_at: str = ""


class MetricWatch(BaseModel):
    """A number the operator cares about (`deploy --watch CMD`), read before and after."""

    command: str = Field(description="a shell command on the target whose last line is one number")
    better: Literal["higher", "lower"] = "higher"
    baseline: float | None = Field(None, description="the median of readings before the deploy")


class Deployment(BaseModel):
    """The policy a host runs because schedcp deployed it: kept next to the pinned link."""

    policy: str
    version_id: str
    tunables: dict[str, TunableValue]
    object_sha256: str
    object: str = Field(description="the object kept on the target, to attach it again")
    ops: str = Field(description="the sched_ext ops name the kernel shows in root/ops")
    pin_dir: str = Field(description="where the struct_ops link is pinned in bpffs (it keeps it attached)")
    verification_id: int | None = Field(None, description="the passing report the gate accepted")
    deployed_at: str
    watch: MetricWatch | None = Field(None, description="the metric the canary and the breaker compare")


class SchedulerStatus(BaseModel):
    """The truth about a host's scheduler, read from /sys/kernel/sched_ext and bpffs."""

    host: str
    kernel: str
    sched_ext: bool = Field(description="the kernel has sched_ext (/sys/kernel/sched_ext exists)")
    state: str | None = Field(None, description="disabled | enabling | enabled | disabling")
    ops: str | None = Field(None, description="the attached sched_ext scheduler's name")
    enable_seq: int | None = Field(None, description="schedulers enabled since boot")
    nr_rejected: int | None = Field(None, description="tasks the scheduler refused (sched_ext's count)")
    switch_all: bool | None = Field(None, description="all normal tasks run on it (not partial mode)")
    events: dict[str, int] = Field(default_factory=dict, description="root/events: the kernel's counters")
    ours: bool = Field(False, description="schedcp attached it (its link is pinned under our bpffs folder)")
    pinned: list[str] = Field(default_factory=list, description="our pinned links found in bpffs")
    deployment: Deployment | None = Field(None, description="what schedcp recorded when it deployed it")
    stats: dict[str, Any] = Field(default_factory=dict, description="the policy's own counters (.bss)")

    @property
    def scheduler(self) -> str:
        """In words: which scheduler runs."""
        if not self.sched_ext:
            return "the kernel's own (no sched_ext in this kernel)"
        if self.state != "enabled" or not self.ops:
            return f"the kernel's own (sched_ext {self.state})"
        if self.ours:
            return f"{self.ops} (deployed by schedcp)"
        return f"{self.ops} (attached by something else, not schedcp)"
