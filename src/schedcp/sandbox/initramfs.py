"""Build the sandbox's initramfs: busybox, the 9p modules, and our stage-1 init.

Written as a newc cpio by hand (the format is 110-byte ASCII headers) so the host needs no
cpio tool. The base image is cached per kernel and init script; each boot appends a tiny
second archive with that boot's settings, which the kernel unpacks over the first.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import shlex
import stat
import subprocess
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path

from schedcp.errors import SetupError
from schedcp.fsutil import atomic_write
from schedcp.sandbox.kernel import Kernel

BUSYBOX = Path("/bin/busybox")
# What stage 1 needs to mount the host root; dependencies are resolved from modules.dep.
ROOT_MODULES = ("9pnet_virtio", "9p")


class CpioWriter:
    """Minimal newc ("070701") archive writer."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        namez = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(namez), 0]
        self.ino += 1
        self.buf.write(b"070701" + b"".join(b"%08X" % f for f in fields))
        self.buf.write(namez)
        self._pad()
        self.buf.write(data)
        self._pad()

    def _pad(self) -> None:
        self.buf.write(b"\0" * (-self.buf.tell() % 4))

    def dir(self, name: str) -> None:
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def chardev(self, name: str, major: int, minor: int) -> None:
        self._entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        self.buf.write(b"\0" * (-self.buf.tell() % 512))
        return self.buf.getvalue()


def module_closure(modules_dir: Path, wanted: Iterable[str]) -> list[Path]:
    """Module files for `wanted` and their dependencies, in load order (dependencies first)."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (modules_dir / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
        by_name[Path(path).name.split(".ko")[0]] = path
    builtin = {Path(p).name.split(".ko")[0] for p in (modules_dir / "modules.builtin").read_text().split()}
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in deps.get(path, []):
            visit(dep)
        order.append(path)

    for name in wanted:
        if name in builtin:
            continue
        if name not in by_name:
            raise SetupError(f"kernel module {name} is neither built in nor in {modules_dir}")
        visit(by_name[name])
    return [modules_dir / p for p in order]


def _read_module(path: Path) -> bytes:
    """Modules ship compressed; busybox insmod wants them plain."""
    data = path.read_bytes()
    if path.suffix == ".xz":
        return lzma.decompress(data)
    if path.suffix == ".zst":
        return subprocess.run(["zstd", "-dc", str(path)], check=True, capture_output=True, timeout=60).stdout
    if path.suffix == ".gz":
        import gzip

        return gzip.decompress(data)
    return data


def _guest_file(name: str) -> bytes:
    return resources.files("schedcp.sandbox.guest").joinpath(name).read_bytes()


def base_image(kernel: Kernel, cache_dir: Path) -> Path:
    """The cached per-kernel initramfs, rebuilt when the kernel or init script changes."""
    if not BUSYBOX.exists():
        raise SetupError(f"{BUSYBOX} is missing (Debian package busybox-static); run `make setup`")
    init = _guest_file("init.sh")
    # The agent travels in the initramfs, not through the 9p root: the package may live under a
    # folder the guest hides (a checkout in /tmp sits under the guest's own tmpfs).
    agent = _guest_file("agent.py")
    key = hashlib.sha256(init + agent + kernel.release.encode() + str(BUSYBOX.stat().st_size).encode()).hexdigest()[:16]
    out = cache_dir / "initramfs" / f"{kernel.release}-{key}.cpio"
    if out.exists():
        return out
    cpio = CpioWriter()
    for d in ("bin", "dev", "proc", "sys", "newroot", "lib", "lib/modules"):
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.file("bin/busybox", BUSYBOX.read_bytes(), 0o755)
    cpio.file("init", init, 0o755)
    cpio.file("agent.py", agent)
    names = []
    for mod in module_closure(kernel.modules_dir, ROOT_MODULES):
        name = mod.name.split(".ko")[0]
        cpio.file(f"lib/modules/{name}.ko", _read_module(mod))
        names.append(name)
    cpio.file("lib/modules/load-order", ("\n".join(names) + "\n").encode())
    return atomic_write(out, cpio.finish())


def boot_env_archive(env: Mapping[str, str]) -> bytes:
    """A second archive holding /schedcp.env, the settings stage 1 sources."""
    text = "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items())
    cpio = CpioWriter()
    cpio.file("schedcp.env", text.encode())
    return cpio.finish()
