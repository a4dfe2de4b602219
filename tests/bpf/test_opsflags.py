"""Setting SCX_OPS_SWITCH_PARTIAL in a built policy's ops struct (the runtime's canary)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from schedcp.bpf.opsflags import enum_value, read_ops_flags, with_ops_flags
from schedcp.bpf.toolchain import vmlinux_h
from schedcp.config import Settings
from schedcp.errors import BuildError
from schedcp.sandbox.kernel import find_kernel
from schedcp.verify.objfile import inspect_object

pytestmark = pytest.mark.bpf


@pytest.mark.parametrize("name", ["fifo", "central"])
def test_partial_bit_set_nothing_else_changed(name: str, build: Any, settings: Settings, tmp_path: Path) -> None:
    header = vmlinux_h(find_kernel(settings.kernels_dir, settings.sandbox.kernel), settings.cache_dir) / "vmlinux.h"
    partial = enum_value(header, "SCX_OPS_SWITCH_PARTIAL")
    assert partial == 8  # the kernel's value since sched_ext began (1 << 3)
    built = build(name)
    before = read_ops_flags(built.obj)
    out = with_ops_flags(built.obj, tmp_path / "partial.bpf.o", partial)
    assert read_ops_flags(out) == before | partial
    # The verifier's own reading of the object agrees, and only the flags bytes changed.
    assert inspect_object(out).table is not None
    assert inspect_object(out).table.flags == before | partial  # type: ignore[union-attr]
    a, b = built.obj.read_bytes(), out.read_bytes()
    assert len(a) == len(b)
    assert sum(x != y for x, y in zip(a, b, strict=True)) == 1


def test_an_unknown_enumerator_is_a_clear_error(tmp_path: Path) -> None:
    header = tmp_path / "vmlinux.h"
    header.write_text("enum scx_ops_flags {\n\tSCX_OPS_KEEP_BUILTIN_IDLE = 1ULL,\n};\n")
    assert enum_value(header, "SCX_OPS_KEEP_BUILTIN_IDLE") == 1
    with pytest.raises(BuildError, match="SCX_OPS_SWITCH_PARTIAL"):
        enum_value(header, "SCX_OPS_SWITCH_PARTIAL")
