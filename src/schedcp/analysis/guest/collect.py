"""Workload collector: trace one workload with our BPF program and sample procfs; standard library only.

Runs where the workload runs, as root: in the sandbox guest with the host's /usr/bin/python3
(through the CommandRunner), or on the host itself. Usage:

    python3 -I collect.py --id ID [--object sched_trace.bpf.o] [--interval 1] [--duration S]
                          [--timeout S] (--pid PID | --cgroup PATH | -- COMMAND ...)

Without --object (or when loading it fails) it runs on procfs and schedstat alone and says why.

What it does:
1. BPF: `bpftool prog loadall OBJ DIR/links pinmaps DIR/maps autoattach` under a fresh
   /sys/fs/bpf/schedcp_analyze_<id>/ (mounting bpffs there first if nothing is mounted). The
   links are pinned because bpftool exits at once; removing the folder detaches everything.
   BPF run-time statistics are switched on with BPF_ENABLE_STATS (an fd the kernel counts as one
   user of kernel.bpf_stats_enabled; closed, even by a SIGKILL, it stops counting for us), so a
   concurrent collector's statistics are never switched off under it; the sysctl is the fallback,
   set and restored.
2. Target: a command is forked into its own process group and waits on a pipe until its pid is
   in the tracer's `tracked` map, then execs (a failed exec comes back over a close-on-exec
   pipe, so "no such command" is an error, not an empty profile). --pid seeds the pid and its
   descendants; --cgroup the processes of the cgroup and its descendants, re-scanned every
   sample. The tracer follows forks by itself.
3. Every --interval: processes/threads/state R/CPU from /proc/<pid>/stat and task/*/schedstat,
   cgroup membership, CPU per cgroup (each thread's CPU since the last sample, to its process's
   cgroup) and the cgroups' cpu.weight; PSI (system, and the cgroup's own files) at start and end.
4. At the end: prog run-time statistics, `bpftool -j map dump pinned` of the maps (per-CPU
   values summed here), pins removed (finally, also on SIGTERM), and one JSON document on stdout.

Exit status: 0 with a document; 2 when the target is bad (no such pid/cgroup/command; the
document's `fatal` says which); the workload's own status is in the document.
Every subprocess has a timeout.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any, NoReturn

SCHEMA_VERSION = 1
BPFFS = "/sys/fs/bpf"
CGROUP_ROOT = "/sys/fs/cgroup"
BPFTOOL = "bpftool"
TOOL_TIMEOUT_S = 60.0
LOAD_TIMEOUT_S = 180.0
STDOUT_LIMIT = 4 << 20
STDERR_TAIL = 64 << 10
KILL_GRACE_S = 3.0
# Too short to say anything about scheduling (one sample, a handful of switches).
SHORT_WINDOW_S = 0.2
# Niceness added to the collector for the window: weight 110 against the workload's 1024, so
# its sampling rarely preempts the workload but still gets about a tenth of a busy CPU.
COLLECTOR_NICE = 10
MAPS = ("tracked", "comm_stats", "wake_pairs", "exited", "drops")
HIST_FIELDS = ("runq", "run", "job_cpu", "job_life")
COUNTERS = ("voluntary", "involuntary", "migrations", "wakeups", "wakeups_new", "forks", "execs", "exits", "tasks")
SYS_BPF = 321  # x86_64
BPF_ENABLE_STATS = 32
BPF_STATS_RUN_TIME = 0
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36
# The forked child's name until it execs the command, so that its few pre-exec events (it is
# tracked before exec) are not mistaken for the collector or the workload.
GATE_COMM = b"schedcp-gate"
READY = b"\x00"  # the child's "set up and waiting at the gate", before any exec error text
READY_TIMEOUT_S = 60.0


class Terminated(Exception):
    """SIGTERM/SIGHUP arrived: stop observing, clean up, still report."""


class Fatal(Exception):
    """Bad target: nothing to observe."""


def _on_signal(signum: int, frame: object) -> NoReturn:
    raise Terminated(signal.Signals(signum).name)


# -- small helpers ---------------------------------------------------------------------------


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def parse_stat(text: str) -> tuple[str, list[str]]:
    """(comm, fields after comm) of a /proc stat line; comm may hold spaces and parentheses."""
    head, _, rest = text.rpartition(")")
    comm = head.split("(", 1)[1] if "(" in head else ""
    return comm, rest.split()


def children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def self_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Tools:
    """Runs helper programs (bpftool) with a timeout and adds up the CPU they used."""

    def __init__(self) -> None:
        self.cpu_s = 0.0

    def run(self, argv: list[str], timeout: float = TOOL_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        # RUSAGE_CHILDREN only grows when a child is reaped; nothing else is reaped meanwhile.
        before = children_cpu_s()
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            return subprocess.CompletedProcess(argv, 124, out, f"timed out after {timeout:g} s")
        except OSError as exc:
            return subprocess.CompletedProcess(argv, 127, "", str(exc))
        finally:
            self.cpu_s += children_cpu_s() - before


# -- PSI -------------------------------------------------------------------------------------


def read_psi(path: str) -> dict[str, int] | None:
    """{'some': total_us, 'full': total_us} of a pressure file, None when it cannot be read."""
    text = read_text(path)
    if text is None:
        return None
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        for item in parts[1:]:
            if item.startswith("total="):
                out[parts[0]] = int(item[6:])
    return out


def psi_snapshot(cgroup_dir: str | None) -> dict[str, dict[str, dict[str, int] | None]]:
    snap: dict[str, dict[str, dict[str, int] | None]] = {
        "system": {r: read_psi(f"/proc/pressure/{r}") for r in ("cpu", "io", "memory")}
    }
    if cgroup_dir is not None:
        snap["cgroup"] = {r: read_psi(os.path.join(cgroup_dir, f"{r}.pressure")) for r in ("cpu", "io", "memory")}
    return snap


# -- BPF -------------------------------------------------------------------------------------


def bpffs_mounted(path: str) -> bool:
    text = read_text("/proc/self/mounts") or ""
    return any(len(p) >= 3 and p[1] == path and p[2] == "bpf" for p in (line.split() for line in text.splitlines()))


def le_bytes(value: int, size: int) -> list[str]:
    return [f"0x{b:02x}" for b in value.to_bytes(size, "little")]


class StatsSwitch:
    """BPF run-time statistics on for as long as this object is open."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self.sysctl_restore: str | None = None
        self.how = "off"

    def enable(self) -> str | None:
        """Switch statistics on; returns an error text when neither way works."""
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            attr = (ctypes.c_uint32 * 4)(BPF_STATS_RUN_TIME, 0, 0, 0)
            fd = int(libc.syscall(SYS_BPF, BPF_ENABLE_STATS, ctypes.byref(attr), 4))
            if fd >= 0:
                self.fd = fd
                self.how = "BPF_ENABLE_STATS"
                return None
            why = os.strerror(ctypes.get_errno())
        except (OSError, AttributeError) as exc:
            why = str(exc)
        path = "/proc/sys/kernel/bpf_stats_enabled"
        old = read_text(path)
        if old is None:
            return f"BPF_ENABLE_STATS failed ({why}) and {path} is unreadable"
        if old.strip() == "1":
            self.how = "already enabled"
            return None
        try:
            with open(path, "w") as f:
                f.write("1")
        except OSError as exc:
            return f"BPF_ENABLE_STATS failed ({why}) and {path} is not writable ({exc})"
        self.sysctl_restore = old.strip()
        self.how = "sysctl kernel.bpf_stats_enabled"
        return None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.sysctl_restore is not None:
            with contextlib.suppress(OSError), open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
                f.write(self.sysctl_restore)
            self.sysctl_restore = None


class Tracer:
    """Our sched_trace programs, loaded and attached with bpftool, pinned under one folder."""

    def __init__(self, obj: str, run_id: str, tools: Tools) -> None:
        self.obj = obj
        self.tools = tools
        self.pin_dir = f"{BPFFS}/schedcp_analyze_{run_id}"
        self.maps = f"{self.pin_dir}/maps"
        self.links = f"{self.pin_dir}/links"
        self.loaded = False
        self.notes: list[str] = []

    def load(self) -> None:
        """Load and attach; raises RuntimeError with bpftool's words when that fails."""
        if not os.path.exists(self.obj):
            raise RuntimeError(f"tracer object {self.obj} does not exist")
        if shutil.which(BPFTOOL) is None:
            raise RuntimeError("bpftool is not installed (PATH has none)")
        if not bpffs_mounted(BPFFS):
            res = self.tools.run(["mount", "-t", "bpf", "bpf", BPFFS])
            if res.returncode != 0:
                raise RuntimeError(f"no bpffs at {BPFFS} and mounting one failed: {res.stderr.strip()}")
            self.notes.append(f"mounted bpffs at {BPFFS} (it was not mounted; left mounted)")
        os.mkdir(self.pin_dir)
        res = self.tools.run(
            [BPFTOOL, "prog", "loadall", self.obj, self.links, "pinmaps", self.maps, "autoattach"],
            timeout=LOAD_TIMEOUT_S,
        )
        if res.returncode != 0:
            self.cleanup()
            log = (res.stderr + res.stdout).strip()
            raise RuntimeError(f"bpftool prog loadall failed (exit {res.returncode}): {log[-3000:]}")
        self.loaded = True

    def track(self, pids: list[int]) -> str | None:
        """Add tgids to the `tracked` map in one bpftool batch; returns an error text or None."""
        if not pids:
            return None
        with tempfile.NamedTemporaryFile("w", prefix="schedcp-track-", suffix=".txt") as batch:
            for pid in pids:
                key = " ".join(le_bytes(pid, 4))
                batch.write(f"map update pinned {self.maps}/tracked key {key} value 0x01\n")
            batch.flush()
            res = self.tools.run([BPFTOOL, "batch", "file", batch.name])
        if res.returncode != 0:
            return f"bpftool could not add {len(pids)} pid(s) to the tracked map: {(res.stderr or res.stdout).strip()}"
        return None

    def dump(self, name: str) -> list[dict[str, Any]]:
        res = self.tools.run([BPFTOOL, "-j", "map", "dump", "pinned", f"{self.maps}/{name}"])
        if res.returncode != 0:
            raise RuntimeError(f"bpftool map dump {name} failed: {res.stderr.strip()}")
        entries = json.loads(res.stdout or "[]")
        return [e["formatted"] for e in entries if isinstance(e, dict) and "formatted" in e]

    def prog_stats(self) -> list[dict[str, Any]]:
        """run_time_ns/run_cnt of our programs: those using our `tracked` map."""
        res = self.tools.run([BPFTOOL, "-j", "map", "show", "pinned", f"{self.maps}/tracked"])
        if res.returncode != 0:
            raise RuntimeError(f"bpftool map show failed: {res.stderr.strip()}")
        map_id = int(json.loads(res.stdout)["id"])
        res = self.tools.run([BPFTOOL, "-j", "prog", "show"])
        if res.returncode != 0:
            raise RuntimeError(f"bpftool prog show failed: {res.stderr.strip()}")
        return [
            {
                "name": p.get("name", ""),
                "run_time_ns": int(p.get("run_time_ns", 0)),
                "run_cnt": int(p.get("run_cnt", 0)),
                # Runs the kernel skipped because the program was already running on that CPU.
                "recursion_misses": int(p.get("recursion_misses", 0)),
            }
            for p in json.loads(res.stdout or "[]")
            if map_id in p.get("map_ids", [])
        ]

    def cleanup(self) -> None:
        """Remove every pin: the links go with them, which detaches the programs."""
        if os.path.exists(self.pin_dir):
            shutil.rmtree(self.pin_dir, ignore_errors=True)
        if os.path.exists(self.pin_dir):
            res = self.tools.run(["rm", "-rf", self.pin_dir])
            if res.returncode != 0:
                self.notes.append(f"could not remove {self.pin_dir}: {res.stderr.strip()}")


def sum_hist(values: list[dict[str, Any]]) -> dict[str, Any]:
    slots: list[int] = []
    for v in values:
        for i, n in enumerate(v["slots"]):
            if i >= len(slots):
                slots.append(0)
            slots[i] += int(n)
    while slots and slots[-1] == 0:
        slots.pop()
    return {
        "count": sum(int(v["count"]) for v in values),
        "sum_ns": sum(int(v["sum_ns"]) for v in values),
        "max_ns": max((int(v["max_ns"]) for v in values), default=0),
        "slots": slots,
    }


def merge_comm_stats(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per comm with the per-CPU values added up (max for max_ns)."""
    out = []
    for e in entries:
        per_cpu = [v["value"] for v in e.get("values", [])]
        rec: dict[str, Any] = {"comm": e["key"]["comm"]}
        for h in HIST_FIELDS:
            rec[h] = sum_hist([v[h] for v in per_cpu])
        for c in COUNTERS:
            rec[c] = sum(int(v[c]) for v in per_cpu)
        out.append(rec)
    return out


def merge_pairs(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = [
        {"waker": e["key"]["waker"], "wakee": e["key"]["wakee"], "count": sum(int(v["value"]) for v in e["values"])}
        for e in entries
    ]
    return sorted(out, key=lambda p: -int(p["count"]))


def merge_drops(entries: list[dict[str, Any]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for e in entries:
        for v in e.get("values", []):
            for k, n in v["value"].items():
                total[k] = total.get(k, 0) + int(n)
    return total


# -- procfs ----------------------------------------------------------------------------------


def all_pids() -> Iterator[int]:
    for name in os.listdir("/proc"):
        if name.isdigit():
            yield int(name)


def proc_starttime(pid: int) -> int | None:
    text = read_text(f"/proc/{pid}/stat")
    if text is None:
        return None
    _, f = parse_stat(text)
    return int(f[19]) if len(f) > 19 else None


def children_of(pid: int) -> list[int] | None:
    """Child processes from /proc/<pid>/task/<tid>/children (CONFIG_PROC_CHILDREN); None if absent.

    Reading the few processes of the workload is much cheaper than parsing every process on
    the machine (kernel threads included) each sample, which under emulation was most of the
    collector's CPU time."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out: list[int] = []
    for tid in tids:
        text = read_text(f"/proc/{pid}/task/{tid}/children")
        if text is None:
            if not os.path.exists(f"/proc/{pid}/task/{tid}/children") and os.path.exists(f"/proc/{pid}/task/{tid}"):
                return None  # the kernel has no children files
            continue
        out.extend(int(x) for x in text.split())
    return out


def descendants(roots: set[int]) -> set[int]:
    """roots and every live process below them."""
    out: set[int] = set()
    todo = [r for r in roots if os.path.exists(f"/proc/{r}")]
    while todo:
        pid = todo.pop()
        if pid in out:
            continue
        kids = children_of(pid)
        if kids is None:
            return descendants_by_scan(roots)
        out.add(pid)
        todo.extend(kids)
    return out


def descendants_by_scan(roots: set[int]) -> set[int]:
    """descendants() without children files: one scan of every /proc/<pid>/stat for parent links."""
    children: dict[int, list[int]] = {}
    for pid in all_pids():
        text = read_text(f"/proc/{pid}/stat")
        if text is None:
            continue
        _, f = parse_stat(text)
        if len(f) > 1:
            children.setdefault(int(f[1]), []).append(pid)
    out: set[int] = set()
    todo = [r for r in roots if os.path.exists(f"/proc/{r}")]
    while todo:
        pid = todo.pop()
        if pid in out:
            continue
        out.add(pid)
        todo.extend(children.get(pid, []))
    return out


def tgid_of(pid: int) -> int | None:
    """The process (thread group) a pid or thread id belongs to; None if there is none."""
    for line in (read_text(f"/proc/{pid}/status") or "").splitlines():
        if line.startswith("Tgid:"):
            return int(line.split()[1])
    return None


def cgroup_pids(cgroup_dir: str) -> set[int]:
    pids: set[int] = set()
    for dirpath, _dirs, files in os.walk(cgroup_dir):
        if "cgroup.procs" in files:
            text = read_text(os.path.join(dirpath, "cgroup.procs")) or ""
            pids.update(int(x) for x in text.split() if x.isdigit())
    return pids


def cgroup_of(pid: int) -> str | None:
    """The cgroup v2 path of a process (relative to the cgroup namespace root), None if unreadable."""
    for line in (read_text(f"/proc/{pid}/cgroup") or "").splitlines():
        if line.startswith("0::"):
            return line[3:].strip()
    return None


class CgroupCpu:
    """CPU the workload's sampled threads used in one cgroup, and the cgroup's cpu.weight."""

    __slots__ = ("cpu_ns", "path", "tids", "weight")

    def __init__(self, path: str) -> None:
        self.path = path
        self.cpu_ns = 0
        self.tids: set[int] = set()
        self.weight: int | None = None

    def read_weight(self) -> None:
        """The latest readable cpu.weight (none in the root cgroup or without the cpu controller;
        a cgroup the workload removes at its end keeps the last value read)."""
        text = read_text(os.path.join(CGROUP_ROOT, self.path.lstrip("/"), "cpu.weight"))
        if text is not None and text.strip().isdigit():
            self.weight = int(text.strip())

    def as_json(self) -> dict[str, Any]:
        return {"cpu_ns": self.cpu_ns, "tasks": len(self.tids), "weight": self.weight}


class ThreadRecord:
    """First and last schedstat/stat reading of one thread seen in the window."""

    __slots__ = ("born_in_window", "cgroup", "comm", "first", "last", "pid", "tid")

    def __init__(self, tid: int, pid: int, comm: str, reading: tuple[int, int, int], born: bool) -> None:
        self.tid = tid
        self.pid = pid
        self.comm = comm
        self.born_in_window = born
        self.cgroup: str | None = None  # its process's cgroup at the last sample
        # A thread born in the window used nothing before it: count from zero.
        self.first = (0, 0, 0) if born else reading
        self.last = reading

    def as_json(self) -> dict[str, Any]:
        return {
            "tid": self.tid,
            "pid": self.pid,
            "comm": self.comm,
            "born_in_window": self.born_in_window,
            "run_ns": self.last[0] - self.first[0],
            "wait_ns": self.last[1] - self.first[1],
            "slices": self.last[2] - self.first[2],
        }


class Sampler:
    """procfs view of the workload, one sample per interval."""

    def __init__(self, boot_ticks_at_start: int, clk_tck: int) -> None:
        self.start_ticks = boot_ticks_at_start
        self.clk_tck = clk_tck
        self.known: dict[int, int] = {}  # pid -> starttime (guards against pid reuse)
        self.threads: dict[int, ThreadRecord] = {}
        self.cgroups: dict[str, int] = {}
        # CPU per cgroup: each thread's CPU between two samples goes to the cgroup its process
        # was in at the later one (threads that live between two samples are not seen).
        self.cgroup_cpu: dict[str, CgroupCpu] = {}
        self.samples: list[dict[str, Any]] = []
        # Per-thread schedstat needs CONFIG_SCHED_INFO; without it CPU comes from stat ticks.
        self.schedstat_ok = os.path.exists("/proc/self/schedstat")
        self.ns_per_tick = 1_000_000_000 // clk_tck

    def refresh(self, pids: set[int]) -> set[int]:
        """Update the known set; returns the pids that are new to it."""
        new: set[int] = set()
        for pid in list(self.known):
            if proc_starttime(pid) != self.known[pid]:
                del self.known[pid]
        for pid in pids:
            st = proc_starttime(pid)
            if st is None:
                continue
            if self.known.get(pid) != st:
                new.add(pid)
            self.known[pid] = st
        return new

    def read_thread(self, pid: int, tid: int) -> tuple[str, str, tuple[int, int, int], int] | None:
        """(comm, state, (run_ns, wait_ns, slices), starttime) of one thread."""
        text = read_text(f"/proc/{pid}/task/{tid}/stat")
        if text is None:
            return None
        comm, f = parse_stat(text)
        if len(f) < 20:
            return None
        state, starttime = f[0], int(f[19])
        if self.schedstat_ok:
            sched = (read_text(f"/proc/{pid}/task/{tid}/schedstat") or "").split()
            if len(sched) < 3:
                return None  # exited between the two reads
            run_ns, wait_ns, slices = int(sched[0]), int(sched[1]), int(sched[2])
        else:
            run_ns, wait_ns, slices = (int(f[11]) + int(f[12])) * self.ns_per_tick, 0, 0
        return comm, state, (run_ns, wait_ns, slices), starttime

    def add_exit_tails(self, exited: list[dict[str, Any]]) -> int:
        """CPU a thread used after its last sample, up to its exit (the tracer's exact CPU time at
        exit, `se.sum_exec_runtime` like schedstat's), to the cgroup it was last seen in; returns
        how many threads got a tail. Without it a workload whose threads end together (hogs
        stopped at the end) loses up to an interval of their CPU per thread."""
        n = 0
        for e in exited:
            rec = self.threads.get(int(e["tid"]))
            if rec is None or rec.pid != int(e["tgid"]) or rec.cgroup is None:
                continue
            usage = self.cgroup_cpu.get(rec.cgroup)
            tail = int(e["cpu_ns"]) - rec.last[0]
            if usage is not None and tail > 0 and self.schedstat_ok:
                usage.cpu_ns += tail
                n += 1
        return n

    def sample(self, t_s: float) -> None:
        processes = threads = running = 0
        cpu_ns = 0
        for pid in list(self.known):
            try:
                tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
            except OSError:
                continue
            seen_threads = 0
            path = cgroup_of(pid)
            usage: CgroupCpu | None = None
            if path is not None:
                self.cgroups[path] = self.cgroups.get(path, 0) + 1
                usage = self.cgroup_cpu.get(path)
                if usage is None:
                    usage = self.cgroup_cpu[path] = CgroupCpu(path)
                usage.read_weight()
            for tid in tids:
                got = self.read_thread(pid, tid)
                if got is None:
                    continue
                comm, state, reading, starttime = got
                seen_threads += 1
                running += state == "R"
                rec = self.threads.get(tid)
                if rec is None or rec.pid != pid:
                    rec = ThreadRecord(tid, pid, comm, reading, born=starttime >= self.start_ticks)
                    self.threads[tid] = rec
                    delta = reading[0] - rec.first[0]
                else:
                    delta = max(0, reading[0] - rec.last[0])
                    rec.last = reading
                    rec.comm = comm
                cpu_ns += delta
                rec.cgroup = path
                if usage is not None:
                    usage.cpu_ns += delta
                    usage.tids.add(tid)
            if seen_threads:
                processes += 1
                threads += seen_threads
        self.samples.append(
            {"t_s": round(t_s, 4), "processes": processes, "threads": threads, "running": running, "cpu_ns": cpu_ns}
        )


def uptime_ticks(clk_tck: int) -> int:
    text = read_text("/proc/uptime") or "0"
    return int(float(text.split()[0]) * clk_tck)


# -- the command -----------------------------------------------------------------------------


class Child:
    """The command, forked into its own process group, held at a gate until released."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        # Open for the child's whole life, read after it exits; closed with the collector.
        self.stdout = tempfile.TemporaryFile(prefix="schedcp-out-")  # noqa: SIM115
        self.stderr = tempfile.TemporaryFile(prefix="schedcp-err-")  # noqa: SIM115
        gate_r, self.gate_w = os.pipe()
        self.err_r, err_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                libc.prctl(PR_SET_NAME, ctypes.c_char_p(GATE_COMM), 0, 0, 0)
                libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
                os.close(self.gate_w)
                os.close(self.err_r)
                os.setpgid(0, 0)
                for sig in (signal.SIGPIPE, signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
                    signal.signal(sig, signal.SIG_DFL)
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)
                os.dup2(self.stdout.fileno(), 1)
                os.dup2(self.stderr.fileno(), 2)
                os.write(err_w, READY)  # named and set up: the collector may track us now
                if os.read(gate_r, 1) != b"g":
                    os._exit(125)  # the collector gave up before releasing us
                os.execvp(argv[0], argv)
            except OSError as exc:
                os.write(err_w, f"{exc.strerror or exc} ({argv[0]})".encode())
            except BaseException:
                pass
            os._exit(127)
        os.close(gate_r)
        os.close(err_w)
        self.gate_open = True
        self.pid = pid
        self.pidfd = os.pidfd_open(pid)
        # Wait until it is named, so that the tracer never sees it as "python3".
        ready, _, _ = select.select([self.err_r], [], [], READY_TIMEOUT_S)
        if not ready or os.read(self.err_r, len(READY)) != READY:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise RuntimeError(f"the command's child did not get ready within {READY_TIMEOUT_S:g} s")
        self.status: int | None = None
        self.rusage: resource.struct_rusage | None = None

    def release(self) -> str | None:
        """Let it exec; returns the exec error (no such file, permission) or None."""
        os.write(self.gate_w, b"g")
        self.close_gate()
        msg = b""
        while True:
            chunk = os.read(self.err_r, 4096)
            if not chunk:
                break
            msg += chunk
        os.close(self.err_r)
        return msg.decode(errors="replace") or None

    def close_gate(self) -> None:
        """Closed unreleased, the gate gives the child EOF and it exits without running anything."""
        if self.gate_open:
            self.gate_open = False
            os.close(self.gate_w)

    def reap(self, block: bool = False) -> bool:
        if self.status is not None:
            return True
        pid, status, ru = os.wait4(self.pid, 0 if block else os.WNOHANG)
        if pid == 0:
            return False
        self.status = status
        self.rusage = ru
        return True

    def kill_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)

    def wait_group_gone(self, timeout: float = KILL_GRACE_S) -> bool:
        """Wait until no process of the command's group is left, so the tracer has seen their
        exits before its maps are read. Orphans of the command were reparented to us (we are
        a child subreaper), so their zombies are ours to reap."""
        deadline = time.monotonic() + timeout
        while True:
            reap_orphans()
            try:
                os.killpg(self.pid, 0)
            except ProcessLookupError:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL after a grace period; reap."""
        if self.reap():
            self.kill_group(signal.SIGKILL)  # stragglers of an exited leader
            return
        self.kill_group(signal.SIGTERM)
        ready, _, _ = select.select([self.pidfd], [], [], KILL_GRACE_S)
        if not ready:
            self.kill_group(signal.SIGKILL)
        self.reap(block=True)
        self.kill_group(signal.SIGKILL)

    def output(self) -> tuple[str, bool, str]:
        self.stdout.seek(0)
        out = self.stdout.read(STDOUT_LIMIT + 1)
        self.stderr.seek(0, os.SEEK_END)
        size = self.stderr.tell()
        self.stderr.seek(max(0, size - STDERR_TAIL))
        err = self.stderr.read()
        return out[:STDOUT_LIMIT].decode(errors="replace"), len(out) > STDOUT_LIMIT, err.decode(errors="replace")


def reap_orphans() -> None:
    """Reap exited orphans of the workload (never while a helper subprocess runs)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    p.add_argument("--id", required=True, help="run id: names the pin folder schedcp_analyze_<id>")
    p.add_argument("--object", help="compiled sched_trace.bpf.o; without it: procfs/schedstat only")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between procfs samples")
    p.add_argument("--duration", type=float, help="observe this long (required for --pid/--cgroup)")
    p.add_argument("--timeout", type=float, help="kill a command still running after this many seconds")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--pid", type=int)
    group.add_argument("--cgroup")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    return args


def resolve_cgroup(path: str) -> str:
    full = path if path.startswith("/sys/fs/cgroup") else os.path.join("/sys/fs/cgroup", path.lstrip("/"))
    full = os.path.normpath(full)
    if not os.path.isfile(os.path.join(full, "cgroup.procs")):
        raise Fatal(f"no cgroup v2 folder at {full} (no cgroup.procs there); give a path under /sys/fs/cgroup")
    return full


class Collector:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tools = Tools()
        self.errors: list[str] = []
        self.missing: list[str] = []
        self.notes: list[str] = []
        self.clk_tck = os.sysconf("SC_CLK_TCK")
        self.tracer: Tracer | None = None
        self.stats = StatsSwitch()
        self.child: Child | None = None
        self.doc: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "id": args.id,
            "host": platform.node(),
            "kernel": platform.release(),
            "ncpus": os.cpu_count() or 1,
            "clk_tck": self.clk_tck,
            "interval_s": args.interval,
            "fatal": None,
        }
        if args.pid is not None:
            self.doc["target"] = {"kind": "pid", "pid": args.pid}
        elif args.cgroup is not None:
            self.doc["target"] = {"kind": "cgroup", "cgroup": args.cgroup}
        else:
            self.doc["target"] = {"kind": "command", "command": list(args.command)}

    # The whole run; the caller prints self.doc whatever happens.
    def run(self) -> None:
        args = self.args
        kind = self.doc["target"]["kind"]
        if kind == "command" and not args.command:
            raise Fatal("no command given (put it after --)")
        if kind != "command" and not args.duration:
            raise Fatal(f"--{kind} needs --duration")
        cgroup_dir = resolve_cgroup(args.cgroup) if kind == "cgroup" else None
        if cgroup_dir is not None:
            self.doc["target"]["cgroup_dir"] = cgroup_dir
        if kind == "pid":
            tgid = tgid_of(args.pid)
            if tgid is None:
                raise Fatal(f"no process with pid {args.pid}")
            if tgid != args.pid:
                # The tracer follows thread groups: a thread id means its whole process.
                self.notes.append(f"pid {args.pid} is a thread of process {tgid}; observing the process")
                args.pid = tgid
                self.doc["target"]["pid"] = tgid
        setup_t0 = time.monotonic()
        setup_cpu0 = self_cpu_s() + self.tools.cpu_s
        self.load_bpf()
        pidfd: int | None = None
        if kind == "command":
            self.child = Child(list(args.command))
            roots = {self.child.pid}
        elif kind == "pid":
            try:
                pidfd = os.pidfd_open(args.pid)
            except OSError as exc:
                raise Fatal(f"cannot attach to pid {args.pid}: {exc.strerror}") from exc
            roots = {args.pid}
        else:
            assert cgroup_dir is not None
            roots = cgroup_pids(cgroup_dir)
        initial = roots if kind == "command" else (descendants(roots) if kind == "pid" else roots)
        # Where the workload started: the command's child is still in ours (it has not exec'd),
        # an attached pid in its own, a cgroup target is the cgroup given. Cgroups it moves
        # tasks into later are its own doing (multi-tenant workloads).
        if kind == "cgroup":
            assert cgroup_dir is not None
            rel = os.path.relpath(cgroup_dir, CGROUP_ROOT)
            start_cgroups = {"/" if rel == "." else "/" + rel}
        else:
            start_cgroups = {c for c in (cgroup_of(pid) for pid in (initial if kind == "pid" else roots)) if c}
        if self.tracer is not None:
            err = self.tracer.track(sorted(initial))
            if err:
                self.bpf_failed(err)
            elif kind == "pid":
                # Forks between the scan and the seeding: the tracer only follows forks from now on.
                late = descendants(roots) - initial
                if late and (err := self.tracer.track(sorted(late))) is not None:
                    self.errors.append(err)
        self.doc["setup"] = {"wall_s": round(time.monotonic() - setup_t0, 4)}
        clk = self.clk_tck
        sampler = Sampler(uptime_ticks(clk), clk)
        psi_start = psi_snapshot(cgroup_dir)
        wall0 = time.time()
        cpu0 = self_cpu_s()
        tools0 = self.tools.cpu_s
        self.doc["setup"]["cpu_s"] = round(cpu0 + tools0 - setup_cpu0, 4)
        # From here on the collector only samples: it yields to the workload it observes (the
        # command was forked already and keeps its own nice value).
        self.doc["collector_nice"] = os.nice(COLLECTOR_NICE)
        t0 = time.monotonic()
        if self.child is not None:
            exec_error = self.child.release()
            if exec_error is not None:
                self.child.reap(block=True)
                raise Fatal(f"cannot run {args.command[0]!r}: {exec_error}")
        sampler.refresh(initial)
        sampler.sample(0.0)
        limit = args.duration if args.duration else args.timeout
        deadline = t0 + limit if limit else None
        stop_reason = "duration"
        next_sample = t0 + args.interval
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                stop_reason = "duration" if args.duration else "timeout"
                break
            wait_until = next_sample if deadline is None else min(next_sample, deadline)
            fds = [fd for fd in (self.child.pidfd if self.child else None, pidfd) if fd is not None]
            ready, _, _ = select.select(fds, [], [], max(0.0, wait_until - now))
            if ready:
                stop_reason = "exited" if self.child is not None else "vanished"
                break
            if time.monotonic() >= next_sample:
                self.sample(sampler, kind, roots, cgroup_dir, time.monotonic() - t0)
                # A sample slower than the interval (emulation, huge workloads) must not make
                # the next ones fire back to back to catch up.
                next_sample = max(next_sample + args.interval, time.monotonic())
        window = time.monotonic() - t0
        self.doc["window_s"] = round(window, 6)
        self.doc["started_at"] = wall0
        self.doc["stop_reason"] = stop_reason
        if stop_reason in ("duration", "timeout"):
            self.sample(sampler, kind, roots, cgroup_dir, window)
        if self.child is not None:
            self.finish_child(stop_reason)
        elif stop_reason == "vanished":
            self.doc["target_vanished_s"] = round(window, 4)
            self.missing.append(
                f"pid {args.pid} exited after {window:.2f} s of the {args.duration:g} s asked for: "
                "the profile covers only that part"
            )
        self.doc["collector"] = {
            "self_cpu_s": round(self_cpu_s() - cpu0, 6),
            "tools_cpu_s": round(self.tools.cpu_s - tools0, 6),
        }
        self.doc["pressure"] = {"start": psi_start, "end": psi_snapshot(cgroup_dir)}
        if psi_start["system"]["cpu"] is None:
            self.missing.append("psi: /proc/pressure is not readable (kernel without CONFIG_PSI, or psi=0)")
        self.doc["samples"] = sampler.samples
        self.doc["threads"] = [t.as_json() for t in sampler.threads.values()]
        self.doc["cgroups"] = sampler.cgroups
        self.doc["start_cgroups"] = sorted(start_cgroups)
        self.doc["schedstat"] = sampler.schedstat_ok
        if not sampler.schedstat_ok:
            self.missing.append("schedstat: /proc/<pid>/task/<tid>/schedstat unavailable; CPU from stat ticks")
        self.collect_bpf()
        if self.doc["bpf"].get("loaded"):
            sampler.add_exit_tails(self.doc["bpf"].get("exited", []))
        self.doc["cgroup_cpu"] = {path: c.as_json() for path, c in sampler.cgroup_cpu.items()}

    def sample(self, sampler: Sampler, kind: str, roots: set[int], cgroup_dir: str | None, t_s: float) -> None:
        if kind == "cgroup":
            assert cgroup_dir is not None
            pids = cgroup_pids(cgroup_dir)
        else:
            pids = descendants(roots | set(sampler.known))
        new = sampler.refresh(pids)
        # Processes that moved into the cgroup: the tracer only follows forks by itself.
        if kind == "cgroup" and new and self.tracer is not None and self.tracer.loaded:
            err = self.tracer.track(sorted(new))
            if err:
                self.errors.append(err)
        sampler.sample(t_s)
        self.reap_orphan_zombies(pids)

    def reap_orphan_zombies(self, pids: set[int]) -> None:
        """Orphans of the workload that exited are our zombies (we are their subreaper): reap
        them as we go, so a long run does not pile them up. Never the command itself: its
        status and rusage come from our own wait4."""
        me = os.getpid()
        for pid in pids:
            if self.child is not None and pid == self.child.pid:
                continue
            text = read_text(f"/proc/{pid}/stat")
            if text is None:
                continue
            _, f = parse_stat(text)
            if len(f) > 1 and f[0] == "Z" and int(f[1]) == me:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)

    def finish_child(self, stop_reason: str) -> None:
        child = self.child
        assert child is not None
        if stop_reason == "exited":
            child.reap(block=True)
            child.kill_group(signal.SIGKILL)  # background leftovers of the command
        else:
            child.stop()
        if not child.wait_group_gone():
            self.notes.append("processes of the command's group were still exiting when the maps were read")
        status = child.status
        cmd: dict[str, Any] = {
            "pid": child.pid,
            "exit_code": os.waitstatus_to_exitcode(status) if status is not None and stop_reason == "exited" else None,
            "signal": os.WTERMSIG(status) if status is not None and os.WIFSIGNALED(status) else None,
            "stopped": None if stop_reason == "exited" else stop_reason,
        }
        if child.rusage is not None:
            cmd["rusage_cpu_s"] = round(child.rusage.ru_utime + child.rusage.ru_stime, 6)
            cmd["rusage_nvcsw"] = child.rusage.ru_nvcsw
            cmd["rusage_nivcsw"] = child.rusage.ru_nivcsw
        out, truncated, err = child.output()
        cmd["stdout"] = out
        cmd["stdout_truncated"] = truncated
        cmd["stderr_tail"] = err
        self.doc["command"] = cmd
        if stop_reason == "timeout":
            self.missing.append(f"the command was still running at the {self.args.timeout:g} s timeout and was killed")
        window = float(self.doc.get("window_s") or 0.0)
        if stop_reason == "exited" and window < SHORT_WINDOW_S:
            self.missing.append(
                f"the command exited after {window:.3f} s: too short to observe its scheduling behaviour"
            )

    def load_bpf(self) -> None:
        self.doc["bpf"] = {"loaded": False, "error": None, "object": self.args.object}
        if not self.args.object:
            self.doc["bpf"]["error"] = "not requested (no --object)"
            self.missing.append("bpf: tracing not requested; run-queue latency from schedstat means only")
            return
        err = self.stats.enable()
        if err:
            self.errors.append(f"bpf statistics: {err}")
        self.doc["bpf"]["stats"] = self.stats.how
        tracer = Tracer(self.args.object, self.args.id, self.tools)
        t0 = time.monotonic()
        try:
            tracer.load()
        except (RuntimeError, OSError) as exc:
            self.notes.extend(tracer.notes)
            self.bpf_failed(str(exc))
            return
        self.doc["bpf"]["load_s"] = round(time.monotonic() - t0, 4)
        self.doc["bpf"]["pin_dir"] = tracer.pin_dir
        self.tracer = tracer

    def bpf_failed(self, why: str) -> None:
        self.doc["bpf"]["loaded"] = False
        self.doc["bpf"]["error"] = why
        self.missing.append(f"bpf: {why}")
        if self.tracer is not None:
            self.tracer.cleanup()
            self.tracer = None
        self.stats.close()

    def collect_bpf(self) -> None:
        tracer = self.tracer
        if tracer is None:
            return
        bpf = self.doc["bpf"]
        try:
            bpf["programs"] = tracer.prog_stats()
            bpf["comm_stats"] = merge_comm_stats(tracer.dump("comm_stats"))
            bpf["wake_pairs"] = merge_pairs(tracer.dump("wake_pairs"))
            bpf["exited"] = [
                {"tid": int(e["key"]), "tgid": int(e["value"]["tgid"]), "comm": e["value"]["comm"]}
                | {"cpu_ns": int(e["value"]["cpu_ns"]), "life_ns": int(e["value"]["life_ns"])}
                for e in tracer.dump("exited")
            ]
            bpf["drops"] = merge_drops(tracer.dump("drops"))
            tracked = tracer.dump("tracked")
            bpf["still_tracked"] = len(tracked)
            # Which, and are they alive: a finished process left here means missed exit events.
            bpf["still_tracked_sample"] = [
                {"tgid": int(e["key"]), "state": int(e["value"]), "alive": os.path.exists(f"/proc/{e['key']}")}
                for e in tracked[:20]
            ]
            bpf["loaded"] = True
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            self.bpf_failed(f"reading the tracer's maps failed: {exc}")

    def cleanup(self) -> None:
        if self.child is not None and "command" not in self.doc:
            self.child.close_gate()
            self.finish_child("terminated")  # stopped early (SIGTERM): still say what became of it
        if self.tracer is not None:
            self.tracer.cleanup()
            self.notes.extend(self.tracer.notes)
            self.doc["bpf"]["pins_removed"] = not os.path.exists(self.tracer.pin_dir)
        self.stats.close()


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    # The workload's orphans become our children rather than init's: they stay visible as
    # descendants, and we can reap them promptly at the end.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    collector = Collector(args)
    rc = 0
    try:
        collector.run()
    except Fatal as exc:
        collector.doc["fatal"] = str(exc)
        rc = 2
    except Terminated as exc:
        collector.errors.append(f"collector stopped by {exc} before the end of the window")
    except Exception as exc:  # still report what was gathered, and say what broke
        collector.errors.append(f"collector failed: {exc!r}")
        rc = 1
    finally:
        try:
            collector.cleanup()
        except Terminated:
            collector.cleanup()
    collector.doc["errors"] = collector.errors
    collector.doc["missing"] = collector.missing
    collector.doc["notes"] = collector.notes
    json.dump(collector.doc, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
