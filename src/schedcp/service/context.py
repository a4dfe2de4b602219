"""What every service call runs with: settings, the repository, progress, cancellation, runners.

Interfaces (the CLI, the MCP server, the agent) build one `Context` per request or session and
pass it to the service functions. It is the only place that decides

- which settings apply (the config file, with per-call overrides such as --vcpus),
- which repository database is used (--db, $SCHEDCP_DB, the config, the default SQLite file),
- where a workload runs: a freshly booted sandbox VM, or this host (`runner`),
- how progress is reported and whether the caller has cancelled.

Cancellation is cooperative: every progress report is also a cancellation point. A cancelled
call raises `Cancelled` from there, and the `with` blocks on the way out shut the VM down and
detach any policy, so nothing is left running and nothing half-done is recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from schedcp.config import Settings, load_settings
from schedcp.errors import Cancelled
from schedcp.models.profile import Where
from schedcp.models.progress import Progress, ProgressFn, ignore_progress
from schedcp.repository import PolicyRepository, open_repository
from schedcp.runner import CommandRunner, HostRunner
from schedcp.sandbox import Sandbox

log = logging.getLogger(__name__)


def _never() -> bool:
    return False


class Context:
    """The environment of service calls (see the module docstring)."""

    def __init__(
        self,
        settings: Settings | None = None,
        db_url: str | None = None,
        progress: ProgressFn = ignore_progress,
        cancelled: Callable[[], bool] = _never,
        sandbox: CommandRunner | None = None,
    ) -> None:
        self.settings = settings if settings is not None else load_settings()
        self._db_url = db_url
        self._progress = progress
        self._cancelled = cancelled
        self._sandbox = sandbox

    def lending(self, sandbox: CommandRunner) -> Context:
        """This context, but "sandbox" work runs in `sandbox`, a VM the caller booted and keeps:
        tests and benchmarks run many calls in one boot (a boot is 10+ s under emulation)."""
        return Context(self.settings, self._db_url, self._progress, self._cancelled, sandbox)

    @classmethod
    def create(
        cls,
        *,
        db_url: str | None = None,
        vcpus: int | None = None,
        memory_mb: int | None = None,
        progress: ProgressFn = ignore_progress,
        cancelled: Callable[[], bool] = _never,
    ) -> Context:
        """The configured settings with an interface's per-call overrides (None: keep the setting)."""
        settings = load_settings()
        if vcpus is not None:
            settings.sandbox.vcpus = vcpus
        if memory_mb is not None:
            settings.sandbox.memory_mb = memory_mb
        return cls(settings, db_url, progress, cancelled)

    @property
    def repository_url(self) -> str:
        """--db (or the MCP server's setting), else $SCHEDCP_DB, the config's db_url, the default file."""
        return self._db_url or self.settings.repository_url

    def repository(self, import_builtins: bool = True) -> PolicyRepository:
        """The policy repository; use it as a context manager so the connection is closed."""
        return open_repository(self.repository_url, import_builtins=import_builtins)

    def check(self) -> None:
        """Raise Cancelled if the caller has cancelled; long operations call this between steps."""
        if self._cancelled():
            raise Cancelled("cancelled by the caller: stopped at the next step; the sandbox is shut down")

    def report(self, step: Progress | str) -> None:
        """Pass a step on to the caller, then stop there if the caller has cancelled."""
        event = Progress(message=step) if isinstance(step, str) else step
        log.info("%s", event.message)
        self._progress(event)
        self.check()

    @contextmanager
    def runner(self, where: Where = "sandbox", shares: Sequence[Path] = ()) -> Iterator[CommandRunner]:
        """Where a workload runs: a sandbox VM booted for this call (shut down when the block ends,
        whatever happens), or this host (whose kernel must have sched_ext to run a policy)."""
        self.check()
        if where == "host":
            yield HostRunner(self.settings.sandbox.command_timeout_s)
            return
        if self._sandbox is not None:
            yield self._sandbox
            return
        self.report("booting the sched_ext sandbox")
        with Sandbox(self.settings, shares=shares) as vm:
            if vm.info is not None:
                self.report(
                    f"sandbox up in {vm.info.boot_s:.1f} s ({vm.info.accel}, {vm.info.vcpus} vCPUs, {vm.info.kernel})"
                )
            yield vm
