"""measure.py on collector documents recorded from real runs (tests/data/analysis/).

host-pipe-forkloop.json: the host (kernel 6.18, 2 CPUs), BPF tracer loaded, command
  `perf bench sched pipe -l 20000` followed by 30 `sh -c` busy loops of growing size (i^2 * 40
  iterations, i = 0..29): a ping-pong pair plus a batch of jobs with very skewed sizes.
host-nobpf.json: the same command without the tracer (procfs and schedstat only).
sandbox-messaging.json: the sandbox (kernel 7.3, TCG, 2 vCPUs), BPF tracer loaded,
  `perf bench sched messaging -g 2 -l 50`: 2 groups of 20 senders and 20 receivers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schedcp.analysis.measure import (
    GATE_COMM,
    build_profile,
    exact_distribution,
    hist_distribution,
    hist_record,
    merge_hists,
)
from schedcp.analysis.raw import RawCgroupCpu, RawCollection, RawHist
from schedcp.models.profile import Distribution, WorkloadProfile

DATA = Path(__file__).parent.parent / "data" / "analysis"


def load(name: str) -> RawCollection:
    return RawCollection.model_validate(json.loads((DATA / name).read_text()))


def assert_ordered(d: Distribution) -> None:
    assert d.count > 0
    assert d.p50_us <= d.p90_us <= d.p99_us <= d.max_us, d
    assert 0 <= d.mean_us <= d.max_us, d


# -- distributions ---------------------------------------------------------------------------


def test_histogram_percentiles_are_bucket_upper_bounds_capped_at_the_max() -> None:
    # 90 values in [512, 1024) ns (slot 10), 9 in [2, 4) us (slot 12), 1 of 5 us (slot 13).
    h = RawHist(count=100, sum_ns=90 * 700 + 9 * 3000 + 5000, max_ns=5000, slots=[0] * 10 + [90, 0, 9, 1])
    d = hist_distribution(h)
    assert d is not None
    assert d.p50_us == pytest.approx(1.024)
    assert d.p90_us == pytest.approx(1.024)
    assert d.p99_us == pytest.approx(4.096)
    assert d.max_us == pytest.approx(5.0)  # the last bucket's bound (8.192) is capped at the exact max
    assert d.mean_us == pytest.approx(h.sum_ns / 100 / 1000)
    rec = hist_record(h)
    assert rec is not None
    assert [b.count for b in rec.buckets] == [90, 9, 1]
    assert [b.le_us for b in rec.buckets] == pytest.approx([1.024, 4.096, 8.192])


def test_empty_histogram_has_no_distribution() -> None:
    assert hist_distribution(RawHist()) is None
    assert hist_record(RawHist()) is None
    assert exact_distribution([]) is None


def test_merged_histograms_add_counts_and_keep_the_largest_max() -> None:
    a = RawHist(count=2, sum_ns=3, max_ns=2, slots=[0, 1, 1])
    b = RawHist(count=1, sum_ns=9, max_ns=9, slots=[0, 0, 0, 0, 1])
    m = merge_hists([a, b])
    assert (m.count, m.sum_ns, m.max_ns, m.slots) == (3, 12, 9, [0, 1, 1, 0, 1])


def test_exact_distribution_uses_nearest_rank() -> None:
    d = exact_distribution([1000 * i for i in range(1, 101)])
    assert d is not None
    assert (d.p50_us, d.p90_us, d.p99_us, d.max_us) == (50, 90, 99, 100)


# -- recorded host run -----------------------------------------------------------------------


def test_host_run_profile_has_bpf_measurements_for_the_pipe_pair() -> None:
    raw = load("host-pipe-forkloop.json")
    p = build_profile(raw, where="host")
    assert p.complete, p.missing
    assert {s.name: s.available for s in p.sources} == {
        "bpf": True,
        "procfs": True,
        "schedstat": True,
        "psi": True,
        "cgroup": True,
    }
    assert p.runq_latency is not None
    assert p.run_length is not None
    assert_ordered(p.runq_latency.summary)
    assert_ordered(p.run_length.summary)
    # Each pipe round trip switches both tasks: tens of thousands of measured wakeup latencies.
    assert p.runq_latency.summary.count > 20_000
    assert sum(b.count for b in p.runq_latency.buckets) == p.runq_latency.summary.count
    pipe = next(s for s in p.processes if s.comm == "sched-pipe")
    assert pipe.runq_latency is not None
    assert pipe.runq_latency.count > 20_000
    assert pipe.voluntary_switches > 10_000
    assert p.wake_pairs[0].waker == p.wake_pairs[0].wakee == "sched-pipe"
    assert [s.cpu_s for s in p.processes] == sorted((s.cpu_s for s in p.processes), reverse=True)
    assert pipe.cpu_s > 0.05


def test_host_run_counts_forks_execs_and_job_sizes_of_the_loop() -> None:
    p = build_profile(load("host-pipe-forkloop.json"), where="host")
    # 30 `sh -c` jobs and perf: at least 31 forks and execs (perf forks its pipe partner too).
    assert p.totals.forks >= 31
    assert p.totals.execs >= 31
    sh = next(j for j in p.job_sizes if j.comm == "sh")
    assert sh.count >= 30
    assert_ordered(sh.cpu)
    # Loop sizes grow as i^2: the largest job is many times the median one.
    assert sh.skew > 3
    assert sh.skew == pytest.approx(sh.cpu.max_us / sh.cpu.p50_us)
    assert sh.lifetime is not None
    assert sh.lifetime.max_us >= sh.cpu.max_us * 0.5
    assert p.totals.task_lifetime is not None
    assert p.totals.task_lifetime.count >= 30


def test_host_run_totals_and_overhead() -> None:
    raw = load("host-pipe-forkloop.json")
    p = build_profile(raw, where="host")
    assert p.window_s == pytest.approx(raw.window_s)
    assert p.exit_code == 0
    assert p.totals.cpu_s > 0
    assert p.totals.cpu_pct == pytest.approx(100 * p.totals.cpu_s / p.window_s)
    assert p.totals.cpu_util_pct == pytest.approx(p.totals.cpu_pct / 2)
    assert p.totals.switches_per_s > 10_000
    o = p.overhead
    assert o.bpf_events == sum(prog.run_cnt for prog in raw.bpf.programs)
    assert o.bpf_run_time_s is not None
    assert o.bpf_run_time_s > 0
    assert o.bpf_ns_per_event is not None
    assert 10 < o.bpf_ns_per_event < 100_000
    assert o.bpf_cpu_pct == pytest.approx(100 * o.bpf_run_time_s / (p.window_s * 2))
    assert o.collector_cpu_pct is not None
    assert o.slowdown is None  # only measure_overhead knows it
    assert {r.resource for r in p.pressure} == {"cpu", "io", "memory"}
    assert all(r.scope == "system" for r in p.pressure)
    assert p.cgroups


def test_the_collectors_gate_child_never_shows_as_workload() -> None:
    raw = load("host-pipe-forkloop.json")
    assert any(c.comm == GATE_COMM for c in raw.bpf.comm_stats)  # the tracer saw it...
    p = build_profile(raw, where="host")
    assert all(s.comm != GATE_COMM for s in p.processes)  # ...the profile does not show it
    assert all(GATE_COMM not in (w.waker, w.wakee) for w in p.wake_pairs)


def test_profile_round_trips_through_json() -> None:
    p = build_profile(load("host-pipe-forkloop.json"), where="host")
    again = WorkloadProfile.model_validate_json(p.model_dump_json())
    assert again == p


# -- recorded run without BPF ----------------------------------------------------------------


def test_without_bpf_the_profile_is_partial_and_says_so() -> None:
    p = build_profile(load("host-nobpf.json"), where="host")
    assert not p.complete
    assert any(m.startswith("bpf:") for m in p.missing)
    assert next(s for s in p.sources if s.name == "bpf").available is False
    assert p.runq_latency is None
    assert p.run_length is None
    assert p.wake_pairs == []
    assert p.job_sizes == []
    assert p.overhead.bpf_cpu_pct is None
    # procfs and schedstat still give CPU, threads and the mean run-queue wait.
    assert p.totals.cpu_s > 0
    assert p.timeline
    assert p.totals.peak_threads >= 1
    assert p.totals.runq_wait_s is not None
    assert p.totals.runq_wait_s > 0
    assert p.totals.runq_wait_mean_us is not None
    assert p.totals.runq_wait_mean_us > 0
    assert any(s.runq_wait_s for s in p.processes)
    # Switch counts fall back to the command's rusage.
    assert p.totals.voluntary_switches > 0


# -- recorded sandbox run --------------------------------------------------------------------


def test_sandbox_messaging_profile() -> None:
    raw = load("sandbox-messaging.json")
    p = build_profile(raw, where="sandbox")
    assert p.where == "sandbox"
    assert p.kernel.startswith("7.3")
    assert next(s for s in p.sources if s.name == "bpf").available
    msg = next(s for s in p.processes if s.comm == "sched-messaging")
    # 2 groups x (20 senders + 20 receivers).
    assert msg.tasks >= 80
    assert msg.runq_latency is not None
    assert msg.runq_latency.count > 100
    assert msg.run_length is not None
    assert p.wake_pairs[0].waker == p.wake_pairs[0].wakee == "sched-messaging"
    assert p.totals.forks >= 80
    jobs = next(j for j in p.job_sizes if j.comm == "sched-messaging")
    assert jobs.count >= 80  # every worker's exit was seen (exits are counted at the final switch)
    assert p.overhead.bpf_cpu_pct is not None
    assert p.overhead.bpf_cpu_pct > 0
    assert p.runq_latency is not None
    assert_ordered(p.runq_latency.summary)


def test_cpu_per_cgroup_with_shares_weights_and_the_start_cgroup() -> None:
    raw = load("host-pipe-forkloop.json").model_copy(deep=True)
    total = build_profile(raw, where="host").totals.cpu_s
    raw.cgroup_cpu = {
        "/": RawCgroupCpu(cpu_ns=int(0.1 * total * 1e9), tasks=1),
        "/schedcp_a": RawCgroupCpu(cpu_ns=int(0.3 * total * 1e9), tasks=4, weight=100),
        "/schedcp_b": RawCgroupCpu(cpu_ns=int(0.6 * total * 1e9), tasks=2, weight=300),
    }
    raw.start_cgroups = ["/"]
    p = build_profile(raw, where="host")
    assert [(c.path, c.weight, c.tasks, c.start) for c in p.cgroup_cpu] == [
        ("/schedcp_b", 300, 2, False),
        ("/schedcp_a", 100, 4, False),
        ("/", None, 1, True),
    ]
    assert [round(c.share_pct) for c in p.cgroup_cpu] == [60, 30, 10]
    assert p.cgroup_cpu[0].cpu_pct == pytest.approx(100 * p.cgroup_cpu[0].cpu_s / p.window_s)
    assert load("host-pipe-forkloop.json").cgroup_cpu == {}  # older documents: none, not an error
