"""Collection in the sandbox VM: the tracer built against the sandbox kernel loads and traces there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli.json_shape import assert_shape
from typer.testing import CliRunner

from schedcp.analysis.engine import OverheadReport, collect, finish_profile
from schedcp.analysis.measure import build_profile
from schedcp.cli.main import app
from schedcp.models.profile import Target, WorkloadProfile
from schedcp.sandbox import Sandbox

pytestmark = pytest.mark.sandbox


def pins_left(vm: Sandbox) -> list[str]:
    res = vm.run(["sh", "-c", "ls -d /sys/fs/bpf/schedcp_analyze_* 2>/dev/null; true"], timeout=30)
    return res.stdout.split()


def test_messaging_is_traced_in_the_sandbox(vm: Sandbox) -> None:
    cmd = ["perf", "bench", "sched", "messaging", "-g", "2", "-l", "50"]
    raw = collect(vm, Target(kind="command", command=cmd), interval_s=0.5)
    # No tracer run was skipped (sched_process_exit runs were, under emulation on 7.3: exits
    # are now counted at the final switch) and every worker's exit was seen.
    assert all(prog.recursion_misses == 0 for prog in raw.bpf.programs), raw.bpf.programs
    assert next(c for c in raw.bpf.comm_stats if c.comm == "sched-messaging").exits >= 80
    p = finish_profile(build_profile(raw, where="sandbox", target=Target(kind="command", command=cmd)))
    assert p.exit_code == 0
    assert p.kernel.startswith("7.3")
    assert {s.name for s in p.sources if s.available} >= {"bpf", "procfs", "schedstat", "psi", "cgroup"}, p.missing
    msg = next(s for s in p.processes if s.comm == "sched-messaging")
    assert msg.tasks >= 80  # 2 groups x (20 senders + 20 receivers)
    assert msg.runq_latency is not None
    assert msg.runq_latency.count > 100
    assert msg.run_length is not None
    assert msg.voluntary_switches > 100
    assert any(w.waker == w.wakee == "sched-messaging" for w in p.wake_pairs[:3]), p.wake_pairs
    assert p.totals.forks >= 80
    assert any(j.comm == "sched-messaging" and j.count >= 80 for j in p.job_sizes), p.job_sizes
    assert p.overhead.bpf_cpu_pct is not None
    assert p.overhead.bpf_cpu_pct > 0
    assert p.classes
    assert p.summary
    assert pins_left(vm) == []


def test_the_cli_profiles_a_command_in_the_sandbox_and_stores_it(tmp_path: Path) -> None:
    """`analyze --json -- CMD` end to end: its own boot, the service, the repository."""
    out = tmp_path / "p.json"
    cmd = ["perf", "bench", "sched", "pipe", "-l", "2000"]
    db = f"sqlite:///{tmp_path / 'own.db'}"
    res = CliRunner().invoke(app, ["analyze", "--db", db, "--json", "-o", str(out), "--", *cmd])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert_shape("analyze", data)
    profile = WorkloadProfile.model_validate(data)
    assert profile.where == "sandbox"
    assert profile.target.command == cmd
    assert profile.exit_code == 0
    # Not its class: a run this short right after boot is mostly perf loading over 9p (CI once
    # saw io-bound from the guest's PSI); the benchmark sizes' classes are test_sandbox_classes'.
    assert profile.classes
    assert any(p.comm == "sched-pipe" for p in profile.processes), [p.comm for p in profile.processes]
    assert WorkloadProfile.model_validate_json(out.read_text()) == profile
    listed = json.loads(CliRunner().invoke(app, ["analyze", "list", "--db", db, "--json"]).stdout)
    assert_shape("analyze-list", listed)
    assert [r["id"] for r in listed["profiles"]] == [profile.id]


def test_overhead_on_wakeup_latency_is_measured_in_one_boot(tmp_path: Path) -> None:
    """Through the CLI (its own boot): untraced and traced runs alternate, the last traced profile is kept."""
    out = tmp_path / "overhead.json"
    res = CliRunner().invoke(app, ["analyze", "overhead", "--repeat", "2", "--size", "tiny", "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert_shape("analyze-overhead", data)
    report = OverheadReport.model_validate(data)
    assert OverheadReport.model_validate_json(out.read_text()) == report
    assert len(report.untraced["rps"]) == len(report.traced["rps"]) == 2
    assert report.rps.ratio > 0
    assert report.request_p99.ratio > 0
    assert report.slowdown == pytest.approx(1 / report.rps.ratio)
    assert report.bpf_cpu_pct is not None
    assert report.bpf_cpu_pct > 0
    assert report.profile.overhead.slowdown == report.slowdown
    assert "traced/untraced" in report.profile.overhead.slowdown_detail
    assert any(s.comm.startswith("wakeup_server") for s in report.profile.processes)
    assert report.profile.id, "the traced profile is stored"


def test_cgroup_weights_is_multi_tenant_and_pipe_wakers_are_real(vm: Sandbox, tmp_path: Path) -> None:
    """The benchmark's two tenants' cgroups with their weights; perf pipe's partners wake each other."""
    from schedcp.analysis.engine import analyze
    from schedcp.bench.registry import get_workload

    prep = get_workload("cgroup-weights").prepare(vm, "tiny", tmp_path)
    target = Target(kind="command", command=prep.argv)
    p = analyze(vm, target, where="sandbox", timeout_s=prep.timeout_s, interval_s=0.5)
    assert p.exit_code == 0, p.missing
    assert p.primary_class == "multi-tenant", [(c.workload_class, c.confidence) for c in p.classes]
    tenants = {c.path: c for c in p.cgroup_cpu if not c.start}
    assert {"/schedcp_a", "/schedcp_b"} <= set(tenants), p.cgroup_cpu
    assert tenants["/schedcp_a"].weight == 100
    assert tenants["/schedcp_b"].weight == 300
    assert "(weight 300)" in p.classes[0].evidence[0]
    cmd = ["perf", "bench", "sched", "pipe", "-l", "5000"]
    pipe = analyze(vm, Target(kind="command", command=cmd), where="sandbox", interval_s=0.5)
    top = pipe.wake_pairs[0]
    assert (top.waker, top.wakee) == ("sched-pipe", "sched-pipe"), pipe.wake_pairs[:5]
    assert pins_left(vm) == []


def test_attaching_to_a_cgroup_in_the_sandbox(vm: Sandbox) -> None:
    """--cgroup on the sandbox kernel's cgroup2 root (the host test uses the host's hybrid
    hierarchy): a workload already running in the cgroup, observed for a duration, its
    processes found from cgroup.procs and traced."""
    from schedcp.analysis.engine import analyze

    cg = "/sys/fs/cgroup/schedcp_attach_test"
    # setsid: the workload must outlive the command that starts it (the agent ends a command's
    # whole process group when it returns).
    start = (
        f"mkdir -p {cg} && setsid sh -c 'echo $$ > {cg}/cgroup.procs; "
        "exec stress-ng --cpu 1 --cpu-load 50 --timeout 60s' </dev/null >/dev/null 2>&1 & "
        f'for i in $(seq 50); do [ -n "$(cat {cg}/cgroup.procs)" ] && break; sleep 0.1; done; cat {cg}/cgroup.procs'
    )
    started = vm.run(["sh", "-c", start], timeout=60)
    assert started.rc == 0, started.stderr
    assert started.stdout.split(), "the workload did not start in the cgroup"
    try:
        p = analyze(vm, Target(kind="cgroup", cgroup=cg), where="sandbox", duration_s=3.0, interval_s=0.5)
    finally:
        vm.run(["sh", "-c", f"echo 1 > {cg}/cgroup.kill; sleep 0.5; rmdir {cg} || true"], timeout=60)
    assert p.target.kind == "cgroup"
    assert p.exit_code is None
    assert 2.5 <= p.window_s <= 30
    assert any(path.endswith("schedcp_attach_test") for path in p.cgroups), p.cgroups
    assert any(s.comm.startswith("stress-ng") for s in p.processes), [s.comm for s in p.processes]
    assert p.totals.cpu_s > 0.5  # one hog at 50% of a CPU for 3 s, plus its parent
    assert p.runq_latency is not None
    assert {s.name for s in p.sources if s.available} >= {"bpf", "procfs", "cgroup"}, p.missing
    assert p.classes
    assert pins_left(vm) == []
