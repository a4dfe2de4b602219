"""Stored workload profiles: the `profiles` table (migration 2 in `db.py`).

Profiles live next to the policies (same database) so one `--db` holds what was measured and
what was tried on it. A profile's id is "p-" and the first 12 hex digits of the SHA-256 of its
JSON (without the id) and its creation time: stable, so storing the same profile twice stores it
once, and short enough to type. Like git, any unique prefix of 4+ hex digits finds it ("p-"
optional). Nothing here touches the policy tables, so storing a profile never has to import
the built-in policy library first.
"""

from __future__ import annotations

import hashlib
import re

from pydantic import ValidationError

from schedcp.errors import RepositoryError
from schedcp.models.profile import WorkloadProfile
from schedcp.repository.db import Row, Tx, now
from schedcp.repository.models import ProfileRecord

ID_PREFIX = "p-"
ID_HEX = 12
MIN_PREFIX = 4
_HEX = re.compile(r"^[0-9a-f]+$")
_COLUMNS = "id, created, host, kernel, location, target_kind, target, primary_class, complete, window_s, stored_at"


def profile_id(profile: WorkloadProfile) -> str:
    """The content id: hash of the profile without its id, plus its creation time."""
    body = profile.model_dump_json(exclude={"id"})
    digest = hashlib.sha256((body + "\n" + profile.created.isoformat()).encode()).hexdigest()
    return ID_PREFIX + digest[:ID_HEX]


def save_profile(tx: Tx, profile: WorkloadProfile) -> str:
    """Store the profile (idempotent) and return its id; also sets `profile.id`."""
    pid = profile_id(profile)
    profile.id = pid
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
            profile.target.text(),
            profile.primary_class,
            profile.complete,
            profile.window_s,
            now(),
            profile.schema_version,
            profile.model_dump_json(),
        ),
    )
    return pid


def id_prefix(ref: str) -> str:
    """The hex digits of a profile id or prefix; RepositoryError for anything else (so no LIKE wildcard
    or quote ever reaches a query)."""
    ref = ref.strip().lower()
    hexpart = ref[len(ID_PREFIX) :] if ref.startswith(ID_PREFIX) else ref
    if len(hexpart) < MIN_PREFIX or len(hexpart) > ID_HEX or not _HEX.match(hexpart):
        raise RepositoryError(
            f"{ref!r} is not a profile id: use p- and {MIN_PREFIX} to {ID_HEX} hex digits "
            "(`schedcp analyze list` shows the stored ones)"
        )
    return hexpart


def resolve_profile_id(tx: Tx, ref: str) -> str:
    """The full id for an id or a unique prefix; RepositoryError if none or several match."""
    hexpart = id_prefix(ref)
    rows = tx.execute("SELECT id FROM profiles WHERE id LIKE ? ORDER BY id LIMIT 6", (ID_PREFIX + hexpart + "%",))
    ids = [str(r["id"]) for r in rows]
    if not ids:
        raise RepositoryError(f"no stored profile {ref!r}; `schedcp analyze list` shows the stored ones")
    if len(ids) > 1:
        shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        raise RepositoryError(f"profile id {ref!r} is ambiguous ({shown}); give more digits")
    return ids[0]


def get_profile(tx: Tx, ref: str) -> WorkloadProfile:
    """The stored profile for an id or a unique prefix."""
    pid = resolve_profile_id(tx, ref)
    text = tx.scalar("SELECT profile_json FROM profiles WHERE id = ?", (pid,))
    try:
        return WorkloadProfile.model_validate_json(str(text))
    except ValidationError as exc:
        raise RepositoryError(
            f"stored profile {pid} does not match this schedcp's WorkloadProfile ({exc.error_count()} errors); "
            "it was written by another version"
        ) from exc


def _record(row: Row) -> ProfileRecord:
    return ProfileRecord.model_validate({**row, "where": row["location"]})


def list_profiles(tx: Tx, limit: int = 20, workload_class: str | None = None) -> list[ProfileRecord]:
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
    return [_record(r) for r in tx.execute(sql, params)]
