"""Policies and their versions: the tables `policies`, `policy_versions`, `policy_events` and `repository_meta`.

Rules (docs/repository.md has the full text):
- A version's id is the content hash of its code and tunables (see `content.py`). Versions are
  never changed or deleted; editing only the documentation of a version (summary, classes,
  README) updates its stored text and logs a `docs-updated` event.
- Each policy has a head: the version `get(name)` returns and search indexes.
- Adding different content under an existing name needs the version it derives from
  (`parent=`, or `parent="head"`); without one it is refused as a duplicate name, so an agent's
  new policy can never silently replace a built-in of the same name. Adding content that is
  already stored makes that version the head again (and restores a removed policy).
- `remove` is soft: the policy leaves `list` and `search`, its versions, results and events stay.
- The built-in library is imported on first use and re-checked on every open (a hash over the
  folders): a changed built-in becomes a new version by author `builtin` whose parent is the
  previous built-in version; it becomes the head unless a user or agent version is the head.
  A removed built-in stays removed.

Every function here runs inside a transaction the caller opened (`PolicyRepository` in
`store.py`), so a caller can combine them with the other modules' functions all or nothing.
Whenever a head or its documentation changes, this module tells `search.py` to re-index the
policy; the results module asks `find` and `describe` about versions instead of joining these
tables itself.
"""

from __future__ import annotations

import json
import logging
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, get_args

from schedcp.bpf.policy import PolicySpec
from schedcp.errors import (
    CorruptArchive,
    DuplicatePolicy,
    PolicyError,
    PolicyNotFound,
    RepositoryError,
    VersionNotFound,
)
from schedcp.repository import search
from schedcp.repository.content import META, PolicyContent, canonical_json, content_from_texts, read_policy, sha256_hex
from schedcp.repository.db import Row, Tx, chunks, marks, now
from schedcp.repository.models import (
    AddResult,
    AddStatus,
    Author,
    ImportReport,
    PolicyEvent,
    PolicyHistory,
    PolicyRecord,
    PolicySnapshot,
    PolicyVersion,
    VersionInfo,
    VersionSnapshot,
    VersionStats,
    VersionSummary,
)
from schedcp.repository.ranking import Candidate

log = logging.getLogger(__name__)

AUTHORS: tuple[str, ...] = get_args(Author)
MIN_PREFIX = 6
_HEX = re.compile(r"^[0-9a-f]+$")
BUILTIN_FINGERPRINT = "builtin_fingerprint"


def _spec(policy_toml: str) -> PolicySpec:
    return PolicySpec.from_stored(tomllib.loads(policy_toml))


def parse_ref(ref: str) -> tuple[str, str | None]:
    """'NAME' or 'NAME@VERSION' -> (name, version or None)."""
    name, sep, version = ref.partition("@")
    if not name or (sep and not version):
        raise RepositoryError(f"{ref!r} is not NAME or NAME@VERSION (an id prefix of {MIN_PREFIX}+ hex digits)")
    return name, version or None


# -- built-in library -------------------------------------------------------------------------


def read_builtins(root: Path) -> tuple[list[PolicyContent], bool]:
    """The built-in folders' contents, and whether every folder loaded (a broken one is skipped with a warning)."""
    contents: list[PolicyContent] = []
    complete = True
    for folder in sorted(root.iterdir()):
        if not (folder / META).is_file():
            continue
        try:
            contents.append(read_policy(folder))
        except PolicyError as exc:
            complete = False
            log.warning("built-in policy %s skipped: %s", folder.name, exc)
    return contents, complete


def builtins_fingerprint(contents: Sequence[PolicyContent]) -> str:
    """A hash over the built-ins' ids and texts: when it matches the stored one, nothing changed."""
    return sha256_hex(
        canonical_json(
            [[c.name, c.id, sha256_hex(c.policy_toml.encode()), sha256_hex(c.readme.encode())] for c in contents]
        )
    )


def builtins_current(tx: Tx, fingerprint: str) -> bool:
    """The built-in library with this fingerprint was imported already."""
    value = tx.scalar("SELECT value FROM repository_meta WHERE key = ?", (BUILTIN_FINGERPRINT,))
    return value is not None and str(value) == fingerprint


def sync_builtins(tx: Tx, contents: Sequence[PolicyContent], fingerprint: str, complete: bool) -> list[AddResult]:
    """Import the built-ins (idempotent) under a lock; the fingerprint is stored only when every folder loaded,
    so a broken folder is retried on the next open."""
    tx.lock("schedcp-builtins")
    if builtins_current(tx, fingerprint):
        return []
    results = [r for r in (_sync_builtin(tx, c) for c in contents) if r is not None]
    if complete:
        tx.execute(
            "INSERT INTO repository_meta(key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (BUILTIN_FINGERPRINT, fingerprint),
        )
    return results


def _sync_builtin(tx: Tx, c: PolicyContent) -> AddResult | None:
    prow = _policy_row(tx, c.name, lock=True)
    if prow is None:
        return add(tx, c, "builtin", None)
    if prow["removed_at"] is not None:
        return None  # removed by the user: a built-in does not come back by itself
    pid = int(prow["id"])
    existing = _version_row(tx, c.id)
    if existing is not None:
        if existing["author"] == "builtin" and _docs_differ(existing, c):
            _update_docs(tx, pid, existing["id"], c)
            _reindex(tx, pid)
            return AddResult(
                name=c.name,
                version=c.id,
                parent=existing["parent_id"],
                author="builtin",
                status="docs-updated",
                new_policy=False,
                is_head=prow["head_version"] == c.id,
            )
        return None
    prev = tx.scalar(
        "SELECT id FROM policy_versions WHERE policy_id = ? AND author = 'builtin' ORDER BY seq DESC LIMIT 1",
        (pid,),
    )
    _insert_version(tx, pid, c, "builtin", prev)
    head = prow["head_version"]
    if head is None or head == prev:
        _set_head(tx, pid, c.id)
        _event(tx, pid, c.id, "added", "built-in library update")
        head = c.id
    else:
        _event(tx, pid, c.id, "added", f"built-in library update; head kept at {head[:12]} (not built-in)")
    _reindex(tx, pid)
    return AddResult(
        name=c.name,
        version=c.id,
        parent=prev,
        author="builtin",
        status="added",
        new_policy=False,
        is_head=head == c.id,
    )


# -- adding -----------------------------------------------------------------------------------


def add(tx: Tx, c: PolicyContent, author: Author, parent_ref: str | None) -> AddResult:
    """Store one policy's content as a version (see the module's rules)."""
    vid = c.id
    prow = _policy_row(tx, c.name, lock=True)
    created = None
    if prow is None:
        # ON CONFLICT: on PostgreSQL another writer may create the same name at the same moment
        # (SQLite writers are serialized); then this waits for it and goes on with its row.
        created = tx.scalar(
            "INSERT INTO policies(name, created_at, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO NOTHING RETURNING id",
            (c.name, now(), now()),
        )
        if created is None:
            prow = _policy_row(tx, c.name, lock=True)
    parent = _resolve_parent(tx, parent_ref, prow, c.name) if parent_ref else None
    if prow is None:
        assert created is not None
        pid = int(created)
        parent_id = parent["id"] if parent else None
        _insert_version(tx, pid, c, author, parent_id)
        _set_head(tx, pid, vid)
        how = f"new policy by {author}" + (f", derived from {parent_id[:12]}" if parent_id else "")
        _event(tx, pid, vid, "added", how)
        _reindex(tx, pid)
        return AddResult(
            name=c.name,
            version=vid,
            parent=parent_id,
            author=author,
            status="added",
            new_policy=True,
            is_head=True,
        )
    pid = int(prow["id"])
    existing = _version_row(tx, vid)
    if existing is not None:
        status: AddStatus = "unchanged"
        if _docs_differ(existing, c):
            _update_docs(tx, pid, vid, c)
            status = "docs-updated"
        if prow["removed_at"] is not None:
            tx.execute("UPDATE policies SET removed_at = NULL WHERE id = ?", (pid,))
            _set_head(tx, pid, vid)
            _event(tx, pid, vid, "restored", f"re-added by {author}")
            status = "restored"
        elif prow["head_version"] != vid:
            _set_head(tx, pid, vid)
            _event(tx, pid, vid, "head-moved", f"re-added by {author}")
            status = "head-moved"
        if status != "unchanged":
            _reindex(tx, pid)
        return AddResult(
            name=c.name,
            version=vid,
            parent=existing["parent_id"],
            author=existing["author"],
            status=status,
            new_policy=False,
            is_head=True,
        )
    if parent is None:
        head = _version_row(tx, prow["head_version"]) if prow["head_version"] else None
        about = f"head {head['id'][:12]} by {head['author']}, added {head['created_at'][:10]}" if head else ""
        removed = f"; removed on {prow['removed_at'][:10]}" if prow["removed_at"] else ""
        raise DuplicatePolicy(
            f"a policy named {c.name!r} already exists ({about}{removed}) and {c.origin} holds different code "
            f"or tunables (version {vid[:12]}). To store it as a new version of {c.name}, give the version it "
            f"derives from: parent='head' (CLI: --parent head) or an id; to keep both, rename it (folder, "
            "policy.toml name and the ops table's .name)"
        )
    if int(parent["policy_id"]) != pid:
        raise DuplicatePolicy(
            f"parent {parent['id'][:12]} belongs to another policy; policy {c.name!r} exists already, so its "
            "new version must derive from one of its own versions (or rename the new policy)"
        )
    _insert_version(tx, pid, c, author, parent["id"])
    restored = prow["removed_at"] is not None
    if restored:
        tx.execute("UPDATE policies SET removed_at = NULL WHERE id = ?", (pid,))
    _set_head(tx, pid, vid)
    _event(
        tx,
        pid,
        vid,
        "added",
        f"new version by {author}, parent {parent['id'][:12]}" + ("; restored" if restored else ""),
    )
    _reindex(tx, pid)
    return AddResult(
        name=c.name,
        version=vid,
        parent=parent["id"],
        author=author,
        status="added",
        new_policy=False,
        is_head=True,
    )


def _resolve_parent(tx: Tx, ref: str, prow: Row | None, name: str) -> Row:
    if ref == "head":
        if prow is None or prow["head_version"] is None:
            raise RepositoryError(f"parent 'head': policy {name!r} does not exist yet; add it without a parent")
        row = _version_row(tx, prow["head_version"])
        assert row is not None
        return row
    if "@" in ref:
        pname, version = parse_ref(ref)
        prow2 = _policy_row(tx, pname)
        if prow2 is None:
            raise PolicyNotFound(f"parent {ref}: no policy named {pname!r}")
        return _find_version(tx, int(prow2["id"]), version or "", pname)
    return _find_version(tx, None, ref, None)


def _insert_version(tx: Tx, pid: int, c: PolicyContent, author: str, parent: str | None) -> None:
    _insert_version_row(tx, pid, c, author, parent, created_at=now(), origin=c.origin, docs_updated_at=None)


def _insert_version_row(
    tx: Tx,
    pid: int,
    c: PolicyContent,
    author: str,
    parent: str | None,
    created_at: str,
    origin: str,
    docs_updated_at: str | None,
) -> None:
    tx.execute(
        "INSERT INTO policy_versions(id, policy_id, parent_id, author, label, summary, workload_classes, "
        "unsuited_classes, tunables, source_name, source, headers, policy_toml, readme, origin, created_at, "
        "docs_updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            c.id,
            pid,
            parent,
            author,
            c.spec.version,
            c.spec.summary,
            json.dumps(c.spec.workload_classes),
            json.dumps(c.spec.unsuited_classes),
            json.dumps({k: t.model_dump() for k, t in sorted(c.spec.tunables.items())}),
            c.source_name,
            c.source,
            json.dumps(c.headers, sort_keys=True),
            c.policy_toml,
            c.readme,
            origin,
            created_at,
            docs_updated_at,
        ),
    )


def _docs_differ(row: Row, c: PolicyContent) -> bool:
    return bool(row["policy_toml"] != c.policy_toml or row["readme"] != c.readme)


def _update_docs(tx: Tx, pid: int, vid: str, c: PolicyContent) -> None:
    tx.execute(
        "UPDATE policy_versions SET policy_toml = ?, readme = ?, label = ?, summary = ?, workload_classes = ?, "
        "unsuited_classes = ?, tunables = ?, docs_updated_at = ? WHERE id = ?",
        (
            c.policy_toml,
            c.readme,
            c.spec.version,
            c.spec.summary,
            json.dumps(c.spec.workload_classes),
            json.dumps(c.spec.unsuited_classes),
            json.dumps({k: t.model_dump() for k, t in sorted(c.spec.tunables.items())}),
            now(),
            vid,
        ),
    )
    _event(tx, pid, vid, "docs-updated", f"documentation of {vid[:12]} replaced from {c.origin}")


def _set_head(tx: Tx, pid: int, vid: str) -> None:
    tx.execute("UPDATE policies SET head_version = ?, updated_at = ? WHERE id = ?", (vid, now(), pid))


def _event(tx: Tx, pid: int, vid: str | None, kind: str, detail: str, at: str | None = None) -> None:
    tx.execute(
        "INSERT INTO policy_events(policy_id, version_id, kind, detail, created_at) VALUES (?, ?, ?, ?, ?)",
        (pid, vid, kind, detail, at or now()),
    )


def _reindex(tx: Tx, pid: int) -> None:
    """Give search the policy's current document: its head's, or none when it is removed."""
    row = tx.one(
        "SELECT p.name, p.removed_at, v.workload_classes, v.summary, v.policy_toml, v.readme FROM policies p "
        "JOIN policy_versions v ON v.id = p.head_version WHERE p.id = ?",
        (pid,),
    )
    if row is None or row["removed_at"] is not None:
        search.delete(tx, pid)
        return
    spec = _spec(row["policy_toml"])
    search.put(
        tx,
        pid,
        row["name"],
        list(spec.workload_classes),  # through the vocabulary: a stored legacy name is read as what it meant
        f"{row['summary']}\n{spec.description}",
        row["readme"],
    )


# -- lookups ----------------------------------------------------------------------------------


def _policy_row(tx: Tx, name: str, lock: bool = False) -> Row | None:
    return tx.one(f"SELECT * FROM policies WHERE name = ?{tx.dialect.for_update if lock else ''}", (name,))


def _version_row(tx: Tx, vid: str) -> Row | None:
    return tx.one("SELECT * FROM policy_versions WHERE id = ?", (vid,))


def _find_version(tx: Tx, pid: int | None, ref: str, name: str | None) -> Row:
    """A version by full id, id prefix (>= 6 hex digits) or, within a policy, its policy.toml label."""
    ref = ref.strip().lower()
    where = " AND policy_id = ?" if pid is not None else ""
    extra: tuple[Any, ...] = (pid,) if pid is not None else ()
    rows: list[Row] = []
    if _HEX.match(ref) and len(ref) >= MIN_PREFIX:
        rows = tx.execute(
            f"SELECT * FROM policy_versions WHERE id LIKE ?{where} ORDER BY seq LIMIT 10", (ref + "%", *extra)
        )
    elif _HEX.match(ref):
        raise VersionNotFound(f"version {ref!r} is too short: give at least {MIN_PREFIX} hex digits of the id")
    if not rows and pid is not None:
        rows = tx.execute("SELECT * FROM policy_versions WHERE label = ? AND policy_id = ? ORDER BY seq", (ref, pid))
    where_txt = f" of policy {name}" if name else ""
    if not rows:
        raise VersionNotFound(
            f"no version {ref!r}{where_txt}; `schedcp policy history NAME` lists the versions and their ids"
        )
    if len(rows) > 1:
        ids = ", ".join(r["id"][:12] for r in rows)
        raise VersionNotFound(f"version {ref!r}{where_txt} is ambiguous ({ids}); give more digits of the id")
    return rows[0]


def _version_model(tx: Tx, row: Row) -> PolicyVersion:
    prow = tx.one("SELECT name, head_version, removed_at FROM policies WHERE id = ?", (row["policy_id"],))
    assert prow is not None
    return PolicyVersion.model_validate(
        {
            **row,
            "policy": prow["name"],
            "parent": row["parent_id"],
            "is_head": prow["head_version"] == row["id"],
            "removed": prow["removed_at"] is not None,
            "spec": _spec(row["policy_toml"]),
            "headers": json.loads(row["headers"]),
        }
    )


def _not_found(tx: Tx, name: str) -> str:
    names = [r["name"] for r in tx.execute("SELECT name FROM policies WHERE removed_at IS NULL ORDER BY name")]
    return f"no policy named {name!r} in the repository; it has: {', '.join(names) or 'none'}"


def get(tx: Tx, name: str, version: str | None = None) -> PolicyVersion:
    """The head of policy NAME, or one of its versions (id, id prefix >= 6 hex digits, or label).

    A removed policy has no head, but its versions can still be read by id.
    """
    prow = _policy_row(tx, name)
    if prow is None:
        raise PolicyNotFound(_not_found(tx, name))
    if version is None:
        if prow["removed_at"] is not None:
            raise PolicyNotFound(
                f"policy {name!r} was removed on {prow['removed_at'][:10]}; its history is kept: "
                f"`schedcp policy history {name}` lists its versions, `schedcp policy show {name}@VERSION` "
                "shows one, `schedcp policy add` brings it back"
            )
        row = _version_row(tx, prow["head_version"])
        assert row is not None
    else:
        row = _find_version(tx, int(prow["id"]), version, name)
    return _version_model(tx, row)


def find(tx: Tx, version: str) -> PolicyVersion:
    """A version by id or id prefix, whatever its policy."""
    return _version_model(tx, _find_version(tx, None, version, None))


def resolve(tx: Tx, ref: str) -> PolicyVersion:
    """'NAME', 'NAME@VERSION', or a bare version id prefix (unless a policy has that name)."""
    if "@" not in ref and _HEX.match(ref) and len(ref) >= MIN_PREFIX and _policy_row(tx, ref) is None:
        return find(tx, ref)
    name, version = parse_ref(ref)
    return get(tx, name, version)


def list_policies(tx: Tx, include_removed: bool = False) -> list[PolicyRecord]:
    rows = tx.execute(
        "SELECT p.name, p.head_version, p.created_at, p.updated_at, p.removed_at, v.label, v.summary, "
        "v.workload_classes, v.unsuited_classes, v.author, v.origin, v.policy_toml, "
        "(SELECT COUNT(*) FROM policy_versions c WHERE c.policy_id = p.id) AS n "
        "FROM policies p JOIN policy_versions v ON v.id = p.head_version "
        + ("" if include_removed else "WHERE p.removed_at IS NULL ")
        + "ORDER BY p.name"
    )
    records = []
    for r in rows:
        spec = _spec(r["policy_toml"])  # classes through the vocabulary, as everywhere else
        records.append(
            PolicyRecord.model_validate(
                {
                    **r,
                    "head": r["head_version"],
                    "workload_classes": spec.workload_classes,
                    "unsuited_classes": spec.unsuited_classes,
                    "versions": r["n"],
                    "spec": spec,
                }
            )
        )
    return records


def version_ids(tx: Tx, name: str) -> list[str]:
    """The ids of every version of policy NAME, oldest first (none for an unknown name)."""
    rows = tx.execute(
        "SELECT v.id FROM policy_versions v JOIN policies p ON p.id = v.policy_id WHERE p.name = ? ORDER BY v.seq",
        (name,),
    )
    return [str(r["id"]) for r in rows]


def history(tx: Tx, name: str, stats: Mapping[str, VersionStats]) -> PolicyHistory:
    """Every version of NAME (oldest first) with `stats` (from the results module), and the policy's events."""
    prow = _policy_row(tx, name)
    if prow is None:
        raise PolicyNotFound(_not_found(tx, name))
    pid = int(prow["id"])
    rows = tx.execute("SELECT * FROM policy_versions WHERE policy_id = ? ORDER BY seq", (pid,))
    none = VersionStats()
    return PolicyHistory(
        name=name,
        head=prow["head_version"],
        created_at=prow["created_at"],
        removed_at=prow["removed_at"],
        versions=[
            VersionSummary.model_validate(
                {
                    **r,
                    **stats.get(r["id"], none).model_dump(),
                    "parent": r["parent_id"],
                    "is_head": r["id"] == prow["head_version"],
                }
            )
            for r in rows
        ],
        events=_events(tx, pid),
    )


def _events(tx: Tx, pid: int) -> list[PolicyEvent]:
    rows = tx.execute(
        "SELECT kind, version_id, detail, created_at FROM policy_events WHERE policy_id = ? ORDER BY id", (pid,)
    )
    return [PolicyEvent.model_validate({**e, "version": e["version_id"]}) for e in rows]


def describe(tx: Tx, ids: Iterable[str]) -> dict[str, VersionInfo]:
    """Version id -> its policy, label and whether the policy is removed (unknown ids are left out)."""
    out: dict[str, VersionInfo] = {}
    for part in chunks(sorted(set(ids))):
        rows = tx.execute(
            "SELECT v.id, v.label, p.name AS policy, p.removed_at FROM policy_versions v "
            f"JOIN policies p ON p.id = v.policy_id WHERE v.id IN ({marks(len(part))})",
            part,
        )
        for r in rows:
            out[r["id"]] = VersionInfo.model_validate({**r, "removed": r["removed_at"] is not None})
    return out


def search_candidates(tx: Tx) -> list[Candidate]:
    """The head of every active policy, as the search ranking reads it."""
    rows = tx.execute(
        "SELECT p.id, p.name, v.id AS version, v.label, v.summary, v.workload_classes, v.unsuited_classes, "
        "v.policy_toml, v.readme FROM policies p JOIN policy_versions v ON v.id = p.head_version "
        "WHERE p.removed_at IS NULL"
    )
    candidates = []
    for r in rows:
        spec = _spec(r["policy_toml"])
        candidates.append(
            Candidate(
                policy_id=int(r["id"]),
                name=r["name"],
                version=r["version"],
                label=r["label"],
                summary=r["summary"],
                description=spec.description,
                readme=r["readme"],
                workload_classes=list(spec.workload_classes),
                unsuited_classes=list(spec.unsuited_classes),
            )
        )
    return candidates


# -- removing ---------------------------------------------------------------------------------


def remove(tx: Tx, name: str) -> None:
    """Soft delete: gone from list and search; versions, results and events are kept."""
    prow = _policy_row(tx, name, lock=True)
    if prow is None:
        raise PolicyNotFound(_not_found(tx, name))
    if prow["removed_at"] is not None:
        raise RepositoryError(f"policy {name!r} was already removed on {prow['removed_at'][:10]}")
    pid = int(prow["id"])
    tx.execute("UPDATE policies SET removed_at = ?, updated_at = ? WHERE id = ?", (now(), now(), pid))
    _event(tx, pid, prow["head_version"], "removed", "soft delete; history kept")
    search.delete(tx, pid)


# -- snapshot and restore ---------------------------------------------------------------------


def snapshot(tx: Tx, names: Sequence[str] | None = None) -> list[PolicySnapshot]:
    """Every policy (or those named), removed ones included, by name, with every version and event."""
    prows = tx.execute("SELECT * FROM policies ORDER BY name")
    if names is not None:
        known = {r["name"] for r in prows}
        missing = [n for n in names if n not in known]
        if missing:
            raise RepositoryError(f"cannot export {', '.join(missing)}: no such policy")
        prows = [r for r in prows if r["name"] in names]
    out: list[PolicySnapshot] = []
    for prow in prows:
        rows = tx.execute("SELECT * FROM policy_versions WHERE policy_id = ? ORDER BY seq", (prow["id"],))
        versions = [
            VersionSnapshot.model_validate({**v, "parent": v["parent_id"], "headers": json.loads(v["headers"])})
            for v in rows
        ]
        out.append(
            PolicySnapshot.model_validate(
                {**prow, "head": prow["head_version"], "versions": versions, "events": _events(tx, int(prow["id"]))}
            )
        )
    return out


def restore(tx: Tx, policies: Sequence[PolicySnapshot], origin: str) -> ImportReport:
    """Write snapshots of policies (from an archive named `origin`) with the same history they had.

    Versions already stored are kept as they are; the others are inserted parents first (a
    parent may be in another policy, here or already stored). A new policy takes the snapshot's
    times, head and events; for an existing one the local head moves to the snapshot's head only
    when it is an ancestor of it (a fast-forward), otherwise it is kept and reported. Every
    version's texts must validate as a policy and hash to its id. Any inconsistency raises
    CorruptArchive; the caller's transaction then writes nothing.
    """
    _check_snapshots(policies)
    report = ImportReport(archive=origin)
    pids: dict[str, tuple[int, Row | None]] = {}
    for p in sorted(policies, key=lambda p: p.name):  # lock rows in name order
        prow = _policy_row(tx, p.name, lock=True)
        created = None
        if prow is None:
            created = tx.scalar(
                "INSERT INTO policies(name, created_at, updated_at, removed_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO NOTHING RETURNING id",
                (p.name, p.created_at, p.updated_at, p.removed_at),
            )
            if created is None:  # created by a concurrent writer a moment ago
                prow = _policy_row(tx, p.name, lock=True)
        if prow is None:
            assert created is not None
            pid = int(created)
            report.policies_added.append(p.name)
        else:
            pid = int(prow["id"])
        pids[p.name] = (pid, prow)
    parents = {v.id: v.parent for p in policies for v in p.versions}
    _restore_versions(tx, policies, parents, pids, report)
    for p in policies:
        pid, prow = pids[p.name]
        _adopt_head(tx, p, pid, prow, parents, report)
    return report


def _check_snapshots(policies: Sequence[PolicySnapshot]) -> None:
    names: set[str] = set()
    ids: set[str] = set()
    for p in policies:
        if p.name in names:
            raise CorruptArchive(f"policy {p.name!r} appears twice")
        names.add(p.name)
        if p.head not in {v.id for v in p.versions}:
            raise CorruptArchive(f"the head {p.head[:12]} of {p.name} is not one of its versions")
        for v in p.versions:
            if v.id in ids:
                raise CorruptArchive(f"version {v.id[:12]} appears twice")
            ids.add(v.id)


def _content(name: str, v: VersionSnapshot) -> PolicyContent:
    try:
        content = content_from_texts(name, v.source, v.policy_toml, v.readme, v.headers, origin=v.origin)
    except PolicyError as exc:
        raise CorruptArchive(f"version {v.id[:12]} of {name} is not a valid policy: {exc}") from exc
    if content.id != v.id:
        raise CorruptArchive(f"version {v.id[:12]} of {name} hashes to {content.id[:12]}; its files were changed")
    return content


def _restore_versions(
    tx: Tx,
    policies: Sequence[PolicySnapshot],
    parents: Mapping[str, str | None],
    pids: Mapping[str, tuple[int, Row | None]],
    report: ImportReport,
) -> None:
    """Every version not stored yet, parents before children."""
    pending = [(p, v) for p in policies for v in p.versions]
    while pending:
        waiting = []
        for p, v in pending:
            pid = pids[p.name][0]
            existing = _version_row(tx, v.id)
            if existing is not None:
                if int(existing["policy_id"]) != pid:
                    raise CorruptArchive(f"version {v.id[:12]} belongs to another policy in this repository")
                report.versions_present += 1
                continue
            if v.parent is not None and _version_row(tx, v.parent) is None:
                if v.parent not in parents:
                    raise CorruptArchive(
                        f"parent {v.parent[:12]} of {p.name}@{v.id[:12]} is neither in the archive nor in this "
                        "repository"
                    )
                waiting.append((p, v))
                continue
            _insert_version_row(
                tx, pid, _content(p.name, v), v.author, v.parent, v.created_at, v.origin, v.docs_updated_at
            )
            report.versions_added += 1
        if len(waiting) == len(pending):
            raise CorruptArchive(f"the parents of {len(waiting)} versions form a cycle")
        pending = waiting


def _adopt_head(
    tx: Tx,
    p: PolicySnapshot,
    pid: int,
    prow: Row | None,
    parents: Mapping[str, str | None],
    report: ImportReport,
) -> None:
    origin = report.archive
    if prow is None:
        _set_head(tx, pid, p.head)
        tx.execute("UPDATE policies SET updated_at = ? WHERE id = ?", (p.updated_at, pid))
        for e in p.events:
            _event(tx, pid, e.version, e.kind, e.detail, at=e.created_at)
        _event(tx, pid, p.head, "imported", f"from {origin}")
    else:
        local_head = prow["head_version"]
        if local_head == p.head:
            _event(tx, pid, p.head, "imported", f"from {origin}; same head")
        elif _is_ancestor(tx, local_head, p.head, parents):
            _set_head(tx, pid, p.head)
            report.heads_moved.append(p.name)
            _event(tx, pid, p.head, "imported", f"from {origin}; head fast-forwarded")
        else:
            report.heads_kept.append(p.name)
            _event(tx, pid, local_head, "imported", f"from {origin}; its head {p.head[:12]} was not adopted")
    _reindex(tx, pid)


def _is_ancestor(tx: Tx, ancestor: str | None, version: str, parents: Mapping[str, str | None]) -> bool:
    """Whether `ancestor` is on the parent chain of `version`: the snapshot's parents first, then the stored ones."""
    seen: set[str] = set()
    current: str | None = version
    while current is not None and current not in seen:
        if current == ancestor:
            return True
        seen.add(current)
        if current in parents:
            current = parents[current]
        else:
            row = tx.one("SELECT parent_id FROM policy_versions WHERE id = ?", (current,))
            current = row["parent_id"] if row else None
    return False


def add_note(tx: Tx, ref: str, kind: str, detail: str) -> PolicyEvent:
    """Attach a note or an outside measurement to a version: an event in its policy's history,
    where the next planner reads it with the rest (`policy history`, `get_policy`)."""
    v = resolve(tx, ref)
    rows = tx.execute("SELECT id FROM policies WHERE name = ?", (v.spec.name,))
    at = now()
    _event(tx, int(rows[0]["id"]), v.id, kind, detail, at=at)
    return PolicyEvent(kind=kind, version=v.id, detail=detail, created_at=at)
