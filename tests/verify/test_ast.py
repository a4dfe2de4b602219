"""clang's AST of a policy: positions as the author sees them, and the cached precompiled header."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedcp.bpf.toolchain import vmlinux_h
from schedcp.sandbox.kernel import Kernel
from schedcp.verify.ast import Node, const_int, parse_policy_source, strip
from schedcp.verify.lint import lint_policy

from .minipolicy import ENQUEUE, line_of, write_policy

pytestmark = pytest.mark.bpf


def _callee(call: Node) -> str:
    ref = strip(call.inner[0]).ref
    assert ref is not None
    return ref.name


def test_positions_are_where_the_author_wrote_the_code(kernel: Kernel, cache_dir: Path, tmp_path: Path) -> None:
    enqueue = ENQUEUE + '\n\tif (!p)\n\t\tscx_error("no task %d", 1);'
    policy = write_policy(tmp_path, enqueue=enqueue, init="\treturn schedcp_create_dsq(MINI_DSQ);")
    tu = parse_policy_source(policy.source, policy.path, kernel, cache_dir)

    wrapper = tu.functions["mini_enqueue"]  # made by the BPF_PROG macro
    assert (tu.display(wrapper.pos.file), wrapper.pos.line) == (
        "mini.bpf.c",
        line_of(tmp_path, "BPF_PROG(mini_enqueue"),
    )
    assert tu.origin_of(wrapper) == "policy"

    helper = tu.functions["schedcp_create_dsq"]
    assert tu.origin_of(helper) == "shared"
    assert tu.display(helper.pos.file) == "schedcp_common.bpf.h"

    body = tu.functions["____mini_enqueue"].body
    assert body is not None
    calls = {_callee(n): n for n in body.walk() if n.kind == "CallExpr"}
    # Inside scx_error(): the kfunc call is spelled in schedcp.bpf.h, seen on the author's line.
    assert calls["scx_bpf_error_bstr"].pos.line == line_of(tmp_path, "scx_error(")
    assert calls["scx_bpf_dsq_insert"].pos.line == line_of(tmp_path, "scx_bpf_dsq_insert(")


def test_constants_from_vmlinux_h_are_evaluated(kernel: Kernel, cache_dir: Path, tmp_path: Path) -> None:
    """vmlinux.h's declarations are in the precompiled header, outside the dump; their values
    (`true` is an enum constant there) are still known."""
    tunables = "const volatile u64 slice_ns = 20000000;\n"
    tunables += "const volatile bool yes = true;\nconst volatile u64 local_on = SCX_DSQ_LOCAL_ON | 3;"
    policy = write_policy(tmp_path, tunables=tunables)
    tu = parse_policy_source(policy.source, policy.path, kernel, cache_dir)
    values = {d.name: const_int(d.inner[0], tu) for d in tu.decls if d.name in ("yes", "local_on")}
    assert values == {"yes": 1, "local_on": (1 << 63) | (1 << 62) | 3}


def test_a_damaged_precompiled_header_is_built_again(kernel: Kernel, cache_dir: Path, tmp_path: Path) -> None:
    own_cache = tmp_path / "cache"
    (own_cache / "vmlinux").mkdir(parents=True)
    (own_cache / "vmlinux" / kernel.release).symlink_to(vmlinux_h(kernel, cache_dir))  # no bpftool run
    policy = write_policy(tmp_path / "src")
    assert lint_policy(policy, {}, kernel, own_cache) == []
    [pch] = (own_cache / "lint" / kernel.release).glob("vmlinux-schedcp-*.pch")
    pch.write_bytes(b"not a precompiled header")

    assert lint_policy(policy, {}, kernel, own_cache) == []
    assert pch.read_bytes()[:4] == b"CPCH"  # clang's own again


def test_a_policy_may_include_vmlinux_h_itself(kernel: Kernel, cache_dir: Path, tmp_path: Path) -> None:
    """Without schedcp.bpf.h, kfuncs come from vmlinux.h's own prototypes: a second PCH."""
    policy = write_policy(tmp_path)
    source = policy.source.read_text()
    source = source.replace('#include "schedcp.bpf.h"\n#include "schedcp_common.bpf.h"\n', "")
    source = source.replace("\tschedcp_record_exit(ei);", "\texit_kind = ei->kind;")
    header = '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include <bpf/bpf_tracing.h>\n\nu32 exit_kind;\n'
    policy.source.write_text(header + source)
    assert lint_policy(policy, {}, kernel, cache_dir) == []
