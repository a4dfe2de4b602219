"""Stored profiles on SQLite and PostgreSQL: ids, prefixes, listing, errors, and no built-in import."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from analysis.profile_builder import BENCHMARK_PROFILES, CREATED
from repo_helpers import copy_fixtures

from schedcp.errors import RepositoryError
from schedcp.models.profile import Classification, WorkloadProfile
from schedcp.repository import PolicyRepository, ProfileRecord, open_repository
from schedcp.repository.db import SCHEMA_VERSION
from schedcp.repository.profiles import MIN_PREFIX, profile_id


def _classified(name: str, minutes: int = 0) -> WorkloadProfile:
    """A benchmark-shaped profile with the class the classifier gives it (set here, so these tests
    do not depend on the classifier's rules)."""
    build, workload_class = BENCHMARK_PROFILES[name]
    p = build()
    p.created = CREATED + timedelta(minutes=minutes)
    p.classes = [Classification(workload_class=workload_class, confidence=0.9, evidence=["test"])]  # type: ignore[arg-type]
    return p


def test_save_get_roundtrip(repo: PolicyRepository) -> None:
    p = _classified("pipe")
    pid = repo.save_profile(p)
    assert pid.startswith("p-")
    assert len(pid) == 14
    assert p.id == pid
    again = repo.get_profile(pid)
    assert again == p
    assert again.primary_class == "pipeline-messaging"


def test_ids_are_stable_and_saving_twice_stores_once(repo: PolicyRepository) -> None:
    p = _classified("pipe")
    q = _classified("pipe")
    assert profile_id(p) == profile_id(q)
    later = _classified("pipe", minutes=1)
    assert profile_id(later) != profile_id(p)
    assert repo.save_profile(p) == repo.save_profile(q)
    assert len(repo.list_profiles()) == 1


def test_prefix_lookup(repo: PolicyRepository) -> None:
    pid = repo.save_profile(_classified("messaging"))
    assert repo.resolve_profile_id(pid[: 2 + MIN_PREFIX]) == pid
    assert repo.resolve_profile_id(pid[2:].upper()) == pid  # without "p-", any case
    assert repo.get_profile(pid[:8]).id == pid


def test_unknown_and_malformed_ids(repo: PolicyRepository) -> None:
    ids = [repo.save_profile(_classified("pipe", minutes=i)) for i in range(20)]
    unused = next(f"{n:04x}" for n in range(1 << 16) if not any(i[2:].startswith(f"{n:04x}") for i in ids))
    with pytest.raises(RepositoryError, match="no stored profile 'p-" + unused):
        repo.resolve_profile_id("p-" + unused)
    with pytest.raises(RepositoryError, match="not a profile id"):
        repo.resolve_profile_id("p-ab")  # shorter than MIN_PREFIX
    with pytest.raises(RepositoryError, match="not a profile id"):
        repo.resolve_profile_id("p-abcd%")  # no LIKE wildcards reach the query
    with pytest.raises(RepositoryError, match="not a profile id"):
        repo.resolve_profile_id("p-zzzz'; DROP TABLE profiles; --")
    assert len(repo.list_profiles(limit=100)) == 20


def test_ambiguous_prefix_is_an_error(repo: PolicyRepository) -> None:
    """Two stored ids with the same first 4 digits (written directly) make that prefix ambiguous."""
    p, q = _classified("pipe"), _classified("messaging")
    repo.save_profile(p)
    repo.save_profile(q)
    with repo.db.transaction() as tx:
        tx.execute("UPDATE profiles SET id = ? WHERE id = ?", ("p-abcd00000001", p.id))
        tx.execute("UPDATE profiles SET id = ? WHERE id = ?", ("p-abcd00000002", q.id))
    with pytest.raises(RepositoryError, match=r"ambiguous \(p-abcd00000001, p-abcd00000002\)"):
        repo.get_profile("p-abcd")
    assert repo.resolve_profile_id("p-abcd00000002") == "p-abcd00000002"


def test_list_newest_first_and_by_class(repo: PolicyRepository) -> None:
    repo.save_profile(_classified("pipe", 0))
    repo.save_profile(_classified("wakeup-latency", 1))
    repo.save_profile(_classified("messaging", 2))
    records = repo.list_profiles()
    assert all(isinstance(r, ProfileRecord) for r in records)
    assert [r.primary_class for r in records] == [
        "pipeline-messaging",
        "latency-critical-server",
        "pipeline-messaging",
    ]
    assert records[0].created > records[1].created
    assert records[0].target == "./workload"
    assert records[0].where == "sandbox"
    assert records[0].target_kind == "command"
    assert records[0].complete
    only = repo.list_profiles(workload_class="latency-critical-server")
    assert [r.primary_class for r in only] == ["latency-critical-server"]
    assert len(repo.list_profiles(limit=2)) == 2
    with pytest.raises(RepositoryError):
        repo.list_profiles(limit=0)


def test_migration_2_is_recorded(repo: PolicyRepository) -> None:
    assert repo.db.schema_version() == SCHEMA_VERSION >= 2


def test_profiles_never_import_the_builtin_library(db_url: str, tmp_path: Path) -> None:
    """Opening the repository only to store or read profiles must stay cheap: no policy is imported."""
    root = copy_fixtures(tmp_path / "builtin")
    with open_repository(db_url, builtin_root=root) as repo:
        pid = repo.save_profile(_classified("pipe"))
        repo.get_profile(pid)
        repo.resolve_profile_id(pid)
        repo.list_profiles()
        with repo.db.transaction(write=False) as tx:
            assert tx.scalar("SELECT COUNT(*) FROM policies") == 0
        assert repo.list_policies()  # the first policy operation imports it (so the check above means something)
