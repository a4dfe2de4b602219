"""Open the repository's database from a URL; the few SQLite/PostgreSQL differences live here.

URLs: `sqlite:///abs/path.db` (the default, at `<data_dir>/schedcp.db`), a plain file path
(SQLite), or `postgresql://user@host:port/db` (needs the optional `psycopg` package,
`pip install 'schedcp[postgres]'`, imported only for such URLs).

Every statement is written once, with `?` placeholders, and runs on both; the dialect layer
covers what differs: the placeholder style, column types in the DDL, row locks, advisory locks
and full-text search (FTS5 with bm25() on SQLite, a weighted tsvector with ts_rank_cd() on
PostgreSQL). Upserts use `INSERT ... ON CONFLICT`, which both understand.

Migrations are numbered and recorded in `schema_migrations`; all pending ones are applied in
one transaction, under a lock, so two processes opening a new database at once cannot both
create it. SQLite runs in WAL mode with foreign keys on and a busy timeout; writers take the
database lock when their transaction begins (`BEGIN IMMEDIATE`), so two concurrent writers
queue instead of failing half-way.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import sqlite3
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import unquote, urlsplit

from schedcp.errors import RepositoryError

log = logging.getLogger(__name__)

DialectName = Literal["sqlite", "postgresql"]
Row = dict[str, Any]
BUSY_TIMEOUT_S = 60.0

# Weights of the searchable fields: name and workload classes above summary above README.
# SQLite: bm25() column weights; PostgreSQL: tsvector weights A (name, classes), B (summary), D (README).
FTS_WEIGHTS = {"name": 10.0, "classes": 8.0, "summary": 4.0, "readme": 1.0}
PG_RANK_WEIGHTS = "{0.1, 0.2, 0.4, 1.0}"  # D, C, B, A, as ts_rank_cd wants them
_TERM = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def now() -> str:
    """A UTC timestamp with microseconds; ISO 8601 text sorts the same as time on both databases."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


class _Cursor(Protocol):
    description: Any

    def fetchall(self) -> list[Any]: ...


class Tx:
    """One open transaction: `execute` returns the rows as dicts."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.dialect = db.dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.db._execute(sql, params)

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self.execute(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.one(sql, params)
        return None if row is None else next(iter(row.values()))

    def lock(self, name: str) -> None:
        """Serialize with every other transaction that takes the same named lock.

        SQLite: a write transaction already holds the database's single write lock (BEGIN
        IMMEDIATE). PostgreSQL: a transaction-scoped advisory lock.
        """
        if self.dialect.name == "postgresql":
            self.execute("SELECT pg_advisory_xact_lock(?)", (zlib.crc32(name.encode()),))

    # -- full-text search: one document per policy ----------------------------------------

    def fts_put(self, policy_id: int, name: str, classes: str, summary: str, readme: str) -> None:
        self.fts_delete(policy_id)
        if self.dialect.name == "sqlite":
            self.execute(
                "INSERT INTO policy_fts(rowid, name, classes, summary, readme) VALUES (?, ?, ?, ?, ?)",
                (policy_id, name, classes, summary, readme),
            )
        else:
            self.execute(
                "INSERT INTO policy_search(policy_id, document) VALUES (?, "
                "setweight(to_tsvector('english', ?), 'A') || setweight(to_tsvector('english', ?), 'A') || "
                "setweight(to_tsvector('english', ?), 'B') || setweight(to_tsvector('english', ?), 'D'))",
                (policy_id, name.replace("_", " "), classes, summary, readme),
            )

    def fts_delete(self, policy_id: int) -> None:
        if self.dialect.name == "sqlite":
            self.execute("DELETE FROM policy_fts WHERE rowid = ?", (policy_id,))
        else:
            self.execute("DELETE FROM policy_search WHERE policy_id = ?", (policy_id,))

    def fts_rank(self, terms: Sequence[str]) -> dict[int, float]:
        """Policy id -> relevance (higher is better) for documents matching any of `terms`.

        Terms are lower-case words or hyphenated phrases (`latency-critical`); anything else is
        dropped here, so no user text ever reaches the query syntax of either engine.
        """
        clean = sorted({t for t in terms if _TERM.match(t)})
        if not clean:
            return {}
        if self.dialect.name == "sqlite":
            match = " OR ".join('"' + t.replace("-", " ") + '"' for t in clean)
            w = FTS_WEIGHTS
            rows = self.execute(
                f"SELECT rowid AS policy_id, bm25(policy_fts, {w['name']}, {w['classes']}, {w['summary']}, "
                f"{w['readme']}) AS rank FROM policy_fts WHERE policy_fts MATCH ?",
                (match,),
            )
            return {int(r["policy_id"]): -float(r["rank"]) for r in rows}  # bm25: lower is better
        query = " | ".join("(" + " <-> ".join(t.split("-")) + ")" for t in clean)
        rows = self.execute(
            f"SELECT policy_id, ts_rank_cd('{PG_RANK_WEIGHTS}', document, q) AS rank "
            "FROM policy_search, to_tsquery('english', ?) AS q WHERE document @@ q",
            (query,),
        )
        return {int(r["policy_id"]): float(r["rank"]) for r in rows}


@dataclass(frozen=True)
class Dialect:
    """What differs between the two databases, as text spliced into DDL and queries."""

    name: DialectName
    pk: str  # an auto-increment integer primary key
    bigint: str
    real: str
    boolean: str
    for_update: str  # row lock on SELECT, where the database has one


SQLITE = Dialect("sqlite", "INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER", "REAL", "INTEGER", "")
POSTGRESQL = Dialect(
    "postgresql",
    "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    "BIGINT",
    "DOUBLE PRECISION",
    "BOOLEAN",
    " FOR UPDATE",
)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    common: tuple[str, ...]  # DDL with {pk}, {bigint}, {real}, {boolean}
    sqlite: tuple[str, ...] = ()
    postgresql: tuple[str, ...] = ()

    def statements(self, d: Dialect) -> list[str]:
        subs = {"pk": d.pk, "bigint": d.bigint, "real": d.real, "boolean": d.boolean}
        own = self.sqlite if d.name == "sqlite" else self.postgresql
        return [s.format(**subs) for s in self.common] + list(own)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "policies, versions, benchmark results, verification reports, events, search",
        common=(
            """CREATE TABLE policies (
                id {pk},
                name TEXT NOT NULL UNIQUE,
                head_version TEXT,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                removed_at TEXT
            )""",
            """CREATE TABLE policy_versions (
                seq {pk},
                id TEXT NOT NULL UNIQUE,
                policy_id {bigint} NOT NULL REFERENCES policies(id),
                parent_id TEXT REFERENCES policy_versions(id),
                author TEXT NOT NULL CHECK (author IN ('builtin', 'user', 'agent')),
                label TEXT NOT NULL,
                summary TEXT NOT NULL,
                workload_classes TEXT NOT NULL,
                unsuited_classes TEXT NOT NULL,
                tunables TEXT NOT NULL,
                source_name TEXT NOT NULL,
                source TEXT NOT NULL,
                headers TEXT NOT NULL,
                policy_toml TEXT NOT NULL,
                readme TEXT NOT NULL,
                origin TEXT NOT NULL,
                created_at TEXT NOT NULL,
                docs_updated_at TEXT
            )""",
            "CREATE INDEX policy_versions_policy ON policy_versions(policy_id, seq)",
            """CREATE TABLE benchmark_results (
                id {pk},
                version_id TEXT NOT NULL REFERENCES policy_versions(id),
                result_id TEXT NOT NULL,
                workload TEXT NOT NULL,
                workload_class TEXT NOT NULL,
                size TEXT NOT NULL,
                baseline TEXT NOT NULL,
                tunables TEXT NOT NULL,
                metric TEXT NOT NULL,
                unit TEXT NOT NULL,
                better TEXT NOT NULL,
                ratio {real} NOT NULL,
                ci_low {real},
                ci_high {real},
                gain {real} NOT NULL,
                gain_low {real},
                gain_high {real},
                significant {boolean} NOT NULL,
                verdict TEXT NOT NULL,
                repeat {bigint} NOT NULL,
                emulated {boolean} NOT NULL,
                measured_at TEXT NOT NULL,
                recorded_at TEXT NOT NULL,
                result_json TEXT NOT NULL,
                UNIQUE (version_id, result_id)
            )""",
            "CREATE INDEX benchmark_results_class ON benchmark_results(workload_class)",
            "CREATE INDEX benchmark_results_workload ON benchmark_results(workload)",
            """CREATE TABLE verification_reports (
                id {pk},
                version_id TEXT NOT NULL REFERENCES policy_versions(id),
                passed {boolean} NOT NULL,
                report_sha256 TEXT NOT NULL,
                report_json TEXT NOT NULL,
                created_at TEXT NOT NULL,
                UNIQUE (version_id, report_sha256)
            )""",
            """CREATE TABLE policy_events (
                id {pk},
                policy_id {bigint} NOT NULL REFERENCES policies(id),
                version_id TEXT REFERENCES policy_versions(id),
                kind TEXT NOT NULL,
                detail TEXT NOT NULL,
                created_at TEXT NOT NULL
            )""",
            "CREATE INDEX policy_events_policy ON policy_events(policy_id, id)",
            "CREATE TABLE repository_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ),
        sqlite=(
            "CREATE VIRTUAL TABLE policy_fts USING fts5(name, classes, summary, readme, "
            "tokenize = 'porter unicode61 remove_diacritics 2')",
        ),
        postgresql=(
            "ALTER TABLE policies ADD CONSTRAINT policies_head_fk FOREIGN KEY (head_version) "
            "REFERENCES policy_versions(id)",
            """CREATE TABLE policy_search (
                policy_id BIGINT PRIMARY KEY REFERENCES policies(id),
                document TSVECTOR NOT NULL
            )""",
            "CREATE INDEX policy_search_document ON policy_search USING GIN (document)",
        ),
    ),
    Migration(
        2,
        "workload profiles from the analysis engine",
        common=(
            # `target` is the command (shell-quoted), the pid or the cgroup path as text, so a
            # person can read the list; the full record, including the target, is profile_json.
            # `location` is the profile's `where` (a reserved word in SQL).
            """CREATE TABLE profiles (
                id TEXT PRIMARY KEY,
                created TEXT NOT NULL,
                host TEXT NOT NULL,
                kernel TEXT NOT NULL,
                location TEXT NOT NULL CHECK (location IN ('sandbox', 'host')),
                target_kind TEXT NOT NULL CHECK (target_kind IN ('command', 'pid', 'cgroup')),
                target TEXT NOT NULL,
                primary_class TEXT,
                complete {boolean} NOT NULL,
                window_s {real} NOT NULL,
                schema_version {bigint} NOT NULL,
                profile_json TEXT NOT NULL,
                stored_at TEXT NOT NULL
            )""",
            "CREATE INDEX profiles_created ON profiles(created)",
            "CREATE INDEX profiles_class ON profiles(primary_class, created)",
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


class Database:
    """A connection to the repository's database; not shared between threads or processes."""

    def __init__(self, url: str, dialect: Dialect, conn: Any, driver_error: type[Exception]) -> None:
        self.url = url
        self.dialect = dialect
        self._conn = conn
        self._driver_error = driver_error
        self._in_tx = False

    def __repr__(self) -> str:
        return f"Database({redact(self.url)!r})"

    @property
    def name(self) -> DialectName:
        return self.dialect.name

    def _execute(self, sql: str, params: Sequence[Any]) -> list[Row]:
        if self.dialect.name == "postgresql":
            sql = sql.replace("%", "%%").replace("?", "%s")
        cur = self._conn.execute(sql, tuple(params))
        if cur.description is None:
            return []
        if self.dialect.name == "sqlite":
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        rows: list[Row] = cur.fetchall()
        return rows

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Tx]:
        """All or nothing: commit when the block ends, roll back on any exception.

        Database errors become RepositoryError; our own errors pass through unchanged (and
        roll back just the same).
        """
        if self._in_tx:
            raise RuntimeError("nested transaction")
        self._in_tx = True
        try:
            if self.dialect.name == "sqlite":
                with self._sqlite_tx(write) as tx:
                    yield tx
            else:
                with self._pg_tx() as tx:
                    yield tx
        except self._driver_error as exc:
            raise RepositoryError(f"database error on {redact(self.url)}: {exc}; nothing was written") from exc
        finally:
            self._in_tx = False

    @contextmanager
    def _sqlite_tx(self, write: bool) -> Iterator[Tx]:
        self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield Tx(self)
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:  # some errors (disk full) have rolled back already
                self._conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _pg_tx(self) -> Iterator[Tx]:
        with self._conn.transaction():
            yield Tx(self)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def schema_version(self) -> int:
        with self.transaction(write=False) as tx:
            return int(tx.scalar("SELECT MAX(version) FROM schema_migrations") or 0)

    def migrate(self) -> list[int]:
        """Apply pending migrations in one transaction; returns the versions applied."""
        applied: list[int] = []
        with self.transaction() as tx:
            tx.lock("schedcp-schema")
            tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            done = {int(r["version"]) for r in tx.execute("SELECT version FROM schema_migrations")}
            newest = max(done, default=0)
            if newest > SCHEMA_VERSION:
                raise RepositoryError(
                    f"{redact(self.url)} has schema version {newest}, newer than this schedcp knows "
                    f"({SCHEMA_VERSION}); upgrade schedcp or use another --db"
                )
            for m in MIGRATIONS:
                if m.version in done:
                    continue
                for stmt in m.statements(self.dialect):
                    tx.execute(stmt)
                tx.execute(
                    "INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)",
                    (m.version, m.name, now()),
                )
                applied.append(m.version)
        if applied:
            log.info("%s: applied migrations %s", redact(self.url), applied)
        return applied


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (or plain path); None for other schemes."""
    if url.startswith("sqlite:"):
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise RepositoryError(f"SQLite URL {url!r} must look like sqlite:///abs/path.db")
        if not parts.path or parts.path == "/":
            raise RepositoryError(f"SQLite URL {url!r} names no file; use sqlite:///abs/path.db")
        path = unquote(parts.path)
        return Path("/" + path.lstrip("/")) if path.startswith("//") else Path(path)  # sqlite:////abs works too
    if "://" in url:
        return None
    return Path(url)


def open_database(url: str, migrate: bool = True) -> Database:
    """Connect, configure and (by default) bring the schema up to date."""
    path = sqlite_path(url)
    if path is not None:
        db = _open_sqlite(url, path)
    elif url.split("://", 1)[0] in ("postgresql", "postgres", "postgresql+psycopg"):
        db = _open_postgresql(url)
    else:
        raise RepositoryError(
            f"unsupported database URL {redact(url)!r}: use sqlite:///abs/path.db, a file path, or postgresql://..."
        )
    if migrate:
        try:
            db.migrate()
        except BaseException:
            db.close()
            raise
    return db


def _open_sqlite(url: str, path: Path) -> Database:
    if sqlite3.sqlite_version_info < (3, 35, 0):
        raise RepositoryError(
            f"SQLite {sqlite3.sqlite_version} is too old (RETURNING needs 3.35); use a newer Python or PostgreSQL"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise RepositoryError(f"cannot open the SQLite database {path}: {exc}; check the path and permissions") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        mode = _set_wal(conn)
        if str(mode).lower() != "wal":
            log.warning("%s: journal_mode is %s, not WAL (a filesystem without shared memory?)", path, mode)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = FULL")
    except sqlite3.Error as exc:
        conn.close()
        raise RepositoryError(f"{path} is not a usable SQLite database: {exc}") from exc
    return Database(url, SQLITE, conn, sqlite3.Error)


def _set_wal(conn: sqlite3.Connection) -> str:
    """Switch to WAL. Two processes creating the database at once can make this fail at once with
    'database is locked' (SQLite does not wait on the busy handler here), so retry until the timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _open_postgresql(url: str) -> Database:
    try:
        import psycopg
        from psycopg.rows import dict_row
    except ImportError as exc:
        raise RepositoryError(
            "PostgreSQL needs the psycopg package: pip install 'schedcp[postgres]' (or 'psycopg[binary]')"
        ) from exc
    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        conn = psycopg.connect(conninfo, autocommit=True, row_factory=dict_row, connect_timeout=30)
    except psycopg.Error as exc:
        raise RepositoryError(f"cannot connect to {redact(url)}: {exc}") from exc
    return Database(url, POSTGRESQL, conn, psycopg.Error)
