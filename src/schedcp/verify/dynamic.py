"""The dynamic stage: the policy attached in the sandbox under a stress suite, watched by probes.

The kernel's own defence is slow (the watchdog waits `timeout_ms`, up to 30 s, which a
policy sets itself) and blind (a policy that starves only niced tasks, or adds 50 ms to every
wakeup, is never ejected). So a monitor in the guest (guest/monitor.py, real-time, out of
the policy's reach) runs measuring tasks of every class beside the stress and takes the
policy off the CPUs the moment a bound is broken; the host polls the monitor's status
through the control channel (a heartbeat: a guest that stops answering is a failure too) and
reads the kernel's view (state, scheduler, events, log) before, during and after.

The bounds are in DEFAULT_BOUNDS with the measurements that set them (docs/verify.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from schedcp.bench.workload import build_c_program
from schedcp.bpf import loader
from schedcp.bpf.build import BuiltPolicy
from schedcp.bpf.policy import VerifySpec
from schedcp.errors import DeployError, LostVMError, SchedcpError, VerifierRejected
from schedcp.models.verification import Finding, StageResult
from schedcp.runner import CommandRunner

log = logging.getLogger(__name__)

SYSTEM_PYTHON = "/usr/bin/python3"
# Seconds the host allows beyond the run for the monitor to clean up and write its report.
FINISH_SLACK_S = 60.0
POLL_INTERVAL_S = 1.0
DEFAULT_DURATION_S = 60.0
QUICK_DURATION_S = 35.0
# Runs a frozen guest may void before the stage gives up (each repeat costs one run).
FROZEN_ATTEMPTS = 3


class Bounds(BaseModel):
    """What a policy may do to the probes before it fails. Measured under the stress suite in
    the emulated 2-vCPU sandbox (docs/verify.md): the kernel's EEVDF and every built-in policy
    stay well inside them; the corpus's bad policies break them."""

    warmup_s: float = Field(3.0, description="probes start and stress ramps up: no verdicts before this")
    stall_s: float = Field(3.0, description="no probe of any class ran for this long: a stall")
    freeze_s: float = Field(
        2.0,
        description="the real-time monitor itself, or a CPU's real-time heartbeat, did not run for this long: "
        "the guest or one of its CPUs was stopped "
        "(the host did not schedule the emulator), so the run says nothing about the policy and is repeated. "
        "Below stall_s, so a frozen guest is never judged a stall",
    )
    progress_s: dict[str, float] = Field(
        default_factory=lambda: {
            "normal": 6.0,
            "nice19": 25.0,
            "pinned": 6.0,
            "batch": 6.0,
            "fork": 6.0,
            "fair-a": 6.0,
            "fair-b": 6.0,
            "sleeper": 6.0,
        },
        description="per probe: the longest time it may go without running (SCHED_IDLE has no bound)",
    )
    latency_ms: float = Field(2000.0, description="the sleeper's p99 wakeup lateness")
    latency_abort_ms: float = Field(5000.0, description="a single wakeup this late stops the run at once")
    fairness_max_ratio: float = Field(3.0, description="CPU of one equal-nice hog over the other's, at most")
    fairness: bool = Field(
        True, description="enforce fairness_max_ratio and nice_max_inversion (a policy may declare itself unfair)"
    )
    nice_max_inversion: float = Field(1.5, description="CPU of the nice-19 hog over the nice-0 one's, at most")
    heartbeat_s: float = Field(
        30.0,
        description="one poll of the monitor through the control channel, at most. The guest agent runs "
        "real-time, so only a hung guest or a starved emulator is this slow (12.9 s seen for a good policy "
        "while the 2-core host compiled); stalls inside the guest are the monitor's to catch, in stall_s",
    )


DEFAULT_BOUNDS = Bounds()


@dataclass
class DynamicRun:
    """The raw outcome, kept for the calibration benchmark and the report's evidence."""

    status: dict[str, Any]
    heartbeat_max_s: float
    state_after: str
    ejection: loader.Ejection | None
    wall_s: float


def monitor_script() -> Path:
    return Path(str(resources.files("schedcp.verify").joinpath("guest", "monitor.py")))


def probe_source() -> Path:
    return Path(str(resources.files("schedcp.verify").joinpath("c", "probe.c")))


def run_probes(
    runner: CommandRunner,
    built: BuiltPolicy | None,
    *,
    duration_s: float,
    vcpus: int,
    build_dir: Path,
    bounds: Bounds = DEFAULT_BOUNDS,
    progress: Callable[[str], None] = log.info,
    stress: str = "full",
    load_timeout: float = 180.0,
) -> DynamicRun:
    """Start the monitor, attach `built` (None: the kernel's own scheduler, for calibration),
    and collect what the monitor and the kernel saw. Raises on a lost VM.

    The monitor starts first, so the stress is running while the policy is enabled and a
    policy that stalls the machine during its own enable (the attach then blocks until the
    kernel's watchdog fires, up to 30 s) is stopped by the monitor within the stall bound.
    """
    probe = runner.stage(build_c_program(probe_source(), build_dir, ("-O2",)))
    script = runner.stage(monitor_script())
    obj = runner.stage(built.obj) if built is not None else None
    dmesg_before = len(loader.dmesg_lines(runner))
    t0 = time.monotonic()
    workdir = f"/tmp/schedcp-verify-{uuid.uuid4().hex[:8]}"
    argv = [
        SYSTEM_PYTHON,
        "-I",
        script,
        "--dir",
        workdir,
        "--probe",
        probe,
        "--duration",
        f"{duration_s:g}",
        "--vcpus",
        str(vcpus),
        "--bounds",
        bounds.model_dump_json(),
        "--stress",
        stress,
    ]
    if built is not None and obj is not None:
        argv += ["--pin", loader.pin_dir_for(obj), "--ops", built.name, "--attach-wait", f"{load_timeout:g}"]
    started = runner.run(argv, timeout=60.0, rt=True)
    if started.rc != 0 or "pid" not in started.stdout:
        raise SchedcpError(f"the verifier's monitor did not start: {started.stdout} {started.stderr[-2000:]}")
    attached: loader.Attached | None = None
    attach_error: SchedcpError | None = None
    heartbeat = 0.0
    status: dict[str, Any] = {}
    try:
        if built is not None and obj is not None:
            _wait_for_monitor(runner, workdir)
            try:
                attached = loader.attach(runner, obj, built.name, timeout=load_timeout)
            except (VerifierRejected, DeployError) as exc:
                attach_error = exc
            if attach_error is not None or attached is None or attached.state is None or not attached.state.enabled:
                # Refused, or disabled already (the kernel ejected it during the enable): the
                # monitor, which waits to see the policy enabled, has nothing left to watch.
                runner.run(["touch", f"{workdir}/stop"], timeout=30.0, rt=True)
        progress(f"stress and probes running for {duration_s:g} s")
        deadline = time.monotonic() + duration_s + FINISH_SLACK_S
        while True:
            time.sleep(POLL_INTERVAL_S)
            t = time.monotonic()
            res = runner.run(["cat", f"{workdir}/status.json"], timeout=bounds.heartbeat_s + 30, rt=True)
            heartbeat = max(heartbeat, time.monotonic() - t)
            if res.rc == 0 and res.stdout.strip():
                try:
                    status = json.loads(res.stdout)
                except json.JSONDecodeError:
                    continue  # caught between two writes: the next poll reads it whole
                if status.get("done"):
                    break
            if time.monotonic() > deadline:
                runner.run(["pkill", "-f", workdir], timeout=30.0, rt=True)
                status = {**status, "verdict": {"kind": "monitor hung", "detail": "no final report", "at_s": 0}}
                break
    except LostVMError:
        raise
    except BaseException:
        runner.run(["touch", f"{workdir}/stop"], timeout=30.0, rt=True)
        if attached is not None:
            with contextlib.suppress(SchedcpError):
                loader.detach(runner, attached)
        raise
    after = loader.read_state(runner)
    ejection = None
    if built is not None and obj is not None:
        lines = loader.dmesg_lines(runner)[dmesg_before:]
        verdict = status.get("verdict") or {}
        ejection = loader.find_ejection(lines, built.name)
        if (
            ejection is not None
            and "unregistered from user space" in ejection.reason
            and verdict.get("kind") != "ejected"
        ):
            ejection = None  # our own removal (the monitor's, or the detach below), not the kernel's
        if attached is not None and after.enabled:
            loader.detach(runner, attached)
            after = loader.read_state(runner)
        runner.run(["rm", "-rf", loader.pin_dir_for(obj)], timeout=30.0, rt=True)
        if attach_error is not None and not verdict:
            status = {**status, "verdict": {"kind": "attach", "detail": str(attach_error).splitlines()[0], "at_s": 0}}
        elif ejection is not None and not verdict:
            # The kernel disabled the policy before the monitor ever saw it enabled (it stalled
            # the machine during its own enable): an ejection all the same.
            # Or the monitor had already finished: either way it did not see when.
            status = {**status, "verdict": {"kind": "ejected", "detail": ejection.reason, "at_s": None}}
    runner.run(["rm", "-rf", workdir], timeout=30.0, rt=True)
    return DynamicRun(
        status=status,
        heartbeat_max_s=heartbeat,
        state_after=after.state,
        ejection=ejection,
        wall_s=time.monotonic() - t0,
    )


def _wait_for_monitor(runner: CommandRunner, workdir: str, timeout: float = 60.0) -> None:
    """Until the monitor has started its probes and stress (its first status file)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if runner.run(["test", "-e", f"{workdir}/status.json"], timeout=30.0, rt=True).rc == 0:
            return
        time.sleep(0.2)
    raise SchedcpError(f"the verifier's monitor did not start its probes within {timeout:g} s")


def frozen_for(run: DynamicRun) -> float | None:
    """How long the whole guest stopped, when the monitor stopped the run for it (else None)."""
    verdict = run.status.get("verdict") or {}
    if verdict.get("kind") != "frozen":
        return None
    return float(run.status.get("max_pause_s") or 0.0)


def judge(run: DynamicRun, bounds: Bounds = DEFAULT_BOUNDS) -> tuple[list[str], list[Finding]]:
    """Evidence and findings from one run: the monitor's verdict, then the end-of-run checks."""
    status = run.status
    probes: dict[str, Any] = status.get("probes", {})
    evidence: list[str] = []
    findings: list[Finding] = []
    verdict = status.get("verdict")
    if verdict:
        kind, detail, at = verdict.get("kind", "?"), verdict.get("detail", ""), verdict.get("at_s", 0.0)
        if kind == "ejected" or (kind == "attach" and run.ejection is not None):
            reason = run.ejection.reason if run.ejection else detail
            details = "; ".join(run.ejection.details) if run.ejection else ""
            findings.append(
                Finding(
                    rule="ejected",
                    message=(
                        f"the kernel ejected the policy after {at:g} s: " if at else "the kernel ejected the policy: "
                    )
                    + reason
                    + (f" ({details})" if details else ""),
                    fix=_EJECTION_FIX.get(_ejection_kind(reason), _EJECTION_FIX["other"]),
                )
            )
        else:
            findings.append(
                Finding(
                    rule=kind,
                    message=f"{detail}, {at:g} s into the run; the policy was detached",
                    fix=_FIX.get(kind, _EJECTION_FIX["other"]),
                )
            )
    if probes:
        gaps = ", ".join(f"{n} {p['max_gap_s']:.2f} s" for n, p in probes.items() if p.get("kind") != "sleep")
        evidence.append(f"longest time without running per probe: {gaps}")
        sleeper = probes.get("sleeper", {})
        if sleeper.get("count"):
            p99, mx = sleeper.get("late_p99_ms"), sleeper.get("late_max_ms")
            evidence.append(
                f"sleeper (10 ms period): {sleeper['count']} wakeups, late p99 <= {p99:g} ms, max {mx:.1f} ms"
            )
            if not verdict and p99 is not None and p99 > bounds.latency_ms:
                findings.append(
                    Finding(
                        rule="wakeup latency",
                        message=f"wakeups were late by up to {p99:g} ms at p99 (bound {bounds.latency_ms:g} ms)",
                        fix=_FIX["wakeup latency"],
                    )
                )
        a, b = probes.get("fair-a", {}).get("count", 0), probes.get("fair-b", {}).get("count", 0)
        if a and b:
            ratio = max(a, b) / min(a, b)
            evidence.append(f"two equal hogs got {a} and {b} ms of CPU (ratio {ratio:.2f})")
            if not bounds.fairness:
                evidence[-1] += " (not enforced: the policy declares itself unfair by design)"
            elif not verdict and ratio > bounds.fairness_max_ratio:
                findings.append(
                    Finding(
                        rule="fairness",
                        message=f"one of two equal CPU hogs got {ratio:.1f}x the other's CPU "
                        f"(bound {bounds.fairness_max_ratio:g}x)",
                        fix=_FIX["fairness"],
                    )
                )
        elif not verdict:
            findings.append(
                Finding(
                    rule="starvation",
                    message=f"an equal hog got no CPU at all ({a} vs {b} units)",
                    fix=_FIX["starvation"],
                )
            )
        normal, niced = probes.get("normal", {}).get("count", 0), probes.get("nice19", {}).get("count", 0)
        if normal:
            evidence.append(f"nice 0 hog {normal} ms of CPU, nice 19 hog {niced}")
            if not bounds.fairness:
                evidence[-1] += " (not enforced: the policy declares itself unfair by design)"
            elif not verdict and niced > bounds.nice_max_inversion * normal:
                findings.append(
                    Finding(
                        rule="nice inverted",
                        message=f"the nice-19 hog got {niced / normal:.1f}x the CPU of the nice-0 one",
                        fix="weight tasks by p->scx.weight (higher weight, more CPU), "
                        "or at least do not favour niced tasks",
                    )
                )
        switches = status.get("class_switches", 0)
        evidence.append(
            f"{switches} nice/policy changes on live tasks; stress: {4}x vCPU hogs, fork/exec storm, "
            "affinity changes, short-lived threads, CPU + I/O + sleep, hogs pinned to CPU 0"
        )
    evidence.append(f"heartbeat through the control channel: longest poll {run.heartbeat_max_s:.2f} s")
    if "max_pause_s" in status:
        evidence.append(f"the real-time monitor's longest pause: {status['max_pause_s']:.2f} s")
    beats = status.get("cpu_heartbeat_late_s") or {}
    if beats:
        late = ", ".join(f"CPU {cpu} {gap:.2f} s" for cpu, gap in beats.items())
        evidence.append(f"each CPU's real-time heartbeat, latest wakeup: {late}")
    if run.heartbeat_max_s > bounds.heartbeat_s:
        findings.append(
            Finding(
                rule="heartbeat",
                message=f"the guest took {run.heartbeat_max_s:.1f} s to answer (bound {bounds.heartbeat_s:g} s)",
                fix=_FIX["stall"],
            )
        )
    evidence.append(f"sched_ext after the run: {run.state_after}")
    return evidence, findings


def relaxed(bounds: Bounds, spec: VerifySpec) -> tuple[Bounds, list[str]]:
    """The bounds with what a policy's policy.toml [verify] gives up, and a line for each."""
    notes: list[str] = []
    update: dict[str, object] = {}
    if not spec.fairness:
        update["fairness"] = False
        notes.append(f"policy.toml [verify]: CPU shares (equal hogs, nice) not enforced ({spec.reason.strip()})")
    # A bound the caller chose (--latency-ms) stands: it is what they need, whatever the policy says.
    chosen = bounds.latency_ms != DEFAULT_BOUNDS.latency_ms
    if spec.latency_ms is not None and spec.latency_ms > bounds.latency_ms and not chosen:
        update["latency_ms"] = spec.latency_ms
        notes.append(
            f"policy.toml [verify]: wakeup-latency bound {spec.latency_ms:g} ms instead of {bounds.latency_ms:g} ms "
            f"({spec.reason.strip()})"
        )
    return bounds.model_copy(update=update), notes


def _ejection_kind(reason: str) -> str:
    r = reason.lower()
    if "stall" in r or "watchdog" in r:
        return "stall"
    if "runtime error" in r or "error" in r:
        return "error"
    return "other"


_EJECTION_FIX = {
    "stall": "some runnable task was never dispatched: make sure every task you enqueue is inserted into a DSQ that "
    "dispatch() consumes on every CPU",
    "error": "the policy made an invalid call at run time (the kernel's message says which): e.g. inserting into a "
    "DSQ that was never created, or a kfunc used in the wrong callback",
    "other": "read the kernel's reason and the policy's exit record (exit_info); fix what it names",
}
_FIX = {
    "stall": "no task ran: dispatch() must move queued tasks to the local DSQ (scx_bpf_dsq_move_to_local) "
    "whenever a CPU asks, and enqueue() must insert every task",
    "starvation": "a class of tasks waited too long: make sure tasks of every nice level, policy (SCHED_BATCH) and "
    "affinity (pinned to one CPU) are queued where a CPU that may run them looks, and that waiting time counts",
    "wakeup latency": "woken tasks waited too long for a CPU: shorten the slice (or preempt the running task with "
    "SCX_ENQ_PREEMPT / scx_bpf_kick_cpu when a task wakes) and keep callbacks short",
    "fairness": "two equal tasks got very different CPU time: order the shared queue by virtual time "
    "(scx_bpf_dsq_insert_vtime) or rotate tasks at slice ends",
    "attach": "the policy could not be attached (the message says why); it must load and enable on this kernel",
    "not attached": "the policy was never enabled: its ops.init or ops.init_task may fail or block; check both",
    "frozen": "the sandbox's guest stopped for seconds at a time in every run, its real-time monitor included: "
    "the host did not schedule the emulator (rerun on a less busy host), or the policy hung a CPU inside the "
    "kernel (then the console log shows a lockup)",
    "monitor hung": "the monitor did not report: the guest may be overloaded; rerun, and keep callbacks short",
    "monitor error": "the verifier's monitor failed: this is a verifier problem, not the policy's; report it",
}


def dynamic_stage(
    runner: CommandRunner,
    built: BuiltPolicy,
    *,
    vcpus: int,
    build_dir: Path,
    quick: bool = False,
    bounds: Bounds = DEFAULT_BOUNDS,
    progress: Callable[[str], None] = log.info,
) -> StageResult:
    """Run the policy under the stress suite with probes; pass when no bound was broken."""
    duration = QUICK_DURATION_S if quick else DEFAULT_DURATION_S
    t0 = time.monotonic()
    bounds, notes = relaxed(bounds, built.policy.spec.verify)
    void: list[str] = []
    try:
        for attempt in range(1, FROZEN_ATTEMPTS + 1):
            run = run_probes(
                runner, built, duration_s=duration, vcpus=vcpus, build_dir=build_dir, bounds=bounds, progress=progress
            )
            pause = frozen_for(run)
            if pause is None:
                break
            detail = (run.status.get("verdict") or {}).get("detail") or "its real-time monitor did not run"
            void.append(
                f"run {attempt} void: the guest stopped for {pause:.1f} s ({detail}), "
                "so the kernel's watchdogs and the probes would have blamed the policy for the host"
            )
            progress(void[-1] + ("; running it again" if attempt < FROZEN_ATTEMPTS else ""))
    except VerifierRejected as exc:
        finding = Finding(rule="verifier", message=str(exc).splitlines()[0], fix="see the kernel-verifier stage")
        return StageResult(
            stage="dynamic", passed=False, duration_s=time.monotonic() - t0, findings=[finding], fix=finding.fix
        )
    except DeployError as exc:
        finding = Finding(rule="attach", message=str(exc), fix="the policy could not be attached; read the message")
        return StageResult(
            stage="dynamic", passed=False, duration_s=time.monotonic() - t0, findings=[finding], fix=finding.fix
        )
    except LostVMError as exc:
        # The policy took the whole machine down (or hung it past every timeout): the worst
        # failure there is. The sandbox is gone; the caller's `with` block shuts it down.
        finding = Finding(
            rule="machine lost",
            message=f"the sandbox stopped answering while the policy ran: {exc}",
            fix=_FIX["stall"],
        )
        return StageResult(
            stage="dynamic", passed=False, duration_s=time.monotonic() - t0, findings=[finding], fix=finding.fix
        )
    evidence, findings = judge(run, bounds)
    evidence[:0] = [f"{duration:g} s under stress on {vcpus} vCPUs ({'quick' if quick else 'full'} run)", *notes, *void]
    passed = not findings
    return StageResult(
        stage="dynamic",
        passed=passed,
        duration_s=time.monotonic() - t0,
        evidence=evidence,
        findings=findings,
        fix="" if passed else findings[0].fix,
    )
