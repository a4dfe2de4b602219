"""What a benchmark workload is: a versioned definition with setup, a command and a parser.

A workload runs inside the sandbox (or on a host with sched_ext) through a CommandRunner.
`prepare` runs once per boot (build a binary, generate input files, stage scripts) and returns
a Prepared value that `command` uses for every run; `parse` turns one run's output into
metrics and raises WorkloadOutputError, carrying the output, when it cannot.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Protocol

from schedcp.errors import BuildError, SchedcpError
from schedcp.fsutil import atomic_write
from schedcp.models import CommandResult
from schedcp.models.bench import WorkloadInfo
from schedcp.models.vocabulary import Size
from schedcp.runner import CommandRunner


class WorkloadOutputError(SchedcpError):
    """A workload failed or printed something we cannot parse; the output is attached."""

    def __init__(self, message: str, result: CommandResult | None = None) -> None:
        tail = ""
        if result is not None:
            tail = (
                f"\n--- exit {result.rc}{' (timed out)' if result.timed_out else ''} ---"
                f"\n--- stdout (tail) ---\n{result.stdout[-3000:]}\n--- stderr (tail) ---\n{result.stderr[-3000:]}"
            )
        super().__init__(message + tail)
        self.result = result


@dataclass
class Prepared:
    """What `prepare` made for a boot: paths as the runner sees them, and free-form settings."""

    argv: list[str]
    files: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 300.0


class Workload(Protocol):
    info: WorkloadInfo

    def prepare(self, runner: CommandRunner, size: Size, build_dir: Path) -> Prepared:
        """Once per boot: build, generate, stage; returns the command to run for each repetition."""
        ...

    def parse(self, result: CommandResult) -> dict[str, float]:
        """Metrics of one run; raise WorkloadOutputError (with the result) when the run failed or is unparsable."""
        ...


def check_size(info: WorkloadInfo, size: Size) -> None:
    if size not in info.sizes:
        raise SchedcpError(f"workload {info.name} has sizes {', '.join(info.sizes)}, not {size!r}")


def require_ok(result: CommandResult, what: str) -> None:
    """Every parser starts here: a failed or timed-out run is an error, never a slow result."""
    if result.timed_out:
        raise WorkloadOutputError(f"{what} timed out", result)
    if result.rc != 0:
        raise WorkloadOutputError(f"{what} exited with status {result.rc}", result)


def guest_file(name: str) -> Path:
    """A guest-side helper script shipped in schedcp/bench/guest/."""
    return Path(str(resources.files("schedcp.bench").joinpath("guest", name)))


def c_source(name: str) -> Path:
    return Path(str(resources.files("schedcp.bench").joinpath("c", name)))


def build_c_program(source: Path, build_dir: Path, extra_flags: Sequence[str] = ("-O2", "-pthread")) -> Path:
    """Compile one of our C benchmark programs on the host (the guest runs host binaries)."""
    data = source.read_bytes()
    digest = hashlib.sha256(data + " ".join(extra_flags).encode()).hexdigest()[:12]
    out = build_dir / f"{source.stem}-{digest}"
    if out.exists():
        return out
    tmp = build_dir / f".{out.name}.build"
    build_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["gcc", "-Wall", "-Wextra", *extra_flags, "-o", str(tmp), str(source), "-lm"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise BuildError(f"cannot compile benchmark program {source.name}", proc.stderr)
    atomic_write(out, tmp.read_bytes(), mode=0o755)
    tmp.unlink()
    return out
