"""`PolicyRepository`: the repository's service API, one object over one database connection.

It owns no table. Each table belongs to one module, which alone runs SQL on it
(docs/repository.md has the map): `versions` (policies, versions, events, the built-in library),
`search` (the full-text index; the ranking rules are in `ranking`), `results` (benchmark results
and verification reports, `best_for`), `profiles` (workload profiles), `deployments` (every
change of a host's scheduler), `audit` (the MCP server's log of tool calls). This class opens the
transaction (every write is one: on any error nothing is written), calls the modules inside it,
and imports the built-in policy library before the first policy operation. Archives are
`archive.py`'s business: it serializes what `snapshot` reads and `restore` writes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schedcp.bpf.policy import Policy, builtin_dir
from schedcp.config import Settings, load_settings
from schedcp.errors import DuplicatePolicy, NotVerified, PolicyError, RepositoryError
from schedcp.models.audit import AuditEntry, AuditOutcome
from schedcp.models.bench import BenchResult
from schedcp.models.deployment import DeploymentEvent
from schedcp.models.profile import WorkloadProfile
from schedcp.repository import archive, audit, deployments, profiles, results, search, versions
from schedcp.repository.content import META, PolicyContent, read_policy
from schedcp.repository.db import Database, open_database
from schedcp.repository.models import (
    AddResult,
    Author,
    BenchmarkRecord,
    BestEntry,
    ExportReport,
    ImportReport,
    PolicyEvent,
    PolicyHistory,
    PolicyRecord,
    PolicyVersion,
    ProfileRecord,
    RepositorySnapshot,
    SearchHit,
    VerificationRecord,
    WorkloadQuery,
)
from schedcp.repository.results import result_to_json
from schedcp.repository.versions import parse_ref

__all__ = ["PolicyRepository", "open_repository", "parse_ref", "result_to_json"]

log = logging.getLogger(__name__)


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
        """Import the built-in folders (idempotent); returns what changed.

        A read transaction compares the library's fingerprint first, so an unchanged library
        (every open but the first after an upgrade) costs no write lock.
        """
        contents, complete = versions.read_builtins(self.builtin_root)
        fingerprint = versions.builtins_fingerprint(contents)
        with self.db.transaction(write=False) as tx:
            if versions.builtins_current(tx, fingerprint):
                return []
        with self.db.transaction() as tx:
            changed = versions.sync_builtins(tx, contents, fingerprint, complete)
        for r in changed:
            log.info("built-in policy %s: %s %s", r.name, r.status, r.version[:12])
        return changed

    # -- adding -----------------------------------------------------------------------------

    def add_policy(
        self, policy: Path | Policy | PolicyContent, author: Author = "user", parent: str | None = None
    ) -> AddResult:
        """Add one policy folder as a version (rules in `versions.py`); one transaction."""
        return self.add_policies([policy], author, parent)[0]

    def add_policies(
        self, policies: Sequence[Path | Policy | PolicyContent], author: Author = "user", parent: str | None = None
    ) -> list[AddResult]:
        """Add several policies all or nothing: every folder is read and checked before anything is written."""
        self._ensure_builtins()
        if author not in versions.AUTHORS:
            raise RepositoryError(f"author must be one of {', '.join(versions.AUTHORS)}, not {author!r}")
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
            return [versions.add(tx, c, author, parent) for c in contents]

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

    # -- reading ----------------------------------------------------------------------------

    def get(self, name: str, version: str | None = None) -> PolicyVersion:
        """The head of policy NAME, or one of its versions (id, id prefix >= 6 hex digits, or label).

        A removed policy has no head, but its versions can still be read by id.
        """
        self._ensure_builtins()
        with self.db.transaction(write=False) as tx:
            return versions.get(tx, name, version)

    def resolve(self, ref: str) -> PolicyVersion:
        """'NAME', 'NAME@VERSION', or a bare version id prefix."""
        self._ensure_builtins()
        with self.db.transaction(write=False) as tx:
            return versions.resolve(tx, ref)

    def version(self, version: str) -> PolicyVersion:
        """A version by id or id prefix, whatever its policy."""
        self._ensure_builtins()
        with self.db.transaction(write=False) as tx:
            return versions.find(tx, version)

    def list_policies(self, include_removed: bool = False) -> list[PolicyRecord]:
        self._ensure_builtins()
        with self.db.transaction(write=False) as tx:
            return versions.list_policies(tx, include_removed)

    def history(self, name: str) -> PolicyHistory:
        """Every version of NAME (oldest first) with its result counts, and the policy's events."""
        self._ensure_builtins()
        with self.db.transaction(write=False) as tx:
            stats = results.version_stats(tx, versions.version_ids(tx, name))
            return versions.history(tx, name, stats)

    def remove(self, name: str) -> PolicyHistory:
        """Soft delete: gone from list and search; versions, results and events are kept."""
        self._ensure_builtins()
        with self.db.transaction() as tx:
            versions.remove(tx, name)
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
        """Active policies ranked for a text or a workload profile (rules in `ranking.py`)."""
        self._ensure_builtins()
        plan = search.plan_query(query)
        with self.db.transaction(write=False) as tx:
            return search.search(tx, plan, versions.search_candidates(tx), limit)

    # -- results ----------------------------------------------------------------------------

    def record_benchmark(self, version: str, workload: str | None, result: BenchResult) -> BenchmarkRecord:
        """Store one benchmark result of a version (its candidate side); idempotent per result id."""
        self._ensure_builtins()
        with self.db.transaction() as tx:
            return results.record_benchmark(tx, version, workload, result)

    def benchmarks(self, version: str | None = None, policy: str | None = None) -> list[BenchmarkRecord]:
        """Stored results, newest first: of one version (id or prefix), of every version of a policy, or all."""
        self._ensure_builtins()
        with self.db.transaction(write=False) as tx:
            return results.benchmarks(tx, version, policy)

    def benchmark_result(self, record_id: int) -> BenchResult:
        """The full BenchResult behind a stored record."""
        with self.db.transaction(write=False) as tx:
            return results.benchmark_result(tx, record_id)

    def record_verification(
        self, version: str, report: str | Mapping[str, Any] | BaseModel, passed: bool
    ) -> VerificationRecord:
        """Store a verification report (JSON) for a version; idempotent for the same report."""
        self._ensure_builtins()
        data = results.report_data(report)
        with self.db.transaction() as tx:
            return results.record_verification(tx, version, data, passed)

    def verifications(self, version: str) -> list[VerificationRecord]:
        self._ensure_builtins()
        with self.db.transaction(write=False) as tx:
            return results.verifications(tx, version)

    def verification(self, record_id: int) -> VerificationRecord:
        with self.db.transaction(write=False) as tx:
            return results.verification(tx, record_id)

    def add_note(self, ref: str, kind: str, detail: str) -> PolicyEvent:
        """A note or an outside measurement in a version's policy history (versions.add_note)."""
        self._ensure_builtins()
        with self.db.transaction() as tx:
            return versions.add_note(tx, ref, kind, detail)

    def passing_verification(self, version: str, tunables: Mapping[str, Any]) -> VerificationRecord | None:
        """The newest passing report for this version with exactly these tunables (every value,
        defaults included, as the verifier records them), or None."""
        wanted = dict(tunables)
        for record in self.verifications(version):
            if record.passed and isinstance(record.report, dict) and record.report.get("tunables") == wanted:
                return record
        return None

    def require_verified(self, version: str, tunables: Mapping[str, Any]) -> VerificationRecord:
        """The gate in front of every kernel: a passing report for this exact build, or NotVerified
        saying how to get one. Deploying (the runtime, the MCP server) calls this first."""
        record = self.passing_verification(version, tunables)
        if record is not None:
            return record
        v = self.version(version)
        sets = " ".join(
            f"--set {k}={str(val).lower() if isinstance(val, bool) else val}" for k, val in tunables.items()
        )
        tried = self.verifications(v.id)
        why = (
            f"its newest report {'passed with other tunables' if tried[0].passed else 'failed'}"
            if tried
            else "it was never verified"
        )
        raise NotVerified(
            f"{v.spec.name}@{v.id[:12]} has no passing verification report for these tunables ({why}); "
            f"run `schedcp verify {v.spec.name}@{v.id[:12]}{' ' + sets if sets else ''}` first"
        )

    def record_deployment(self, event: DeploymentEvent) -> DeploymentEvent:
        """Keep one change of a host's scheduler (deploy, rollback, refusal, failure)."""
        with self.db.transaction() as tx:
            return deployments.record_event(tx, event)

    def deployment_history(self, host: str | None = None, limit: int = 50) -> list[DeploymentEvent]:
        """Newest first: one host's changes, or every host's (host None)."""
        with self.db.transaction(write=False) as tx:
            return deployments.history(tx, host, limit)

    def best_for(
        self,
        workload_class: str | None = None,
        workload: str | None = None,
        include_removed: bool = False,
        limit: int | None = None,
    ) -> list[BestEntry]:
        """The best known (version, tunables) for a workload class and/or a workload (ranking: `results.best_for`)."""
        self._ensure_builtins()
        with self.db.transaction(write=False) as tx:
            return results.best_for(tx, workload_class, workload, include_removed, limit)

    # -- snapshots and archives -------------------------------------------------------------

    def snapshot(self, names: Iterable[str] | None = None) -> RepositorySnapshot:
        """Every policy (or those named), removed ones included, with all versions, events and records.

        Read in one transaction, so it is consistent even while others write.
        """
        self._ensure_builtins()
        with self.db.transaction(write=False) as tx:
            policies = versions.snapshot(tx, list(names) if names is not None else None)
            bench, verif = results.snapshot(tx, [v.id for p in policies for v in p.versions])
        return RepositorySnapshot(policies=policies, benchmarks=bench, verifications=verif)

    def restore(self, snapshot: RepositorySnapshot, origin: str) -> ImportReport:
        """Write a snapshot (an archive's contents; `origin` names it in events) in one transaction.

        Versions already stored are kept; the others go in parents first. A new policy takes the
        snapshot's head and history; an existing one's head moves to the snapshot's head only
        when it is an ancestor of it (a fast-forward), otherwise it is kept and reported. Records
        already stored are not duplicated. Any inconsistency (CorruptArchive) or failure writes nothing.
        """
        self._ensure_builtins()
        with self.db.transaction() as tx:
            report = versions.restore(tx, snapshot.policies, origin)
            bench, verif = results.restore(tx, snapshot.benchmarks, snapshot.verifications)
        return report.model_copy(update={"benchmarks_added": bench, "verifications_added": verif})

    def export(self, path: Path, names: Iterable[str] | None = None) -> ExportReport:
        """Write every policy (or those named) with all versions and records to an archive (`archive.py`)."""
        return archive.write_archive(self.snapshot(names), path)

    def import_(self, path: Path) -> ImportReport:
        """Check an archive completely, then `restore` it."""
        self._ensure_builtins()
        return self.restore(archive.check_archive(path), origin=str(path))

    # -- workload profiles (no built-in import: storing a profile stays cheap) ------------------

    def save_profile(self, profile: WorkloadProfile) -> str:
        """Store a profile (idempotent) and return its id; also sets `profile.id`."""
        with self.db.transaction() as tx:
            return profiles.save_profile(tx, profile)

    def get_profile(self, ref: str) -> WorkloadProfile:
        """A stored profile by id or unique prefix ("p-" optional, 4+ hex digits)."""
        with self.db.transaction(write=False) as tx:
            return profiles.get_profile(tx, ref)

    def list_profiles(self, limit: int = 20, workload_class: str | None = None) -> list[ProfileRecord]:
        """Stored profiles, newest first; `workload_class` keeps those whose primary class it is."""
        with self.db.transaction(write=False) as tx:
            return profiles.list_profiles(tx, limit, workload_class)

    def resolve_profile_id(self, ref: str) -> str:
        """The full id for a profile id or unique prefix; RepositoryError if none or several match."""
        with self.db.transaction(write=False) as tx:
            return profiles.resolve_profile_id(tx, ref)

    # -- the audit log (no built-in import: every MCP tool call writes one) ---------------------

    def record_audit(self, entry: AuditEntry) -> AuditEntry:
        """Keep one MCP tool call, whatever its outcome; returns it with its id and time."""
        with self.db.transaction() as tx:
            return audit.record(tx, entry)

    def audit_log(
        self,
        limit: int = 50,
        client: str | None = None,
        tool: str | None = None,
        outcome: AuditOutcome | None = None,
    ) -> list[AuditEntry]:
        """Newest first: every recorded call, or those of one client, tool and/or outcome."""
        with self.db.transaction(write=False) as tx:
            return audit.entries(tx, limit, client, tool, outcome)


def open_repository(
    url: str | None = None,
    settings: Settings | None = None,
    builtin_root: Path | None = None,
    import_builtins: bool = True,
) -> PolicyRepository:
    """Open (creating and migrating as needed) the repository at `url`, else the configured one.

    The built-in library is imported lazily, by the first policy operation, not here.
    """
    if url is None:
        url = (settings or load_settings()).repository_url
    return PolicyRepository(open_database(url), builtin_root=builtin_root, import_builtins=import_builtins)
