"""The compile stage: clang's diagnostics as findings at the author's file:line, or the object."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedcp.bpf.policy import find_policy
from schedcp.sandbox.kernel import Kernel
from schedcp.verify.compile import compile_stage, parse_diagnostics

from .minipolicy import write_policy


def test_parse_diagnostics_maps_files_and_flags(tmp_path: Path) -> None:
    header = tmp_path / "local.h"
    text = (
        "mini.bpf.c:12:5: error: use of undeclared identifier 'slice'\n"
        "   12 |     slice = 1;\n"
        f"{header}:3:9: warning: unused variable 'x' [-Wunused-variable]\n"
        "/usr/include/other.h:1:1: note: previous definition is here\n"
    )
    found = parse_diagnostics(text, tmp_path)
    assert [(f.file, f.line, f.rule) for f in found] == [
        ("mini.bpf.c", 12, "clang error"),
        ("local.h", 3, "clang warning -Wunused-variable"),
    ]
    assert "declare the name" in found[0].fix


@pytest.mark.bpf
def test_builtin_compiles_clean(tmp_path: Path, kernel: Kernel, cache_dir: Path) -> None:
    policy = find_policy("vtime")
    done = compile_stage(policy, policy.resolve_tunables(), kernel, cache_dir, tmp_path)
    assert done.stage.passed, done.stage.findings
    assert done.built is not None
    assert done.built.obj.exists()
    assert done.stage.evidence[1].startswith(f"object {done.built.sha256[:12]}")


@pytest.mark.bpf
def test_warning_fails_at_its_line(tmp_path: Path, kernel: Kernel, cache_dir: Path) -> None:
    # -Wextra: comparing a signed and an unsigned value (the build's -Wall alone lets it through).
    policy = write_policy(
        tmp_path, dispatch="\tint n = 3;\n\tif (n < nr_enqueued)\n\t\tscx_bpf_dsq_move_to_local(MINI_DSQ);"
    )
    done = compile_stage(policy, policy.resolve_tunables(), kernel, cache_dir, tmp_path / "out")
    assert not done.stage.passed
    assert done.built is None
    finding = done.stage.findings[0]
    assert finding.rule == "clang warning -Wsign-compare"
    lines = policy.source.read_text().splitlines()
    assert finding.file == "mini.bpf.c"
    assert finding.line is not None
    assert "n < nr_enqueued" in lines[finding.line - 1]
    assert "signedness" in done.stage.fix


@pytest.mark.bpf
def test_syntax_error(tmp_path: Path, kernel: Kernel, cache_dir: Path) -> None:
    policy = write_policy(tmp_path, dispatch="\tscx_bpf_dsq_move_to_local(MINI_DSQ)")
    done = compile_stage(policy, policy.resolve_tunables(), kernel, cache_dir, tmp_path / "out")
    assert not done.stage.passed
    assert done.stage.findings[0].rule == "clang error"
    assert "expected ';'" in done.stage.findings[0].message
    assert "syntax error" in done.stage.findings[0].fix
