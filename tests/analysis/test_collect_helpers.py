"""The collector's pure helpers, on real bpftool output and procfs text (no BPF, no root).

bpftool-*.json: `bpftool -j map dump pinned` of the tracer's maps on the host (2 CPUs) after
`sh -c 'sh -c true; sh -c true'` was traced: per-CPU values as bpftool renders them via BTF.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from schedcp.analysis.engine import collector_script
from schedcp.analysis.raw import RawCommStats

DATA = Path(__file__).parent.parent / "data" / "analysis"


@pytest.fixture(scope="module")
def collect() -> ModuleType:
    spec = importlib.util.spec_from_file_location("schedcp_collect_under_test", collector_script())
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def formatted(name: str) -> list[dict[str, Any]]:
    return [e["formatted"] for e in json.loads((DATA / name).read_text())]


def test_per_cpu_comm_stats_are_summed(collect: ModuleType) -> None:
    entries = formatted("bpftool-comm-stats.json")
    merged = {m["comm"]: RawCommStats.model_validate(m) for m in collect.merge_comm_stats(entries)}
    assert set(merged) == {"bash", "sh"}
    raw_sh = next(e for e in entries if e["key"]["comm"] == "sh")
    assert len(raw_sh["values"]) == 2  # one value per CPU
    sh = merged["sh"]
    assert sh.execs == sum(v["value"]["execs"] for v in raw_sh["values"]) >= 3
    assert sh.runq.count == sum(v["value"]["runq"]["count"] for v in raw_sh["values"]) > 0
    assert sh.runq.max_ns == max(v["value"]["runq"]["max_ns"] for v in raw_sh["values"])
    assert sum(sh.run.slots) == sh.run.count
    assert sh.run.slots[-1] != 0  # trailing empty buckets are trimmed
    assert sh.job_cpu.count == sh.exits == 3


def test_wake_pairs_and_drops_are_summed(collect: ModuleType) -> None:
    pairs = collect.merge_pairs(formatted("bpftool-wake-pairs.json"))
    assert pairs
    assert [p["count"] for p in pairs] == sorted((p["count"] for p in pairs), reverse=True)
    assert all(set(p) == {"waker", "wakee", "count"} for p in pairs)
    drops = collect.merge_drops(formatted("bpftool-drops.json"))
    assert drops == {"tracked_full": 0, "comms_full": 0, "pairs_full": 0, "exited_full": 0, "no_task_storage": 0}


def test_stat_lines_with_odd_process_names(collect: ModuleType) -> None:
    line = "4242 (a) b (c)) R 1 4242 4242 0 -1 4194560 10 0 0 0 7 3 0 0 20 0 1 0 12345 0 0"
    comm, fields = collect.parse_stat(line)
    assert comm == "a) b (c)"
    assert fields[0] == "R"
    assert fields[1] == "1"  # ppid
    assert fields[19] == "12345"  # starttime


def test_psi_totals(collect: ModuleType, tmp_path: Path) -> None:
    f = tmp_path / "cpu.pressure"
    f.write_text(
        "some avg10=1.00 avg60=0.50 avg300=0.10 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=42\n"
    )
    assert collect.read_psi(str(f)) == {"some": 123456, "full": 42}
    assert collect.read_psi(str(tmp_path / "missing")) is None


def test_map_keys_are_little_endian_bytes(collect: ModuleType) -> None:
    assert collect.le_bytes(0x01020304, 4) == ["0x04", "0x03", "0x02", "0x01"]


def test_bad_cgroup_paths_are_fatal(collect: ModuleType) -> None:
    with pytest.raises(collect.Fatal, match="no cgroup v2 folder at /sys/fs/cgroup/schedcp-nope"):
        collect.resolve_cgroup("schedcp-nope")


def test_descendants_follow_the_process_tree(collect: ModuleType) -> None:
    parent = subprocess.Popen(["sh", "-c", "sleep 600 & read x; kill $!"], stdin=subprocess.PIPE)
    try:
        # The grandchild exists once the shell has forked it: wait for that event, not a time.
        deadline = time.monotonic() + 30
        while len(found := collect.descendants({parent.pid})) < 2:
            assert time.monotonic() < deadline, "the shell did not fork its child"
            time.sleep(0.01)
        assert parent.pid in found
        assert found == collect.descendants_by_scan({parent.pid})
        assert os.getpid() not in found
    finally:
        assert parent.stdin is not None
        parent.stdin.close()
        parent.wait(timeout=30)


def test_a_thread_id_resolves_to_its_process(collect: ModuleType) -> None:
    tids: list[int] = []
    done = threading.Event()

    def worker() -> None:
        tids.append(threading.get_native_id())
        done.wait(30)

    t = threading.Thread(target=worker)
    t.start()
    try:
        deadline = time.monotonic() + 30
        while not tids:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert tids[0] != os.getpid()
        assert collect.tgid_of(tids[0]) == os.getpid()
        assert collect.tgid_of(os.getpid()) == os.getpid()
    finally:
        done.set()
        t.join(30)
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    assert collect.tgid_of(pid_max) is None


def test_sampler_puts_cpu_in_the_process_cgroup(collect: ModuleType) -> None:
    """Each thread's CPU since the previous sample goes to its process's cgroup."""
    clk = os.sysconf("SC_CLK_TCK")
    busy = subprocess.Popen(["sh", "-c", "while :; do :; done"])
    try:
        path = collect.cgroup_of(busy.pid)
        sampler = collect.Sampler(collect.uptime_ticks(clk), clk)
        sampler.refresh({busy.pid})
        sampler.sample(0.0)
        deadline = time.monotonic() + 30
        while sampler.cgroup_cpu[path].cpu_ns == 0 and time.monotonic() < deadline:
            sampler.sample(time.monotonic())
    finally:
        busy.kill()
        busy.wait(timeout=30)
    usage = sampler.cgroup_cpu[path].as_json()
    assert usage["cpu_ns"] > 0
    assert usage["tasks"] == 1
    assert sum(s["cpu_ns"] for s in sampler.samples) == usage["cpu_ns"]


def test_exit_tails_go_to_the_cgroup_a_thread_was_last_seen_in(collect: ModuleType) -> None:
    """CPU after a thread's last sample, up to its exit (the tracer's record), is its cgroup's too."""
    sampler = collect.Sampler(0, 100)
    sampler.schedstat_ok = True
    rec = collect.ThreadRecord(101, 100, "hog", (5_000, 0, 1), born=True)
    rec.cgroup = "/schedcp_a"
    sampler.threads[101] = rec
    sampler.cgroup_cpu["/schedcp_a"] = usage = collect.CgroupCpu("/schedcp_a")
    usage.cpu_ns = 5_000
    exited = [
        {"tid": 101, "tgid": 100, "comm": "hog", "cpu_ns": 8_000, "life_ns": 1},
        {"tid": 102, "tgid": 100, "comm": "hog", "cpu_ns": 9_000, "life_ns": 1},  # never sampled
        {"tid": 101, "tgid": 999, "comm": "other", "cpu_ns": 9_000, "life_ns": 1},  # a reused tid
    ]
    assert sampler.add_exit_tails(exited) == 1
    assert usage.cpu_ns == 8_000
