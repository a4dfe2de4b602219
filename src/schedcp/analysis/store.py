"""Stored workload profiles: the `profiles` table of the repository database (SQLite or PostgreSQL).

Profiles live next to the policies (same database, migration 2 in repository/db.py) so one `--db`
holds what was measured and what was tried on it. A profile's id is "p-" and the first 12 hex
digits of the SHA-256 of its JSON (without the id) and its creation time: stable, so storing the
same profile twice stores it once, and short enough to type. Like git, any unique prefix of 4+
hex digits finds it ("p-" optional).
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from typing import TYPE_CHECKING

from pydantic import BaseModel, ValidationError

from schedcp.config import Settings, load_settings
from schedcp.errors import RepositoryError
from schedcp.models.profile import TargetKind, Where, WorkloadProfile
from schedcp.models.vocabulary import WorkloadClass
from schedcp.repository.db import Database, Row, now, open_database

if TYPE_CHECKING:
    from schedcp.repository.store import PolicyRepository

ID_PREFIX = "p-"
ID_HEX = 12
MIN_PREFIX = 4
_HEX = re.compile(r"^[0-9a-f]+$")
_COLUMNS = "id, created, host, kernel, location, target_kind, target, primary_class, complete, window_s, stored_at"


class ProfileRecord(BaseModel):
    """One stored profile, as `list_profiles` shows it (the full profile: `get_profile`)."""

    id: str
    created: str
    host: str
    kernel: str
    where: Where
    target_kind: TargetKind
    target: str
    primary_class: WorkloadClass | None
    complete: bool
    window_s: float
    stored_at: str


def profile_id(profile: WorkloadProfile) -> str:
    """The content id: hash of the profile without its id, plus its creation time."""
    body = profile.model_dump_json(exclude={"id"})
    digest = hashlib.sha256((body + "\n" + profile.created.isoformat()).encode()).hexdigest()
    return ID_PREFIX + digest[:ID_HEX]


def target_text(profile: WorkloadProfile) -> str:
    t = profile.target
    if t.kind == "command":
        return shlex.join(t.command or [])
    if t.kind == "pid":
        return str(t.pid)
    return t.cgroup or ""


def _database(where: Database | PolicyRepository) -> Database:
    return where if isinstance(where, Database) else where.db


def save_profile(where: Database | PolicyRepository, profile: WorkloadProfile) -> str:
    """Store the profile (idempotent) and return its id; also sets `profile.id`."""
    db = _database(where)
    pid = profile_id(profile)
    profile.id = pid
    with db.transaction() as tx:
        tx.execute(
            f"INSERT INTO profiles ({_COLUMNS}, schema_version, profile_json) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (
                pid,
                profile.created.isoformat(),
                profile.host,
                profile.kernel,
                profile.where,
                profile.target.kind,
                target_text(profile),
                profile.primary_class,
                profile.complete,
                profile.window_s,
                now(),
                profile.schema_version,
                profile.model_dump_json(),
            ),
        )
    return pid


def _prefix(ref: str) -> str:
    ref = ref.strip().lower()
    hexpart = ref[len(ID_PREFIX) :] if ref.startswith(ID_PREFIX) else ref
    if len(hexpart) < MIN_PREFIX or len(hexpart) > ID_HEX or not _HEX.match(hexpart):
        raise RepositoryError(
            f"{ref!r} is not a profile id: use p- and {MIN_PREFIX} to {ID_HEX} hex digits "
            "(`schedcp analyze list` shows the stored ones)"
        )
    return hexpart


def resolve_profile_id(where: Database | PolicyRepository, ref: str) -> str:
    """The full id for an id or a unique prefix; RepositoryError if none or several match."""
    hexpart = _prefix(ref)
    db = _database(where)
    with db.transaction(write=False) as tx:
        rows = tx.execute("SELECT id FROM profiles WHERE id LIKE ? ORDER BY id LIMIT 6", (ID_PREFIX + hexpart + "%",))
    ids = [str(r["id"]) for r in rows]
    if not ids:
        raise RepositoryError(f"no stored profile {ref!r}; `schedcp analyze list` shows the stored ones")
    if len(ids) > 1:
        shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        raise RepositoryError(f"profile id {ref!r} is ambiguous ({shown}); give more digits")
    return ids[0]


def get_profile(where: Database | PolicyRepository, ref: str) -> WorkloadProfile:
    """The stored profile for an id or a unique prefix."""
    pid = resolve_profile_id(where, ref)
    with _database(where).transaction(write=False) as tx:
        text = tx.scalar("SELECT profile_json FROM profiles WHERE id = ?", (pid,))
    try:
        return WorkloadProfile.model_validate_json(str(text))
    except ValidationError as exc:
        raise RepositoryError(
            f"stored profile {pid} does not match this schedcp's WorkloadProfile ({exc.error_count()} errors); "
            "it was written by another version"
        ) from exc


def _record(row: Row) -> ProfileRecord:
    return ProfileRecord(
        id=row["id"],
        created=row["created"],
        host=row["host"],
        kernel=row["kernel"],
        where=row["location"],
        target_kind=row["target_kind"],
        target=row["target"],
        primary_class=row["primary_class"],
        complete=bool(row["complete"]),
        window_s=float(row["window_s"]),
        stored_at=row["stored_at"],
    )


def list_profiles(
    where: Database | PolicyRepository, limit: int = 20, workload_class: str | None = None
) -> list[ProfileRecord]:
    """Newest first; `workload_class` keeps the profiles whose primary class it is."""
    if limit < 1:
        raise RepositoryError(f"limit must be at least 1, not {limit}")
    sql = f"SELECT {_COLUMNS} FROM profiles"
    params: list[object] = []
    if workload_class is not None:
        sql += " WHERE primary_class = ?"
        params.append(workload_class)
    sql += " ORDER BY created DESC, id LIMIT ?"
    params.append(limit)
    with _database(where).transaction(write=False) as tx:
        return [_record(r) for r in tx.execute(sql, params)]


def load_profile_file(text: str, origin: str) -> WorkloadProfile:
    """A profile from JSON text (`schedcp analyze --json` output or a file)."""
    try:
        data = json.loads(text)
        if isinstance(data, dict) and "profile" in data and "totals" not in data:
            data = data["profile"]  # an envelope such as {"profile": {...}, ...}
        return WorkloadProfile.model_validate(data)
    except (json.JSONDecodeError, ValidationError) as exc:
        raise RepositoryError(f"{origin} is not a WorkloadProfile JSON: {exc}") from exc


def open_profile_db(url: str | None = None, settings: Settings | None = None) -> Database:
    """The repository database (migrated), without importing the built-in policy library."""
    if url is None:
        url = (settings or load_settings()).repository_url
    return open_database(url)
