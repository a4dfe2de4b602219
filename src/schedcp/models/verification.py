"""A VerificationReport: what the verifier checked before a policy may reach a kernel, stage by stage.

The verifier (schedcp.verify) writes it, the repository stores it against the exact policy
version and tunables, the runtime refuses to deploy without a passing one, and an LLM reads
the failing stage's `fix` to repair the policy. So every stage says what it checked
(`evidence`), what it found (`findings`, each with where and what to do), and how long it took.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, Field

from schedcp.models.vocabulary import TunableValue

Stage = Literal["compile", "lint", "kernel-verifier", "dynamic", "performance"]
STAGES: tuple[Stage, ...] = get_args(Stage)
"""In order; the verifier stops at the first stage that fails."""

REPORT_SCHEMA_VERSION = 1


class Finding(BaseModel):
    """One problem a stage found, located where it can be, with what to do about it."""

    rule: str = Field(description="what found it: a compiler diagnostic, a lint rule id, 'verifier', a probe")
    message: str = Field(description="what is wrong, with the measured number or the tool's words")
    file: str | None = None
    line: int | None = None
    fix: str = Field("", description="what to change, in plain words")

    def where(self) -> str:
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line is not None else self.file


class StageResult(BaseModel):
    stage: Stage
    passed: bool
    duration_s: float = Field(ge=0)
    evidence: list[str] = Field(default_factory=list, description="what was checked and measured")
    findings: list[Finding] = Field(default_factory=list)
    fix: str = Field("", description="for a failed stage: what to fix first, in plain words an LLM can act on")
    skipped: str | None = Field(None, description="why the stage was not run (it then neither passes nor fails)")


class VerificationReport(BaseModel):
    """The verdict on one build: a policy's exact code and tunables (or a third-party object)."""

    schema_version: int = REPORT_SCHEMA_VERSION
    created: str
    policy: str = Field(description="the policy's name (the ops table's .name for an object)")
    version_id: str | None = Field(description="the repository version (content hash); None for an object file")
    object_sha256: str = Field(description="sha256 of the object that was loaded: code and tunables")
    tunables: dict[str, TunableValue] = Field(default_factory=dict)
    kernel: str = Field("", description="the sandbox kernel the kernel-side stages ran on")
    quick: bool = False
    workload: str | None = Field(None, description="the benchmark workload of the performance gate")
    stages: list[StageResult]
    passed: bool = Field(description="every stage that ran passed, and none was left out because one failed")
    stopped_at: Stage | None = Field(None, description="the first failed stage; None when all passed")

    @property
    def failure(self) -> StageResult | None:
        return next((s for s in self.stages if not s.passed and s.skipped is None), None)

    def render(self) -> str:
        """The report as text for a person or an LLM: verdict first, then each stage."""
        if self.passed:
            verdict = "PASSED"
        elif self.stopped_at is not None:
            verdict = f"FAILED at {self.stopped_at}"
        else:
            verdict = "NOT VERIFIED (no stage failed, but not every stage ran)"
        ident = f"{self.policy}" + (f"@{self.version_id[:12]}" if self.version_id else "")
        tunables = ", ".join(f"{k}={v}" for k, v in self.tunables.items()) or "defaults"
        obj = f"object {self.object_sha256[:12]}" if self.object_sha256 else "no object"
        lines = [f"{ident} ({tunables}; {obj}): {verdict}"]
        for s in self.stages:
            state = "skipped" if s.skipped is not None else ("passed" if s.passed else "FAILED")
            lines.append(f"  {s.stage}: {state} ({s.duration_s:.1f} s)" + (f": {s.skipped}" if s.skipped else ""))
            lines += [f"    - {e}" for e in s.evidence]
            for f in s.findings:
                where = f"{f.where()}: " if f.where() else ""
                lines.append(f"    ! {where}{f.message} [{f.rule}]")
                if f.fix:
                    lines.append(f"      fix: {f.fix}")
            if s.fix and not s.passed:
                lines.append(f"    what to fix: {s.fix}")
        return "\n".join(lines)
