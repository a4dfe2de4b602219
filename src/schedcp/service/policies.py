"""The policy library as a service: the repository's versions, search, history, results, archives,
and building a policy into a loadable object.

A policy is named either by the repository (`NAME`, `NAME@VERSION`, a version id prefix) or by
a folder on disk (anything with a `/`, or an existing folder): `show` reads a folder without
storing it, so a policy can be inspected before it is added.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from schedcp.bpf.policy import PolicySpec, find_policy
from schedcp.errors import PolicyError
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
from schedcp.repository.content import content_from_texts, read_policy, sha256_hex
from schedcp.repository.models import ExportReport, ImportReport, PolicyEvent, VerificationSummary
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


class PolicyOverview(PolicyDetail):
    """One version in full, with its policy's history: every version and every event (notes,
    measurements, removals), what an agent reads before it configures or patches a policy."""

    history: PolicyHistory | None = Field(None, description="every version and event; None for a folder")


def overview(ctx: Context, ref: str, include_source: bool = True) -> PolicyOverview:
    detail = show_policy(ctx, ref, include_source=include_source)
    history = None if is_folder(ref) else policy_history(ctx, detail.name)
    return PolicyOverview(**detail.model_dump(), history=history)


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


# -- policies from text (agents), notes and outside measurements -------------------------------

# A sched_ext policy is a few hundred lines; 256 KiB is far beyond any real one and keeps an
# agent's runaway output out of the database and the compiler.
MAX_SOURCE_BYTES = 256 * 1024


class CreateRequest(BaseModel):
    """A new policy, or a new version of one, from its texts: what an agent writes."""

    name: str = Field(description="lower-case letters, digits and _ (max 31); the policy.toml's name")
    source: str = Field(description="the BPF C source (NAME.bpf.c)")
    policy_toml: str = Field(description="the metadata: name, version, summary, classes, tunables with ranges")
    readme: str = Field("", description="README.md: what the policy is for and why it works")
    headers: dict[str, str] = Field(default_factory=dict, description="extra local headers, file name -> text")
    parent: str | None = Field(
        None, description="for a new version of an existing policy: 'head', a version id prefix or NAME@VERSION"
    )


class CreateResult(BaseModel):
    added: AddResult
    object_sha256: str = Field(description="the compiled object's hash with default tunables: it compiles")
    source_sha256: str


def create_policy(ctx: Context, request: CreateRequest) -> CreateResult:
    """Validate the texts as a folder on disk would be, compile them (clang, no VM), then store
    them as a version by the agent. Nothing is loaded: `verify` is the next step."""
    size = len(request.source.encode()) + sum(len(t.encode()) for t in request.headers.values())
    if size > MAX_SOURCE_BYTES:
        raise PolicyError(f"the source is {size} bytes; at most {MAX_SOURCE_BYTES} (a policy is a few hundred lines)")
    content = content_from_texts(
        request.name, request.source, request.policy_toml, request.readme, request.headers, origin="agent"
    )
    ctx.report(f"compiling {request.name} with clang")
    with tempfile.TemporaryDirectory(prefix="schedcp-create-") as tmp:
        folder = content.write(Path(tmp) / "src")
        built = build(ctx, str(folder), {}, Path(tmp) / "out")
    with ctx.repository() as repo:
        added = repo.add_policy(content, author="agent", parent=request.parent)
    return CreateResult(added=added, object_sha256=built.sha256, source_sha256=sha256_hex(request.source.encode()))


class NoteRequest(BaseModel):
    """A note or a measurement made outside the benchmark harness, attached to a version."""

    policy: str = Field(description="NAME, NAME@VERSION or a version id prefix")
    workload: str | None = Field(None, description="what it was measured on or is about (a name or a few words)")
    note: str = Field("", max_length=4000, description="what was seen, what failed and why, what to try next")
    metric: str | None = Field(None, max_length=64, description="a measured metric's name, e.g. p99_ms")
    value: float | None = Field(None, description="the candidate's reading")
    baseline: float | None = Field(None, description="the default scheduler's reading, same run")
    unit: str = Field("", max_length=16)
    better: Literal["higher", "lower"] | None = Field(None, description="which way the metric improves")


def record_note(ctx: Context, request: NoteRequest) -> PolicyEvent:
    """Stored as an event in the policy's history (kind `note`, or `measurement` with a value)."""
    if not request.note and request.value is None:
        raise PolicyError("record a note, a measurement (metric and value), or both")
    if request.value is not None and not request.metric:
        raise PolicyError("a measured value needs the metric's name")
    kind = "measurement" if request.value is not None else "note"
    detail = json.dumps(request.model_dump(exclude={"policy"}, exclude_none=True), sort_keys=True)
    with ctx.repository() as repo:
        return repo.add_note(request.policy, kind, detail)
