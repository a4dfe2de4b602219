"""The collector and the tracer for real on this host: BPF tracing needs root and BTF, no VM.

Marked `host_bpf`: they skip (with the reason) on a machine where our tracer cannot load, and
fail there in CI (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from schedcp.analysis.engine import analyze, build_tracer, collector_script
from schedcp.errors import AnalysisError
from schedcp.models.profile import Target, WorkloadProfile
from schedcp.runner import HostRunner

BPFFS = Path("/sys/fs/bpf")
# A small fork loop of busy jobs whose sizes grow (0 to 48400 shell loop iterations, the
# largest tens of ms): forks, execs and job sizes skewed well beyond process start-up noise.
FORK_LOOP = (
    "i=0; while [ $i -lt 12 ]; do "
    "sh -c 'j=0; while [ $j -lt $1 ]; do j=$((j+1)); done' x $((i*i*400)); i=$((i+1)); done"
)


pytestmark = pytest.mark.host_bpf


def analyze_on_host(target: Target, **kw: Any) -> WorkloadProfile:
    """The engine on this machine, as `schedcp analyze --host` runs it."""
    return analyze(HostRunner(), target, where="host", **kw)


def our_pins() -> set[str]:
    return {p.name for p in BPFFS.glob("schedcp_analyze_*")} if BPFFS.exists() else set()


def attached_tracer_programs() -> list[str]:
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, timeout=60, check=True)
    return [p["name"] for p in json.loads(out.stdout or "[]") if str(p.get("name", "")).startswith("st_")]


@pytest.fixture(autouse=True)
def no_leftover_pins() -> Iterator[None]:
    """No pin folder outlives its collector. Another session may be analysing on this host at
    the same time, so a new folder gets a while to go away before it counts as left behind."""
    before = our_pins()
    yield
    wait_until(lambda: not (our_pins() - before), 60, "the collector's pins to be removed")


def wait_until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


def tracked_pids() -> set[int]:
    """tgids in the `tracked` map of every running collector on this host."""
    pids: set[int] = set()
    for pin in our_pins():
        res = subprocess.run(
            ["bpftool", "-j", "map", "dump", "pinned", str(BPFFS / pin / "maps" / "tracked")],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if res.returncode == 0:
            pids.update(int(e["formatted"]["key"]) for e in json.loads(res.stdout or "[]"))
    return pids


def test_pipe_and_fork_loop_are_traced_and_pins_removed() -> None:
    cmd = ["sh", "-c", f"perf bench sched pipe -l 20000 >/dev/null; {FORK_LOOP}"]
    p = analyze_on_host(Target(kind="command", command=cmd), interval_s=0.2)
    assert p.where == "host"
    assert p.exit_code == 0
    assert next(s for s in p.sources if s.name == "bpf").available, p.missing
    assert p.runq_latency is not None
    assert p.runq_latency.summary.count > 1000
    pipe = next(s for s in p.processes if s.comm == "sched-pipe")
    assert pipe.runq_latency is not None
    assert pipe.runq_latency.count > 1000
    assert pipe.run_length is not None
    assert pipe.run_length.count > 1000
    assert any(w.waker == w.wakee == "sched-pipe" and w.count > 1000 for w in p.wake_pairs)
    assert p.totals.forks >= 13
    assert p.totals.execs >= 13
    assert any(j.comm == "sh" and j.count >= 12 and j.skew > 2 for j in p.job_sizes), p.job_sizes
    o = p.overhead
    assert o.bpf_cpu_pct is not None
    assert o.bpf_cpu_pct > 0
    assert o.bpf_ns_per_event is not None
    assert o.bpf_events is not None
    assert o.bpf_events > 1000
    # Unpinned links are released asynchronously (RCU), so the programs go away shortly after.
    wait_until(lambda: "st_switch" not in attached_tracer_programs(), 30, "the tracer programs to be unloaded")


# perf pipe's two processes pinned to CPUs 0 and 1, so that every wakeup is a remote one.
SPLIT_PIPE = (
    "perf bench sched pipe -l 20000 & p=$!; "
    'until c=$(cat /proc/$p/task/*/children 2>/dev/null) && [ -n "$c" ]; do :; done; '
    "taskset -pc 0 $p >/dev/null; taskset -pc 1 $c >/dev/null; wait $p"
)


def test_pipe_wakers_are_the_pipe_tasks_not_the_idle_task() -> None:
    """The waker is taken at sched_waking, in the waker's context: perf pipe's partners wake
    each other. At sched_wakeup, a remote wakeup that the kernel queues to an idle CPU (by IPI)
    showed that CPU's idle task as the waker (4% of the wakeups on our loaded host, 82% idle)."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("remote wakeups need 2 CPUs")
    p = analyze_on_host(Target(kind="command", command=["sh", "-c", SPLIT_PIPE]), interval_s=0.5)
    assert p.exit_code == 0
    assert p.wake_pairs, p.missing
    top = p.wake_pairs[0]
    assert (top.waker, top.wakee) == ("sched-pipe", "sched-pipe"), p.wake_pairs[:5]
    assert "swapper" not in [w.waker for w in p.wake_pairs[:3]], p.wake_pairs[:5]
    pipe = next(s for s in p.processes if s.comm == "sched-pipe")
    woke_pipe = {w.waker: w.count for w in p.wake_pairs if w.wakee == "sched-pipe"}
    assert woke_pipe.get("swapper", 0) <= 0.005 * pipe.wakeups, woke_pipe
    assert woke_pipe["sched-pipe"] >= 0.99 * pipe.wakeups, (woke_pipe, pipe.wakeups)
    # Every sched_waking is followed by one sched_wakeup: the pairs add up to the wakeups.
    assert sum(woke_pipe.values()) == pytest.approx(pipe.wakeups, rel=0.01)


def test_command_that_does_not_exist_is_an_error() -> None:
    with pytest.raises(AnalysisError, match="cannot run '/nonexistent/schedcp-no-such-command'"):
        analyze_on_host(Target(kind="command", command=["/nonexistent/schedcp-no-such-command", "x"]))


def test_command_that_exits_at_once_gives_a_profile_marked_as_such() -> None:
    p = analyze_on_host(Target(kind="command", command=["false"]))
    assert p.exit_code == 1
    assert not p.complete
    assert any("exited after" in m and "too short" in m for m in p.missing), p.missing
    assert p.window_s < 5


def test_bpf_load_failure_gives_a_partial_profile_from_procfs(tmp_path: Path) -> None:
    broken = tmp_path / "broken.bpf.o"
    broken.write_bytes(b"this is not an ELF object\n")
    p = analyze_on_host(Target(kind="command", command=["sh", "-c", FORK_LOOP]), interval_s=0.1, tracer_object=broken)
    assert not p.complete
    bpf_missing = [m for m in p.missing if m.startswith("bpf:")]
    assert bpf_missing, p.missing
    assert "loadall failed" in bpf_missing[0]
    assert next(s for s in p.sources if s.name == "bpf").available is False
    assert p.runq_latency is None
    assert p.wake_pairs == []
    assert p.timeline
    assert p.totals.cpu_s > 0
    assert p.totals.peak_threads >= 1
    assert next(s for s in p.sources if s.name == "procfs").available


def test_pid_with_descendants_is_followed() -> None:
    proc = subprocess.Popen(["sh", "-c", "while :; do sh -c 'j=0; while [ $j -lt 200 ]; do j=$((j+1)); done'; done"])
    try:
        p = analyze_on_host(Target(kind="pid", pid=proc.pid), duration_s=1.0, interval_s=0.25)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert p.complete, p.missing
    assert p.window_s == pytest.approx(1.0, abs=0.3)
    assert p.totals.forks > 0
    assert p.totals.execs > 0
    assert p.totals.cpu_s > 0
    assert next(s for s in p.processes if s.comm == "sh").exits > 0


def test_pid_that_vanishes_mid_trace_gives_a_partial_profile() -> None:
    proc = subprocess.Popen(["sleep", "600"])
    result: list[WorkloadProfile | BaseException] = []

    def run() -> None:
        try:
            result.append(analyze_on_host(Target(kind="pid", pid=proc.pid), duration_s=120.0, interval_s=0.2))
        except BaseException as exc:
            result.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    try:
        wait_until(lambda: proc.pid in tracked_pids() or bool(result), 60, "the collector to track the pid")
    finally:
        proc.kill()
        proc.wait(timeout=30)
        worker.join(timeout=120)
    assert not worker.is_alive()
    p = result[0]
    assert isinstance(p, WorkloadProfile), p
    assert not p.complete
    assert any(f"pid {proc.pid} exited after" in m for m in p.missing), p.missing
    assert p.window_s < 60


def test_pid_that_does_not_exist_is_an_error() -> None:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())  # never handed out
    with pytest.raises(AnalysisError, match=f"no process with pid {pid_max}"):
        analyze_on_host(Target(kind="pid", pid=pid_max), duration_s=1.0)


def test_cgroup_that_does_not_exist_is_an_error() -> None:
    with pytest.raises(AnalysisError, match="no cgroup v2 folder"):
        analyze_on_host(Target(kind="cgroup", cgroup="schedcp-no-such-cgroup-xyz"), duration_s=1.0)


def _cgroup2_mount() -> Path | None:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "cgroup2" and parts[1].startswith("/sys/fs/cgroup"):
            return Path(parts[1])
    return None


def test_cgroup_processes_are_traced() -> None:
    mount = _cgroup2_mount()
    if mount is None:
        pytest.skip("no cgroup v2 hierarchy under /sys/fs/cgroup")
    cg = mount / f"schedcp-test-{uuid.uuid4().hex[:8]}"
    cg.mkdir()
    proc = subprocess.Popen(["sh", "-c", "read go; while :; do sh -c true; done"], stdin=subprocess.PIPE)
    try:
        (cg / "cgroup.procs").write_text(str(proc.pid))
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        p = analyze_on_host(Target(kind="cgroup", cgroup=str(cg)), duration_s=1.0, interval_s=0.25)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        wait_until(lambda: not (cg / "cgroup.procs").read_text().strip(), 30, "the cgroup to empty")
        cg.rmdir()
    assert p.target.kind == "cgroup"
    assert p.totals.forks > 0
    assert p.totals.execs > 0
    assert any(path.endswith(cg.name) for path in p.cgroups), p.cgroups
    assert p.timeline
    assert p.totals.peak_processes >= 1


def test_sigterm_stops_the_collector_which_cleans_up_and_still_reports() -> None:
    run_id = f"sigterm{uuid.uuid4().hex[:6]}"
    pin = BPFFS / f"schedcp_analyze_{run_id}"
    argv = [sys.executable, "-I", str(collector_script()), "--id", run_id, "--object", str(build_tracer())]
    proc = subprocess.Popen([*argv, "--", "sleep", "600"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: (pin / "maps" / "tracked").exists(), 60, "the tracer to load")
        wait_until(lambda: bool(tracked_pids()), 60, "the command to be tracked")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    doc = json.loads(out)
    assert any("SIGTERM" in e for e in doc["errors"]), (doc["errors"], err)
    assert doc["bpf"]["pins_removed"] is True
    assert not pin.exists()
    child = doc["command"]["pid"] if doc.get("command") else None
    assert child is None or not Path(f"/proc/{child}").exists()


def test_command_past_its_timeout_is_killed_and_the_profile_says_so() -> None:
    p = analyze_on_host(Target(kind="command", command=["sh", "-c", "sleep 600"]), timeout_s=1.0, interval_s=0.2)
    assert p.exit_code is None
    assert not p.complete
    assert any("still running at the 1 s timeout" in m for m in p.missing), p.missing
    assert p.window_s == pytest.approx(1.0, abs=0.5)


def test_command_observed_for_a_duration_is_stopped_then() -> None:
    p = analyze_on_host(
        Target(kind="command", command=["sh", "-c", "while :; do sh -c true; done"]), duration_s=1.0, interval_s=0.2
    )
    assert p.exit_code is None  # stopped by us, not exited
    assert p.complete, p.missing
    assert p.window_s == pytest.approx(1.0, abs=0.5)
    assert p.totals.execs > 0
    assert len(p.timeline) >= 4
