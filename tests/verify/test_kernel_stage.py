"""The kernel-verifier stage in the sandbox: real loads through the 7.3 kernel's verifier.

Every built-in policy must load; objects the verifier refuses must fail with a Finding at
the right source line; nothing may attach (sched_ext stays disabled) and no pin is left.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from schedcp.bpf import loader
from schedcp.bpf.build import BuiltPolicy
from schedcp.bpf.policy import builtin_policies
from schedcp.bpf.toolchain import include_dir
from schedcp.sandbox import Sandbox
from schedcp.verify.kernel import EXCERPT_LINES, PIN_ROOT, kernel_verifier_stage

pytestmark = pytest.mark.sandbox

OBJECTS = Path(__file__).resolve().parents[1] / "fixtures" / "verify" / "objects"
BUILTINS = [p.name for p in builtin_policies()]
# A load takes 0.3-1 s of bpftool and about 1 s of round trips under emulation; the budget
# the issue gives the whole static stage with a booted sandbox is 15 s.
STAGE_BUDGET_S = 15.0
Build = Callable[..., BuiltPolicy]


def sources(built: BuiltPolicy) -> list[Path]:
    return [built.policy.source, *sorted(include_dir().glob("*.h"))]


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def assert_untouched(vm: Sandbox, seq: int) -> None:
    """sched_ext is still disabled, nothing was enabled meanwhile, and no pin is left."""
    state = loader.read_state(vm)
    assert (state.state, state.ops, state.enable_seq) == ("disabled", None, seq)
    left = vm.run(["sh", "-c", f"ls -A {PIN_ROOT} 2>/dev/null"], timeout=30.0, rt=True)
    assert left.stdout.strip() == ""


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_policy_loads_without_attaching(name: str, vm: Sandbox, build: Build) -> None:
    built = build(name)
    seq = loader.read_state(vm).enable_seq
    stage = kernel_verifier_stage(vm, built.obj, name, sources=sources(built))
    assert stage.passed, stage.findings
    assert (stage.stage, stage.findings, stage.fix) == ("kernel-verifier", [], "")
    assert stage.duration_s < STAGE_BUDGET_S
    assert "sched_ext stayed disabled" in stage.evidence[0]
    assert "the verifier processed" in stage.evidence[1]
    assert_untouched(vm, seq)


@pytest.mark.parametrize(
    ("fixture", "text", "words"),
    [
        ("vnull", "*count += 1;", "map_value_or_null"),
        ("vleak", "bpf_task_from_pid(p->tgid)", "Unreleased reference"),
        ("vctx", "scx_bpf_dsq_move_to_local(SCX_DSQ_GLOBAL);", "is not allowed"),
        ("vkfunc", "scx_bpf_no_such_kfunc(p);", "not found in kernel"),
    ],
)
def test_rejected_object_fails_at_its_source_line(
    fixture: str, text: str, words: str, vm: Sandbox, build: Build
) -> None:
    built = build(str(OBJECTS / fixture))
    seq = loader.read_state(vm).enable_seq
    stage = kernel_verifier_stage(vm, built.obj, fixture, sources=sources(built))
    assert not stage.passed
    [finding] = stage.findings
    assert finding.rule == "verifier"
    assert words in finding.message
    assert (finding.file, finding.line) == (f"{fixture}.bpf.c", line_of(built.policy.source, text))
    assert finding.fix
    assert stage.fix == finding.fix
    assert text in stage.evidence[0]  # the source line, quoted
    excerpt = next(e for e in stage.evidence if e.startswith("verifier log, around the failure:"))
    assert len(excerpt.splitlines()) - 1 <= EXCERPT_LINES
    assert any("sched_ext stayed disabled" in e for e in stage.evidence)
    assert_untouched(vm, seq)


def test_load_past_the_timeout_fails(vm: Sandbox, build: Build) -> None:
    """vlarge keeps the verifier busy for 2+ minutes under emulation: a 5 s limit stops it."""
    built = build(str(OBJECTS / "vlarge"))
    seq = loader.read_state(vm).enable_seq
    stage = kernel_verifier_stage(vm, built.obj, "vlarge", sources=sources(built), timeout=5.0)
    assert not stage.passed
    [finding] = stage.findings
    assert finding.message.startswith("the kernel verifier did not finish within 5 s")
    assert "bpf_for" in finding.fix
    assert stage.duration_s < 5.0 + 30.0
    assert_untouched(vm, seq)
