"""Stored profiles on SQLite and PostgreSQL: ids, prefixes, listing, errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from schedcp.analysis.classify import classify
from schedcp.analysis.store import (
    MIN_PREFIX,
    get_profile,
    list_profiles,
    load_profile_file,
    open_profile_db,
    profile_id,
    resolve_profile_id,
    save_profile,
)
from schedcp.errors import RepositoryError
from schedcp.repository.db import SCHEMA_VERSION

from .profile_builder import BENCHMARK_PROFILES, CREATED


def _classified(name: str, minutes: int = 0):  # type: ignore[no-untyped-def]
    p = BENCHMARK_PROFILES[name][0]()
    p.created = CREATED + timedelta(minutes=minutes)
    p.classes = classify(p)
    return p


def test_save_get_roundtrip(store_url: str) -> None:
    p = _classified("pipe")
    with open_profile_db(store_url) as db:
        pid = save_profile(db, p)
        assert pid.startswith("p-")
        assert len(pid) == 14
        assert p.id == pid
        again = get_profile(db, pid)
    assert again == p
    assert again.primary_class == "pipeline-messaging"


def test_ids_are_stable_and_saving_twice_stores_once(store_url: str) -> None:
    p = _classified("pipe")
    q = _classified("pipe")
    assert profile_id(p) == profile_id(q)
    later = _classified("pipe", minutes=1)
    assert profile_id(later) != profile_id(p)
    with open_profile_db(store_url) as db:
        assert save_profile(db, p) == save_profile(db, q)
        assert len(list_profiles(db)) == 1


def test_prefix_lookup(store_url: str) -> None:
    p = _classified("messaging")
    with open_profile_db(store_url) as db:
        pid = save_profile(db, p)
        assert resolve_profile_id(db, pid[: 2 + MIN_PREFIX]) == pid
        assert resolve_profile_id(db, pid[2:].upper()) == pid  # without "p-", any case
        assert get_profile(db, pid[:8]).id == pid


def test_unknown_and_malformed_ids(store_url: str) -> None:
    with open_profile_db(store_url) as db:
        ids = [save_profile(db, _classified("pipe", minutes=i)) for i in range(20)]
        unused = next(f"{n:04x}" for n in range(1 << 16) if not any(i[2:].startswith(f"{n:04x}") for i in ids))
        with pytest.raises(RepositoryError, match="no stored profile 'p-" + unused):
            resolve_profile_id(db, "p-" + unused)
        with pytest.raises(RepositoryError, match="not a profile id"):
            resolve_profile_id(db, "p-ab")  # shorter than MIN_PREFIX
        with pytest.raises(RepositoryError, match="not a profile id"):
            resolve_profile_id(db, "p-abcd%")  # no LIKE wildcards reach the query
        with pytest.raises(RepositoryError, match="not a profile id"):
            resolve_profile_id(db, "p-zzzz'; DROP TABLE profiles; --")
        assert len(list_profiles(db, limit=100)) == 20


def test_ambiguous_prefix_is_an_error(store_url: str) -> None:
    """Two stored ids with the same first 4 digits (written directly) make that prefix ambiguous."""
    p, q = _classified("pipe"), _classified("messaging")
    with open_profile_db(store_url) as db:
        save_profile(db, p)
        save_profile(db, q)
        with db.transaction() as tx:
            tx.execute("UPDATE profiles SET id = ? WHERE id = ?", ("p-abcd00000001", p.id))
            tx.execute("UPDATE profiles SET id = ? WHERE id = ?", ("p-abcd00000002", q.id))
        with pytest.raises(RepositoryError, match=r"ambiguous \(p-abcd00000001, p-abcd00000002\)"):
            get_profile(db, "p-abcd")
        assert resolve_profile_id(db, "p-abcd00000002") == "p-abcd00000002"


def test_list_newest_first_and_by_class(store_url: str) -> None:
    with open_profile_db(store_url) as db:
        save_profile(db, _classified("pipe", 0))
        save_profile(db, _classified("wakeup-latency", 1))
        save_profile(db, _classified("messaging", 2))
        records = list_profiles(db)
        assert [r.primary_class for r in records] == [
            "pipeline-messaging",
            "latency-critical-server",
            "pipeline-messaging",
        ]
        assert records[0].created > records[1].created
        assert records[0].target == "./workload"
        assert records[0].where == "sandbox"
        assert records[0].complete
        only = list_profiles(db, workload_class="latency-critical-server")
        assert [r.primary_class for r in only] == ["latency-critical-server"]
        assert len(list_profiles(db, limit=2)) == 2
        with pytest.raises(RepositoryError):
            list_profiles(db, limit=0)


def test_migration_2_is_recorded(store_url: str) -> None:
    with open_profile_db(store_url) as db:
        assert db.schema_version() == SCHEMA_VERSION >= 2


def test_load_profile_file_accepts_a_profile_or_an_envelope() -> None:
    p = _classified("pipe")
    assert load_profile_file(p.model_dump_json(), "x.json") == p
    assert load_profile_file('{"profile": ' + p.model_dump_json() + "}", "y.json") == p
    with pytest.raises(RepositoryError, match=r"z\.json is not a WorkloadProfile"):
        load_profile_file('{"totals": 1}', "z.json")
