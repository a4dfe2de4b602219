"""Build sched_ext policies: vmlinux.h from the sandbox kernel's BTF, then clang-19.

vmlinux.h is generated from the kernel's own BTF (never checked in) and cached per kernel
release, so a newer sandbox kernel gets matching struct layouts automatically.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from importlib import resources
from pathlib import Path

from schedcp.errors import BuildError, SetupError
from schedcp.fsutil import atomic_write
from schedcp.sandbox.kernel import Kernel

CLANG = "clang-19"
BPFTOOL = "bpftool"
COMPILE_TIMEOUT_S = 300.0
# -fms-extensions: this kernel's BTF dumps anonymous tagged struct members that plain clang
# drops without a word, which silently yields wrong struct layouts.
CFLAGS = [
    "-target",
    "bpf",
    "-O2",
    "-g",
    "-Wall",
    "-fms-extensions",
    "-Wno-microsoft-anon-tag",
    "-D__TARGET_ARCH_x86",
]


def include_dir() -> Path:
    """Our shared BPF header folder, shipped inside the package."""
    return Path(str(resources.files("schedcp.policies").joinpath("include")))


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SetupError(f"{name} not found; run `make setup` to install the BPF toolchain")
    return path


def vmlinux_h(kernel: Kernel, cache_dir: Path) -> Path:
    """The folder holding vmlinux.h for `kernel`, generated once from its BTF."""
    out_dir = cache_dir / "vmlinux" / kernel.release
    header = out_dir / "vmlinux.h"
    if header.exists():
        return out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [_tool(BPFTOOL), "btf", "dump", "file", str(kernel.vmlinux), "format", "c"],
        capture_output=True,
        timeout=300,
    )
    if proc.returncode != 0 or b"struct sched_ext_ops" not in proc.stdout:
        raise SetupError(
            f"cannot generate vmlinux.h from {kernel.vmlinux}: "
            f"{proc.stderr.decode(errors='replace')[-2000:]}\n"
            "The kernel must carry BTF with sched_ext; re-run `make setup`."
        )
    atomic_write(header, proc.stdout)
    return out_dir


def compile_policy(
    source: Path, out: Path, kernel: Kernel, cache_dir: Path, extra_includes: list[Path] | None = None
) -> Path:
    """Compile one policy's BPF C into an object; a failure carries clang's diagnostics."""
    if not source.exists():
        raise BuildError(f"policy source {source} does not exist")
    source = source.resolve()  # clang runs in the output folder (below)
    includes = _includes(source, kernel, cache_dir, extra_includes)
    # Keep host paths out of the debug info: the same code and tunables must give the same
    # object (and sha256) wherever schedcp runs, since verification reports bind to that hash.
    # The shared headers and vmlinux.h are named by their folder's role, not where this
    # checkout or cache happens to be (their absolute paths made the hash differ per checkout).
    reproducible = [
        "-fdebug-compilation-dir=.",
        f"-ffile-prefix-map={source.parent}=.",
        f"-ffile-prefix-map={includes[1]}=include",
        f"-ffile-prefix-map={includes[0]}=vmlinux",
    ]
    # Run in the output folder and name the output relatively: clang-19's BTF type order can
    # depend on the length of its command line (seen: the same source gave different objects
    # for two output folders), so the command must not carry the output folder.
    argv = [_tool(CLANG), *CFLAGS, *reproducible, *(f"-I{p}" for p in includes), "-c", str(source), "-o", out.name]
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S, cwd=out.parent)
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"clang took longer than {COMPILE_TIMEOUT_S:g} s on {source}") from exc
    if proc.returncode != 0:
        raise BuildError(
            f"{source.name} does not compile (clang exit {proc.returncode}); fix the errors below",
            proc.stderr.strip(),
        )
    return out


def _includes(source: Path, kernel: Kernel, cache_dir: Path, extra: list[Path] | None = None) -> list[Path]:
    folders = [vmlinux_h(kernel, cache_dir), include_dir(), source.parent, *(extra or [])]
    return [p.resolve() for p in folders]


def check_source(source: Path, kernel: Kernel, cache_dir: Path, flags: list[str]) -> subprocess.CompletedProcess[str]:
    """Compile without output (`-fsyntax-only`) with extra `flags`, for the diagnostics alone.

    The verifier's compile stage asks for more warnings than the build uses; doing it in a
    separate run keeps the build's command line, and with it the object, unchanged.
    """
    if not source.exists():
        raise BuildError(f"policy source {source} does not exist")
    source = source.resolve()
    includes = _includes(source, kernel, cache_dir)
    argv = [_tool(CLANG), *CFLAGS, *flags, *(f"-I{p}" for p in includes), "-fsyntax-only", source.name]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S, cwd=source.parent)
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"clang took longer than {COMPILE_TIMEOUT_S:g} s on {source}") from exc


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
