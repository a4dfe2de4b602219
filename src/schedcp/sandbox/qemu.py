"""The QEMU command line for the sandbox, built as a list of arguments in small chunks."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from schedcp.errors import SetupError

log = logging.getLogger(__name__)

MIN_QEMU = (10, 0)
ROOT_TAG = "hostroot"
PORT_NAME = "schedcp.ctl"


def cpu_has_virt(cpuinfo: str) -> bool:
    """True when the CPU advertises hardware virtualisation (vmx or svm)."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return bool(flags & {"vmx", "svm"})
    return False


def choose_accel(requested: Literal["auto", "kvm", "tcg"], cpuinfo: str | None = None) -> Literal["kvm", "tcg"]:
    """KVM only where it can run a stock kernel: /dev/kvm usable *and* the CPU has vmx/svm.

    A /dev/kvm without vmx/svm (PVM, as on our build machines) crashes a stock kernel, so
    "auto" falls back to TCG there and says so.
    """
    if requested != "auto":
        return requested
    if cpuinfo is None:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    kvm_ok = os.access("/dev/kvm", os.R_OK | os.W_OK)
    if kvm_ok and cpu_has_virt(cpuinfo):
        return "kvm"
    log.info("using TCG (software emulation): %s", "no vmx/svm in this CPU" if kvm_ok else "/dev/kvm not usable")
    return "tcg"


def qemu_version(qemu: str) -> tuple[int, int]:
    path = shutil.which(qemu)
    if path is None:
        raise SetupError(f"{qemu} not found; run `make setup` to install QEMU 10 from bookworm-backports")
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    words = out.split()
    try:
        major, minor = words[words.index("version") + 1].split(".")[:2]
        return int(major), int(minor)
    except (ValueError, IndexError) as exc:
        raise SetupError(f"cannot read the version of {path}: {out!r}") from exc


def check_qemu(qemu: str) -> None:
    version = qemu_version(qemu)
    if version < MIN_QEMU:
        raise SetupError(
            f"{qemu} is QEMU {version[0]}.{version[1]}; sched_ext needs >= {MIN_QEMU[0]}.{MIN_QEMU[1]} "
            "(QEMU 7.2 crashes guests on scheduler attach under TCG); run `make setup`"
        )


def qemu_escape(value: object) -> str:
    """QEMU option values separate fields with commas; a literal comma is written twice."""
    return str(value).replace(",", ",,")


@dataclass
class Share:
    """A host folder the guest may write to, mounted at the same path."""

    path: Path
    tag: str


@dataclass
class QemuSpec:
    """Everything needed to build the command line; pure data so tests can check it."""

    qemu: str
    kernel: Path
    initrd: Path
    accel: Literal["kvm", "tcg"]
    vcpus: int
    memory_mb: int
    control_socket: Path
    console_log: Path
    shares: list[Share] = field(default_factory=list)
    extra_cmdline: list[str] = field(default_factory=list)

    def cmdline(self) -> str:
        # mitigations=off: speculation barriers are pure cost under emulation.
        # panic=-1 with -no-reboot: any guest panic ends QEMU at once instead of hanging.
        args = [
            "console=ttyS0",
            "loglevel=4",
            "panic=-1",
            "rdinit=/init",
            "mitigations=off",
            "no_timer_check",
            "random.trust_cpu=on",
        ]
        return " ".join(args + self.extra_cmdline)

    def argv(self) -> list[str]:
        argv = [self.qemu, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"]
        argv += self._machine()
        argv += ["-kernel", str(self.kernel), "-initrd", str(self.initrd), "-append", self.cmdline()]
        argv += ["-chardev", f"file,id=console,path={qemu_escape(self.console_log)}", "-serial", "chardev:console"]
        argv += self._filesystems()
        argv += self._control()
        return argv

    def _machine(self) -> list[str]:
        if self.accel == "kvm":
            accel = ["-accel", "kvm", "-cpu", "host"]
        else:
            accel = ["-accel", "tcg,thread=multi,tb-size=256", "-cpu", "max"]
        return ["-machine", "q35", *accel, "-smp", str(self.vcpus), "-m", f"{self.memory_mb}M"]

    def _filesystems(self) -> list[str]:
        args = [
            "-fsdev",
            f"local,id={ROOT_TAG},path=/,readonly=on,security_model=none,multidevs=remap",
            "-device",
            f"virtio-9p-pci,fsdev={ROOT_TAG},mount_tag={ROOT_TAG}",
        ]
        for share in self.shares:
            args += [
                "-fsdev",
                f"local,id={share.tag},path={qemu_escape(share.path)},security_model=none,multidevs=remap",
                "-device",
                f"virtio-9p-pci,fsdev={share.tag},mount_tag={share.tag}",
            ]
        return args

    def _control(self) -> list[str]:
        return [
            "-device",
            "virtio-serial-pci",
            "-chardev",
            f"socket,id=ctl,path={qemu_escape(self.control_socket)},server=on,wait=off",
            "-device",
            f"virtserialport,chardev=ctl,name={PORT_NAME}",
        ]
