"""Policies on the real kernel: attach, run, stats, detach; ejection and verifier rejection."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from schedcp.bpf import loader
from schedcp.bpf.build import BuiltPolicy
from schedcp.bpf.policy import builtin_policies
from schedcp.errors import DeployError, VerifierRejected
from schedcp.runtime.session import run_under_policy
from schedcp.sandbox import Sandbox

pytestmark = pytest.mark.sandbox

Build = Callable[..., BuiltPolicy]
# Reads the state *while* the workload runs, from inside the workload's own command: once all
# four stress-ng CPU workers are running (polled, up to 20 s), not after a fixed sleep.
STRESS_WITH_PROBE = (
    "stress-ng --cpu 4 --timeout 5s & pid=$!; "
    "for i in $(seq 400); do [ $(pgrep -c -x stress-ng-cpu) -ge 4 ] && break; sleep 0.05; done; "
    "echo workers=$(pgrep -c -x stress-ng-cpu) cpus=$(nproc) "
    "state=$(cat /sys/kernel/sched_ext/state) ops=$(cat /sys/kernel/sched_ext/root/ops); wait $pid"
)


def test_fifo_runs_stress_ng_on_every_vcpu(vm: Sandbox, build: Build) -> None:
    assert vm.info is not None
    vcpus = vm.settings.sandbox.vcpus
    assert vm.info.vcpus == vcpus
    built = build("fifo", slice_ns="3ms")
    report = run_under_policy(vm, built, ["sh", "-c", STRESS_WITH_PROBE], timeout=120)
    assert report.command is not None
    assert report.command.rc == 0, report.command.stderr
    # The guest really has the CPUs asked for, and the policy ran the workers while they ran.
    assert f"workers=4 cpus={vcpus} state=enabled ops=fifo" in report.command.stdout
    assert "successful run completed" in report.command.stderr + report.command.stdout
    assert (report.state_after_load, report.ops_after_load) == ("enabled", "fifo")
    assert (report.state_after_run, report.ops_after_run) == ("enabled", "fifo")
    assert not report.ejected
    assert report.detached
    assert loader.read_state(vm).state == "disabled"
    assert report.loaded_tunables["slice_ns"] == 3_000_000, "the kernel must hold the tunable we set"
    assert report.stats["nr_enqueued"] > 0
    assert report.stats["nr_dispatched"] > 0


def test_stalling_policy_is_ejected_by_the_watchdog(vm: Sandbox, build: Build) -> None:
    report = run_under_policy(vm, build("stall"), ["true"], timeout=120)
    assert report.ejected
    assert report.exit_reason == "runnable task stall"
    assert any("watchdog" in d for d in report.exit_details)
    assert report.exit_info["kind"] == 1026  # SCX_EXIT_ERROR_STALL, recorded by the policy itself
    assert report.detached
    # The sandbox survives and is back on the default scheduler.
    assert vm.ping()
    assert vm.run(["true"]).rc == 0
    assert loader.read_state(vm).state == "disabled"


def test_verifier_rejection_carries_the_log(vm: Sandbox, build: Build) -> None:
    with pytest.raises(VerifierRejected) as info:
        run_under_policy(vm, build("reject"), ["true"], timeout=60)
    assert "map_value_or_null" in info.value.log
    assert "reject.bpf.c" in info.value.log, "the log should point at the source line"
    assert loader.read_state(vm).state == "disabled"
    assert vm.run(["sh", "-c", f"ls -A {loader.PIN_ROOT}"]).stdout.strip() == ""


def test_second_scheduler_is_refused_while_one_is_attached(vm: Sandbox, build: Build) -> None:
    good = build("good")
    attached = loader.attach(vm, vm.stage(good.obj), good.name)
    try:
        assert attached.state is not None
        assert attached.state.ops == "good"
        fifo = build("fifo")
        with pytest.raises(DeployError, match="another sched_ext scheduler"):
            loader.attach(vm, vm.stage(fifo.obj), fifo.name)
    finally:
        loader.detach(vm, attached)
    assert loader.read_state(vm).state == "disabled"


@pytest.mark.parametrize("name", [p.name for p in builtin_policies()])
def test_every_builtin_policy_survives_a_stress_run(name: str, vm: Sandbox, build: Build) -> None:
    report = run_under_policy(
        vm, build(name), ["stress-ng", "--cpu", "4", "--switch", "2", "--timeout", "5s"], timeout=180
    )
    assert report.command is not None
    assert report.command.rc == 0, report.command.stderr[-2000:]
    assert not report.ejected, f"{name} was ejected: {report.exit_reason} {report.exit_details}"
    assert (report.state_after_run, report.ops_after_run) == ("enabled", name)
    assert report.detached
