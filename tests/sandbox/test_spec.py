"""Sandbox.spec(): the QEMU description of a boot, checked without booting.

It needs the sandbox kernel from `make setup` (the spec names its files), hence `bpf`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from schedcp.config import load_settings
from schedcp.errors import SandboxError
from schedcp.sandbox import Sandbox

pytestmark = pytest.mark.bpf


def _sandbox(shares: list[Path]) -> Sandbox:
    return Sandbox(load_settings(), shares=shares)


def test_nested_shares_mount_parents_first(tmp_path: Path) -> None:
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    vm = _sandbox([inner, tmp_path / "a"])
    try:
        paths = [sh.path for sh in vm.spec().shares]
        assert paths.index(tmp_path / "a") < paths.index(inner)
        assert vm.scratch in paths
        assert len({sh.tag for sh in vm.spec().shares}) == len(paths)
    finally:
        vm.close()
    assert not vm.run_dir.exists()


def test_sharing_root_read_write_is_refused(tmp_path: Path) -> None:
    vm = _sandbox([Path("/")])
    try:
        with pytest.raises(SandboxError, match="cannot share /"):
            vm.spec()
    finally:
        vm.close()
