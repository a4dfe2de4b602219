"""Fixtures for the analysis tests: the profile store on SQLite and on a real PostgreSQL.

PostgreSQL as in tests/repository (its helpers are reused): $SCHEDCP_TEST_PG_URL, else a throwaway
server when initdb/pg_ctl and psycopg are installed; otherwise the PostgreSQL variants skip, saying
why (a failure with SCHEDCP_REQUIRE_POSTGRES=1).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "repository"))
from repo_helpers import pg_bindir, throwaway_postgres


def _unavailable(reason: str) -> None:
    if os.environ.get("SCHEDCP_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required here (SCHEDCP_REQUIRE_POSTGRES=1) but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def analysis_pg_admin_url() -> Iterator[str]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed: pip install 'schedcp[postgres]'")
    if url := os.environ.get("SCHEDCP_TEST_PG_URL"):
        yield url
        return
    bindir = pg_bindir()
    if bindir is None:
        _unavailable("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql")
        return
    with throwaway_postgres(bindir) as server:
        yield server.admin_url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'profiles.db'}"
        return
    import psycopg

    admin = str(request.getfixturevalue("analysis_pg_admin_url"))
    name = f"schedcp_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
