"""The verifier's order of stages, and the report it writes.

compile → lint → kernel-verifier → dynamic → performance, stopping at the first failure: a
later stage would only run code already known to be wrong (and the sandbox stages cost a
minute or more under emulation), while the first failure's findings are what the author, or
an LLM, must fix next. Stages after the failure, or after `until`, are listed as skipped with
the reason, so a report always shows all five and what was not checked.

The static stages need no VM; the sandbox is opened (booted, or lent by the caller) only when
they pass, so a syntax error costs a second, not a boot.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from pydantic import BaseModel, Field

from schedcp.bpf.build import BuiltPolicy
from schedcp.bpf.policy import Policy, PolicySpec
from schedcp.bpf.toolchain import file_sha256
from schedcp.errors import BuildError, LostVMError, SchedcpError
from schedcp.models.progress import Progress, ProgressFn, ignore_progress
from schedcp.models.verification import STAGES, Finding, Stage, StageResult, VerificationReport
from schedcp.models.vocabulary import TunableValue
from schedcp.runner import CommandRunner, boot_info
from schedcp.sandbox.kernel import Kernel
from schedcp.verify.compile import compile_stage
from schedcp.verify.dynamic import DEFAULT_BOUNDS, Bounds, dynamic_stage
from schedcp.verify.kernel import kernel_verifier_stage
from schedcp.verify.lint import lint_policy
from schedcp.verify.objfile import inspect_object, kernel_kfuncs, object_static_stage
from schedcp.verify.performance import DEFAULT_TOLERANCE, choose_workload, performance_stage

log = logging.getLogger(__name__)

RunnerFactory = Callable[[], AbstractContextManager[CommandRunner]]
"""Opens the sandbox (or the host) for the kernel-side stages; called only if the static ones pass."""


class VerifyOptions(BaseModel):
    quick: bool = Field(False, description="shorter dynamic run and a smaller benchmark")
    workload: str | None = Field(None, description="the performance gate's workload; None: one of the policy's class")
    tolerance: float = Field(DEFAULT_TOLERANCE, ge=0, lt=1, description="how much worse than the default may pass")
    until: Stage = Field("performance", description="the last stage to run; later ones are reported as skipped")
    bounds: Bounds = DEFAULT_BOUNDS


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _skipped(stage: Stage, why: str) -> StageResult:
    return StageResult(stage=stage, passed=False, duration_s=0.0, skipped=why)


class _Run:
    """Collects stage results in order and knows when to stop."""

    def __init__(self, options: VerifyOptions, progress: ProgressFn) -> None:
        self.options = options
        self.progress = progress
        self.stages: list[StageResult] = []

    def say(self, message: str) -> None:
        self.progress(Progress(message=message, done=len(self.stages), total=len(STAGES)))

    def add(self, result: StageResult) -> bool:
        """Record a stage; True when the next one should run."""
        self.stages.append(result)
        state = "passed" if result.passed else "FAILED"
        self.say(f"{result.stage}: {state} in {result.duration_s:.1f} s")
        return result.passed and STAGES.index(result.stage) < STAGES.index(self.options.until)

    def report(self, **fields: object) -> VerificationReport:
        done = {s.stage for s in self.stages}
        failed = next((s for s in self.stages if not s.passed and s.skipped is None), None)
        for stage in STAGES:
            if stage not in done:
                why = f"stopped at {failed.stage}" if failed else f"not asked for (--until {self.options.until})"
                self.stages.append(_skipped(stage, why))
        self.stages.sort(key=lambda s: STAGES.index(s.stage))
        ran_all = all(s.skipped is None for s in self.stages)
        return VerificationReport(
            created=_now(),
            quick=self.options.quick,
            stages=self.stages,
            passed=failed is None and ran_all,
            stopped_at=failed.stage if failed else None,
            **fields,
        )


def _kernel_side(
    run: _Run,
    open_runner: RunnerFactory,
    built: BuiltPolicy,
    classes: list[str],
    *,
    sources: list[Path],
    vcpus: int,
    build_dir: Path,
) -> str | None:
    """The sandbox stages, in one boot. Returns the performance gate's workload name."""
    options = run.options
    workload_name: str | None = None
    with open_runner() as runner:
        boot = boot_info(runner)
        cpus = boot.vcpus if boot is not None else vcpus
        run.say("kernel-verifier: loading the object without attaching it")
        if not run.add(kernel_verifier_stage(runner, built.obj, built.name, sources=sources)):
            return None
        run.say(f"dynamic: attached under stress with probes ({'quick' if options.quick else 'full'} run)")
        stage = dynamic_stage(
            runner,
            built,
            vcpus=cpus,
            build_dir=build_dir,
            quick=options.quick,
            bounds=options.bounds,
            progress=run.say,
        )
        if not run.add(stage):
            return None
        try:
            workload = choose_workload(classes, options.workload)
        except SchedcpError as exc:
            run.add(
                StageResult(
                    stage="performance",
                    passed=False,
                    duration_s=0.0,
                    findings=[Finding(rule="no workload", message=str(exc), fix=str(exc))],
                    fix=str(exc),
                )
            )
            return None
        workload_name = workload.info.name
        run.say(f"performance: {workload_name} against the kernel's scheduler")
        t0 = time.monotonic()
        try:
            perf, _ = performance_stage(
                runner,
                built,
                workload,
                build_dir=build_dir,
                quick=options.quick,
                tolerance=options.tolerance,
                boot=boot,
                progress=run.progress,
            )
        except LostVMError:
            raise
        except SchedcpError as exc:  # the policy ejected or failing during the benchmark
            perf = StageResult(
                stage="performance",
                passed=False,
                duration_s=time.monotonic() - t0,
                findings=[Finding(rule="benchmark failed", message=str(exc)[:2000])],
                fix="the benchmark could not run under the policy (the message says why); fix that first",
            )
        run.add(perf)
    return workload_name


def verify_policy(
    policy: Policy,
    tunables: dict[str, TunableValue],
    *,
    version_id: str | None,
    kernel: Kernel,
    cache_dir: Path,
    work_dir: Path,
    open_runner: RunnerFactory,
    vcpus: int,
    options: VerifyOptions | None = None,
    progress: ProgressFn = ignore_progress,
) -> VerificationReport:
    """Every stage on a policy folder with `tunables` (already range-checked by the caller)."""
    options = options or VerifyOptions()
    run = _Run(options, progress)
    work_dir.mkdir(parents=True, exist_ok=True)
    run.say(f"compile: {policy.name} with clang-19 and all warnings")
    compiled = compile_stage(policy, tunables, kernel, cache_dir, work_dir)
    workload: str | None = None
    sha = compiled.built.sha256 if compiled.built else ""
    if run.add(compiled.stage) and compiled.built is not None:
        run.say("lint: our rules on the source")
        t0 = time.monotonic()
        try:
            findings = lint_policy(policy, tunables, kernel, cache_dir)
        except BuildError as exc:
            findings = [Finding(rule="lint", message=str(exc)[:2000], fix="the source must parse for the lint")]
        lint = StageResult(
            stage="lint",
            passed=not findings,
            duration_s=time.monotonic() - t0,
            evidence=[
                "8 rules (docs/verify.md): " + ("no findings" if not findings else f"{len(findings)} finding(s)")
            ],
            findings=findings,
            fix="" if not findings else "; ".join(dict.fromkeys(f"{f.where()}: {f.fix}" for f in findings[:3])),
        )
        if run.add(lint):
            sources = [policy.source, *policy.path.glob("*.h")]
            workload = _kernel_side(
                run,
                open_runner,
                compiled.built,
                list(policy.spec.workload_classes),
                sources=sources,
                vcpus=vcpus,
                build_dir=work_dir / "programs",
            )
    return run.report(
        policy=policy.name,
        version_id=version_id,
        object_sha256=sha,
        tunables=tunables,
        kernel=kernel.release,
        workload=workload,
    )


def verify_object(
    obj: Path,
    *,
    kernel: Kernel,
    cache_dir: Path,
    work_dir: Path,
    open_runner: RunnerFactory,
    vcpus: int,
    classes: list[str] | None = None,
    options: VerifyOptions | None = None,
    progress: ProgressFn = ignore_progress,
) -> VerificationReport:
    """A sched_ext object built elsewhere: what its ELF shows statically, then the kernel-side stages.

    There is no source to compile or lint: the compile stage is skipped and the lint stage
    checks what the object itself shows (the calls it imports and makes, its ops table).
    """
    options = options or VerifyOptions()
    run = _Run(options, progress)
    if not obj.is_file():
        raise SchedcpError(f"{obj}: no such object file")
    sha = file_sha256(obj)
    run.stages.append(_skipped("compile", "a prebuilt object: no source to compile"))
    run.say(f"lint: what {obj.name} shows (imports, calls, ops table)")
    facts = inspect_object(obj)
    static = object_static_stage(obj, kernel_kfuncs=kernel_kfuncs(kernel, cache_dir), facts=facts)
    name = facts.name or obj.name.split(".", 1)[0]
    workload: str | None = None
    if run.add(static):
        spec = PolicySpec(name=name, summary=f"third-party object {obj.name}", workload_classes=classes or [])
        built = BuiltPolicy(policy=Policy(path=obj.parent, spec=spec), tunables={}, obj=obj, sha256=sha)
        work_dir.mkdir(parents=True, exist_ok=True)
        workload = _kernel_side(
            run, open_runner, built, classes or [], sources=[], vcpus=vcpus, build_dir=work_dir / "programs"
        )
    return run.report(
        policy=name, version_id=None, object_sha256=sha, tunables={}, kernel=kernel.release, workload=workload
    )
