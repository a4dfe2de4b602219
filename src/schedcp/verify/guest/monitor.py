"""The verifier's in-guest monitor: stress a policy, watch it with probes, stop it at the first harm.

Standard library only; runs where the policy runs (the sandbox guest, or a sched_ext host).

    python3 -I monitor.py --dir DIR --probe PROBE --pin PIN_DIR --ops NAME --duration S
                          --vcpus N --bounds JSON

It must keep running while the policy under test stalls every normal task, so it is started
real-time (the agent's `rt` exec: SCHED_FIFO) and forks itself into the background keeping
that class (a fork with SCHED_RESET_ON_FORK would be a normal task and stall with the rest).
Everything it starts (the probes and the stress) is a normal task in a cgroup of its own, so
the policy schedules it and one write to cgroup.kill ends it all.

Every CHECK_INTERVAL_S it reads the probes' shared file and /sys/kernel/sched_ext. When a
bound is broken (no probe progressed: a stall; one class did not: starvation; the sleeper
woke far too late; the kernel disabled the policy) it removes the policy's pin at once, so
the kernel falls back to its own scheduler within moments instead of waiting for the
watchdog, and records why. The host polls DIR/status.json through the control channel (that
is the heartbeat) and reads DIR/final.json when "done" is set.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import uuid
from typing import Any

FILE_SLOTS = 32
HIST_BUCKETS = 32
SLOT = struct.Struct("<8Q32I")  # struct slot in probe.c
CHECK_INTERVAL_S = 0.1
STATUS_INTERVAL_S = 0.5
SCX = "/sys/kernel/sched_ext"
CGROUP_ROOT = "/sys/fs/cgroup"
RT_PRIORITY = 40
# Short-lived threads and sleepers at a time, and children per fork round. stress-ng's defaults
# (1024 threads each) put a thousand runnable tasks on 2 vCPUs: under emulation that starved
# even the kernel's EEVDF for seconds, so it measured the machine rather than the policy.
THREADS_MAX = 32
FORK_MAX = 4


# -- probes -----------------------------------------------------------------------------------

# (slot, name, kind, nice, policy, pinned): the task classes whose progress is bounded. A spin
# probe's progress is its CPU time; the sleeper's is its wakeups; the forker's its fresh tasks.
PROBES: tuple[tuple[int, str, str, int, str, bool], ...] = (
    (0, "normal", "spin", 0, "other", False),
    (1, "nice19", "spin", 19, "other", False),
    (2, "pinned", "spin", 0, "other", True),
    (3, "batch", "spin", 0, "batch", False),
    (4, "idle", "spin", 0, "idle", False),
    (5, "fork", "fork", 0, "other", False),
    (6, "fair-a", "spin", 0, "other", False),
    (7, "fair-b", "spin", 0, "other", False),
    (8, "sleeper", "sleep", 0, "other", False),
)


# Per CPU, a real-time task pinned there that wakes every BEAT_US: no sched_ext policy can delay
# it, so when it is late the CPU itself did not run (the emulator's vCPU thread was not
# scheduled on the host). The monitor's own pauses show only its CPU; these show each one.
BEAT_SLOT0 = 16
BEAT_US = 50_000


def read_slots(path: str) -> list[dict[str, Any]]:
    with open(path, "rb") as f:
        data = f.read(FILE_SLOTS * SLOT.size)
    slots = []
    for i in range(FILE_SLOTS):
        v = SLOT.unpack_from(data, i * SLOT.size)
        slots.append(
            {
                "pid": v[0],
                "count": v[1],
                "last_ns": v[2],
                "max_gap_ns": v[3],
                "max_late_ns": v[4],
                "sum_late_ns": v[5],
                "started_ns": v[6],
                "hist": list(v[8 : 8 + HIST_BUCKETS]),
            }
        )
    return slots


def percentile_us(hist: list[int], q: float) -> float | None:
    """Upper bound (us) of the log2 bucket holding the q-quantile; None without samples."""
    total = sum(hist)
    if total == 0:
        return None
    need = q * total
    seen = 0
    for b, n in enumerate(hist):
        seen += n
        if seen >= need:
            return float(2 ** (b + 1))
    return float(2**HIST_BUCKETS)


# -- the run ------------------------------------------------------------------------------------


class Monitor:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dir = args.dir
        self.bounds: dict[str, Any] = json.loads(args.bounds)
        self.shm = os.path.join(self.dir, "probes.shm")
        # Probes and stress in two cgroups under one: the class changes below must hit only
        # stress workers (never a probe), and one cgroup.kill on the parent ends everything.
        self.cgroup = os.path.join(CGROUP_ROOT, f"schedcp_verify_{uuid.uuid4().hex[:8]}")
        self.probes_cg = os.path.join(self.cgroup, "probes")
        self.stress_cg = os.path.join(self.cgroup, "stress")
        self.procs: list[subprocess.Popen[bytes]] = []
        self.events: list[str] = []
        self.verdict: dict[str, Any] | None = None
        self.live_gap_s: dict[str, float] = {}
        self.max_pause_s = 0.0  # the monitor's own longest pause beyond its check interval
        self.beat_gap_s: dict[int, float] = {}  # per CPU: its heartbeat's latest wakeup
        self.switches = 0
        self.t0 = time.monotonic()
        self.attached_at: float | None = None  # when the policy was first seen enabled
        self.seq0 = self.enable_seq()  # schedulers enabled before ours

    # -- setup --

    def spawn(self, argv: list[str], cgroup: str) -> subprocess.Popen[bytes]:
        def enter() -> None:
            """In the child before exec: a normal task, in its cgroup."""
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))

        with open(os.path.join(self.dir, "stress.err"), "ab") as err:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=enter
            )
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        for cg in (self.cgroup, self.probes_cg, self.stress_cg):
            os.makedirs(cg, exist_ok=True)
        with open(self.shm, "wb") as f:
            f.write(b"\0" * FILE_SLOTS * SLOT.size)
        for slot, _name, kind, nice, policy, pinned in PROBES:
            argv = [self.args.probe, kind, self.shm, str(slot), "-n", str(nice), "-p", policy]
            if pinned:
                argv += ["-c", "0"]
            self.spawn(argv, self.probes_cg)
        for cpu in self.beat_cpus():
            beat = str(BEAT_SLOT0 + cpu)
            self.spawn(
                [self.args.probe, "sleep", self.shm, beat, "-p", "fifo", "-c", str(cpu), "-i", str(BEAT_US)],
                self.probes_cg,
            )
        # Outlives the run, however long the attach takes; cgroup.kill ends it.
        duration = str(int(self.args.duration + (self.args.attach_wait if self.args.ops else 0)) + 5)
        hogs = str(4 * self.args.vcpus)
        extra = [] if self.args.stress == "full" else ["--cpu", hogs]
        if extra:  # the CPU hogs only (calibration)
            self.spawn(["stress-ng", "--quiet", "--timeout", f"{duration}s", *extra], self.stress_cg)
            return
        # Oversubscription, fork/exec storm, affinity changes, many short-lived threads,
        # mixed CPU + I/O + sleep: one stress-ng, its workers in our cgroup.
        self.spawn(
            [
                "stress-ng",
                "--quiet",
                "--timeout",
                f"{duration}s",
                "--cpu",
                hogs,
                "--fork",
                "1",
                "--fork-max",
                str(FORK_MAX),
                "--affinity",
                "1",
                "--pthread",
                "1",
                "--pthread-max",
                str(THREADS_MAX),
                "--sleep",
                "1",
                "--sleep-max",
                str(THREADS_MAX),
                "--iomix",
                "1",
                "--iomix-bytes",
                "4m",
            ],
            self.stress_cg,
        )
        # An exec storm (stress-ng's exec stressor refuses to run as root).
        self.spawn(["sh", "-c", "while :; do /bin/true; done"], self.stress_cg)
        # Hogs pinned to the CPU the pinned probe is on.
        self.spawn(
            ["taskset", "-c", "0", "stress-ng", "--quiet", "--timeout", f"{duration}s", "--cpu", "1"], self.stress_cg
        )

    def beat_cpus(self) -> range:
        return range(min(self.args.vcpus, FILE_SLOTS - BEAT_SLOT0))

    # -- watching --

    def sched_ext(self) -> tuple[str, str]:
        try:
            with open(os.path.join(SCX, "state")) as f:
                state = f.read().strip()
        except OSError:
            state = "unknown"
        try:
            with open(os.path.join(SCX, "root", "ops")) as f:
                ops = f.read().strip()
        except OSError:
            ops = ""
        return state, ops

    def enable_seq(self) -> int:
        try:
            with open(os.path.join(SCX, "enable_seq")) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def switch_classes(self) -> None:
        """Nice and policy changes on a live task: cycle one stress worker through them."""
        cycle = [("other", 0), ("batch", 0), ("idle", 0), ("other", -10), ("other", 19)]
        pol, nice = cycle[self.switches % len(cycle)]
        self.switches += 1
        for pid in [p for p in self.cgroup_pids(self.stress_cg) if p != os.getpid()][-3:]:
            try:
                policy = {"other": os.SCHED_OTHER, "batch": os.SCHED_BATCH, "idle": os.SCHED_IDLE}[pol]
                os.sched_setscheduler(pid, policy, os.sched_param(0))
                os.setpriority(os.PRIO_PROCESS, pid, nice)
            except OSError:
                continue  # a short-lived task gone meanwhile

    def start_switcher(self) -> None:
        """Class changes every 0.5 s, in a process of their own: sched_setscheduler() can block
        under a stalling policy, and in this process it would hold the interpreter (and with it
        every check) until the kernel's watchdog fired. The switcher is a normal task in the
        stress cgroup: it stops with the stress, and cgroup.kill ends it."""
        pid = os.fork()
        if pid:
            return
        try:
            with open(os.path.join(self.stress_cg, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            while True:
                self.switch_classes()
                with open(os.path.join(self.dir, ".switches"), "w") as f:
                    f.write(str(self.switches))
                time.sleep(0.5)
        finally:
            os._exit(0)

    def switch_count(self) -> int:
        try:
            with open(os.path.join(self.dir, ".switches")) as f:
                return int(f.read() or 0)
        except (OSError, ValueError):
            return 0

    def cgroup_pids(self, cgroup: str) -> list[int]:
        try:
            with open(os.path.join(cgroup, "cgroup.procs")) as f:
                return [int(x) for x in f.read().split()]
        except OSError:
            return []

    def stop_policy(self, kind: str, detail: str) -> None:
        """Record the first harm and take the policy off the CPUs now (the pin holds its link)."""
        if self.verdict is not None:
            return
        t = time.monotonic() - self.t0
        self.verdict = {"kind": kind, "detail": detail, "at_s": round(t, 2)}
        self.events.append(f"{t:.2f} s: {kind}: {detail}")
        if self.args.pin and os.path.exists(self.args.pin):
            shutil.rmtree(self.args.pin, ignore_errors=True)
            self.events.append(f"{time.monotonic() - self.t0:.2f} s: removed the pin {self.args.pin}")
        deadline = time.monotonic() + 1.0
        state, _ = self.sched_ext()
        while self.args.ops and state in ("enabling", "enabled") and time.monotonic() < deadline:
            time.sleep(0.05)
            state, _ = self.sched_ext()
        if self.args.ops and state in ("enabling", "enabled"):
            # The pin was not the link's last holder: the attach is still running (bpftool holds
            # the link until it exits, and under a stalling policy its exit waits on kernel
            # threads that never run), or there is no pin yet. sched_ext's own emergency stop,
            # SysRq-S, returns every task to the kernel's scheduler whatever holds the link.
            try:
                with open("/proc/sysrq-trigger", "w") as f:
                    f.write("S")
                self.events.append(f"{time.monotonic() - self.t0:.2f} s: SysRq-S (sched_ext still {state})")
            except OSError as exc:
                self.events.append(f"SysRq-S failed: {exc}")

    def check(self, slots: list[dict[str, Any]], now_ns: int) -> None:
        b = self.bounds
        state, ops = self.sched_ext()
        if self.args.ops:
            # The monitor starts before the policy is attached, so a policy that stalls the
            # machine while it is being enabled is watched too.
            if state == "enabled" and ops == self.args.ops:
                if self.attached_at is None:
                    self.attached_at = time.monotonic()
                    self.events.append(f"{self.attached_at - self.t0:.2f} s: {ops} enabled")
            elif self.attached_at is not None:
                self.stop_policy("ejected", f"sched_ext is {state} ({ops or 'no scheduler'}) during the run")
                return
            elif state == "disabled" and self.enable_seq() > self.seq0:
                # Enabled and disabled again between two checks: the kernel ejected it at once.
                self.stop_policy("ejected", "enabled and disabled again within one check")
                return
            elif time.monotonic() - self.t0 > self.args.attach_wait:
                self.stop_policy("not attached", f"not enabled {self.args.attach_wait:g} s after the start ({state})")
                return
        gaps: dict[str, float] = {}
        for slot, name, _kind, _nice, _policy, _pinned in PROBES:
            s = slots[slot]
            if not s["started_ns"] or not s["last_ns"]:
                continue  # not yet running: a probe never started is caught by its own bound
            gap = max(0, now_ns - s["last_ns"]) / 1e9
            gaps[name] = gap
            self.live_gap_s[name] = max(self.live_gap_s.get(name, 0.0), gap)
        for cpu in self.beat_cpus():
            beat = slots[BEAT_SLOT0 + cpu]
            if beat["started_ns"] and beat["last_ns"]:
                late = max(max(0, now_ns - beat["last_ns"]) - BEAT_US * 1000, beat["max_late_ns"]) / 1e9
                self.beat_gap_s[cpu] = max(self.beat_gap_s.get(cpu, 0.0), late)
        elapsed = time.monotonic() - self.t0
        if elapsed < b["warmup_s"]:
            return
        stopped = {cpu: gap for cpu, gap in self.beat_gap_s.items() if gap > b["freeze_s"]}
        if stopped:
            cpu, gap = max(stopped.items(), key=lambda kv: kv[1])
            # As for the monitor's own pause (run()): the host, not the policy, stopped a CPU.
            self.stop_policy("frozen", f"CPU {cpu} did not run for {gap:.1f} s (its real-time heartbeat was late)")
            self.max_pause_s = max(self.max_pause_s, gap)
            return
        spinners = [g for n, g in gaps.items() if n not in ("idle",)]
        if spinners and min(spinners) > b["stall_s"]:
            self.stop_policy("stall", f"no probe has run for {min(spinners):.1f} s (bound {b['stall_s']:g} s)")
            return
        for name, gap in gaps.items():
            bound = b["progress_s"].get(name)
            if bound is not None and gap > bound:
                self.stop_policy("starvation", f"the {name} probe has not run for {gap:.1f} s (bound {bound:g} s)")
                return
        sleeper = slots[8]
        late_ms = sleeper["max_late_ns"] / 1e6
        if late_ms > b["latency_abort_ms"]:
            self.stop_policy("wakeup latency", f"the sleeper woke {late_ms:.0f} ms late (bound {b['latency_ms']:g} ms)")

    def status(self, done: bool, slots: list[dict[str, Any]]) -> dict[str, Any]:
        probes = {}
        for slot, name, kind, nice, policy, pinned in PROBES:
            s = slots[slot]
            entry: dict[str, Any] = {
                "kind": kind,
                "nice": nice,
                "policy": policy,
                "pinned": pinned,
                "count": s["count"],
                "max_gap_s": round(max(s["max_gap_ns"] / 1e9, self.live_gap_s.get(name, 0.0)), 3),
            }
            if kind == "sleep":
                entry["late_max_ms"] = round(s["max_late_ns"] / 1e6, 3)
                entry["late_mean_ms"] = round(s["sum_late_ns"] / 1e6 / s["count"], 3) if s["count"] else None
                p99 = percentile_us(s["hist"], 0.99)
                # A log2 bucket's upper edge can exceed the largest value seen: never report more.
                entry["late_p99_ms"] = min(p99 / 1000, entry["late_max_ms"]) if p99 is not None else None
            probes[name] = entry
        state, ops = self.sched_ext()
        return {
            "done": done,
            "elapsed_s": round(time.monotonic() - self.t0, 2),
            "state": state,
            "ops": ops,
            "verdict": self.verdict,
            "probes": probes,
            "class_switches": self.switch_count(),
            "max_pause_s": round(self.max_pause_s, 3),
            "cpu_heartbeat_late_s": {str(c): round(g, 3) for c, g in sorted(self.beat_gap_s.items())},
            "events": self.events,
        }

    def finished(self) -> bool:
        """The run lasts its duration under the policy, counted from the attach: counted from
        the start, a slow attach (10 s under emulation, with the stress running) ate into it, and
        a policy that starves niced tasks for good was let go before their 25 s bound."""
        start = self.t0
        if self.args.ops:
            if self.attached_at is None:
                return False  # the attach_wait bound in check() ends a policy never enabled
            start = self.attached_at
        return bool(time.monotonic() - start >= self.args.duration)

    def write(self, name: str, data: dict[str, Any]) -> None:
        tmp = os.path.join(self.dir, f".{name}.tmp")
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, os.path.join(self.dir, name))

    def run(self) -> None:
        try:
            self.start()
            self.start_switcher()
            # Everything is started: the host attaches the policy only after this first status.
            # (Starting a process needs the child to run until it execs, and under a policy
            # that stalls normal tasks it never does: the monitor would block in Popen.)
            self.write("status.json", self.status(False, read_slots(self.shm)))
            last_status = 0.0
            last_check = time.monotonic()
            while not self.finished():
                time.sleep(CHECK_INTERVAL_S)
                now = time.monotonic()
                pause, last_check = now - last_check - CHECK_INTERVAL_S, now
                self.max_pause_s = max(self.max_pause_s, pause)
                if pause > self.bounds["freeze_s"]:
                    # Nothing in the guest ran, this real-time loop included: the emulator was
                    # not scheduled on the host (or a CPU hung in the kernel). Every gap seen
                    # now, and the kernel's watchdogs, would blame the policy for it.
                    self.stop_policy("frozen", f"the monitor (real-time) did not run for {pause:.1f} s")
                    break
                slots = read_slots(self.shm)
                self.check(slots, time.clock_gettime_ns(time.CLOCK_MONOTONIC))
                if os.path.exists(os.path.join(self.dir, "stop")):
                    self.events.append(f"{time.monotonic() - self.t0:.2f} s: stopped by the host")
                    break
                if self.verdict is not None and self.verdict["kind"] != "ejected":
                    break
                if self.verdict is not None:
                    break
                now = time.monotonic()
                if now - last_status > STATUS_INTERVAL_S:
                    self.write("status.json", self.status(False, slots))
                    last_status = now
        except Exception as exc:
            self.events.append(f"monitor error: {exc!r}")
            if self.verdict is None:
                self.verdict = {
                    "kind": "monitor error",
                    "detail": repr(exc),
                    "at_s": round(time.monotonic() - self.t0, 2),
                }
        finally:
            slots = read_slots(self.shm) if os.path.exists(self.shm) else [SLOT_EMPTY] * FILE_SLOTS
            self.cleanup()
            final = self.status(True, slots)
            self.write("final.json", final)
            self.write("status.json", final)

    def cleanup(self) -> None:
        try:
            with open(os.path.join(self.cgroup, "cgroup.kill"), "w") as f:
                f.write("1")
        except OSError as exc:
            self.events.append(f"cgroup.kill: {exc}")
            for p in self.procs:
                p.kill()
        deadline = time.monotonic() + 10
        while (self.cgroup_pids(self.probes_cg) or self.cgroup_pids(self.stress_cg)) and time.monotonic() < deadline:
            time.sleep(0.05)
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=1)
        for cg in (self.probes_cg, self.stress_cg, self.cgroup):
            try:
                os.rmdir(cg)
            except OSError as exc:
                self.events.append(f"could not remove {cg}: {exc}")


SLOT_EMPTY: dict[str, Any] = {
    "pid": 0,
    "count": 0,
    "last_ns": 0,
    "max_gap_ns": 0,
    "max_late_ns": 0,
    "sum_late_ns": 0,
    "started_ns": 0,
    "hist": [0] * HIST_BUCKETS,
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--probe", required=True)
    ap.add_argument("--pin", default="", help="where the policy's link will be pinned (it may not exist yet)")
    ap.add_argument("--attach-wait", type=float, default=300.0, help="seconds the policy may take to be enabled")
    ap.add_argument("--ops", default="", help="the scheduler that must stay enabled ('' for the kernel's own)")
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--vcpus", type=int, required=True)
    ap.add_argument("--bounds", required=True)
    ap.add_argument("--foreground", action="store_true")
    ap.add_argument("--stress", choices=("full", "hogs"), default="full")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    if not args.foreground:
        # Keep SCHED_FIFO across the fork (no reset-on-fork for this one), then put the flag
        # back so the workload we start is normal.
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
        except OSError as exc:
            print(json.dumps({"error": f"cannot run real-time: {exc}"}))
            return 1
        pid = os.fork()
        if pid:
            print(json.dumps({"pid": pid, "dir": args.dir}))
            return 0
        os.setsid()
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
    # In the foreground on a host without privileges it still works, just not stall-proof.
    with contextlib.suppress(OSError):
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(RT_PRIORITY))
    Monitor(args).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
