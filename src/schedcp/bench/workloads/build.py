"""A real parallel C build: Lua 5.4 from Debian's source package by default, Linux for `--size full`.

Lua is small enough to build in about a minute in the emulated 2-vCPU sandbox (54 s measured
with -j2) yet is a real project with a real Makefile: many short compiler processes, a fork/
exec-heavy build. `full` builds Linux with tinyconfig from Debian's linux-source package, for
real hosts; `scripts/setup-host.sh --full` installs what that needs.
"""

from __future__ import annotations

import glob
import json
from pathlib import Path

from schedcp.bench.workload import Prepared, WorkloadOutputError, check_size, guest_file, require_ok
from schedcp.config import load_settings
from schedcp.errors import SetupError
from schedcp.models import CommandResult
from schedcp.models.bench import Metric, WorkloadInfo
from schedcp.models.vocabulary import Size
from schedcp.runner import CommandRunner

# A few objects for tests, the whole interpreter by default, more parallelism for bigger machines.
_LUA_TINY_TARGETS = ["-C", "src", "lapi.o", "lcode.o", "lctype.o", "ldebug.o"]
_SIZES: dict[Size, tuple[str, list[str]]] = {
    "tiny": ("-", _LUA_TINY_TARGETS),
    "small": ("-", ["posix"]),
    "medium": ("-", ["posix"]),
    "full": ("make tinyconfig", ["vmlinux"]),
}


def lua_tarball(cache_dir: Path) -> Path:
    found = sorted(glob.glob(str(cache_dir / "sources" / "lua5.4" / "*.orig.tar.*")))
    if not found:
        raise SetupError("the Lua source for the build benchmark is missing; run `make setup`")
    return Path(found[-1])


def linux_tarball() -> Path:
    found = sorted(glob.glob("/usr/src/linux-source-*.tar.xz"))
    if not found:
        raise SetupError("--size full builds Linux from Debian's linux-source; run `scripts/setup-host.sh --full`")
    return Path(found[-1])


class Build:
    info = WorkloadInfo(
        name="build",
        version="1",
        summary="make -jN of a real C project (Lua 5.4 from Debian's source package; Linux tinyconfig at full size)",
        workload_class="fork-heavy-build",
        metrics=[Metric(name="wall_s", unit="s", better="lower", description="wall time of the parallel build")],
        primary="wall_s",
        sizes=list(_SIZES),
    )

    def __init__(self, jobs: int | None = None) -> None:
        self.jobs = jobs

    def prepare(self, runner: CommandRunner, size: Size, build_dir: Path) -> Prepared:
        check_size(self.info, size)
        configure, targets = _SIZES[size]
        tarball = linux_tarball() if size == "full" else lua_tarball(load_settings().cache_dir)
        jobs = self.jobs or _guest_cpus(runner)
        if size == "medium":
            jobs *= 2  # oversubscribed: more runnable compilers than CPUs
        script = runner.stage(guest_file("build.sh"))
        argv = ["sh", script, runner.stage(tarball), str(jobs), configure, *targets]
        return Prepared(argv=argv, timeout_s=3600 if size == "full" else 900)

    def parse(self, result: CommandResult) -> dict[str, float]:
        require_ok(result, "the build")
        try:
            data = json.loads(result.stdout.strip().splitlines()[-1])
            return {"wall_s": float(data["wall_s"])}
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise WorkloadOutputError(f"the build printed no wall time ({exc})", result) from exc


def _guest_cpus(runner: CommandRunner) -> int:
    res = runner.run(["nproc"], timeout=30)
    try:
        return max(1, int(res.stdout.strip()))
    except ValueError:
        return 1
