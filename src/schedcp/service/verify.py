"""Verify a policy version (or a third-party object) and keep the report where the gate finds it.

`verify` resolves what to check exactly as it will later be deployed: a stored version
(`NAME`, `NAME@VERSION`, an id prefix: checked out of the repository, so the code verified is
the code stored under that id) or a policy folder on disk, with its tunables parsed and
range-checked. The report is stored against the version and records every tunable value, so
`require_verified` (the runtime's and the MCP server's gate) can insist on a passing report for
that exact build. A folder that is not in the repository is verified but not stored: the
report says how to add it.
"""

from __future__ import annotations

import tempfile
from contextlib import AbstractContextManager
from pathlib import Path

from pydantic import BaseModel, Field

from schedcp.bpf.policy import Policy, find_policy
from schedcp.bpf.toolchain import include_dir
from schedcp.errors import SchedcpError, VersionNotFound
from schedcp.models.verification import STAGES, Stage, VerificationReport
from schedcp.models.vocabulary import TunableValue
from schedcp.repository.content import read_policy
from schedcp.repository.models import VerificationRecord
from schedcp.runner import CommandRunner
from schedcp.sandbox.kernel import find_kernel
from schedcp.service.context import Context
from schedcp.service.policies import is_folder
from schedcp.verify import lint
from schedcp.verify.dynamic import DEFAULT_BOUNDS, Bounds
from schedcp.verify.performance import DEFAULT_TOLERANCE
from schedcp.verify.verifier import VerifyOptions, verify_object, verify_policy


class VerifyRequest(BaseModel):
    policy: str | None = Field(None, description="NAME, NAME@VERSION, a version id prefix, or a policy folder")
    object: Path | None = Field(None, description="a sched_ext object built elsewhere, instead of a policy")
    tunables: dict[str, TunableValue] = Field(default_factory=dict, description="values to verify (text is parsed)")
    workload: str | None = Field(None, description="the performance gate's workload; default: the policy's class")
    quick: bool = Field(False, description="a shorter dynamic run and a smaller benchmark")
    until: Stage = Field("performance", description="the last stage to run (later ones are reported skipped)")
    tolerance: float = Field(DEFAULT_TOLERANCE, ge=0, lt=1, description="how much worse than the default may pass")
    latency_ms: float | None = Field(None, gt=0, description="the wakeup-latency probe's p99 bound (ms)")
    store: bool = Field(True, description="store the report in the repository")


class VerifyResult(BaseModel):
    report: VerificationReport
    recorded: int | None = Field(None, description="the stored report's id; None when not stored")
    note: str = Field("", description="why the report was not stored, when it was not")


def _resolve(ctx: Context, ref: str, scratch: Path) -> tuple[Policy, str | None]:
    """The policy folder to verify and its repository version id (None: not in the repository)."""
    if is_folder(ref):
        policy = find_policy(ref)
        vid = read_policy(policy.path).id
        with ctx.repository() as repo:
            try:
                repo.version(vid)
            except VersionNotFound:
                return policy, None
        return policy, vid
    with ctx.repository() as repo:
        v = repo.resolve(ref)
        folder = repo.checkout(v.id, scratch / "checkout")
    return find_policy(str(folder)), v.id


def verify(ctx: Context, request: VerifyRequest) -> VerifyResult:
    """Run the verifier's stages (one sandbox boot for the kernel-side ones) and store the report."""
    if (request.policy is None) == (request.object is None):
        raise SchedcpError("verify a policy or an object (--object FILE), not both or neither")
    settings = ctx.settings
    bounds = DEFAULT_BOUNDS if request.latency_ms is None else Bounds(latency_ms=request.latency_ms)
    options = VerifyOptions(
        quick=request.quick,
        workload=request.workload,
        tolerance=request.tolerance,
        until=request.until,
        bounds=bounds,
    )

    def open_runner() -> AbstractContextManager[CommandRunner]:
        return ctx.runner("sandbox")

    with tempfile.TemporaryDirectory(prefix="schedcp-verify-") as tmp:
        scratch = Path(tmp)
        if request.object is not None:
            kernel = find_kernel(settings.kernels_dir, settings.sandbox.kernel)
            report = verify_object(
                request.object.resolve(),
                kernel=kernel,
                cache_dir=settings.cache_dir,
                work_dir=scratch / "work",
                open_runner=open_runner,
                vcpus=settings.sandbox.vcpus,
                options=options,
                progress=ctx.report,
            )
            return VerifyResult(
                report=report, note="an object file is not a repository version: the report is not stored"
            )
        assert request.policy is not None
        policy, version_id = _resolve(ctx, request.policy, scratch)
        text = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in request.tunables.items()}
        # A value that is not a number of the type fails here; one outside policy.toml's range
        # is the lint stage's finding (tunables-match), in the report.
        tunables = policy.resolve_tunables(text, declared_range=False)
        kernel = find_kernel(settings.kernels_dir, settings.sandbox.kernel)  # after the input is checked
        report = verify_policy(
            policy,
            tunables,
            version_id=version_id,
            kernel=kernel,
            cache_dir=settings.cache_dir,
            work_dir=scratch / "work",
            open_runner=open_runner,
            vcpus=settings.sandbox.vcpus,
            options=options,
            progress=ctx.report,
        )
    if not request.store:
        return VerifyResult(report=report, note="not stored (asked not to)")
    if request.until != "performance":
        # A partial run proves nothing the gate could use, and stored it would list as a failure.
        return VerifyResult(report=report, note=f"not stored: a partial verification (--until {request.until})")
    if version_id is None:
        return VerifyResult(
            report=report,
            note=f"not stored: {request.policy} is not in the repository; `schedcp policy add {request.policy}` "
            "and verify it by name to keep the report",
        )
    with ctx.repository() as repo:
        record = repo.record_verification(version_id, report, report.passed)
    return VerifyResult(report=report, recorded=record.id)


def require_verified(ctx: Context, version: str, tunables: dict[str, TunableValue]) -> VerificationRecord:
    """The gate: a passing report for this exact version and tunables, or NotVerified with what to run."""
    with ctx.repository() as repo:
        return repo.require_verified(version, tunables)


def get_record(ctx: Context, record_id: int) -> VerificationRecord:
    """A stored report by its id, with the version and policy it belongs to."""
    with ctx.repository() as repo:
        return repo.verification(record_id)


def latest_report(ctx: Context, version: str) -> VerificationReport | None:
    with ctx.repository() as repo:
        records = repo.verifications(version)
    return VerificationReport.model_validate(records[0].report) if records else None


# -- what an author needs to pass --------------------------------------------------------------

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "verify" / "example"


class LintRuleInfo(BaseModel):
    id: str
    title: str
    rationale: str


class AuthoringGuide(BaseModel):
    """Everything a policy author (a person or an LLM) needs to write a policy that passes the
    verifier's static stages the first time, taken from the verifier itself so it never drifts."""

    stages: list[str] = Field(description="the verifier's stages, in order; it stops at the first failure")
    lint_rules: list[LintRuleInfo]
    allowed_kfuncs: list[str] = Field(description="sched_ext and BPF kfuncs a policy may call")
    allowed_helpers: list[str] = Field(description="BPF helpers a policy may call")
    headers: dict[str, str] = Field(description="our headers: file name -> text (include them, declare nothing)")
    example_source: str = Field(description="a minimal policy that passes every stage")
    example_policy_toml: str
    timeout_ms_range: tuple[int, int] = Field(description="the ops timeout_ms the lint accepts")


def authoring_guide() -> AuthoringGuide:
    """The lint's rules and allow-lists, our headers and a minimal passing example."""
    return AuthoringGuide(
        stages=list(STAGES),
        lint_rules=[LintRuleInfo(id=r.id, title=r.title, rationale=r.rationale) for r in lint.RULES.values()],
        allowed_kfuncs=sorted(lint.ALLOWED_KFUNCS),
        allowed_helpers=sorted(str(h) for h in lint.ALLOWED_HELPERS),
        headers={p.name: p.read_text() for p in sorted(include_dir().glob("*.h"))},
        example_source=(EXAMPLE_DIR / "minimal.bpf.c").read_text(),
        example_policy_toml=(EXAMPLE_DIR / "policy.toml").read_text(),
        timeout_ms_range=(lint.MIN_TIMEOUT_MS, lint.MAX_TIMEOUT_MS),
    )
