"""Running service calls for the MCP server: in a worker thread, with progress, cancellation and
one shared sandbox VM.

The service layer is synchronous (it runs compilers, VMs and SQLite). Each call runs in a worker
thread so the server keeps answering other clients meanwhile; the service's progress reports
become MCP progress notifications, and they are also where a cancelled call stops (Context.check).

One sandbox VM serves every call that needs one, booted at the first such call and kept: a boot
costs 10-15 s under emulation, and a policy deployed into the sandbox must still be there for the
next call's `deployment_status`. One VM job runs at a time; the next one waits its turn (up to
`vm_wait_s`, then it is refused with a message saying what was running). A cancelled or crashed
VM job shuts the VM down, so nothing it started is left running; the next job boots a fresh one.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread

from schedcp.service import Cancelled, CommandRunner, Context, Progress, SchedcpError, Settings, Where

log = logging.getLogger(__name__)
T = TypeVar("T")
ProgressSink = Callable[[float, str], Any]  # async (step, message); None: nobody listens


class Busy(SchedcpError):
    """Another VM job held the sandbox for longer than this call was willing to wait."""


class SharedSandbox:
    """The one sandbox VM of a server, lent to one job at a time."""

    def __init__(self, settings: Settings, db_url: str | None, lent: CommandRunner | None, wait_s: float) -> None:
        self.settings = settings
        self.db_url = db_url
        self.lent = lent  # a VM the caller owns (tests): never shut down here
        self.wait_s = wait_s
        self._lock = threading.Lock()
        self._holder = ""
        self._stack: ExitStack | None = None
        self._vm: CommandRunner | None = None

    @property
    def booted(self) -> bool:
        return self._vm is not None or self.lent is not None

    @contextlib.contextmanager
    def lease(self, ctx: Context, holder: str) -> Iterator[CommandRunner]:
        """The VM for one job: wait for it (cancellable), boot it if needed; shut it down if the
        job was cancelled or failed in a way that may have left the VM in any state."""
        deadline = time.monotonic() + self.wait_s
        waited = False
        while not self._lock.acquire(timeout=0.5):
            if not waited:
                ctx.report(f"waiting for the sandbox VM: {self._holder} is using it")
                waited = True
            ctx.check()
            if time.monotonic() > deadline:
                raise Busy(
                    f"the sandbox VM was busy for {self.wait_s:g} s ({self._holder}); one VM job runs at a "
                    "time: try again when it is done"
                )
        self._holder = holder
        try:
            vm = self.lent or self._vm
            if vm is None:
                stack = ExitStack()
                vm = stack.enter_context(Context.runner(ctx, "sandbox"))  # the base: boot one
                self._stack, self._vm = stack, vm
            try:
                yield vm
            except SchedcpError as exc:
                if isinstance(exc, Cancelled) or type(exc).__name__ in ("LostVMError", "CommandTimeout"):
                    self._shutdown()
                raise
            except BaseException:
                self._shutdown()
                raise
        finally:
            self._holder = ""
            self._lock.release()

    def close(self) -> None:
        """When the server stops: wait for the running job, then stop the VM."""
        with self._lock:
            self._shutdown()

    def _shutdown(self) -> None:
        """Stop the VM this server booted (a lent one stays up); the caller holds the lock."""
        stack, self._stack, self._vm = self._stack, None, None
        if stack is not None:
            log.info("shutting the sandbox VM down")
            stack.close()


class _LeasingContext(Context):
    """A service Context whose sandbox is the server's shared VM, leased only when the service
    asks for it: a call refused on its input (an unknown workload, a failing compile) never
    waits for the VM or boots one."""

    def __init__(
        self,
        settings: Settings,
        db_url: str | None,
        progress: Callable[[Progress], None],
        cancelled: Callable[[], bool],
        shared: SharedSandbox,
        holder: str,
    ) -> None:
        super().__init__(settings, db_url, progress=progress, cancelled=cancelled)
        self._shared = shared
        self._holder = holder

    @contextlib.contextmanager
    def runner(self, where: Where = "sandbox", shares: Sequence[Path] = ()) -> Iterator[CommandRunner]:
        if where != "sandbox" or shares:  # this host, or a VM with the caller's folders: its own
            with super().runner(where, shares) as runner:
                yield runner
            return
        self.check()
        with self._shared.lease(self, self._holder) as vm:
            yield vm


class Jobs:
    """Runs service functions for tool calls (see the module docstring)."""

    def __init__(self, settings: Settings, db_url: str | None, sandbox: SharedSandbox) -> None:
        self.settings = settings
        self.db_url = db_url
        self.sandbox = sandbox

    async def run(self, fn: Callable[[Context], T], *, sink: ProgressSink | None, job: str) -> T:
        """`fn(ctx)` in a worker thread; `job` names it to whoever waits for the sandbox VM.

        Cancelling the awaiting task sets the flag the service checks at its next step, then waits
        (shielded) for the thread to finish its cleanup: the VM is stopped and any attached policy
        detached before the cancellation is passed on, so nothing is left half done."""
        cancelled = threading.Event()
        finished = threading.Event()
        steps = [0.0]

        def progress(event: Progress) -> None:
            if sink is None or cancelled.is_set():
                return
            steps[0] += 1
            with contextlib.suppress(Exception):  # a client gone away must not fail the job
                anyio.from_thread.run(partial(sink, steps[0], event.message))

        def work() -> T:
            try:
                ctx = _LeasingContext(self.settings, self.db_url, progress, cancelled.is_set, self.sandbox, job)
                return fn(ctx)
            finally:
                finished.set()

        try:
            return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(finished.wait)
            raise
