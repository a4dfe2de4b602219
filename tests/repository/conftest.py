"""Backends for the repository tests: every store test runs on SQLite and on a real PostgreSQL.

PostgreSQL: $SCHEDCP_TEST_PG_URL (an admin URL of a server you run), else a throwaway server
started here when initdb/pg_ctl are installed (Debian: the postgresql package) and psycopg is
importable. Without them the PostgreSQL variants skip, saying why; with
SCHEDCP_REQUIRE_POSTGRES=1 that is a failure instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from repo_helpers import pg_bindir, throwaway_postgres

from schedcp.repository import PolicyRepository, open_repository


def _unavailable(reason: str) -> None:
    if os.environ.get("SCHEDCP_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required here (SCHEDCP_REQUIRE_POSTGRES=1) but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed: pip install 'schedcp[postgres]'")
    if url := os.environ.get("SCHEDCP_TEST_PG_URL"):
        yield url
        return
    bindir = pg_bindir()
    if bindir is None:
        _unavailable(
            "no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin: "
            "apt-get install postgresql, or set SCHEDCP_TEST_PG_URL"
        )
        return
    with throwaway_postgres(bindir) as server:
        yield server.admin_url


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh database on the server for one test, dropped after it."""
    import psycopg

    name = f"schedcp_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = pg_admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'repo.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def repo(db_url: str) -> Iterator[PolicyRepository]:
    """An empty repository (no built-in library), on each backend."""
    with open_repository(db_url, import_builtins=False) as r:
        yield r


@pytest.fixture
def library(db_url: str, tmp_path: Path) -> Iterator[PolicyRepository]:
    """A repository whose 'built-in library' is the fixture policies (latboost, batchfifo, vfair, sjf, cachelocal)."""
    from repo_helpers import copy_fixtures

    root = copy_fixtures(tmp_path / "builtin")
    with open_repository(db_url, builtin_root=root) as r:
        yield r
