"""The sandbox VM: boot the sched_ext kernel, run commands in it, shut it down, leave nothing.

One QEMU process per Sandbox. Commands travel as JSON lines over a virtio-serial port to the
guest agent (guest/agent.py), which returns exit code and output reliably (unlike scraping a
serial console). Guarantees:
- every wait has a deadline; a guest that stops answering is killed and reported as LostVMError;
- QEMU gets PR_SET_PDEATHSIG, so even a SIGKILLed schedcp cannot leave a VM running;
- close() is idempotent and always ends the QEMU process.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import itertools
import json
import logging
import os
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from schedcp.config import Settings, load_settings
from schedcp.errors import CommandTimeout, LostVMError, SandboxError
from schedcp.models import BootInfo, CommandResult
from schedcp.runner import stage_into
from schedcp.sandbox import initramfs
from schedcp.sandbox.kernel import Kernel, find_kernel
from schedcp.sandbox.qemu import PORT_NAME, ROOT_TAG, QemuSpec, Share, check_qemu, choose_accel

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
# Host-side slack over a command's own timeout before the VM is presumed lost: the guest
# enforces the timeout itself and needs a moment to kill and report under emulation.
GRACE_S = 15.0
_BG_IDS = itertools.count()  # names the pid files of start_background
# Folders the guest mounts a tmpfs of its own over (guest/init.sh): host files under them are
# invisible in the guest unless shared.
GUEST_TMPFS = ("/tmp", "/run", "/var/tmp", "/var/log", "/var/cache", "/var/lib", "/dev/shm")


def hidden_in_guest(path: Path) -> bool:
    """A host path the guest cannot see through its read-only root (share it to run from it)."""
    resolved = path.resolve()
    return any(resolved == Path(d) or Path(d) in resolved.parents for d in GUEST_TMPFS)


GUEST_PYTHON_CANDIDATES = ("/usr/bin/python3",)


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _guest_python() -> str:
    """An interpreter the guest can run from the shared root: the system one if present."""
    for candidate in GUEST_PYTHON_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return os.path.realpath(sys.executable)


class Sandbox:
    """A booted sched_ext VM that runs many commands: `with Sandbox() as vm: vm.run([...])`."""

    def __init__(
        self,
        settings: Settings | None = None,
        shares: Sequence[Path] = (),
        kernel: Kernel | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.kernel = kernel or find_kernel(self.settings.kernels_dir, self.settings.sandbox.kernel)
        self._shares = [Path(p).resolve() for p in shares]
        self.run_dir = Path(tempfile.mkdtemp(prefix="schedcp-vm-"))
        self.scratch = self.run_dir / "scratch"
        self.scratch.mkdir()
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.info: BootInfo | None = None
        self._ids = itertools.count(1)
        self._inbuf = b""
        self._replies: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._closed = False
        self.grace_s = GRACE_S

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @property
    def console_log(self) -> Path:
        return self.run_dir / "console.log"

    def spec(self) -> QemuSpec:
        s = self.settings.sandbox
        shares = [Share(self.scratch, "scratch")]
        for i, path in enumerate(self._shares):
            if path == Path("/"):
                raise SandboxError("cannot share / read-write; share a project folder instead")
            shares.append(Share(path, f"share{i}"))
        # Parents before children: a share mounted later would hide one nested inside it.
        shares.sort(key=lambda sh: len(sh.path.parts))
        return QemuSpec(
            qemu=s.qemu,
            kernel=self.kernel.vmlinux,
            initrd=self.run_dir / "initrd.cpio",
            accel=choose_accel(s.accel),
            vcpus=s.vcpus,
            memory_mb=s.memory_mb,
            control_socket=self.run_dir / "ctl.sock",
            console_log=self.console_log,
            shares=shares,
        )

    def start(self) -> BootInfo:
        """Boot and wait for the guest agent; on any failure nothing is left running."""
        try:
            return self._boot()
        except BaseException:
            self.close()
            raise

    def _boot(self) -> BootInfo:
        s = self.settings.sandbox
        check_qemu(s.qemu)
        spec = self.spec()
        base = initramfs.base_image(self.kernel, self.settings.cache_dir)
        env = {
            "SCHEDCP_ROOT_TAG": ROOT_TAG,
            "SCHEDCP_SHARES": " ".join(f"{sh.tag}:{sh.path}" for sh in spec.shares),
            "SCHEDCP_PYTHON": _guest_python(),
            "SCHEDCP_PORT": PORT_NAME,
        }
        for share in spec.shares:
            if " " in str(share.path) or ":" in str(share.path):
                raise SandboxError(f"cannot share {share.path}: paths with spaces or colons are not supported")
        try:
            spec.initrd.write_bytes(base.read_bytes() + initramfs.boot_env_archive(env))
        except OSError as exc:
            raise SandboxError(f"cannot write the boot image to {spec.initrd}: {exc}; is the disk full?") from exc
        argv = spec.argv()
        log.info("qemu command: %s", shlex.join(argv))
        t0 = time.monotonic()
        with open(self.run_dir / "qemu.log", "wb") as qlog:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=qlog,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
                start_new_session=True,
            )
        deadline = t0 + s.boot_timeout_s
        self.sock = self._connect(spec.control_socket, deadline)
        ready = self._read_until(lambda m: m.get("event") == "ready", deadline, what="the guest agent to start")
        self.info = BootInfo(
            kernel=str(ready.get("kernel", self.kernel.release)),
            accel=spec.accel,
            vcpus=spec.vcpus,
            memory_mb=spec.memory_mb,
            boot_s=round(time.monotonic() - t0, 3),
            guest_uptime_s=float(ready.get("uptime_s", 0.0)),
        )
        log.info(
            "sandbox up in %.1f s (%s, %d vCPUs, kernel %s)",
            self.info.boot_s,
            spec.accel,
            spec.vcpus,
            self.info.kernel,
        )
        return self.info

    def _connect(self, path: Path, deadline: float) -> socket.socket:
        while time.monotonic() < deadline:
            self._check_alive("starting")
            if path.exists():
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.connect(str(path))
                    return sock
                except OSError:
                    sock.close()
            time.sleep(0.02)
        raise self._lost("QEMU did not open its control socket in time")

    def close(self) -> None:
        """Power the guest off cleanly if it answers, else kill QEMU; always reap it."""
        if self._closed:
            return
        self._closed = True
        proc = self.proc
        if proc is not None and proc.poll() is None and self.sock is not None:
            with contextlib.suppress(SandboxError, OSError):
                self._request({"op": "poweroff"}, timeout=10.0)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10.0)
        if proc is not None and proc.poll() is None:
            log.warning("sandbox did not power off; killing QEMU pid %d", proc.pid)
            proc.kill()
            proc.wait(timeout=30.0)
        if self.sock is not None:
            self.sock.close()
        shutil.rmtree(self.run_dir, ignore_errors=True)

    # -- commands --------------------------------------------------------------------------

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
        """Run argv in the guest and return its exit code and output.

        `rt`: run it at SCHED_FIFO, out of reach of the sched_ext policy under test (for the
        commands that watch and control a policy; a workload is never run this way).

        A command past `timeout` is killed by the guest with its whole process group and comes
        back with timed_out=True (CommandTimeout with check=True). A guest that does not answer
        within the timeout plus a grace period is presumed lost: QEMU is killed.
        """
        if not argv:
            raise SandboxError("empty command")
        timeout = timeout if timeout is not None else self.settings.sandbox.command_timeout_s
        req: dict[str, Any] = {"op": "exec", "argv": [str(a) for a in argv], "timeout": timeout}
        if cwd is not None:
            req["cwd"] = str(cwd)
        if env:
            req["env"] = dict(env)
        if input:
            req["stdin_b64"] = base64.b64encode(input).decode()
        if rt:
            req["rt"] = True
        reply = self._request(req, timeout=timeout + self.grace_s + timeout * 0.1)
        if reply.get("error"):
            raise SandboxError(f"guest could not run {argv[0]!r}: {reply['error']}")
        result = CommandResult(
            argv=list(req["argv"]),
            rc=int(reply["rc"]),
            stdout=base64.b64decode(reply.get("stdout_b64", "")).decode(errors="replace"),
            stderr=base64.b64decode(reply.get("stderr_b64", "")).decode(errors="replace"),
            timed_out=bool(reply.get("timed_out")),
            truncated=bool(reply.get("truncated")),
            duration_s=float(reply.get("duration_s", 0.0)),
        )
        if check and result.timed_out:
            raise CommandTimeout(f"{' '.join(argv)} timed out after {timeout:g} s in the sandbox")
        if check and result.rc != 0:
            raise SandboxError(f"{' '.join(argv)} exited with {result.rc} in the sandbox\n{result.stderr[-4000:]}")
        return result

    def stage(self, path: Path) -> str:
        """Copy a host file into the scratch share, which the guest sees at the same path.

        The read-only root is mounted with cache=loose, so a file created on the host after
        boot may be invisible there; the scratch share is uncached.
        """
        return str(stage_into(self.scratch, path))

    def start_background(self, argv: Sequence[str], timeout: float = 30.0) -> int:
        """Start argv in the guest in a session of its own, outliving this call (a load for a
        test, a task for a canary); its pid. `run` waits for a command and its process group."""
        pidfile = f"/tmp/schedcp-bg-{next(_BG_IDS)}-{os.getpid()}.pid"
        script = f"echo $$ > {pidfile}; exec {shlex.join(argv)}"
        self.run(["sh", "-c", f"setsid -f sh -c {shlex.quote(script)} </dev/null >/dev/null 2>&1"], timeout=timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.run(["cat", pidfile], timeout=timeout)
            if got.rc == 0 and got.stdout.strip().isdigit():
                return int(got.stdout)
            time.sleep(0.1)
        raise SandboxError(f"{shlex.join(argv)} did not start in the sandbox within {timeout:g} s")

    def read_text(self, path: str, timeout: float = 30.0) -> str:
        return self.run(["cat", path], timeout=timeout, check=True, rt=True).stdout

    def ping(self, timeout: float = 10.0) -> bool:
        try:
            self._request({"op": "ping"}, timeout=timeout)
            return True
        except SandboxError:
            return False

    # -- protocol --------------------------------------------------------------------------

    def _request(self, req: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self.sock is None or self.proc is None:
            raise SandboxError("the sandbox is not running; use `with Sandbox() as vm:` or call start()")
        if self._closed and req.get("op") != "poweroff":
            raise SandboxError("the sandbox was closed")
        with self._lock:
            rid = next(self._ids)
            req = {"id": rid, **req}
            try:
                self.sock.sendall((json.dumps(req) + "\n").encode())
            except OSError as exc:
                raise self._lost(f"cannot send to the guest: {exc}") from exc
            deadline = time.monotonic() + timeout
            return self._read_until(lambda m: m.get("id") == rid, deadline, what=f"the reply to {req.get('op')}")

    def _read_until(self, want: Any, deadline: float, what: str) -> dict[str, Any]:
        assert self.sock is not None
        while True:
            while b"\n" in self._inbuf:
                line, _, self._inbuf = self._inbuf.partition(b"\n")
                if not line.strip():
                    continue
                try:
                    msg = json.loads(line)
                except json.JSONDecodeError:
                    log.warning("garbage from guest agent: %r", line[:200])
                    continue
                if want(msg):
                    return dict(msg)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._lost(f"timed out waiting for {what}")
            self._check_alive(f"waiting for {what}")
            readable, _, _ = select.select([self.sock], [], [], min(remaining, 0.5))
            if readable:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    self._check_alive(f"waiting for {what}")
                    raise self._lost("the control channel closed")
                self._inbuf += chunk

    def _check_alive(self, doing: str) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            rc = self.proc.returncode
            raise LostVMError(f"the sandbox VM exited (QEMU status {rc}) while {doing}", self.console_tail())

    def _lost(self, why: str) -> LostVMError:
        """Kill a VM that stopped answering and describe it; the caller raises the result."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30.0)
        return LostVMError(f"the sandbox VM stopped answering ({why}); it was killed", self.console_tail())

    def console_tail(self, lines: int = 40) -> str:
        parts = []
        for name in ("console.log", "qemu.log"):
            path = self.run_dir / name
            with contextlib.suppress(OSError):
                text = path.read_text(errors="replace").strip()
                if text:
                    parts.append("\n".join(text.splitlines()[-lines:]))
        return "\n".join(parts)
