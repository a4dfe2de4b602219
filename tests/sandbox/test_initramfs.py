"""The hand-written newc cpio, module dependency order, the boot env archive, the cached base image."""

from __future__ import annotations

import lzma
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from schedcp.config import Settings
from schedcp.errors import SetupError
from schedcp.sandbox import initramfs
from schedcp.sandbox.initramfs import CpioWriter, base_image, boot_env_archive, module_closure
from schedcp.sandbox.kernel import Kernel, find_kernel


@dataclass
class Entry:
    name: str
    ino: int
    mode: int
    data: bytes
    rdev: tuple[int, int]


def parse_newc(blob: bytes) -> list[Entry]:
    """A small independent newc reader: headers, names, data, 4-byte padding, the trailer."""
    entries: list[Entry] = []
    pos = 0
    while True:
        assert pos % 4 == 0, f"entry at unaligned offset {pos}"
        header = blob[pos : pos + 110]
        assert header[:6] == b"070701", f"bad magic {header[:6]!r} at {pos}"
        fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        ino, mode, filesize, rdevmajor, rdevminor, namesize = (
            fields[0],
            fields[1],
            fields[6],
            fields[9],
            fields[10],
            fields[11],
        )
        name_end = pos + 110 + namesize
        raw_name = blob[pos + 110 : name_end]
        assert raw_name.endswith(b"\0"), "names are NUL-terminated"
        name = raw_name[:-1].decode()
        data_start = name_end + (-name_end % 4)
        assert blob[name_end:data_start] == b"\0" * (data_start - name_end)
        data = blob[data_start : data_start + filesize]
        pos = data_start + filesize
        pad = -pos % 4
        assert blob[pos : pos + pad] == b"\0" * pad
        pos += pad
        if name == "TRAILER!!!":
            assert len(blob) % 512 == 0, "the archive is padded to 512 bytes"
            assert set(blob[pos:]) <= {0}
            return entries
        entries.append(Entry(name, ino, mode, data, (rdevmajor, rdevminor)))


def test_cpio_round_trip() -> None:
    cpio = CpioWriter()
    cpio.dir("bin")
    cpio.file("bin/hello", b"#!/bin/sh\necho hi\n", 0o755)
    cpio.file("odd", b"12345")  # 5 bytes: exercises data padding
    cpio.file("empty", b"")
    cpio.chardev("dev/console", 5, 1)
    entries = {e.name: e for e in parse_newc(cpio.finish())}
    assert list(entries) == ["bin", "bin/hello", "odd", "empty", "dev/console"]
    assert stat.S_ISDIR(entries["bin"].mode)
    assert stat.S_IMODE(entries["bin"].mode) == 0o755
    assert stat.S_ISREG(entries["bin/hello"].mode)
    assert stat.S_IMODE(entries["bin/hello"].mode) == 0o755
    assert entries["bin/hello"].data == b"#!/bin/sh\necho hi\n"
    assert entries["odd"].data == b"12345"
    assert stat.S_IMODE(entries["odd"].mode) == 0o644
    assert entries["empty"].data == b""
    console = entries["dev/console"]
    assert stat.S_ISCHR(console.mode)
    assert console.rdev == (5, 1)


def test_cpio_inodes_are_distinct() -> None:
    cpio = CpioWriter()
    for i in range(3):
        cpio.file(f"f{i}", b"x")
    cpio.chardev("c", 1, 3)
    entries = parse_newc(cpio.finish())
    assert len({e.ino for e in entries}) == 4


def _modules_dir(tmp_path: Path, dep: str, builtin: str = "") -> Path:
    d = tmp_path / "modules"
    d.mkdir()
    (d / "modules.dep").write_text(dep)
    (d / "modules.builtin").write_text(builtin)
    return d


def test_module_closure_dependencies_first(tmp_path: Path) -> None:
    d = _modules_dir(
        tmp_path,
        "kernel/a/top.ko.xz: kernel/b/mid.ko.xz kernel/c/base.ko.xz\n"
        "kernel/b/mid.ko.xz: kernel/c/base.ko.xz\n"
        "kernel/c/base.ko.xz:\n"
        "kernel/d/other.ko.xz: kernel/c/base.ko.xz\n"
        "kernel/e/unrelated.ko.xz:\n",
    )
    paths = module_closure(d, ["top", "other"])
    assert paths == [
        d / "kernel/c/base.ko.xz",
        d / "kernel/b/mid.ko.xz",
        d / "kernel/a/top.ko.xz",
        d / "kernel/d/other.ko.xz",
    ]


def test_module_closure_skips_builtins(tmp_path: Path) -> None:
    d = _modules_dir(
        tmp_path,
        "kernel/a/top.ko.xz: kernel/c/base.ko.xz\nkernel/c/base.ko.xz:\n",
        builtin="kernel/fs/ext4/ext4.ko\nkernel/net/virtio_net.ko\n",
    )
    assert module_closure(d, ["ext4", "virtio_net"]) == []
    assert module_closure(d, ["ext4", "top"]) == [d / "kernel/c/base.ko.xz", d / "kernel/a/top.ko.xz"]


def test_module_closure_unknown_module(tmp_path: Path) -> None:
    d = _modules_dir(tmp_path, "kernel/c/base.ko.xz:\n")
    with pytest.raises(SetupError, match="nosuchmod") as info:
        module_closure(d, ["nosuchmod"])
    assert str(d) in str(info.value)


def _real_kernel() -> Kernel:
    return find_kernel(Settings().kernels_dir)


@pytest.mark.bpf
def test_module_closure_on_the_real_kernel() -> None:
    kernel = _real_kernel()
    names = [p.name.split(".ko")[0] for p in module_closure(kernel.modules_dir, initramfs.ROOT_MODULES)]
    assert set(names) >= {"netfs", "9pnet", "9pnet_virtio", "9p"}
    assert len(names) == len(set(names))
    assert names.index("netfs") < names.index("9pnet")
    assert names.index("9pnet") < names.index("9pnet_virtio")
    assert names.index("9pnet") < names.index("9p")
    for path in module_closure(kernel.modules_dir, initramfs.ROOT_MODULES):
        assert path.is_file()


def _env_file(tmp_path: Path, env: dict[str, str]) -> Path:
    entries = parse_newc(boot_env_archive(env))
    assert [e.name for e in entries] == ["schedcp.env"]
    path = tmp_path / "schedcp.env"
    path.write_bytes(entries[0].data)
    return path


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "two words",
        'it\'s "quoted"',
        "$HOME `id` $(id) \\ ; & | *",
        "scratch:/tmp/a share0:/tmp/b",
        "",
        "line\nbreak",
    ],
)
def test_boot_env_values_round_trip_through_sh(tmp_path: Path, value: str) -> None:
    env_file = _env_file(tmp_path, {"SCHEDCP_TEST": value, "OTHER": "x"})
    out = subprocess.run(
        ["sh", "-c", '. "$1"; printf %s "$SCHEDCP_TEST"', "sh", str(env_file)],
        capture_output=True,
        timeout=10,
        check=True,
    )
    assert out.stdout.decode() == value


@pytest.mark.bpf
def test_base_image_is_built_and_reused(tmp_path: Path) -> None:
    kernel = _real_kernel()
    first = base_image(kernel, tmp_path)
    assert first.parent == tmp_path / "initramfs"
    assert first.name.startswith(kernel.release)
    assert not list(first.parent.glob("*.tmp"))
    mtime = first.stat().st_mtime_ns

    entries = {e.name: e for e in parse_newc(first.read_bytes())}
    assert stat.S_ISCHR(entries["dev/console"].mode)
    assert entries["dev/console"].rdev == (5, 1)
    assert entries["bin/busybox"].data == initramfs.BUSYBOX.read_bytes()
    assert stat.S_IMODE(entries["init"].mode) == 0o755
    assert entries["init"].data.startswith(b"#!/bin/busybox sh")
    # The agent must travel in the image: the package may sit under a folder the guest hides.
    agent = Path(initramfs.__file__).parent / "guest" / "agent.py"
    assert entries["agent.py"].data == agent.read_bytes()
    order = entries["lib/modules/load-order"].data.decode().split()
    assert order == ["netfs", "9pnet", "9pnet_virtio", "9p"]
    for name in order:
        module = entries[f"lib/modules/{name}.ko"].data
        assert module[:4] == b"\x7fELF", f"{name}.ko is not decompressed"
    (netfs_xz,) = kernel.modules_dir.glob("kernel/fs/netfs/netfs.ko*")
    if netfs_xz.suffix == ".xz":
        assert entries["lib/modules/netfs.ko"].data == lzma.decompress(netfs_xz.read_bytes())

    second = base_image(kernel, tmp_path)
    assert second == first
    assert second.stat().st_mtime_ns == mtime
