"""Run one command under one policy and report everything the kernel said about it.

This is the unit every higher layer builds on (`schedcp policy run`, the dynamic verifier,
the benchmark harness): attach, confirm the kernel enabled *our* scheduler, run, confirm it
is still enabled, read the counters, detach, and if the kernel disabled it, say why.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from schedcp.bpf import loader
from schedcp.bpf.build import BuiltPolicy
from schedcp.errors import DeployError, LostVMError, SchedcpError
from schedcp.models import CommandResult
from schedcp.models.vocabulary import TunableValue
from schedcp.runner import CommandRunner

log = logging.getLogger(__name__)

EXIT_INFO_VAR = "schedcp_exit_info"


class PolicyRunReport(BaseModel):
    """What happened when a command ran under a policy."""

    policy: str
    object_sha256: str
    tunables: dict[str, TunableValue]
    load_s: float
    state_after_load: str
    ops_after_load: str | None
    state_after_run: str | None = None
    ops_after_run: str | None = None
    command: CommandResult | None = None
    ejected: bool = False
    exit_reason: str | None = Field(None, description="the kernel's reason for disabling the policy")
    exit_details: list[str] = Field(default_factory=list)
    exit_info: dict[str, Any] = Field(default_factory=dict, description="the policy's own exit record")
    stats: dict[str, Any] = Field(default_factory=dict)
    loaded_tunables: dict[str, Any] = Field(
        default_factory=dict, description="tunables as the kernel holds them (.rodata read back after load)"
    )
    detached: bool = False

    @property
    def ok(self) -> bool:
        return not self.ejected and self.command is not None and self.command.ok and self.detached


def run_under_policy(
    runner: CommandRunner,
    built: BuiltPolicy,
    argv: Sequence[str],
    timeout: float,
    load_timeout: float = 180.0,
    cwd: Path | None = None,
) -> PolicyRunReport:
    """Attach `built`, run `argv`, detach; a verifier rejection or attach failure raises."""
    dmesg_before = len(loader.dmesg_lines(runner))
    attached = loader.attach(runner, runner.stage(built.obj), built.name, timeout=load_timeout)
    state = attached.state
    assert state is not None
    report = PolicyRunReport(
        policy=built.name,
        object_sha256=built.sha256,
        tunables=built.tunables,
        load_s=round(attached.load_s, 3),
        state_after_load=state.state,
        ops_after_load=state.ops,
    )
    try:
        if state.enabled and state.ops != built.name:
            raise DeployError(f"the kernel reports scheduler {state.ops!r} attached, expected {built.name!r}")
        if state.enabled:
            log.info("%s enabled (load %.2f s); running %s", built.name, attached.load_s, " ".join(argv))
            report.command = runner.run(argv, timeout=timeout, cwd=cwd)
            after = loader.read_state(runner)
            report.state_after_run, report.ops_after_run = after.state, after.ops
        report.stats = _read_section(runner, attached, "bss")
        report.loaded_tunables = _read_section(runner, attached, "rodata")
    except LostVMError:
        raise  # the VM and the policy with it are gone: nothing to detach
    except BaseException:
        # Detach on the way out, but let the error that stopped the run be the one reported.
        with contextlib.suppress(SchedcpError):
            loader.detach(runner, attached)
        raise
    loader.detach(runner, attached)
    report.detached = True
    new_lines = loader.dmesg_lines(runner)[dmesg_before:]
    ejection = loader.find_ejection(new_lines, built.name)
    # Our own detach also logs "disabled (...unregistered from user space)": only a disable
    # before the detach is an ejection.
    ejected_early = not state.enabled or report.state_after_run != "enabled"
    if ejection is not None and ejected_early:
        report.ejected = True
        report.exit_reason = ejection.reason
        report.exit_details = ejection.details
    elif ejected_early:
        report.ejected = True
        report.exit_reason = "disabled (no reason in the kernel log)"
    report.exit_info = report.stats.pop(EXIT_INFO_VAR, {}) or {}
    return report


def _read_section(runner: CommandRunner, attached: loader.Attached, section: str) -> dict[str, Any]:
    try:
        return loader.read_datasec(runner, attached, section)
    except SchedcpError as exc:  # diagnostics only: never let them hide the run's outcome
        log.warning("could not read %s's .%s: %s", attached.name, section, exc)
        return {}
