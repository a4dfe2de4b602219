"""Search: full text with field weights, synonyms, workload classes and features, penalties."""

from __future__ import annotations

from pathlib import Path

import pytest
from repo_helpers import make_policy

from schedcp.errors import RepositoryError
from schedcp.models.vocabulary import WORKLOAD_CLASSES
from schedcp.repository import PolicyRepository, WorkloadQuery, open_repository
from schedcp.repository.ranking import CLASS_HINTS, FAMILY_MATCH, FEATURE_HINTS, HINTED_CLASS, class_match, plan, words


def names(hits: list) -> list[str]:  # type: ignore[type-arg]
    return [h.name for h in hits]


def test_latency_sensitive_web_server_ranks_the_latency_policy_first(library: PolicyRepository) -> None:
    hits = library.search("latency sensitive web server")
    assert hits[0].name == "latboost"
    top = hits[0]
    assert top.rank == 1
    assert "latency-critical-server" in top.matched_classes
    assert {"classes", "summary"} <= set(top.matched_fields)
    assert any(r.startswith("suits latency-critical") for r in top.reasons)
    batch = next(h for h in hits if h.name == "batchfifo")
    assert batch.penalty > 0
    assert "latency-critical-server" in batch.unsuited_matched
    assert names(hits).index("batchfifo") > names(hits).index("vfair")  # unsuited ranks below neutral


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("throughput batch jobs", "batchfifo"),
        ("compile a large C project", "batchfifo"),
        ("batch jobs with a long tail of slow ones", "sjf"),
        ("fair share between tasks", "vfair"),
        ("cache locality for a messaging pipeline", "cachelocal"),
        ("interactive desktop", "latboost"),
        ("RPC service with p99 targets", "latboost"),
        ("sjf", "sjf"),  # a name
    ],
)
def test_each_fixture_wins_its_own_query(library: PolicyRepository, query: str, first: str) -> None:
    assert library.search(query)[0].name == first


def test_a_workload_profile_as_the_query(library: PolicyRepository) -> None:
    hits = library.search(WorkloadQuery(classes=["latency-critical-server"]))
    assert hits[0].name == "latboost"
    assert hits[0].class_score == 1.0
    assert "batchfifo" not in names(hits)  # no text, no fitting class: not a candidate
    by_feature = library.search(WorkloadQuery(features=["skewed-job-lengths"]))
    assert by_feature[0].name == "sjf"
    mixed = library.search(WorkloadQuery(text="server", classes=["cpu-bound-batch"], features=["cpu-bound"]))
    assert mixed[0].name == "batchfifo"
    assert any(
        r.startswith("declared unsuited for cpu-bound-batch")
        for r in next(h for h in mixed if h.name == "latboost").reasons
    )


def test_explicit_classes_outweigh_hinted_ones(library: PolicyRepository) -> None:
    """The text says latency, the profile measured batch work: the profile wins."""
    hits = library.search(WorkloadQuery(text="latency", classes=["cpu-bound-batch"]))
    assert hits[0].name == "batchfifo"


def test_limit_and_empty_queries(library: PolicyRepository) -> None:
    assert len(library.search("scheduler latency batch fair cache", limit=2)) == 2
    with pytest.raises(RepositoryError, match="empty query"):
        library.search("   the a of ")
    assert library.search("zzzqqq") == []


@pytest.mark.parametrize(
    "nasty", ['"unbalanced', "latency AND (web OR", "NEAR(a b)", "web*", "a:b", "x' OR 1=1 --", "!!", "la|te&n<->cy"]
)
def test_query_syntax_cannot_leak_into_the_engines(library: PolicyRepository, nasty: str) -> None:
    before = [p.name for p in library.list_policies()]
    hits = library.search(nasty + " latency")  # no error from FTS5 or to_tsquery...
    assert hits[0].name == "latboost"  # ...and the plain word still ranks as it does alone
    assert [p.name for p in library.list_policies()] == before  # nothing was changed


def test_docs_changes_and_new_versions_reindex(repo: PolicyRepository, tmp_path: Path) -> None:
    repo.add_policy(make_policy(tmp_path, "p", summary="Plain.", classes=["cpu-bound-batch"]))
    repo.add_policy(make_policy(tmp_path, "q", summary="Plain.", classes=["mixed-interactive-batch"]))
    assert names(repo.search("periodic deadlines")) == []
    repo.add_policy(make_policy(tmp_path, "q", summary="For periodic deadlines.", classes=["periodic-soft-realtime"]))
    assert names(repo.search("periodic deadlines")) == ["q"]
    repo.add_policy(make_policy(tmp_path, "p", code="v2", summary="Periodic too."), parent="head")
    assert names(repo.search("periodic deadlines")) == ["q", "p"]


def test_query_plan() -> None:
    assert words("The Latency-Critical, web servers!") == ["latency-critical", "web", "servers"]
    p = plan("latency sensitive web servers")
    assert {"latency", "sensitive", "web", "servers", "request-response", "latency-critical"} <= set(p.terms)
    assert p.classes == {"latency-critical-server": HINTED_CLASS}
    explicit = plan("", classes=["Latency-Critical-Server"], features=["frequent-wakeups", "my-own-feature"])
    assert explicit.classes["latency-critical-server"] == 1.0  # explicit beats the feature's hint
    assert {"wakeup", "my-own-feature"} <= set(explicit.terms)  # an unknown feature is searched as a phrase


def test_class_matching() -> None:
    assert class_match("latency-critical", "latency-critical") == 1.0
    assert class_match("latency-critical-server", "latency-critical") == FAMILY_MATCH
    assert class_match("latency-critical", "latency-critical-server") == FAMILY_MATCH
    assert class_match("latency", "latency-critical") == FAMILY_MATCH
    assert class_match("cpu-bound-batch", "batch") == 0.0
    assert class_match("latency-critical", "latency-criticality") == 0.0


def test_done_when_the_builtin_latency_policy_ranks_first(tmp_path: Path) -> None:
    """The acceptance check of the repository, on the real built-in library."""
    with open_repository(f"sqlite:///{tmp_path / 'r.db'}") as repo:
        assert repo.search("latency sensitive web server")[0].name == "latency"


def test_tenant_words_mean_the_multi_tenant_class() -> None:
    """The analysis engine's `multi-tenant` class and everyday words for it (cgroup_fair lists it)."""
    for query in ("containers sharing a machine", "two tenants", "cgroups with weights", "kubernetes pods"):
        p = plan(query)
        assert p.classes.get("multi-tenant") == HINTED_CLASS, (query, p.classes)
    assert {"cgroup", "container", "tenant"} <= set(plan("multi-tenant").terms)


def test_the_builtin_cgroup_policy_serves_a_multi_tenant_profile(tmp_path: Path) -> None:
    """A profile classified multi-tenant (cgroup-weights) finds the built-in cgroup_fair first."""
    with open_repository(f"sqlite:///{tmp_path / 'r.db'}") as repo:
        assert repo.search(WorkloadQuery(classes=["multi-tenant", "cpu-bound-batch"]))[0].name == "cgroup_fair"
        assert repo.search("containers in cgroups with different weights")[0].name == "cgroup_fair"


def test_every_hinted_class_is_in_the_vocabulary() -> None:
    """A hint to a class no policy can declare would match nothing (docs/classes.md)."""
    hinted = {c for classes in CLASS_HINTS.values() for c in classes}
    hinted |= {c for _, classes in FEATURE_HINTS.values() for c in classes}
    assert hinted <= set(WORKLOAD_CLASSES), hinted - set(WORKLOAD_CLASSES)
