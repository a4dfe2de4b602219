"""The verifier's compile stage: clang-19 with all warnings, then the object that will be loaded.

A warning in a scheduler is usually a bug the kernel cannot see (an uninitialised slice, a
signed/unsigned mix-up in a vtime comparison, a missing return), and an LLM repairing a
policy needs the compiler's own words at the right line. So the stage fails on any warning
of `-Wall -Wextra`, except `-Wunused-parameter`: every sched_ext callback has a fixed
signature and most use only some of their arguments (the built-in policies would otherwise
carry ten warnings each). The diagnostics come from a separate `-fsyntax-only` run, so the
build's own command line, and with it the object's hash that reports bind to, stay unchanged.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from schedcp.bpf.build import BuiltPolicy, build_policy
from schedcp.bpf.policy import Policy
from schedcp.bpf.toolchain import check_source
from schedcp.errors import BuildError
from schedcp.models.verification import Finding, StageResult
from schedcp.models.vocabulary import TunableValue
from schedcp.sandbox.kernel import Kernel

WARNINGS = ["-Wall", "-Wextra", "-Wno-unused-parameter"]
"""The warnings the stage fails on (the build itself uses -Wall)."""

_DIAGNOSTIC = re.compile(
    r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): (?P<level>fatal error|error|warning): (?P<msg>.*?)"
    r"(?: \[(?P<flag>-W[\w-]+(?:,[\w-]+)*)\])?$",
    re.M,
)

# Common diagnostics and what to do about them, for someone (or an LLM) who writes BPF C rarely.
_HINTS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"undeclared function|implicit declaration"),
        "declare the function before use: a kfunc as `RET name(ARGS) __ksym;` (or take it from "
        "schedcp.bpf.h), a helper of your own above its first caller",
    ),
    (
        re.compile(r"undeclared identifier"),
        "declare the name, or check its spelling against vmlinux.h and schedcp.bpf.h",
    ),
    (
        re.compile(r"expected .*|extraneous|unterminated"),
        "a syntax error: check the brackets, parentheses and semicolons at and just before this line",
    ),
    (
        re.compile(r"file not found"),
        "include only schedcp.bpf.h, schedcp_common.bpf.h and headers in the policy folder",
    ),
    (re.compile(r"uninitialized"), "give the variable a value on every path before it is read"),
    (
        re.compile(r"comparison of integers of different signs|sign"),
        "use one signedness for both sides (time and vtime values are u64; compare their difference as s64)",
    ),
    (re.compile(r"incompatible|conversion"), "use the type the function or field expects (see vmlinux.h)"),
    (re.compile(r"non-void function does not return"), "return a value on every path"),
]


@dataclass
class Compiled:
    stage: StageResult
    built: BuiltPolicy | None


def _hint(message: str) -> str:
    for pattern, hint in _HINTS:
        if pattern.search(message):
            return hint
    return "change the code at this line as the compiler's message says"


def _name(file: str, folder: Path) -> str:
    """A diagnostic's file as the author knows it: relative to the policy folder, else its name."""
    path = Path(file)
    if not path.is_absolute():
        return file
    try:
        return str(path.relative_to(folder.resolve()))
    except ValueError:
        return path.name


def parse_diagnostics(text: str, folder: Path) -> list[Finding]:
    """clang's `file:line:col: level: message [-Wflag]` lines as findings (notes are dropped)."""
    findings: list[Finding] = []
    for m in _DIAGNOSTIC.finditer(text):
        level, msg, flag = m.group("level"), m.group("msg").strip(), m.group("flag")
        findings.append(
            Finding(
                rule=f"clang {level}" + (f" {flag}" if flag else ""),
                message=msg,
                file=_name(m.group("file"), folder),
                line=int(m.group("line")),
                fix=_hint(msg),
            )
        )
    return findings


def compile_stage(
    policy: Policy, tunables: dict[str, TunableValue], kernel: Kernel, cache_dir: Path, out_dir: Path
) -> Compiled:
    """Diagnose the source with all warnings; when clean, build the object with the tunables in."""
    t0 = time.monotonic()
    folder = policy.path
    try:
        proc = check_source(policy.source, kernel, cache_dir, WARNINGS)
        findings = parse_diagnostics(proc.stderr, folder)
        if proc.returncode != 0 and not any("error" in f.rule for f in findings):
            findings.append(
                Finding(rule="clang error", message=proc.stderr.strip()[-2000:] or f"exit {proc.returncode}")
            )
        built = None if findings else build_policy(policy, tunables, kernel, cache_dir, out_dir)
    except BuildError as exc:
        findings = parse_diagnostics(exc.log, folder) or [Finding(rule="clang error", message=str(exc)[-2000:])]
        built = None
    elapsed = time.monotonic() - t0
    flags = " ".join(WARNINGS)
    if built is None:
        errors = sum(1 for f in findings if "error" in f.rule)
        warnings = len(findings) - errors
        first = findings[0]
        return Compiled(
            StageResult(
                stage="compile",
                passed=False,
                duration_s=elapsed,
                evidence=[f"clang-19 {flags}: {errors} error(s), {warnings} warning(s)"],
                findings=findings,
                fix=f"{first.where()}: {first.message}: {first.fix}",
            ),
            None,
        )
    size = built.obj.stat().st_size
    return Compiled(
        StageResult(
            stage="compile",
            passed=True,
            duration_s=elapsed,
            evidence=[
                f"clang-19 {flags}: no errors or warnings",
                f"object {built.sha256[:12]} ({size} bytes) with the tunables written in",
            ],
        ),
        built,
    )
