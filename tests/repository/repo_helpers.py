"""Helpers for the repository tests: policy folders, benchmark results, a throwaway PostgreSQL.

Also imported by the worker processes of the concurrency tests (so: top-level functions only).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schedcp.bench.harness import summarize
from schedcp.models.bench import BenchResult, Metric, Sample, SchedulerChoice, WorkloadInfo
from schedcp.models.vocabulary import TunableValue
from schedcp.repository import open_repository

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "repo_policies"

WAKE = WorkloadInfo(
    name="wake",
    version="1",
    summary="test: wakeup latency",
    workload_class="latency-critical-server",
    metrics=[Metric(name="p99_us", unit="us", better="lower"), Metric(name="rps", unit="1/s", better="higher")],
    primary="p99_us",
    sizes=["small"],
    default_size="small",
)
BUILD = WorkloadInfo(
    name="build",
    version="1",
    summary="test: a build",
    workload_class="fork-heavy-build",
    metrics=[Metric(name="seconds", unit="s", better="lower")],
    primary="seconds",
    sizes=["small"],
    default_size="small",
)

POLICY_TOML = """\
name = "{name}"
version = "{label}"
summary = "{summary}"
description = "{description}"
workload_classes = {classes}
unsuited_classes = {unsuited}

[tunables.slice_ns]
type = "u64"
unit = "ns"
default = {default}
min = 100000
max = {max}
description = "Slice."
"""


def make_policy(
    root: Path,
    name: str,
    code: str = "v1",
    *,
    label: str = "0.1.0",
    summary: str = "A test policy.",
    description: str = "",
    classes: Sequence[str] = (),
    unsuited: Sequence[str] = (),
    default: int = 5_000_000,
    max_ns: int = 50_000_000,
    readme: str | None = "# readme\n",
) -> Path:
    """Write (or overwrite) a policy folder root/name with the given content; returns the folder."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.bpf.c").write_text(f"/* {name} {code} */\n")
    (folder / "policy.toml").write_text(
        POLICY_TOML.format(
            name=name,
            label=label,
            summary=summary,
            description=description,
            classes=list(classes).__repr__().replace("'", '"'),
            unsuited=list(unsuited).__repr__().replace("'", '"'),
            default=default,
            max=max_ns,
        )
    )
    if readme is not None:
        (folder / "README.md").write_text(readme)
    return folder


def copy_fixtures(dest: Path, names: Sequence[str] | None = None) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for d in sorted(FIXTURES.iterdir()):
        if names is None or d.name in names:
            shutil.copytree(d, dest / d.name)
    return dest


def bench_result(
    policy: str,
    baseline: Sequence[float],
    candidate: Sequence[float],
    info: WorkloadInfo = WAKE,
    tunables: dict[str, TunableValue] | None = None,
    result_id: str | None = None,
    created: str | None = None,
    baseline_name: str = "default",
) -> BenchResult:
    """A BenchResult as run_ab makes it, from given primary-metric values (other metrics constant)."""
    samples = []
    for side, values in (("baseline", baseline), ("candidate", candidate)):
        for i, v in enumerate(values, 1):
            metrics = {m.name: 1.0 for m in info.metrics}
            metrics[info.primary] = float(v)
            samples.append(Sample(side=side, round=i, warmup=False, metrics=metrics, duration_s=1.0))  # type: ignore[arg-type]
    return BenchResult(
        id=result_id or uuid.uuid4().hex[:12],
        created=created or dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        host="test",
        workload=info,
        size="small",
        repeat=len(candidate),
        baseline=SchedulerChoice(name=baseline_name),
        candidate=SchedulerChoice(name=policy, tunables=tunables or {}),
        boot=None,
        emulated=False,
        samples=samples,
        metrics=summarize(info, samples),
    )


def table_snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every repository table (search index included), for 'nothing changed' checks."""
    from schedcp.repository.db import open_database

    tables = [
        "schema_migrations",
        "policies",
        "policy_versions",
        "benchmark_results",
        "verification_reports",
        "policy_events",
        "repository_meta",
    ]
    with open_database(url, migrate=False) as db, db.transaction(write=False) as tx:
        snap = {t: sorted(tuple(r.values()) for r in tx.execute(f"SELECT * FROM {t}")) for t in tables}
        fts = "policy_fts" if db.name == "sqlite" else "policy_search"
        key = "rowid" if db.name == "sqlite" else "policy_id"
        snap[fts] = sorted((r[key],) for r in tx.execute(f"SELECT {key} FROM {fts}"))
        return snap


# -- workers for the concurrency tests (run in spawned processes) -----------------------------


def worker_add_and_record(url: str, root: str, worker: int, count: int, shared_version: str, barrier: Any) -> None:
    barrier.wait(timeout=60)
    with open_repository(url, import_builtins=False) as repo:
        for i in range(count):
            folder = make_policy(Path(root) / f"w{worker}", f"w{worker}_p{i}", code=f"{worker}-{i}")
            repo.add_policy(folder, author="agent")
            repo.record_benchmark(
                shared_version, None, bench_result("shared", [100, 101, 99], [90, 91, 89], result_id=f"w{worker}-{i}")
            )
            # every worker also creates the very same new policy at about the same time: one must result
            repo.add_policy(make_policy(Path(root) / f"w{worker}-same", f"same{i}", code="identical"), author="user")


def worker_open(url: str, builtin_root: str, barrier: Any) -> None:
    barrier.wait(timeout=60)
    with open_repository(url, builtin_root=Path(builtin_root)) as repo:
        repo.list_policies()


# -- a throwaway PostgreSQL server ------------------------------------------------------------


@dataclass
class PgServer:
    admin_url: str
    bindir: Path | None
    root: Path | None


def pg_bindir() -> Path | None:
    candidates = []
    if found := shutil.which("pg_ctl"):
        candidates.append(Path(found).resolve().parent)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for c in candidates:
        if (c / "initdb").exists() and (c / "pg_ctl").exists() and (c / "postgres").exists():
            return c
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def throwaway_postgres(bindir: Path) -> Iterator[PgServer]:
    """initdb + pg_ctl start in a temp folder, on 127.0.0.1 and a unix socket there; stopped and deleted after."""
    root = Path(tempfile.mkdtemp(prefix="schedcp-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, log = root / "data", root / "server.log"
    started = False
    try:
        subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
             "--locale=C", "--no-sync"],
            check=True, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        for _attempt in range(3):
            port = _free_port()
            opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -F -c max_connections=50"
            proc = subprocess.run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "120", "-o", opts,
                 "start"],
                capture_output=True, text=True, timeout=180,
            )  # fmt: skip
            if proc.returncode == 0:
                started = True
                break
        if not started:
            raise RuntimeError(f"pg_ctl start failed: {proc.stderr}\n{log.read_text() if log.exists() else ''}")
        yield PgServer(f"postgresql://postgres@127.0.0.1:{port}/postgres", bindir, root)
    finally:
        if started:
            subprocess.run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "60", "stop"],
                capture_output=True, timeout=90,
            )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)
