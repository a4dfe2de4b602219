"""The kernel-verifier stage's in-guest half: load an object through the BPF verifier, never attach it.

Standard library only; runs where the policy would run (the sandbox guest, or a sched_ext host).

    python3 -I verifier_load.py --obj OBJ --pin-dir DIR --timeout S

`bpftool prog loadall OBJ DIR` opens the object, creates its maps and loads every program
through the kernel's verifier, then pins the programs in DIR. For a `.struct_ops.link` object
that is all: libbpf registers the struct_ops map only when asked to attach (`struct_ops
register`, a skeleton's attach), so sched_ext is never enabled. We check that rather than
trust it: /sys/kernel/sched_ext/state and enable_seq (which counts every enable) are read
before and after, and state is polled while the load runs.

Why a script rather than bpftool run directly from the host:
- a failing load's log can be huge (libbpf retries with the verifier's full log: a program the
  verifier gives up on after 1M instructions wrote 64 MiB, which the agent cut at its limit,
  keeping the head and losing the failure at the end). The log goes to a file here, and only
  its first and last lines come back;
- the verifier's instruction count ("processed N insns") is printed only with the full log,
  which slows every load; the kernel also keeps it per program (`verified_insns` in the
  program fd's fdinfo), which costs nothing to read after the load;
- the pin folder is removed whatever happens, and the load is bounded by its own timeout,
  so the script still reports (and cleans up) when the verifier runs long.

It prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

SCX = "/sys/kernel/sched_ext"
HEAD_LINES = 40
TAIL_BYTES = 512 * 1024  # the failure, the kernel's explanation and the count are at the end
BPF_OBJ_GET = 7
SYS_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "s390x": 351, "ppc64le": 361}


def read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def scx_state() -> dict[str, Any]:
    seq = read(f"{SCX}/enable_seq")
    return {"state": read(f"{SCX}/state") or "unknown", "enable_seq": int(seq) if seq.isdigit() else -1}


class StateWatch(threading.Thread):
    """Poll sched_ext's state while the load runs: any value but `disabled` is recorded."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: set[str] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            self.seen.add(read(f"{SCX}/state") or "unknown")


def verified_insns(pin: str) -> int | None:
    """The verifier's processed-instruction count of a pinned program, from its fd's fdinfo."""
    nr = SYS_BPF.get(platform.machine())
    if nr is None:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    path = ctypes.create_string_buffer(pin.encode())
    # union bpf_attr for BPF_OBJ_GET: pathname (u64), bpf_fd, file_flags, path_fd (u32 each).
    attr = (ctypes.c_uint64 * 3)(ctypes.cast(path, ctypes.c_void_p).value or 0, 0, 0)
    fd = libc.syscall(nr, BPF_OBJ_GET, ctypes.byref(attr), ctypes.sizeof(attr))
    if fd < 0:
        return None
    try:
        for line in read(f"/proc/self/fdinfo/{fd}").splitlines():
            key, _, value = line.partition(":")
            if key == "verified_insns":
                return int(value.strip())
        return None
    finally:
        os.close(fd)


def real_time_child() -> Callable[[], None]:
    """For bpftool: this script's real-time priority (the agent's rt exec resets it on fork).

    The load attaches nothing, but it may run where a policy is attached (a sched_ext host, or
    a sandbox another step left one in): a bpftool that policy stalls would read as a timeout.
    """
    if os.sched_getscheduler(0) != os.SCHED_FIFO:
        return lambda: None
    priority = os.sched_getparam(0).sched_priority

    def child() -> None:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))

    return child


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--obj", required=True)
    ap.add_argument("--pin-dir", required=True)
    ap.add_argument("--timeout", type=float, required=True)
    ap.add_argument("--bpftool", default="bpftool")
    args = ap.parse_args()
    out: dict[str, Any] = {"before": scx_state()}
    watch = StateWatch()
    log_file = tempfile.NamedTemporaryFile(prefix="verifier-", suffix=".log", delete=False)  # noqa: SIM115
    try:
        os.makedirs(args.pin_dir, exist_ok=True)
        watch.start()
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [args.bpftool, "prog", "loadall", args.obj, args.pin_dir],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=real_time_child(),
            start_new_session=True,
        )
        try:
            out["rc"] = proc.wait(timeout=args.timeout)
            out["timed_out"] = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            out["rc"] = proc.wait()
            out["timed_out"] = True
        out["load_s"] = round(time.monotonic() - t0, 3)
        watch.stop.set()
        watch.join()
        log_file.close()
        out.update(log_excerpt(log_file.name))
        programs: dict[str, int | None] = {}
        if out["rc"] == 0 and os.path.isdir(args.pin_dir):
            for name in sorted(os.listdir(args.pin_dir)):
                programs[name] = verified_insns(os.path.join(args.pin_dir, name))
        out["programs"] = programs
    finally:
        watch.stop.set()
        shutil.rmtree(args.pin_dir, ignore_errors=True)
        os.unlink(log_file.name)
    out["pins_left"] = os.path.exists(args.pin_dir)
    out["seen"] = sorted(watch.seen)
    out["after"] = scx_state()
    print(json.dumps(out))


def log_excerpt(path: str) -> dict[str, Any]:
    """The log's first lines and its last TAIL_BYTES (whole lines), and how long it was."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = [f.readline() for _ in range(HEAD_LINES)]
        head_bytes = sum(len(line) for line in head)
        if size <= head_bytes + TAIL_BYTES:
            f.seek(0)
            return {"log": f.read().decode(errors="replace"), "log_bytes": size, "log_cut": 0}
        f.seek(size - TAIL_BYTES)
        f.readline()  # a partial line
        tail = f.read()
    cut = size - head_bytes - len(tail)
    marker = f"... ({cut} bytes of the log left out here) ...\n".encode()
    return {"log": b"".join([*head, marker, tail]).decode(errors="replace"), "log_bytes": size, "log_cut": cut}


if __name__ == "__main__":
    main()
