"""The policy repository: versions, history, search, results, and the best known policy per workload.

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
Every write is one transaction: on any error nothing is written.
"""

from __future__ import annotations

import json
import logging
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel

from schedcp.bpf.policy import Policy, PolicySpec, builtin_dir
from schedcp.config import Settings, load_settings
from schedcp.errors import DuplicatePolicy, PolicyError, PolicyNotFound, RepositoryError, VersionNotFound
from schedcp.models.bench import BenchResult
from schedcp.repository import search as ranking
from schedcp.repository.content import META, PolicyContent, canonical_json, read_policy, sha256_hex
from schedcp.repository.db import Database, Row, Tx, now, open_database
from schedcp.repository.models import (
    AddResult,
    AddStatus,
    Author,
    BenchmarkRecord,
    BestEntry,
    ExportReport,
    ImportReport,
    PolicyEvent,
    PolicyHistory,
    PolicyRecord,
    PolicyVersion,
    SearchHit,
    VerificationRecord,
    VersionSummary,
    WorkloadQuery,
)

log = logging.getLogger(__name__)

AUTHORS: tuple[str, ...] = get_args(Author)
MIN_PREFIX = 6
_HEX = re.compile(r"^[0-9a-f]+$")
BUILTIN_FINGERPRINT = "builtin_fingerprint"
Tier = Literal["better", "not significant", "worse"]
TIERS: dict[Tier, int] = {"better": 0, "not significant": 1, "worse": 2}


def _tier(verdict: str) -> Tier:
    """A significant improvement, a significant regression, or neither (including no interval)."""
    if verdict == "better":
        return "better"
    if verdict == "worse":
        return "worse"
    return "not significant"


def _spec(policy_toml: str) -> PolicySpec:
    return PolicySpec.from_stored(tomllib.loads(policy_toml))


def _inverse(x: float | None) -> float | None:
    if x is None:
        return None
    return 1 / x if x > 0 else float("inf")


def parse_ref(ref: str) -> tuple[str, str | None]:
    """'NAME' or 'NAME@VERSION' -> (name, version or None)."""
    name, sep, version = ref.partition("@")
    if not name or (sep and not version):
        raise RepositoryError(f"{ref!r} is not NAME or NAME@VERSION (an id prefix of {MIN_PREFIX}+ hex digits)")
    return name, version or None


class PolicyRepository:
    """The service API over one database connection (open one per process or thread)."""

    def __init__(self, db: Database, builtin_root: Path | None = None, import_builtins: bool = True) -> None:
        self.db = db
        self.builtin_root = builtin_root if builtin_root is not None else builtin_dir()
        self._builtins_checked = not import_builtins

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> PolicyRepository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- built-in library -------------------------------------------------------------------

    def _ensure_builtins(self) -> None:
        if not self._builtins_checked:
            self.sync_builtins()
            self._builtins_checked = True

    def sync_builtins(self) -> list[AddResult]:
        """Import the built-in folders (idempotent); returns what changed."""
        contents: list[PolicyContent] = []
        broken = False
        for folder in sorted(self.builtin_root.iterdir()):
            if not (folder / META).is_file():
                continue
            try:
                contents.append(read_policy(folder))
            except PolicyError as exc:
                broken = True
                log.warning("built-in policy %s skipped: %s", folder.name, exc)
        fingerprint = sha256_hex(
            canonical_json(
                [[c.name, c.id, sha256_hex(c.policy_toml.encode()), sha256_hex(c.readme.encode())] for c in contents]
            )
        )
        with self.db.transaction(write=False) as tx:
            if self._meta(tx, BUILTIN_FINGERPRINT) == fingerprint:
                return []
        results: list[AddResult] = []
        with self.db.transaction() as tx:
            tx.lock("schedcp-builtins")
            if self._meta(tx, BUILTIN_FINGERPRINT) == fingerprint:
                return []
            for content in contents:
                result = self._sync_builtin(tx, content)
                if result is not None:
                    results.append(result)
            if not broken:  # retry a broken folder on the next open
                tx.execute(
                    "INSERT INTO repository_meta(key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (BUILTIN_FINGERPRINT, fingerprint),
                )
        for r in results:
            log.info("built-in policy %s: %s %s", r.name, r.status, r.version[:12])
        return results

    def _sync_builtin(self, tx: Tx, c: PolicyContent) -> AddResult | None:
        prow = self._policy_row(tx, c.name, lock=True)
        if prow is None:
            return self._add(tx, c, "builtin", None)
        if prow["removed_at"] is not None:
            return None  # removed by the user: a built-in does not come back by itself
        pid = int(prow["id"])
        existing = self._version_row(tx, c.id)
        if existing is not None:
            if existing["author"] == "builtin" and self._docs_differ(existing, c):
                self._update_docs(tx, pid, existing["id"], c)
                self._reindex(tx, pid)
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
        self._insert_version(tx, pid, c, "builtin", prev)
        head = prow["head_version"]
        if head is None or head == prev:
            self._set_head(tx, pid, c.id)
            self._event(tx, pid, c.id, "added", "built-in library update")
            head = c.id
        else:
            self._event(tx, pid, c.id, "added", f"built-in library update; head kept at {head[:12]} (not built-in)")
        self._reindex(tx, pid)
        return AddResult(
            name=c.name,
            version=c.id,
            parent=prev,
            author="builtin",
            status="added",
            new_policy=False,
            is_head=head == c.id,
        )

    # -- adding ---------------------------------------------------------------------------

    def add_policy(
        self, policy: Path | Policy | PolicyContent, author: Author = "user", parent: str | None = None
    ) -> AddResult:
        """Add one policy folder as a version (see the module's rules); one transaction."""
        return self.add_policies([policy], author, parent)[0]

    def add_policies(
        self, policies: Sequence[Path | Policy | PolicyContent], author: Author = "user", parent: str | None = None
    ) -> list[AddResult]:
        """Add several policies all or nothing: every folder is read and checked before anything is written."""
        self._ensure_builtins()
        if author not in AUTHORS:
            raise RepositoryError(f"author must be one of {', '.join(AUTHORS)}, not {author!r}")
        if parent is not None and len(policies) != 1:
            raise RepositoryError("a parent version applies to one policy; add the others separately")
        contents = [p if isinstance(p, PolicyContent) else read_policy(p) for p in policies]
        contents.sort(key=lambda c: c.name)  # row locks always in name order: no deadlock between writers
        seen: dict[str, str] = {}
        for c in contents:
            if c.name in seen:
                raise DuplicatePolicy(
                    f"two policies named {c.name!r} in one add: {seen[c.name]} and {c.origin}; names must be unique"
                )
            seen[c.name] = c.origin
        with self.db.transaction() as tx:
            return [self._add(tx, c, author, parent) for c in contents]

    def add_path(self, path: Path, author: Author = "user", parent: str | None = None) -> list[AddResult]:
        """A policy folder (or its policy.toml / .bpf.c), or a folder of policy folders (all or nothing)."""
        if path.is_dir() and not (path / META).exists():
            folders = sorted(d for d in path.iterdir() if (d / META).is_file())
            if not folders:
                raise PolicyError(
                    f"{path} has no policy.toml, nor do its subfolders; every policy needs its metadata "
                    "(name, summary, tunables) in policy.toml next to <name>.bpf.c"
                )
            return self.add_policies(list(folders), author, parent)
        return [self.add_policy(path, author, parent)]

    def _add(self, tx: Tx, c: PolicyContent, author: Author, parent_ref: str | None) -> AddResult:
        vid = c.id
        prow = self._policy_row(tx, c.name, lock=True)
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
                prow = self._policy_row(tx, c.name, lock=True)
        parent = self._resolve_parent(tx, parent_ref, prow, c.name) if parent_ref else None
        if prow is None:
            assert created is not None
            pid = int(created)
            parent_id = parent["id"] if parent else None
            self._insert_version(tx, pid, c, author, parent_id)
            self._set_head(tx, pid, vid)
            how = f"new policy by {author}" + (f", derived from {parent_id[:12]}" if parent_id else "")
            self._event(tx, pid, vid, "added", how)
            self._reindex(tx, pid)
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
        existing = self._version_row(tx, vid)
        if existing is not None:
            status: AddStatus = "unchanged"
            if self._docs_differ(existing, c):
                self._update_docs(tx, pid, vid, c)
                status = "docs-updated"
            if prow["removed_at"] is not None:
                tx.execute("UPDATE policies SET removed_at = NULL WHERE id = ?", (pid,))
                self._set_head(tx, pid, vid)
                self._event(tx, pid, vid, "restored", f"re-added by {author}")
                status = "restored"
            elif prow["head_version"] != vid:
                self._set_head(tx, pid, vid)
                self._event(tx, pid, vid, "head-moved", f"re-added by {author}")
                status = "head-moved"
            if status != "unchanged":
                self._reindex(tx, pid)
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
            head = self._version_row(tx, prow["head_version"]) if prow["head_version"] else None
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
        self._insert_version(tx, pid, c, author, parent["id"])
        restored = prow["removed_at"] is not None
        if restored:
            tx.execute("UPDATE policies SET removed_at = NULL WHERE id = ?", (pid,))
        self._set_head(tx, pid, vid)
        self._event(
            tx,
            pid,
            vid,
            "added",
            f"new version by {author}, parent {parent['id'][:12]}" + ("; restored" if restored else ""),
        )
        self._reindex(tx, pid)
        return AddResult(
            name=c.name,
            version=vid,
            parent=parent["id"],
            author=author,
            status="added",
            new_policy=False,
            is_head=True,
        )

    def _resolve_parent(self, tx: Tx, ref: str, prow: Row | None, name: str) -> Row:
        if ref == "head":
            if prow is None or prow["head_version"] is None:
                raise RepositoryError(f"parent 'head': policy {name!r} does not exist yet; add it without a parent")
            row = self._version_row(tx, prow["head_version"])
            assert row is not None
            return row
        if "@" in ref:
            pname, version = parse_ref(ref)
            prow2 = self._policy_row(tx, pname)
            if prow2 is None:
                raise PolicyNotFound(f"parent {ref}: no policy named {pname!r}")
            return self._find_version(tx, int(prow2["id"]), version or "", pname)
        return self._find_version(tx, None, ref, None)

    def _insert_version(self, tx: Tx, pid: int, c: PolicyContent, author: str, parent: str | None) -> None:
        self._insert_version_row(tx, pid, c, author, parent, created_at=now(), origin=c.origin, docs_updated_at=None)

    def _insert_version_row(
        self,
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

    @staticmethod
    def _docs_differ(row: Row, c: PolicyContent) -> bool:
        return bool(row["policy_toml"] != c.policy_toml or row["readme"] != c.readme)

    def _update_docs(self, tx: Tx, pid: int, vid: str, c: PolicyContent) -> None:
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
        self._event(tx, pid, vid, "docs-updated", f"documentation of {vid[:12]} replaced from {c.origin}")

    def _set_head(self, tx: Tx, pid: int, vid: str) -> None:
        tx.execute("UPDATE policies SET head_version = ?, updated_at = ? WHERE id = ?", (vid, now(), pid))

    def _event(self, tx: Tx, pid: int, vid: str | None, kind: str, detail: str, at: str | None = None) -> None:
        tx.execute(
            "INSERT INTO policy_events(policy_id, version_id, kind, detail, created_at) VALUES (?, ?, ?, ?, ?)",
            (pid, vid, kind, detail, at or now()),
        )

    def _reindex(self, tx: Tx, pid: int) -> None:
        row = tx.one(
            "SELECT p.name, p.removed_at, v.workload_classes, v.summary, v.policy_toml, v.readme FROM policies p "
            "JOIN policy_versions v ON v.id = p.head_version WHERE p.id = ?",
            (pid,),
        )
        if row is None or row["removed_at"] is not None:
            tx.fts_delete(pid)
            return
        spec = _spec(row["policy_toml"])
        tx.fts_put(
            pid,
            row["name"],
            " ".join(json.loads(row["workload_classes"])),
            f"{row['summary']}\n{spec.description}",
            row["readme"],
        )

    # -- lookups ----------------------------------------------------------------------------

    def _policy_row(self, tx: Tx, name: str, lock: bool = False) -> Row | None:
        return tx.one(f"SELECT * FROM policies WHERE name = ?{tx.dialect.for_update if lock else ''}", (name,))

    @staticmethod
    def _version_row(tx: Tx, vid: str) -> Row | None:
        return tx.one("SELECT * FROM policy_versions WHERE id = ?", (vid,))

    @staticmethod
    def _meta(tx: Tx, key: str) -> str | None:
        value = tx.scalar("SELECT value FROM repository_meta WHERE key = ?", (key,))
        return None if value is None else str(value)

    def _find_version(self, tx: Tx, pid: int | None, ref: str, name: str | None) -> Row:
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
            rows = tx.execute(
                "SELECT * FROM policy_versions WHERE label = ? AND policy_id = ? ORDER BY seq", (ref, pid)
            )
        where_txt = f" of policy {name}" if name else ""
        if not rows:
            raise VersionNotFound(
                f"no version {ref!r}{where_txt}; `schedcp policy history NAME` lists the versions and their ids"
            )
        if len(rows) > 1:
            ids = ", ".join(r["id"][:12] for r in rows)
            raise VersionNotFound(f"version {ref!r}{where_txt} is ambiguous ({ids}); give more digits of the id")
        return rows[0]

    def _version_model(self, tx: Tx, row: Row) -> PolicyVersion:
        prow = tx.one("SELECT name, head_version, removed_at FROM policies WHERE id = ?", (row["policy_id"],))
        assert prow is not None
        return PolicyVersion(
            id=row["id"],
            policy=prow["name"],
            parent=row["parent_id"],
            author=row["author"],
            label=row["label"],
            created_at=row["created_at"],
            docs_updated_at=row["docs_updated_at"],
            origin=row["origin"],
            is_head=prow["head_version"] == row["id"],
            removed=prow["removed_at"] is not None,
            spec=_spec(row["policy_toml"]),
            source_name=row["source_name"],
            source=row["source"],
            headers=json.loads(row["headers"]),
            policy_toml=row["policy_toml"],
            readme=row["readme"],
        )

    def get(self, name: str, version: str | None = None) -> PolicyVersion:
        """The head of policy NAME, or one of its versions (id, id prefix >= 6 hex digits, or label).

        A removed policy has no head, but its versions can still be read by id.
        """
        self._ensure_builtins()
        with self.db.transaction(write=False) as tx:
            prow = self._policy_row(tx, name)
            if prow is None:
                raise PolicyNotFound(self._not_found(tx, name))
            if version is None:
                if prow["removed_at"] is not None:
                    raise PolicyNotFound(
                        f"policy {name!r} was removed on {prow['removed_at'][:10]}; its history is kept: "
                        f"`schedcp policy history {name}` lists its versions, `schedcp policy show {name}@VERSION` "
                        "shows one, `schedcp policy add` brings it back"
                    )
                row = self._version_row(tx, prow["head_version"])
                assert row is not None
            else:
                row = self._find_version(tx, int(prow["id"]), version, name)
            return self._version_model(tx, row)

    def resolve(self, ref: str) -> PolicyVersion:
        """'NAME', 'NAME@VERSION', or a bare version id prefix."""
        if "@" not in ref and _HEX.match(ref) and len(ref) >= MIN_PREFIX:
            with self.db.transaction(write=False) as tx:
                prow = self._policy_row(tx, ref)
            if prow is None:
                return self.version(ref)
        name, version = parse_ref(ref)
        return self.get(name, version)

    def version(self, version: str) -> PolicyVersion:
        """A version by id or id prefix, whatever its policy."""
        self._ensure_builtins()
        with self.db.transaction(write=False) as tx:
            return self._version_model(tx, self._find_version(tx, None, version, None))

    def _not_found(self, tx: Tx, name: str) -> str:
        names = [r["name"] for r in tx.execute("SELECT name FROM policies WHERE removed_at IS NULL ORDER BY name")]
        return f"no policy named {name!r} in the repository; it has: {', '.join(names) or 'none'}"

    def list_policies(self, include_removed: bool = False) -> list[PolicyRecord]:
        self._ensure_builtins()
        with self.db.transaction(write=False) as tx:
            rows = tx.execute(
                "SELECT p.name, p.head_version, p.created_at, p.updated_at, p.removed_at, v.label, v.summary, "
                "v.workload_classes, v.unsuited_classes, v.author, v.origin, v.policy_toml, "
                "(SELECT COUNT(*) FROM policy_versions c WHERE c.policy_id = p.id) AS n "
                "FROM policies p JOIN policy_versions v ON v.id = p.head_version "
                + ("" if include_removed else "WHERE p.removed_at IS NULL ")
                + "ORDER BY p.name"
            )
        return [
            PolicyRecord(
                name=r["name"],
                head=r["head_version"],
                label=r["label"],
                summary=r["summary"],
                workload_classes=json.loads(r["workload_classes"]),
                unsuited_classes=json.loads(r["unsuited_classes"]),
                author=r["author"],
                origin=r["origin"],
                versions=int(r["n"]),
                created_at=r["created_at"],
                updated_at=r["updated_at"],
                removed_at=r["removed_at"],
                spec=_spec(r["policy_toml"]),
            )
            for r in rows
        ]

    def history(self, name: str) -> PolicyHistory:
        """Every version of NAME (oldest first) with its result counts, and the policy's events."""
        self._ensure_builtins()
        with self.db.transaction(write=False) as tx:
            prow = self._policy_row(tx, name)
            if prow is None:
                raise PolicyNotFound(self._not_found(tx, name))
            pid = int(prow["id"])
            rows = tx.execute(
                "SELECT v.*, "
                "(SELECT COUNT(*) FROM benchmark_results b WHERE b.version_id = v.id) AS n_bench, "
                "(SELECT COUNT(*) FROM verification_reports r WHERE r.version_id = v.id) AS n_verif, "
                "(SELECT r.passed FROM verification_reports r WHERE r.version_id = v.id ORDER BY r.id DESC LIMIT 1) "
                "AS last_passed FROM policy_versions v WHERE v.policy_id = ? ORDER BY v.seq",
                (pid,),
            )
            events = tx.execute(
                "SELECT kind, version_id, detail, created_at FROM policy_events WHERE policy_id = ? ORDER BY id",
                (pid,),
            )
        return PolicyHistory(
            name=name,
            head=prow["head_version"],
            created_at=prow["created_at"],
            removed_at=prow["removed_at"],
            versions=[
                VersionSummary(
                    id=r["id"],
                    parent=r["parent_id"],
                    author=r["author"],
                    label=r["label"],
                    created_at=r["created_at"],
                    docs_updated_at=r["docs_updated_at"],
                    origin=r["origin"],
                    is_head=r["id"] == prow["head_version"],
                    benchmarks=int(r["n_bench"]),
                    verifications=int(r["n_verif"]),
                    verified=None if r["last_passed"] is None else bool(r["last_passed"]),
                )
                for r in rows
            ],
            events=[
                PolicyEvent(kind=e["kind"], version=e["version_id"], detail=e["detail"], created_at=e["created_at"])
                for e in events
            ],
        )

    def remove(self, name: str) -> PolicyHistory:
        """Soft delete: gone from list and search; versions, results and events are kept."""
        self._ensure_builtins()
        with self.db.transaction() as tx:
            prow = self._policy_row(tx, name, lock=True)
            if prow is None:
                raise PolicyNotFound(self._not_found(tx, name))
            if prow["removed_at"] is not None:
                raise RepositoryError(f"policy {name!r} was already removed on {prow['removed_at'][:10]}")
            pid = int(prow["id"])
            tx.execute("UPDATE policies SET removed_at = ?, updated_at = ? WHERE id = ?", (now(), now(), pid))
            self._event(tx, pid, prow["head_version"], "removed", "soft delete; history kept")
            tx.fts_delete(pid)
        return self.history(name)

    def checkout(self, ref: str, dest: Path) -> Path:
        """Write a stored version's files into `dest/<name>/` so it can be built exactly as it was stored."""
        v = self.resolve(ref)
        content = PolicyContent(
            spec=v.spec,
            source_name=v.source_name,
            source=v.source,
            policy_toml=v.policy_toml,
            readme=v.readme,
            origin=f"repository:{v.ref}",
            headers=v.headers,
        )
        if (dest / v.policy).exists():
            raise RepositoryError(f"{dest / v.policy} exists already; choose an empty folder")
        folder = content.write(dest)
        again = read_policy(folder)
        if again.id != v.id:
            raise RepositoryError(f"stored version {v.id[:12]} does not hash to its id any more ({again.id[:12]})")
        return folder

    # -- search -----------------------------------------------------------------------------

    def search(self, query: str | WorkloadQuery, limit: int = 10) -> list[SearchHit]:
        """Active policies ranked for a text or a workload profile (rules in `search.py`)."""
        self._ensure_builtins()
        q = WorkloadQuery(text=query) if isinstance(query, str) else query
        plan = ranking.plan(q.text, q.classes, q.features)
        if not plan.terms and not plan.classes:
            raise RepositoryError("empty query: give some words, a workload class or a feature")
        with self.db.transaction(write=False) as tx:
            text_raw = tx.fts_rank(plan.terms)
            rows = tx.execute(
                "SELECT p.id, p.name, v.id AS version, v.label, v.summary, v.workload_classes, v.unsuited_classes, "
                "v.policy_toml, v.readme FROM policies p JOIN policy_versions v ON v.id = p.head_version "
                "WHERE p.removed_at IS NULL"
            )
        candidates = [
            ranking.Candidate(
                policy_id=int(r["id"]),
                name=r["name"],
                version=r["version"],
                label=r["label"],
                summary=r["summary"],
                description=_spec(r["policy_toml"]).description,
                readme=r["readme"],
                workload_classes=json.loads(r["workload_classes"]),
                unsuited_classes=json.loads(r["unsuited_classes"]),
            )
            for r in rows
        ]
        scored = ranking.rank(plan, candidates, text_raw)[: max(limit, 0)]
        return [
            SearchHit(
                rank=i,
                name=s.candidate.name,
                version=s.candidate.version,
                label=s.candidate.label,
                summary=s.candidate.summary,
                workload_classes=s.candidate.workload_classes,
                unsuited_classes=s.candidate.unsuited_classes,
                score=round(s.score, 4),
                text_score=round(s.text_score, 4),
                class_score=round(s.class_score, 4),
                penalty=round(s.penalty, 4),
                matched_terms=s.matched_terms,
                matched_fields=s.matched_fields,
                matched_classes=s.matched_classes,
                unsuited_matched=s.unsuited_matched,
                reasons=s.reasons,
            )
            for i, s in enumerate(scored, 1)
        ]

    # -- results ----------------------------------------------------------------------------

    def record_benchmark(self, version: str, workload: str | None, result: BenchResult) -> BenchmarkRecord:
        """Store one benchmark result of a version (its candidate side); idempotent per result id."""
        self._ensure_builtins()
        if workload is not None and workload != result.workload.name:
            raise RepositoryError(
                f"workload {workload!r} does not match the result, which measured {result.workload.name!r}"
            )
        with self.db.transaction() as tx:
            row = self._find_version(tx, None, version, None)
            rid, _ = self._insert_benchmark(tx, row, result, now())
            return self._benchmarks(tx, "b.id = ?", (rid,))[0]

    def _insert_benchmark(self, tx: Tx, vrow: Row, result: BenchResult, recorded_at: str) -> tuple[int, bool]:
        """(record id, whether it is new): the same result of the same version is stored once."""
        prow = tx.one("SELECT name FROM policies WHERE id = ?", (vrow["policy_id"],))
        assert prow is not None
        name = prow["name"]
        cand = result.candidate
        if cand is None:
            raise RepositoryError(
                f"benchmark {result.id} measured only the baseline; there is no result for policy {name} to record"
            )
        if cand.name != name:
            raise RepositoryError(
                f"benchmark {result.id} measured {cand.name!r} as the candidate, not policy {name!r} "
                f"(version {vrow['id'][:12]})"
            )
        spec = _spec(vrow["policy_toml"])
        for key, value in cand.tunables.items():
            if key not in spec.tunables:
                raise PolicyError(f"benchmark {result.id}: policy {name} has no tunable {key!r}")
            spec.tunables[key].check(key, value)
        primary = result.workload.primary
        try:
            metric = result.metric(primary)
        except KeyError:
            raise RepositoryError(f"benchmark {result.id} has no value for its primary metric {primary!r}") from None
        c = metric.comparison
        if c is None:
            raise RepositoryError(f"benchmark {result.id}: metric {primary} has no comparison with the baseline")
        if metric.better == "lower":
            gain_low, gain_high = _inverse(c.ci_high), _inverse(c.ci_low)
        else:
            gain_low, gain_high = c.ci_low, c.ci_high
        tunables = {k: cand.tunables[k] for k in sorted(cand.tunables)}
        rid = tx.scalar(
            "INSERT INTO benchmark_results(version_id, result_id, workload, workload_class, size, baseline, "
            "tunables, metric, unit, better, ratio, ci_low, ci_high, gain, gain_low, gain_high, significant, "
            "verdict, repeat, emulated, measured_at, recorded_at, result_json) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (version_id, result_id) DO NOTHING RETURNING id",
            (
                vrow["id"],
                result.id,
                result.workload.name,
                result.workload.workload_class,
                result.size,
                result.baseline.name,
                json.dumps(tunables),
                metric.name,
                metric.unit,
                metric.better,
                c.ratio,
                c.ci_low,
                c.ci_high,
                c.gain,
                gain_low,
                gain_high,
                c.significant,
                c.verdict,
                result.repeat,
                result.emulated,
                result.created,
                recorded_at,
                result_to_json(result),
            ),
        )
        if rid is not None:
            return int(rid), True
        rid = tx.scalar(
            "SELECT id FROM benchmark_results WHERE version_id = ? AND result_id = ?", (vrow["id"], result.id)
        )
        return int(rid), False

    def benchmarks(self, version: str | None = None, policy: str | None = None) -> list[BenchmarkRecord]:
        """Stored results, newest first: of one version (id or prefix), of every version of a policy, or all."""
        self._ensure_builtins()
        with self.db.transaction(write=False) as tx:
            if version is not None:
                row = self._find_version(tx, None, version, None)
                return self._benchmarks(tx, "b.version_id = ?", (row["id"],))
            if policy is not None:
                return self._benchmarks(tx, "p.name = ?", (policy,))
            return self._benchmarks(tx, "1 = 1", ())

    def benchmark_result(self, record_id: int) -> BenchResult:
        """The full BenchResult behind a stored record."""
        with self.db.transaction(write=False) as tx:
            text = tx.scalar("SELECT result_json FROM benchmark_results WHERE id = ?", (record_id,))
        if text is None:
            raise RepositoryError(f"no benchmark record {record_id}")
        return BenchResult.model_validate(json.loads(text))

    @staticmethod
    def _benchmarks(tx: Tx, where: str, params: Sequence[Any]) -> list[BenchmarkRecord]:
        rows = tx.execute(
            "SELECT b.*, p.name AS policy FROM benchmark_results b JOIN policy_versions v ON v.id = b.version_id "
            f"JOIN policies p ON p.id = v.policy_id WHERE {where} ORDER BY b.measured_at DESC, b.id DESC",
            params,
        )
        return [_bench_record(r) for r in rows]

    def record_verification(
        self, version: str, report: str | Mapping[str, Any] | BaseModel, passed: bool
    ) -> VerificationRecord:
        """Store a verification report (JSON) for a version; idempotent for the same report."""
        self._ensure_builtins()
        data = _report_data(report)
        text = canonical_json(data).decode()
        digest = sha256_hex(text.encode())
        with self.db.transaction() as tx:
            row = self._find_version(tx, None, version, None)
            rid, _ = self._insert_verification(tx, row["id"], bool(passed), digest, text, now())
            return self._verifications(tx, "r.id = ?", (rid,))[0]

    @staticmethod
    def _insert_verification(
        tx: Tx, vid: str, passed: bool, digest: str, text: str, created_at: str
    ) -> tuple[int, bool]:
        rid = tx.scalar(
            "INSERT INTO verification_reports(version_id, passed, report_sha256, report_json, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (version_id, report_sha256) DO NOTHING RETURNING id",
            (vid, passed, digest, text, created_at),
        )
        if rid is not None:
            return int(rid), True
        rid = tx.scalar("SELECT id FROM verification_reports WHERE version_id = ? AND report_sha256 = ?", (vid, digest))
        return int(rid), False

    def verifications(self, version: str) -> list[VerificationRecord]:
        self._ensure_builtins()
        with self.db.transaction(write=False) as tx:
            row = self._find_version(tx, None, version, None)
            return self._verifications(tx, "r.version_id = ?", (row["id"],))

    @staticmethod
    def _verifications(tx: Tx, where: str, params: Sequence[Any]) -> list[VerificationRecord]:
        rows = tx.execute(
            "SELECT r.*, p.name AS policy FROM verification_reports r JOIN policy_versions v ON v.id = r.version_id "
            f"JOIN policies p ON p.id = v.policy_id WHERE {where} ORDER BY r.id DESC",
            params,
        )
        return [
            VerificationRecord(
                id=int(r["id"]),
                policy=r["policy"],
                version=r["version_id"],
                passed=bool(r["passed"]),
                report_sha256=r["report_sha256"],
                created_at=r["created_at"],
                report=json.loads(r["report_json"]),
            )
            for r in rows
        ]

    def best_for(
        self,
        workload_class: str | None = None,
        workload: str | None = None,
        include_removed: bool = False,
        limit: int | None = None,
    ) -> list[BestEntry]:
        """The best known (version, tunables) for a workload class and/or a workload, from measurements.

        Only results against the default scheduler count, on the workload's primary metric.
        Per (version, tunables, workload) the newest result stands (older ones are counted in
        `results`). Ranking: first the significant improvements ("better": the 95% interval of
        the gain lies above 1), then the not significant, then the significant regressions;
        within each tier by the lower end of the gain's interval (the improvement we are 97.5%
        sure of; no interval ranks last), then by the gain itself. So a significant 1.2x with
        interval [1.1, 1.3] ranks above a not significant 1.8x with interval [0.7, 2.9].
        A class matches exactly or by family (`latency-critical` covers `latency-critical-server`).
        """
        self._ensure_builtins()
        where, params = "b.baseline = 'default'", []
        if workload is not None:
            where += " AND b.workload = ?"
            params.append(workload)
        if not include_removed:
            where += " AND p.removed_at IS NULL"
        with self.db.transaction(write=False) as tx:
            rows = tx.execute(
                "SELECT b.*, p.name AS policy, p.removed_at, v.label FROM benchmark_results b "
                "JOIN policy_versions v ON v.id = b.version_id JOIN policies p ON p.id = v.policy_id "
                f"WHERE {where} ORDER BY b.measured_at DESC, b.id DESC",
                params,
            )
        groups: dict[tuple[str, str, str], list[Row]] = {}
        for r in rows:
            if workload_class is not None and ranking.class_match(workload_class, r["workload_class"]) == 0:
                continue
            groups.setdefault((r["version_id"], r["tunables"], r["workload"]), []).append(r)
        entries: list[tuple[tuple[Any, ...], Row, int]] = []
        for group in groups.values():
            newest = group[0]
            low = newest["gain_low"]
            key = (
                TIERS[_tier(newest["verdict"])],
                -(low if low is not None else float("-inf")),
                -newest["gain"],
                newest["policy"],
            )
            entries.append((key, newest, len(group)))
        entries.sort(key=lambda e: e[0])
        out: list[BestEntry] = []
        for i, (_key, r, n) in enumerate(entries[:limit] if limit else entries, 1):
            out.append(
                BestEntry(
                    rank=i,
                    tier=_tier(r["verdict"]),
                    policy=r["policy"],
                    version=r["version_id"],
                    label=r["label"],
                    removed=r["removed_at"] is not None,
                    workload=r["workload"],
                    workload_class=r["workload_class"],
                    tunables=json.loads(r["tunables"]),
                    metric=r["metric"],
                    unit=r["unit"],
                    better=r["better"],
                    gain=r["gain"],
                    gain_low=r["gain_low"],
                    gain_high=r["gain_high"],
                    ratio=r["ratio"],
                    verdict=r["verdict"],
                    results=n,
                    result_id=r["result_id"],
                    measured_at=r["measured_at"],
                    emulated=bool(r["emulated"]),
                )
            )
        return out

    # -- archives ---------------------------------------------------------------------------

    def export(self, path: Path, names: Iterable[str] | None = None) -> ExportReport:
        from schedcp.repository.archive import export_archive

        self._ensure_builtins()
        return export_archive(self, path, list(names) if names is not None else None)

    def import_(self, path: Path) -> ImportReport:
        from schedcp.repository.archive import import_archive

        self._ensure_builtins()
        return import_archive(self, path)


def result_to_json(result: BenchResult) -> str:
    # json (not pydantic's JSON mode) keeps an infinite gain as Infinity instead of null.
    return json.dumps(result.model_dump(mode="python"), default=str)


def _bench_record(r: Row) -> BenchmarkRecord:
    return BenchmarkRecord(
        id=int(r["id"]),
        policy=r["policy"],
        version=r["version_id"],
        result_id=r["result_id"],
        workload=r["workload"],
        workload_class=r["workload_class"],
        size=r["size"],
        baseline=r["baseline"],
        tunables=json.loads(r["tunables"]),
        metric=r["metric"],
        unit=r["unit"],
        better=r["better"],
        ratio=r["ratio"],
        ci_low=r["ci_low"],
        ci_high=r["ci_high"],
        gain=r["gain"],
        gain_low=r["gain_low"],
        gain_high=r["gain_high"],
        significant=bool(r["significant"]),
        verdict=r["verdict"],
        repeat=int(r["repeat"]),
        emulated=bool(r["emulated"]),
        measured_at=r["measured_at"],
        recorded_at=r["recorded_at"],
    )


def _report_data(report: str | Mapping[str, Any] | BaseModel) -> Any:
    if isinstance(report, BaseModel):
        return report.model_dump(mode="json")
    if isinstance(report, str):
        try:
            return json.loads(report)
        except json.JSONDecodeError as exc:
            raise RepositoryError(f"a verification report must be JSON: {exc}") from exc
    return dict(report)


def open_repository(
    url: str | None = None,
    settings: Settings | None = None,
    builtin_root: Path | None = None,
    import_builtins: bool = True,
) -> PolicyRepository:
    """Open (creating and migrating as needed) the repository at `url`, else the configured one."""
    if url is None:
        url = (settings or load_settings()).repository_url
    return PolicyRepository(open_database(url), builtin_root=builtin_root, import_builtins=import_builtins)
