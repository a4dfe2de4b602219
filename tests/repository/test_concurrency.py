"""Several processes writing to one repository at once: nothing lost, nothing doubled, nothing corrupt."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from repo_helpers import bench_result, copy_fixtures, make_policy, worker_add_and_record, worker_open

from schedcp.repository import open_repository
from schedcp.repository.db import SCHEMA_VERSION, open_database

WORKERS = 3
EACH = 5


def _run(target: object, args: list[tuple[object, ...]]) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=target, args=a) for a in args]  # type: ignore[arg-type]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    assert [p.exitcode for p in procs] == [0] * len(procs)


def test_concurrent_writers_lose_nothing(db_url: str, tmp_path: Path) -> None:
    with open_repository(db_url, import_builtins=False) as repo:
        shared = repo.add_policy(make_policy(tmp_path / "s", "shared")).version
    barrier = mp.get_context("spawn").Barrier(WORKERS)
    _run(
        worker_add_and_record,
        [(db_url, str(tmp_path / "w"), w, EACH, shared, barrier) for w in range(WORKERS)],
    )
    with open_repository(db_url, import_builtins=False) as repo:
        names = [p.name for p in repo.list_policies()]
        made = {f"w{w}_p{i}" for w in range(WORKERS) for i in range(EACH)}
        expected = sorted({"shared"} | made | {f"same{i}" for i in range(EACH)})
        assert names == expected
        for i in range(EACH):
            hist = repo.history(f"same{i}")
            assert len(hist.versions) == 1
            assert [e.kind for e in hist.events] == ["added"]
        results = repo.benchmarks(version=shared)
        assert sorted(r.result_id for r in results) == sorted(f"w{w}-{i}" for w in range(WORKERS) for i in range(EACH))
        for w in range(WORKERS):
            assert repo.get(f"w{w}_p0").author == "agent"
        assert len(repo.search("test policy", limit=100)) == len(expected)
        # the search index agrees with the tables
        with repo.db.transaction(write=False) as tx:
            table = "policy_fts" if repo.db.name == "sqlite" else "policy_search"
            assert tx.scalar(f"SELECT COUNT(*) FROM {table}") == len(expected)
        if repo.db.name == "sqlite":
            with repo.db.transaction(write=False) as tx:
                assert tx.scalar("PRAGMA integrity_check") == "ok"
                assert tx.execute("PRAGMA foreign_key_check") == []
        repo.record_benchmark(shared, None, bench_result("shared", [1.0, 1.0], [1.0, 1.0]))  # still writable


def test_concurrent_first_opens_migrate_and_import_once(db_url: str, tmp_path: Path) -> None:
    root = copy_fixtures(tmp_path / "builtin")
    barrier = mp.get_context("spawn").Barrier(WORKERS)
    _run(worker_open, [(db_url, str(root), barrier) for _ in range(WORKERS)])
    with open_database(db_url) as db, db.transaction(write=False) as tx:
        assert tx.scalar("SELECT COUNT(*) FROM schema_migrations") == SCHEMA_VERSION
        assert tx.scalar("SELECT COUNT(*) FROM policies") == 5
        assert tx.scalar("SELECT COUNT(*) FROM policy_versions") == 5
        assert tx.scalar("SELECT COUNT(*) FROM policy_events") == 5
