"""The QEMU command line: a list of arguments, built from pure data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from schedcp.errors import SetupError
from schedcp.sandbox.qemu import (
    PORT_NAME,
    ROOT_TAG,
    QemuSpec,
    Share,
    check_qemu,
    choose_accel,
    cpu_has_virt,
    qemu_version,
)

CPUINFO_VMX = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vmx sse\n"
CPUINFO_SVM = "processor\t: 0\nflags\t\t: fpu svm sse2\n"
CPUINFO_PLAIN = "processor\t: 0\nflags\t\t: fpu sse sse2 hypervisor\n"


def _spec(tmp_path: Path, accel: str = "tcg", shares: list[Share] | None = None) -> QemuSpec:
    return QemuSpec(
        qemu="qemu-system-x86_64",
        kernel=tmp_path / "vmlinux",
        initrd=tmp_path / "initrd.cpio",
        accel=accel,  # type: ignore[arg-type]
        vcpus=3,
        memory_mb=1536,
        control_socket=tmp_path / "ctl.sock",
        console_log=tmp_path / "console.log",
        shares=shares or [],
    )


def _option(argv: list[str], flag: str) -> list[str]:
    """Every value that follows `flag` in argv."""
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


def test_argv_is_a_list_of_plain_strings(tmp_path: Path) -> None:
    argv = _spec(tmp_path).argv()
    assert isinstance(argv, list)
    assert all(isinstance(a, str) for a in argv)
    assert argv[0] == "qemu-system-x86_64"
    # No element is a shell-joined command: only -append's value may contain spaces.
    spaced = [a for a in argv if " " in a]
    assert spaced == [_option(argv, "-append")[0]]


def test_tcg_machine(tmp_path: Path) -> None:
    argv = _spec(tmp_path, "tcg").argv()
    accel = _option(argv, "-accel")
    assert len(accel) == 1
    assert accel[0].startswith("tcg,thread=multi")
    assert _option(argv, "-cpu") == ["max"]
    assert _option(argv, "-smp") == ["3"]
    assert _option(argv, "-m") == ["1536M"]
    assert _option(argv, "-machine") == ["q35"]


def test_kvm_machine(tmp_path: Path) -> None:
    argv = _spec(tmp_path, "kvm").argv()
    assert _option(argv, "-accel") == ["kvm"]
    assert _option(argv, "-cpu") == ["host"]


def test_no_reboot_and_kernel_cmdline(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    argv = spec.argv()
    assert "-no-reboot" in argv
    assert _option(argv, "-kernel") == [str(tmp_path / "vmlinux")]
    assert _option(argv, "-initrd") == [str(tmp_path / "initrd.cpio")]
    cmdline = _option(argv, "-append")[0].split()
    assert "panic=-1" in cmdline
    assert "console=ttyS0" in cmdline
    assert "rdinit=/init" in cmdline


def test_extra_cmdline_is_appended(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    spec.extra_cmdline = ["schedcp.debug=1"]
    assert spec.cmdline().split()[-1] == "schedcp.debug=1"


def test_root_share_is_readonly(tmp_path: Path) -> None:
    argv = _spec(tmp_path).argv()
    fsdevs = _option(argv, "-fsdev")
    root = [f for f in fsdevs if f"id={ROOT_TAG}," in f]
    assert len(root) == 1
    assert "path=/," in root[0]
    assert "readonly=on" in root[0].split(",")
    assert f"virtio-9p-pci,fsdev={ROOT_TAG},mount_tag={ROOT_TAG}" in _option(argv, "-device")


def test_shares_become_fsdev_device_pairs(tmp_path: Path) -> None:
    shares = [Share(tmp_path / "scratch", "scratch"), Share(tmp_path / "proj", "share0")]
    argv = _spec(tmp_path, shares=shares).argv()
    fsdevs = _option(argv, "-fsdev")
    devices = _option(argv, "-device")
    assert len(fsdevs) == 3  # the root plus two shares
    for share in shares:
        (fsdev,) = [f for f in fsdevs if f",id={share.tag}," in f]
        assert f"path={share.path}," in fsdev
        assert "readonly=on" not in fsdev  # shares are the writable folders
        assert f"virtio-9p-pci,fsdev={share.tag},mount_tag={share.tag}" in devices
        # Each -fsdev is directly followed by its -device.
        i = argv.index(fsdev)
        assert argv[i + 1] == "-device"
        assert argv[i + 2] == f"virtio-9p-pci,fsdev={share.tag},mount_tag={share.tag}"


def test_control_channel_and_console(tmp_path: Path) -> None:
    argv = _spec(tmp_path).argv()
    chardevs = _option(argv, "-chardev")
    assert f"file,id=console,path={tmp_path / 'console.log'}" in chardevs
    assert any(c.startswith("socket,id=ctl,") and f"path={tmp_path / 'ctl.sock'}," in c for c in chardevs)
    assert f"virtserialport,chardev=ctl,name={PORT_NAME}" in _option(argv, "-device")
    assert _option(argv, "-serial") == ["chardev:console"]


def test_commas_in_paths_are_escaped(tmp_path: Path) -> None:
    share = Share(tmp_path / "a,b", "share0")
    fsdevs = _option(_spec(tmp_path, shares=[share]).argv(), "-fsdev")
    assert any(f"path={tmp_path}/a,,b," in f for f in fsdevs)


def test_cpu_has_virt() -> None:
    assert cpu_has_virt(CPUINFO_VMX)
    assert cpu_has_virt(CPUINFO_SVM)
    assert not cpu_has_virt(CPUINFO_PLAIN)
    assert not cpu_has_virt("")
    # A flag that merely contains the letters is not the flag.
    assert not cpu_has_virt("flags\t\t: fpu vmxx svm_lock\n")


def test_choose_accel_explicit_passthrough() -> None:
    assert choose_accel("tcg", CPUINFO_VMX) == "tcg"
    assert choose_accel("kvm", CPUINFO_PLAIN) == "kvm"


def test_choose_accel_auto_without_virt_is_tcg() -> None:
    # Whatever /dev/kvm is here, a CPU without vmx/svm (PVM) must not get KVM.
    assert choose_accel("auto", CPUINFO_PLAIN) == "tcg"


def test_choose_accel_auto_with_virt_follows_dev_kvm() -> None:
    kvm_usable = os.access("/dev/kvm", os.R_OK | os.W_OK)
    assert choose_accel("auto", CPUINFO_VMX) == ("kvm" if kvm_usable else "tcg")


def _fake_qemu(tmp_path: Path, version_line: str) -> Path:
    exe = tmp_path / "fake-qemu"
    exe.write_text(f"#!/bin/sh\necho '{version_line}'\necho 'Copyright (c) 2003-2025'\n")
    exe.chmod(0o755)
    return exe


def test_check_qemu_missing_binary() -> None:
    with pytest.raises(SetupError, match="make setup") as info:
        check_qemu("schedcp-no-such-qemu-binary")
    assert "schedcp-no-such-qemu-binary" in str(info.value)


def test_check_qemu_old_version(tmp_path: Path) -> None:
    exe = _fake_qemu(tmp_path, "QEMU emulator version 7.2.0 (Debian 1:7.2+dfsg-7)")
    assert qemu_version(str(exe)) == (7, 2)
    with pytest.raises(SetupError) as info:
        check_qemu(str(exe))
    message = str(info.value)
    assert "7.2" in message
    assert ">= 10.0" in message
    assert "make setup" in message


def test_check_qemu_new_enough(tmp_path: Path) -> None:
    exe = _fake_qemu(tmp_path, "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)")
    assert qemu_version(str(exe)) == (10, 0)
    check_qemu(str(exe))


def test_qemu_version_unreadable(tmp_path: Path) -> None:
    exe = _fake_qemu(tmp_path, "not a qemu at all")
    with pytest.raises(SetupError, match="cannot read the version"):
        qemu_version(str(exe))


def test_real_qemu_is_new_enough() -> None:
    # scripts/setup-host.sh installs QEMU 10 on this machine.
    assert qemu_version("qemu-system-x86_64") >= (10, 0)
    check_qemu("qemu-system-x86_64")
