"""Records the policy repository hands out: versions, history, results, search hits, snapshots, profiles."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from schedcp.bpf.policy import PolicySpec
from schedcp.models.bench import BenchResult
from schedcp.models.profile import TargetKind, Where
from schedcp.models.vocabulary import TunableValue, WorkloadClass

Author = Literal["builtin", "user", "agent"]
AddStatus = Literal["added", "unchanged", "docs-updated", "head-moved", "restored"]


class PolicyVersion(BaseModel):
    """One stored version: everything needed to rebuild it exactly, and where it came from."""

    id: str = Field(description="sha256 of the canonical JSON of name, source (+ local headers) and tunables")
    policy: str
    parent: str | None = None
    author: Author
    label: str = Field(description="the `version` string in policy.toml (informational; the id identifies)")
    created_at: str
    docs_updated_at: str | None = None
    origin: str = Field(description="where it was added from (a folder, an archive, the built-in library)")
    is_head: bool
    removed: bool = Field(False, description="the policy (not this version) is soft-deleted")
    spec: PolicySpec
    source_name: str
    source: str
    headers: dict[str, str] = Field(default_factory=dict)
    policy_toml: str
    readme: str

    @property
    def short(self) -> str:
        return self.id[:12]

    @property
    def ref(self) -> str:
        return f"{self.policy}@{self.short}"


class VersionSummary(BaseModel):
    """A version as `history` lists it (no file contents)."""

    id: str
    parent: str | None
    author: Author
    label: str
    created_at: str
    docs_updated_at: str | None
    origin: str
    is_head: bool
    benchmarks: int
    verifications: int
    verified: bool | None = Field(description="the newest verification report passed; None: never verified")


class PolicyRecord(BaseModel):
    """A policy as `list` shows it: its head version's metadata."""

    name: str
    head: str
    label: str
    summary: str
    workload_classes: list[WorkloadClass]
    unsuited_classes: list[WorkloadClass]
    author: Author
    origin: str
    versions: int
    created_at: str
    updated_at: str
    removed_at: str | None = None
    spec: PolicySpec


class PolicyEvent(BaseModel):
    kind: str
    version: str | None
    detail: str
    created_at: str


class PolicyHistory(BaseModel):
    name: str
    head: str | None
    created_at: str
    removed_at: str | None
    versions: list[VersionSummary] = Field(description="oldest first")
    events: list[PolicyEvent] = Field(description="oldest first")


class AddResult(BaseModel):
    name: str
    version: str
    parent: str | None
    author: Author
    status: AddStatus
    new_policy: bool
    is_head: bool


class BenchmarkRecord(BaseModel):
    """One benchmark result of one version, reduced to its primary metric (the full result is kept too)."""

    id: int
    policy: str
    version: str
    result_id: str
    workload: str
    workload_class: str
    size: str
    baseline: str
    tunables: dict[str, TunableValue]
    metric: str
    unit: str
    better: Literal["lower", "higher"]
    ratio: float
    ci_low: float | None
    ci_high: float | None
    gain: float = Field(description="how many times better than the baseline (> 1 better), whatever the direction")
    gain_low: float | None = Field(description="lower end of the 95% interval of the gain")
    gain_high: float | None
    significant: bool
    verdict: str
    repeat: int
    emulated: bool
    measured_at: str
    recorded_at: str


class VerificationSummary(BaseModel):
    """A verification report of a version, without the report itself (what `show` lists)."""

    id: int
    policy: str
    version: str
    passed: bool
    report_sha256: str
    created_at: str


class VerificationRecord(VerificationSummary):
    report: Any


class WorkloadQuery(BaseModel):
    """What to search for: free text, and/or a workload profile's classes and features."""

    text: str = ""
    classes: list[str] = Field(default_factory=list, description="workload classes, e.g. latency-critical-server")
    features: list[str] = Field(default_factory=list, description="profile features, e.g. frequent-wakeups")


class SearchHit(BaseModel):
    """One ranked result, with the parts of its score and why it matched."""

    rank: int
    name: str
    version: str
    label: str
    summary: str
    workload_classes: list[str]
    unsuited_classes: list[str]
    score: float = Field(description="text + class - penalty")
    text_score: float = Field(description="full-text relevance, 1.0 for the best text match of this query")
    class_score: float
    penalty: float
    matched_terms: list[str]
    matched_fields: list[str]
    matched_classes: list[str]
    unsuited_matched: list[str]
    reasons: list[str]


class BestEntry(BaseModel):
    """A (version, tunables, workload) ranked by its newest measurement against the default scheduler."""

    rank: int
    tier: Literal["better", "not significant", "worse"]
    policy: str
    version: str
    label: str
    removed: bool
    workload: str
    workload_class: str
    tunables: dict[str, TunableValue]
    metric: str
    unit: str
    better: Literal["lower", "higher"]
    gain: float
    gain_low: float | None
    gain_high: float | None
    ratio: float
    verdict: str
    results: int = Field(description="how many results exist for this version, tunables and workload")
    result_id: str
    measured_at: str
    emulated: bool


class ImportReport(BaseModel):
    archive: str
    policies_added: list[str] = Field(default_factory=list)
    versions_added: int = 0
    versions_present: int = 0
    benchmarks_added: int = 0
    verifications_added: int = 0
    heads_moved: list[str] = Field(default_factory=list)
    heads_kept: list[str] = Field(default_factory=list, description="local head kept: it is not an ancestor")


class ExportReport(BaseModel):
    archive: str
    sha256: str
    policies: int
    versions: int
    benchmarks: int
    verifications: int


class VersionInfo(BaseModel):
    """Whose a version is, for the records that name it (benchmark results, the `best_for` ranking)."""

    id: str
    policy: str
    label: str
    removed: bool = Field(description="the policy is soft-deleted")


class VersionStats(BaseModel):
    """What the stored results say about one version (`history` shows it beside each version)."""

    benchmarks: int = 0
    verifications: int = 0
    verified: bool | None = Field(None, description="the newest verification report passed; None: never verified")


# -- snapshots: the whole stored state of some policies, for an archive ---------------------------


class VersionSnapshot(BaseModel):
    """One stored version with every file text, exactly as the repository keeps it."""

    id: str
    parent: str | None
    author: Author
    label: str
    created_at: str
    docs_updated_at: str | None
    origin: str
    source_name: str
    source: str
    headers: dict[str, str] = Field(default_factory=dict, description="file name -> text, local and shared")
    policy_toml: str
    readme: str


class PolicySnapshot(BaseModel):
    """A policy with all its versions (oldest first) and events (oldest first)."""

    name: str
    created_at: str
    updated_at: str
    removed_at: str | None
    head: str
    versions: list[VersionSnapshot]
    events: list[PolicyEvent]


class BenchmarkSnapshot(BaseModel):
    version: str
    recorded_at: str
    result: BenchResult


class VerificationSnapshot(BaseModel):
    version: str
    passed: bool
    created_at: str
    report: Any = None


class RepositorySnapshot(BaseModel):
    """What `PolicyRepository.snapshot` reads and `restore` writes (the archive serializes it)."""

    policies: list[PolicySnapshot] = Field(default_factory=list, description="by name")
    benchmarks: list[BenchmarkSnapshot] = Field(default_factory=list, description="by policy, version, record")
    verifications: list[VerificationSnapshot] = Field(default_factory=list, description="by policy, version, record")


# -- workload profiles ------------------------------------------------------------------------------


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
