"""Finding the sched_ext kernel that setup unpacked into the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedcp.config import Settings
from schedcp.errors import SetupError
from schedcp.sandbox.kernel import find_kernel

SCX_CONFIG = "CONFIG_BPF=y\nCONFIG_SCHED_CLASS_EXT=y\n# CONFIG_FOO is not set\n"


def make_kernel(
    kernels: Path, release: str, *, complete: bool = True, config: str = SCX_CONFIG, vmlinux: bool = True
) -> Path:
    """A fake unpacked kernel tree laid out like scripts/setup-host.sh leaves it."""
    root = kernels / release
    modules = root / "root" / "usr" / "lib" / "modules" / release
    modules.mkdir(parents=True)
    (modules / "modules.dep").write_text("kernel/fs/netfs/netfs.ko.xz:\n")
    (modules / "config").write_text(config)
    if vmlinux:
        (root / "vmlinux").write_bytes(b"\x7fELF")
    if complete:
        (root / ".complete").touch()
    return root


def test_missing_cache_dir_says_make_setup(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="make setup") as info:
        find_kernel(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(info.value)


def test_empty_cache_dir_says_make_setup(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="make setup"):
        find_kernel(tmp_path)


def test_picks_the_newest_complete_kernel(tmp_path: Path) -> None:
    make_kernel(tmp_path, "6.9.0+deb13-amd64")
    make_kernel(tmp_path, "6.12.1+deb13-amd64")  # newer, though it sorts first as text
    make_kernel(tmp_path, "6.2.0+deb13-amd64")
    make_kernel(tmp_path, "7.0.0+deb13-amd64", complete=False)  # half-unpacked: ignored
    kernel = find_kernel(tmp_path)
    assert kernel.release == "6.12.1+deb13-amd64"
    assert kernel.root == tmp_path / "6.12.1+deb13-amd64"
    assert kernel.vmlinux == tmp_path / "6.12.1+deb13-amd64" / "vmlinux"
    assert kernel.modules_dir.name == "6.12.1+deb13-amd64"
    assert kernel.config()["CONFIG_SCHED_CLASS_EXT"] == "y"


def test_only_incomplete_kernels_is_an_error(tmp_path: Path) -> None:
    make_kernel(tmp_path, "7.3.4+deb13-amd64", complete=False)
    with pytest.raises(SetupError, match="no complete sandbox kernel"):
        find_kernel(tmp_path)


def test_kernel_without_sched_ext_is_refused(tmp_path: Path) -> None:
    make_kernel(tmp_path, "6.1.0+deb12-amd64", config="CONFIG_BPF=y\n# CONFIG_SCHED_CLASS_EXT is not set\n")
    with pytest.raises(SetupError, match="CONFIG_SCHED_CLASS_EXT=y"):
        find_kernel(tmp_path)


def test_complete_marker_but_missing_vmlinux(tmp_path: Path) -> None:
    make_kernel(tmp_path, "7.3.4+deb13-amd64", vmlinux=False)
    with pytest.raises(SetupError, match="incomplete") as info:
        find_kernel(tmp_path)
    assert "vmlinux" in str(info.value)
    assert "make setup" in str(info.value)


def test_named_release(tmp_path: Path) -> None:
    make_kernel(tmp_path, "6.12.1+deb13-amd64")
    make_kernel(tmp_path, "7.3.4+deb13-amd64")
    assert find_kernel(tmp_path, "6.12.1+deb13-amd64").release == "6.12.1+deb13-amd64"


def test_named_release_missing(tmp_path: Path) -> None:
    make_kernel(tmp_path, "7.3.4+deb13-amd64")
    with pytest.raises(SetupError, match="make setup") as info:
        find_kernel(tmp_path, "6.12.1+deb13-amd64")
    assert "6.12.1+deb13-amd64" in str(info.value)


def test_named_release_must_be_complete(tmp_path: Path) -> None:
    make_kernel(tmp_path, "7.3.4+deb13-amd64", complete=False)
    with pytest.raises(SetupError, match=r"7\.3\.4"):
        find_kernel(tmp_path, "7.3.4+deb13-amd64")


@pytest.mark.bpf
def test_the_real_cached_kernel() -> None:
    kernel = find_kernel(Settings().kernels_dir)
    assert kernel.vmlinux.read_bytes()[:4] == b"\x7fELF"
    assert (kernel.modules_dir / "modules.dep").is_file()
    assert kernel.config()["CONFIG_SCHED_CLASS_EXT"] == "y"
