"""The database layer: URLs, SQLite settings, migrations, transactions."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedcp.errors import RepositoryError
from schedcp.repository.db import SCHEMA_VERSION, Database, open_database, redact, sqlite_path


def test_sqlite_urls_and_plain_paths() -> None:
    assert sqlite_path("sqlite:///abs/path.db") == Path("/abs/path.db")
    assert sqlite_path("sqlite:////abs/path.db") == Path("/abs/path.db")  # SQLAlchemy's spelling
    assert sqlite_path("sqlite:///tmp/with%20space.db") == Path("/tmp/with space.db")
    assert sqlite_path("relative/repo.db") == Path("relative/repo.db")
    assert sqlite_path("postgresql://u@h/db") is None
    with pytest.raises(RepositoryError, match="names no file"):
        sqlite_path("sqlite://")
    with pytest.raises(RepositoryError, match=r"sqlite:///abs/path\.db"):
        sqlite_path("sqlite://somehost/x.db")


def test_unknown_scheme_is_a_clear_error() -> None:
    with pytest.raises(RepositoryError, match="unsupported database URL 'mysql://u:\\*\\*\\*@h/db'"):
        open_database("mysql://u:secret@h/db")


def test_redact_hides_the_password() -> None:
    assert (
        redact("postgresql://alice:s3cret@db.example:5432/schedcp") == "postgresql://alice:***@db.example:5432/schedcp"
    )
    assert redact("postgresql://alice@db/x") == "postgresql://alice@db/x"


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    with open_database(f"sqlite:///{tmp_path / 'a' / 'repo.db'}") as db, db.transaction(write=False) as tx:
        assert tx.scalar("PRAGMA journal_mode") == "wal"
        assert tx.scalar("PRAGMA foreign_keys") == 1
        assert tx.scalar("PRAGMA busy_timeout") >= 10_000


def test_migrations_are_applied_once_and_recorded(db_url: str) -> None:
    with open_database(db_url, migrate=False) as db:
        assert db.migrate() == list(range(1, SCHEMA_VERSION + 1))
        assert db.migrate() == []
        assert db.schema_version() == SCHEMA_VERSION
    with open_database(db_url) as db, db.transaction(write=False) as tx:
        rows = tx.execute("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == list(range(1, SCHEMA_VERSION + 1))


def test_a_newer_schema_is_refused(db_url: str) -> None:
    with open_database(db_url) as db, db.transaction() as tx:
        tx.execute("INSERT INTO schema_migrations(version, name, applied_at) VALUES (999, 'future', 'x')")
    with pytest.raises(RepositoryError, match="schema version 999, newer than this schedcp"):
        open_database(db_url)


def _fail_with_our_error(db: Database) -> None:
    with db.transaction() as tx:
        tx.execute("INSERT INTO repository_meta(key, value) VALUES ('a', '1')")
        raise ValueError("boom")


def _fail_in_the_database(db: Database) -> None:
    with db.transaction() as tx:
        tx.execute("INSERT INTO repository_meta(key, value) VALUES ('b', '1')")
        tx.execute("INSERT INTO repository_meta(key, value) VALUES ('b', '2')")  # primary key violation


def test_a_failed_transaction_writes_nothing(db_url: str) -> None:
    with open_database(db_url) as db:
        with pytest.raises(ValueError, match="boom"):
            _fail_with_our_error(db)
        with pytest.raises(RepositoryError, match="nothing was written"):
            _fail_in_the_database(db)
        with db.transaction(write=False) as tx:
            assert tx.execute("SELECT key FROM repository_meta") == []


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "not.db"
    bogus.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(RepositoryError, match=r"not a usable SQLite database|database error"):
        open_database(f"sqlite:///{bogus}")


def test_an_unreachable_postgresql_server_is_a_clear_error() -> None:
    with pytest.raises(RepositoryError, match=r"cannot connect to postgresql://nobody:\*\*\*@127.0.0.1:1/x"):
        open_database("postgresql://nobody:pw@127.0.0.1:1/x?connect_timeout=2")
