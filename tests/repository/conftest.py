"""Backends for the repository tests: every store test runs on SQLite and on a real PostgreSQL.

PostgreSQL: `pg_admin_url` / `pg_url` in tests/conftest.py ($SCHEDCP_TEST_PG_URL, else one
throwaway server for the session; without one the PostgreSQL variants skip, saying why, and with
SCHEDCP_REQUIRE_POSTGRES=1 that is a failure instead).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from schedcp.repository import PolicyRepository, open_repository


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
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
