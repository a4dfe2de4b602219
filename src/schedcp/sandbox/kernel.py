"""Find the sched_ext kernel that scripts/setup-host.sh unpacked into the cache."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from schedcp.errors import SetupError

SETUP_HINT = "run `make setup` (scripts/setup-host.sh) to fetch it"


@dataclass(frozen=True)
class Kernel:
    """One unpacked kernel: the plain ELF to boot and the module tree it needs."""

    release: str  # e.g. 7.3.4+deb13-amd64
    root: Path  # cache folder of this kernel

    @property
    def vmlinux(self) -> Path:
        """Uncompressed ELF: boots through PVH and carries the BTF for vmlinux.h."""
        return self.root / "vmlinux"

    @property
    def modules_dir(self) -> Path:
        return self.root / "root" / "usr" / "lib" / "modules" / self.release

    @property
    def config_file(self) -> Path:
        return self.modules_dir / "config"

    def config(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for line in self.config_file.read_text().splitlines():
            if line.startswith("CONFIG_") and "=" in line:
                key, _, value = line.partition("=")
                out[key] = value
        return out

    def check(self) -> None:
        """Fail early, and say what to do, when the cached kernel is incomplete or unusable."""
        for path in (self.vmlinux, self.modules_dir / "modules.dep", self.config_file):
            if not path.exists():
                raise SetupError(f"sandbox kernel {self.release} is incomplete: {path} is missing; {SETUP_HINT}")
        if self.config().get("CONFIG_SCHED_CLASS_EXT") != "y":
            raise SetupError(f"kernel {self.release} has no CONFIG_SCHED_CLASS_EXT=y; it cannot run sched_ext policies")


def _version_key(release: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", release.split("+")[0]))


def find_kernel(kernels_dir: Path, which: str = "newest") -> Kernel:
    """The kernel named `which`, or the newest complete one in the cache."""
    if not kernels_dir.is_dir():
        raise SetupError(f"no sandbox kernel cache at {kernels_dir}; {SETUP_HINT}")
    ready = [d for d in kernels_dir.iterdir() if (d / ".complete").exists()]
    if which != "newest":
        ready = [d for d in ready if d.name == which]
        if not ready:
            raise SetupError(f"sandbox kernel {which} is not in {kernels_dir}; {SETUP_HINT}")
    if not ready:
        raise SetupError(f"no complete sandbox kernel in {kernels_dir}; {SETUP_HINT}")
    best = max(ready, key=lambda d: _version_key(d.name))
    kernel = Kernel(release=best.name, root=best)
    kernel.check()
    return kernel
