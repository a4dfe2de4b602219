"""The policy library as a service: the repository's versions, search, history, results, archives,
and building a policy into a loadable object.

A policy is named either by the repository (`NAME`, `NAME@VERSION`, a version id prefix) or by
a folder on disk (anything with a `/`, or an existing folder): `show` reads a folder without
storing it, so a policy can be inspected before it is added.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from schedcp.bpf.policy import PolicySpec, find_policy
from schedcp.models.verification import VerificationReport
from schedcp.models.vocabulary import TunableValue
from schedcp.repository import (
    AddResult,
    BenchmarkRecord,
    BestEntry,
    PolicyHistory,
    SearchHit,
    WorkloadQuery,
)
from schedcp.repository.content import read_policy
from schedcp.repository.models import ExportReport, ImportReport, VerificationSummary
from schedcp.service.common import build
from schedcp.service.context import Context

# -- list -------------------------------------------------------------------------------------


class PolicyEntry(PolicySpec):
    """A policy as `list` shows it: its head version's policy.toml, and where the head came from."""

    version_id: str
    author: str
    versions: int = Field(description="how many versions are stored")
    origin: str
    updated_at: str
    removed_at: str | None = None


class PolicyList(BaseModel):
    policies: list[PolicyEntry]


def list_policies(ctx: Context, include_removed: bool = False) -> PolicyList:
    """The policies in the repository (the built-in library is imported on first use)."""
    with ctx.repository() as repo:
        records = repo.list_policies(include_removed=include_removed)
    return PolicyList(
        policies=[
            PolicyEntry(
                **r.spec.model_dump(),
                version_id=r.head,
                author=r.author,
                versions=r.versions,
                origin=r.origin,
                updated_at=r.updated_at,
                removed_at=r.removed_at,
            )
            for r in records
        ]
    )


# -- show -------------------------------------------------------------------------------------


class PolicyDetail(PolicySpec):
    """One version: its policy.toml, where it came from, and what was measured and verified.

    The same shape for a stored version and a folder on disk (`path` set, repository fields None).
    """

    path: str | None = Field(description="the policy folder on disk, when there is one")
    version_id: str
    parent: str | None = None
    author: str | None = None
    created_at: str | None = None
    docs_updated_at: str | None = None
    origin: str
    is_head: bool | None = None
    removed: bool | None = None
    extracted: str | None = Field(None, description="the folder the version's files were written to")
    verifications: list[VerificationSummary] = Field(default_factory=list)
    latest_verification: VerificationReport | None = Field(
        None, description="the newest verification report in full (None: never verified, or not a report schedcp wrote)"
    )
    benchmarks: list[BenchmarkRecord] = Field(default_factory=list)
    source: str | None = Field(None, description="the BPF C source, when asked for")


def _report(data: object) -> VerificationReport | None:
    try:
        return VerificationReport.model_validate(data)
    except ValidationError:  # recorded by hand or by an older schedcp: the summary still lists it
        return None


def is_folder(ref: str) -> bool:
    """Whether a policy reference names a folder on disk rather than a stored policy."""
    return "/" in ref or Path(ref).is_dir()


def show_policy(ctx: Context, ref: str, include_source: bool = False, extract_to: Path | None = None) -> PolicyDetail:
    """A stored version (`NAME`, `NAME@VERSION`, an id prefix) or a policy folder."""
    if is_folder(ref):
        content = read_policy(find_policy(ref).path)
        return PolicyDetail(
            **content.spec.model_dump(),
            path=content.origin,
            version_id=content.id,
            origin=content.origin,
            source=content.source if include_source else None,
        )
    with ctx.repository() as repo:
        v = repo.resolve(ref)
        benchmarks = repo.benchmarks(version=v.id)
        verifications = repo.verifications(v.id)
        folder = repo.checkout(v.ref, extract_to) if extract_to is not None else None
    return PolicyDetail(
        **v.spec.model_dump(),
        path=v.origin if Path(v.origin).is_dir() else None,
        version_id=v.id,
        parent=v.parent,
        author=v.author,
        created_at=v.created_at,
        docs_updated_at=v.docs_updated_at,
        origin=v.origin,
        is_head=v.is_head,
        removed=v.removed,
        extracted=str(folder) if folder else None,
        verifications=[VerificationSummary.model_validate(r.model_dump(exclude={"report"})) for r in verifications],
        latest_verification=_report(verifications[0].report) if verifications else None,
        benchmarks=benchmarks,
        source=v.source if include_source else None,
    )


# -- search, history, best -----------------------------------------------------------------------


class SearchResult(BaseModel):
    query: WorkloadQuery
    hits: list[SearchHit]


def search_policies(ctx: Context, query: WorkloadQuery, limit: int = 10) -> SearchResult:
    """Policies ranked for a workload: full text over name, classes, summary and README, plus class fit."""
    with ctx.repository() as repo:
        return SearchResult(query=query, hits=repo.search(query, limit=limit))


def policy_history(ctx: Context, name: str) -> PolicyHistory:
    """Every version of a policy (also a removed one) with author, parent, result counts, and its events."""
    with ctx.repository() as repo:
        return repo.history(name)


class BestResult(BaseModel):
    workload_class: str | None
    workload: str | None
    ranking: list[BestEntry]


def best_policies(
    ctx: Context,
    workload_class: str | None = None,
    workload: str | None = None,
    include_removed: bool = False,
    limit: int = 10,
) -> BestResult:
    """The best measured (version, tunables) for a workload class and/or a benchmark workload."""
    with ctx.repository() as repo:
        entries = repo.best_for(
            workload_class=workload_class, workload=workload, include_removed=include_removed, limit=limit
        )
    return BestResult(workload_class=workload_class, workload=workload, ranking=entries)


# -- changes: add, remove, archives -------------------------------------------------------------


class AddResponse(BaseModel):
    added: list[AddResult]


def add_policies(
    ctx: Context, path: Path, author: Literal["user", "agent"] = "user", parent: str | None = None
) -> AddResponse:
    """Store a policy folder (or a folder of them, all or nothing) as versions.

    A new version of an existing name needs `parent` ('head', an id prefix or NAME@VERSION);
    `builtin` is reserved for the library that ships with schedcp.
    """
    with ctx.repository() as repo:
        return AddResponse(added=repo.add_path(path, author, parent))


class RemoveResult(BaseModel):
    removed: str
    removed_at: str | None
    versions: int = Field(description="versions kept in the history")


def remove_policy(ctx: Context, name: str) -> RemoveResult:
    """Soft delete: the policy leaves list and search; versions, results and history stay."""
    with ctx.repository() as repo:
        history = repo.remove(name)
    return RemoveResult(removed=name, removed_at=history.removed_at, versions=len(history.versions))


def export_policies(ctx: Context, archive: Path, names: list[str] | None = None) -> ExportReport:
    """Write policies (all, or those named) with every version, result and event to one archive."""
    with ctx.repository() as repo:
        return repo.export(archive, names)


def import_policies(ctx: Context, archive: Path) -> ImportReport:
    """Import an archive: every hash checked first, then all of it in one transaction."""
    with ctx.repository() as repo:
        return repo.import_(archive)


# -- build ------------------------------------------------------------------------------------


class BuildResult(BaseModel):
    policy: str
    object: str = Field(description="the loadable BPF object, tunables written into .rodata")
    sha256: str = Field(description="of the object: names code and tunables together")
    tunables: dict[str, TunableValue]


def build_policy(
    ctx: Context, policy: str, tunables: dict[str, TunableValue] | None = None, output: Path = Path(".")
) -> BuildResult:
    """Compile a policy (built-in name or folder) with its tunables into a loadable object; no VM."""
    built = build(ctx, policy, tunables or {}, output)
    return BuildResult(policy=built.name, object=str(built.obj), sha256=built.sha256, tunables=built.tunables)
