"""Where commands run: the sandbox VM, or this host when its kernel has sched_ext.

The loader and runtime talk to a CommandRunner, so the code that attaches a policy in the
sandbox is the same code that attaches it on a production host.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from schedcp.fsutil import atomic_write
from schedcp.models import BootInfo, CommandResult


class CommandRunner(Protocol):
    """Runs commands where the scheduler lives."""

    def run(
        self,
        argv: Sequence[str],
        timeout: float | None = None,
        *,
        check: bool = False,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        input: bytes | None = None,
        rt: bool = False,
    ) -> CommandResult:
        """Run argv; `rt` runs it at SCHED_FIFO, out of reach of the sched_ext policy in charge
        (for tools that watch and control a policy, never for a workload)."""
        ...

    def stage(self, path: Path) -> str:
        """Make a host file visible to the runner; returns the path to use there."""
        ...


class HostRunner:
    """Runs on this machine, with the same timeout and process-group semantics as the guest."""

    def __init__(self, default_timeout: float = 600.0) -> None:
        self.default_timeout = default_timeout

    def run(
        self,
        argv: Sequence[str],
        timeout: float | None = None,
        *,
        check: bool = False,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        input: bytes | None = None,
        rt: bool = False,
    ) -> CommandResult:
        timeout = timeout if timeout is not None else self.default_timeout
        full_env = {**os.environ, **(env or {})}
        t0 = time.monotonic()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if input else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=full_env,
            start_new_session=True,
            preexec_fn=_real_time if rt else None,
        )
        timed_out = False
        try:
            out, err = proc.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        result = CommandResult(
            argv=[str(a) for a in argv],
            rc=proc.returncode,
            stdout=out.decode(errors="replace"),
            stderr=err.decode(errors="replace"),
            timed_out=timed_out,
            duration_s=time.monotonic() - t0,
        )
        if check and not result.ok:
            from schedcp.errors import SchedcpError

            raise SchedcpError(f"{' '.join(argv)} failed ({result.rc}): {result.stderr[-2000:]}")
        return result

    def stage(self, path: Path) -> str:
        return str(path.resolve())


# Below the sandbox agent's 50, like its real-time commands.
RT_COMMAND_PRIORITY = 40


def _real_time() -> None:
    """In the child: SCHED_FIFO (root only), and its own children normal again."""
    os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(RT_COMMAND_PRIORITY))


def stage_into(folder: Path, path: Path) -> Path:
    """Copy `path` into a shared folder (atomic rename, so the guest never sees half a file)."""
    return atomic_write(folder / path.name, path.read_bytes(), mode=path.stat().st_mode & 0o777)


def boot_info(runner: CommandRunner) -> BootInfo | None:
    """How the sandbox behind a runner booted; None on the host."""
    info = getattr(runner, "info", None)
    return info if isinstance(info, BootInfo) else None
