"""schedcp guest agent: PID 1 of the sandbox VM after stage 1; standard library only.

It runs commands for the host over a virtio-serial port, one JSON object per line each way.
It runs at SCHED_FIFO priority so that a BPF scheduler that stalls every normal task (which is
what the verifier tests for) cannot freeze the channel: the agent still answers, enforces
timeouts and reports. SCHED_RESET_ON_FORK gives every command it starts the normal policy, so
the commands are scheduled by whatever scheduler is under test. A command sent with "rt" runs
at SCHED_FIFO (below the agent) instead: the tools that watch and control a policy (reading
/sys/kernel/sched_ext, bpftool, removing a pin, dmesg, the verifier's monitor) must keep running
while the policy stalls every normal task. Single-threaded on purpose:
threads would not inherit the real-time policy, and a stalled thread is exactly what must not
happen here.

Requests:  {"id": N, "op": "exec", "argv": [...], "timeout": s, "cwd": str, "env": {...},
            "stdin_b64": str, "rt": bool}
           {"id": N, "op": "ping"} | {"id": N, "op": "poweroff"}
Replies:   {"id": N, "rc": int, "stdout_b64": str, "stderr_b64": str, "timed_out": bool,
            "duration_s": float, "error": str | null}
Events:    {"event": "ready", "uptime_s": float, "kernel": str}
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from typing import IO, Any

Msg = dict[str, Any]

BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "TERM": "dumb",
    "LANG": "C.UTF-8",
    "TMPDIR": "/tmp",
}
MAX_OUTPUT = 64 * 1024 * 1024  # bytes kept per stream; the rest is dropped and flagged
RT_PRIORITY = 50
# Real-time commands run below the agent, so a busy one never keeps the agent from answering.
RT_COMMAND_PRIORITY = 40
RB_POWER_OFF = 0x4321FEDC
KILL_WAIT_S = 5.0  # how long a killed command may take to die before it is reported anyway


def find_port(name: str) -> str:
    base = "/sys/class/virtio-ports"
    for entry in sorted(os.listdir(base)):
        try:
            with open(os.path.join(base, entry, "name")) as f:
                if f.read().strip() == name:
                    return "/dev/" + entry
        except OSError:
            continue
    raise SystemExit(f"schedcp-agent: no virtio-serial port named {name}")


class Job:
    def __init__(self, req: Msg, proc: subprocess.Popen[bytes], deadline: float) -> None:
        self.req = req
        self.proc = proc
        self.deadline = deadline
        self.started = time.monotonic()
        self.out = {"stdout": bytearray(), "stderr": bytearray()}
        self.truncated = False
        self.open_streams = 2
        self.timed_out = False
        self.exited_at: float | None = None

    def stream(self, kind: str) -> IO[bytes]:
        stream = self.proc.stdout if kind == "stdout" else self.proc.stderr
        assert stream is not None
        return stream


class Agent:
    def __init__(self, port: str) -> None:
        self.fd = os.open(port, os.O_RDWR)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.fd, selectors.EVENT_READ, ("ctl", None))
        self.inbuf = bytearray()
        self.jobs: dict[int, Job] = {}  # pid -> job

    def send(self, obj: Msg) -> None:
        data = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                time.sleep(0.005)
                continue
            view = view[n:]

    def run(self) -> None:
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        self.send({"event": "ready", "uptime_s": uptime, "kernel": os.uname().release})
        while True:
            for key, _ in self.sel.select(timeout=0.05):
                kind, job = key.data
                if kind == "ctl":
                    self.read_ctl()
                else:
                    self.read_stream(job.stream(kind), kind, job)
            self.check_jobs()
            self.reap_orphans()

    def read_ctl(self) -> None:
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            time.sleep(0.05)  # host not connected; the port reads EOF until it is
            return
        self.inbuf += chunk
        while b"\n" in self.inbuf:
            line, _, rest = self.inbuf.partition(b"\n")
            self.inbuf = bytearray(rest)
            if line.strip():
                self.handle(json.loads(line))

    def handle(self, req: Msg) -> None:
        op = req.get("op")
        if op == "ping":
            self.send({"id": req["id"], "rc": 0})
        elif op == "exec":
            self.start(req)
        elif op == "poweroff":
            self.poweroff(req)
        else:
            self.send({"id": req.get("id"), "rc": -1, "error": f"unknown op {op!r}"})

    def start(self, req: Msg) -> None:
        env = dict(BASE_ENV)
        env.update(req.get("env") or {})
        stdin: int = subprocess.DEVNULL
        if req.get("stdin_b64"):
            r, w = os.pipe()
            data = base64.b64decode(req["stdin_b64"])
            if len(data) > 60000:
                os.close(r)
                os.close(w)
                self.reply_error(req, "stdin larger than 60000 bytes; pass a file through a share")
                return
            os.write(w, data)
            os.close(w)
            stdin = r
        rt = bool(req.get("rt"))
        try:
            if rt:
                # The child must be real-time from its first instruction: one forked as a normal
                # task under a stalling policy would never run to raise its own priority.
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
            proc = subprocess.Popen(
                req["argv"],
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=req.get("cwd") or "/tmp",
                env=env,
                start_new_session=True,
                preexec_fn=_rt_command if rt else None,
            )
        except OSError as exc:
            self.reply_error(req, f"cannot start {req['argv'][0]!r}: {exc}")
            return
        finally:
            if rt:
                os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(RT_PRIORITY))
            if stdin != subprocess.DEVNULL:
                os.close(stdin)
        job = Job(req, proc, time.monotonic() + float(req.get("timeout") or 600))
        self.jobs[proc.pid] = job
        assert proc.stdout is not None
        assert proc.stderr is not None
        os.set_blocking(proc.stdout.fileno(), False)
        os.set_blocking(proc.stderr.fileno(), False)
        self.sel.register(proc.stdout, selectors.EVENT_READ, ("stdout", job))
        self.sel.register(proc.stderr, selectors.EVENT_READ, ("stderr", job))

    def reply_error(self, req: Msg, message: str) -> None:
        self.send(
            {
                "id": req["id"],
                "rc": 127,
                "stdout_b64": "",
                "stderr_b64": "",
                "timed_out": False,
                "duration_s": 0.0,
                "error": message,
            }
        )

    def read_stream(self, fileobj: IO[bytes], kind: str, job: Job) -> None:
        try:
            chunk = os.read(fileobj.fileno(), 1 << 16)
        except BlockingIOError:
            return
        if chunk:
            buf = job.out[kind]
            room = MAX_OUTPUT - len(buf)
            if room < len(chunk):
                job.truncated = True
            buf += chunk[: max(room, 0)]
            return
        self.sel.unregister(fileobj)
        fileobj.close()
        job.open_streams -= 1

    def check_jobs(self) -> None:
        now = time.monotonic()
        for pid, job in list(self.jobs.items()):
            if job.exited_at is None and job.proc.poll() is not None:
                job.exited_at = now
            if job.exited_at is None and now > job.deadline:
                # Never block here: a killed task must still be scheduled to exit, and the
                # scheduler under test may not do that soon. Poll; give up after KILL_WAIT_S.
                if not job.timed_out:
                    job.timed_out = True
                    self.kill_group(pid)
                elif now > job.deadline + KILL_WAIT_S:
                    job.exited_at = now
            # A background child may hold the pipes open after the command itself exits:
            # give it a moment, then kill the whole process group so nothing outlives a command.
            if job.exited_at is not None and (job.open_streams == 0 or now - job.exited_at > 0.5):
                self.kill_group(pid)
                self.wait_group_gone(pid)
                self.finish(pid, job)

    def kill_group(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)

    def wait_group_gone(self, pgid: int, limit_s: float = 1.0) -> None:
        """Reply only once the killed group is reaped, so "finished" means nothing of it is left.

        Killed members reparented to us stay zombies (still in the group) until reaped. Bounded:
        under a scheduler that stalls tasks, a killed task may not get to run its exit for a while.
        """
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            self.reap_orphans()
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            except PermissionError:
                return
            time.sleep(0.005)

    def finish(self, pid: int, job: Job) -> None:
        for stream in (job.proc.stdout, job.proc.stderr):
            if stream is not None and not stream.closed:
                try:
                    rest = stream.read()
                    if rest:
                        name = "stdout" if stream is job.proc.stdout else "stderr"
                        job.out[name] += rest[: max(MAX_OUTPUT - len(job.out[name]), 0)]
                except (OSError, ValueError):
                    pass
                self.sel.unregister(stream)
                stream.close()
        del self.jobs[pid]
        rc = job.proc.returncode
        self.send(
            {
                "id": job.req["id"],
                "rc": rc if rc is not None else -9,
                "stdout_b64": base64.b64encode(bytes(job.out["stdout"])).decode(),
                "stderr_b64": base64.b64encode(bytes(job.out["stderr"])).decode(),
                "timed_out": job.timed_out,
                "truncated": job.truncated,
                "duration_s": round(time.monotonic() - job.started, 6),
                "error": None,
            }
        )

    def reap_orphans(self) -> None:
        """As PID 1 the agent inherits every orphan; reap those that are not our own jobs."""
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None:
                return
            if info.si_pid in self.jobs:
                self.jobs[info.si_pid].proc.poll()
                if self.jobs[info.si_pid].proc.returncode is None:
                    return
                continue
            try:
                os.waitpid(info.si_pid, 0)
            except ChildProcessError:
                return

    def poweroff(self, req: Msg) -> None:
        for pid in list(self.jobs):
            self.kill_group(pid)
        os.sync()
        self.send({"id": req["id"], "rc": 0})
        time.sleep(0.05)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.reboot(RB_POWER_OFF)
        raise SystemExit("schedcp-agent: reboot(POWER_OFF) failed")


def _rt_command() -> None:
    """In a real-time command's child: below the agent, and its own children normal again."""
    os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(RT_COMMAND_PRIORITY))


def main() -> None:
    port_name = sys.argv[sys.argv.index("--port") + 1] if "--port" in sys.argv else "schedcp.ctl"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(RT_PRIORITY))
    except OSError as exc:
        print(f"schedcp-agent: warning: cannot become real-time: {exc}", file=sys.stderr)
    Agent(find_port(port_name)).run()


if __name__ == "__main__":
    main()
