"""Export and import: a round trip keeps everything; a damaged archive changes nothing."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
from repo_helpers import FIXTURES, bench_result, make_policy, table_snapshot

from schedcp.errors import CorruptArchive, RepositoryError, VersionNotFound
from schedcp.models.bench import BenchResult
from schedcp.repository import PolicyRepository, open_repository
from schedcp.repository.archive import MANIFEST, check_archive

STEADY = [100.0, 101.0, 99.0, 100.0, 102.0]


def _fill(repo: PolicyRepository, tmp_path: Path) -> dict[str, str]:
    ids = {}
    repo.add_path(FIXTURES, author="builtin")
    v1 = repo.add_policy(make_policy(tmp_path, "mine", label="1"), author="user").version
    v2 = repo.add_policy(make_policy(tmp_path, "mine", code="v2", label="2"), parent="head", author="agent").version
    ids["v1"], ids["v2"] = v1, v2
    repo.record_benchmark(v2, None, bench_result("mine", STEADY, [80.0, 81.0, 79.0, 80.0, 82.0], result_id="r1"))
    repo.record_verification(v2, {"static": "ok"}, passed=True)
    repo.record_verification(v1, {"static": "stall"}, passed=False)
    repo.remove("sjf")
    return ids


def _read(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def _write(archive: Path, files: dict[str, bytes]) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive.write_bytes(gzip.compress(raw.getvalue()))


def _comparable(repo: PolicyRepository) -> dict[str, object]:
    hist = {p.name: repo.history(p.name) for p in repo.list_policies(include_removed=True)}
    return {
        "policies": [(p.name, p.head, p.removed_at) for p in repo.list_policies(include_removed=True)],
        "versions": {
            n: [(v.id, v.parent, v.author, v.label, v.created_at, v.verified) for v in h.versions]
            for n, h in hist.items()
        },
        "events": {n: [(e.kind, e.version, e.created_at) for e in h.events] for n, h in hist.items()},
        "benchmarks": [(b.version, b.result_id, b.gain, b.recorded_at) for b in repo.benchmarks()],
    }


def test_export_import_round_trip(repo: PolicyRepository, tmp_path: Path, db_url: str) -> None:
    ids = _fill(repo, tmp_path)
    archive = tmp_path / "lib.tar.gz"
    report = repo.export(archive)
    assert (report.policies, report.versions, report.benchmarks, report.verifications) == (6, 7, 1, 2)
    files = _read(archive)
    manifest = json.loads(files[MANIFEST])
    assert manifest["format"] == "schedcp-policy-archive"
    assert f"policies/mine/{ids['v1']}/mine.bpf.c" in files
    other = f"sqlite:///{tmp_path / 'other.db'}"
    with open_repository(other, import_builtins=False) as fresh:
        imported = fresh.import_(archive)
        assert sorted(imported.policies_added) == ["batchfifo", "cachelocal", "latboost", "mine", "sjf", "vfair"]
        assert (imported.versions_added, imported.benchmarks_added, imported.verifications_added) == (7, 1, 2)
        want, got = _comparable(repo), _comparable(fresh)
        assert got["policies"] == want["policies"]
        assert got["versions"] == want["versions"]
        assert got["benchmarks"] == want["benchmarks"]
        for name, events in want["events"].items():  # type: ignore[attr-defined]
            assert got["events"][name][: len(events)] == events  # type: ignore[index]
            assert got["events"][name][-1][0] == "imported"  # type: ignore[index]
        assert fresh.get("mine", ids["v1"][:8]).source == repo.get("mine", ids["v1"][:8]).source
        assert fresh.search("latency sensitive web server")[0].name == "latboost"
        assert fresh.best_for(workload="wake")[0].version == ids["v2"]
        again = fresh.import_(archive)  # importing twice adds nothing
        assert (again.policies_added, again.versions_added, again.versions_present) == ([], 0, 7)
        assert (again.benchmarks_added, again.verifications_added) == (0, 0)


def test_export_some_policies(repo: PolicyRepository, tmp_path: Path) -> None:
    _fill(repo, tmp_path)
    report = repo.export(tmp_path / "one.tgz", ["mine"])
    assert (report.policies, report.versions) == (1, 2)
    with pytest.raises(RepositoryError, match="cannot export nope"):
        repo.export(tmp_path / "x.tgz", ["nope"])
    assert not (tmp_path / "x.tgz").exists()


def test_import_fast_forwards_or_keeps_the_local_head(db_url: str, tmp_path: Path) -> None:
    with open_repository(db_url, import_builtins=False) as repo:
        v1 = repo.add_policy(make_policy(tmp_path / "a", "p")).version
        repo.export(tmp_path / "base.tgz")
        v2 = repo.add_policy(make_policy(tmp_path / "a", "p", code="v2"), parent="head").version
        repo.export(tmp_path / "ahead.tgz")
    other = f"sqlite:///{tmp_path / 'other.db'}"
    with open_repository(other, import_builtins=False) as mirror:
        mirror.import_(tmp_path / "base.tgz")
        report = mirror.import_(tmp_path / "ahead.tgz")
        assert report.heads_moved == ["p"]
        assert mirror.get("p").id == v2
        # a local line of work that the archive does not contain: its head is kept
        mine = mirror.add_policy(make_policy(tmp_path / "b", "p", code="local"), parent=v1).version
        report = mirror.import_(tmp_path / "ahead.tgz")
        assert report.heads_kept == ["p"]
        assert mirror.get("p").id == mine


def _corrupt_cases(archive: Path, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    data = archive.read_bytes()
    files = _read(archive)
    manifest = json.loads(files[MANIFEST])
    cases: dict[str, tuple[Path, str]] = {}

    def case(name: str, message: str) -> Path:
        path = tmp_path / f"{name}.tgz"
        cases[name] = (path, message)
        return path

    case("truncated", "not a complete gzip file").write_bytes(data[: len(data) // 2])
    case("empty", "not a complete gzip file|not a readable tar").write_bytes(b"")
    case("not_gzip", "not a complete gzip file").write_bytes(b"PK\x03\x04 a zip, not ours" * 10)
    not_tar = case("not_tar", "not a readable tar|no manifest.json")
    not_tar.write_bytes(gzip.compress(b"hello world" * 100))
    source = next(n for n in files if n.endswith("/mine.bpf.c"))
    _write(case("hash_mismatch", f"{source} does not match its sha256"), {**files, source: b"/* evil */\n"})
    # a consistent forgery: file and manifest hash both changed, but the version id no longer fits
    forged = json.loads(files[MANIFEST])
    for p in forged["policies"]:
        for v in p["versions"]:
            for f in v["files"]:
                if f["path"] == source:
                    f["sha256"] = __import__("hashlib").sha256(b"/* evil */\n").hexdigest()
    _write(
        case("id_mismatch", "hashes to .*; its files were changed"),
        {**files, source: b"/* evil */\n", MANIFEST: json.dumps(forged).encode()},
    )
    _write(case("no_manifest", "has no manifest.json"), {k: v for k, v in files.items() if k != MANIFEST})
    _write(case("extra_file", "evil.sh is in the archive but not in its manifest"), {**files, "evil.sh": b"rm -rf /"})
    missing = dict(files)
    del missing[source]
    _write(case("missing_file", f"{source} is listed in the manifest but missing"), missing)
    newer = {**manifest, "format_version": 99}
    newer_files = {**files, MANIFEST: json.dumps(newer).encode()}
    _write(case("newer_format", "archive format 99; .*upgrade schedcp"), newer_files)
    broken = {**manifest, "policies": "nope"}
    _write(case("bad_manifest", "invalid manifest.json"), {**files, MANIFEST: json.dumps(broken).encode()})
    _write(case("manifest_not_json", "manifest.json is not valid JSON"), {**files, MANIFEST: b"{"})
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("../escape")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    case("path_escape", "not a plain relative file").write_bytes(gzip.compress(raw.getvalue()))
    return cases


def test_a_damaged_archive_is_refused_and_changes_nothing(repo: PolicyRepository, tmp_path: Path) -> None:
    _fill(repo, tmp_path)
    archive = tmp_path / "good.tgz"
    repo.export(archive)
    check_archive(archive)  # the original is fine
    target = f"sqlite:///{tmp_path / 'target.db'}"
    with open_repository(target, import_builtins=False) as dest:
        dest.add_policy(make_policy(tmp_path / "t", "already_here"))
        before = table_snapshot(target)
        for name, (path, message) in _corrupt_cases(archive, tmp_path).items():
            with pytest.raises(CorruptArchive, match=message):
                dest.import_(path)
            assert table_snapshot(target) == before, name
    with pytest.raises(RepositoryError, match="cannot read archive"):
        repo.import_(tmp_path / "does-not-exist.tgz")


def test_a_parent_missing_everywhere_is_refused(repo: PolicyRepository, tmp_path: Path, db_url: str) -> None:
    v1 = repo.add_policy(make_policy(tmp_path, "p")).version
    repo.add_policy(make_policy(tmp_path, "p", code="v2"), parent="head")
    archive = tmp_path / "a.tgz"
    repo.export(archive)
    files = _read(archive)
    manifest = json.loads(files[MANIFEST])
    manifest["policies"][0]["versions"] = [v for v in manifest["policies"][0]["versions"] if v["id"] != v1]
    files = {k: v for k, v in files.items() if f"/{v1}/" not in k}
    _write(tmp_path / "orphan.tgz", {**files, MANIFEST: json.dumps(manifest).encode()})
    with open_repository(f"sqlite:///{tmp_path / 'o.db'}", import_builtins=False) as other:
        before = table_snapshot(other.db.url)
        with pytest.raises(CorruptArchive, match="neither in the archive nor in this repository"):
            other.import_(tmp_path / "orphan.tgz")
        assert table_snapshot(other.db.url) == before
    # where the parent is known, the same archive imports fine
    assert repo.import_(tmp_path / "orphan.tgz").versions_present == 1


def test_a_database_failure_during_import_rolls_back(repo: PolicyRepository, tmp_path: Path) -> None:
    _fill(repo, tmp_path)
    archive = tmp_path / "a.tgz"
    repo.export(archive)
    url = repo.db.url
    if repo.db.name == "sqlite":
        url = f"sqlite:///{tmp_path / 'dest.db'}"
    with open_repository(url, import_builtins=False) as dest:
        if dest.db.name == "postgresql":  # a fresh PostgreSQL database: drop what _fill wrote
            with dest.db.transaction() as tx:
                for t in ("benchmark_results", "verification_reports", "policy_events", "policy_search"):
                    tx.execute(f"DELETE FROM {t}")
                tx.execute("UPDATE policies SET head_version = NULL")
                tx.execute("DELETE FROM policy_versions")
                tx.execute("DELETE FROM policies")
        with dest.db.transaction() as tx:
            if dest.db.name == "sqlite":
                tx.execute(
                    "CREATE TRIGGER no_results BEFORE INSERT ON benchmark_results "
                    "BEGIN SELECT RAISE(ABORT, 'results refused by a test trigger'); END"
                )
            else:
                tx.execute(
                    "CREATE FUNCTION no_results() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "RAISE EXCEPTION 'results refused by a test trigger'; END $$"
                )
                tx.execute(
                    "CREATE TRIGGER no_results BEFORE INSERT ON benchmark_results FOR EACH ROW "
                    "EXECUTE FUNCTION no_results()"
                )
        before = table_snapshot(dest.db.url)
        with pytest.raises(RepositoryError, match="results refused by a test trigger"):
            dest.import_(archive)  # policies and versions come first, the results last
        assert table_snapshot(dest.db.url) == before
        assert dest.list_policies(include_removed=True) == []


# -- the repository half of an archive: snapshot and restore, without a file ------------------


def test_snapshot_and_restore_round_trip_through_the_public_api(repo: PolicyRepository, tmp_path: Path) -> None:
    ids = _fill(repo, tmp_path)
    snap = repo.snapshot()
    assert [p.name for p in snap.policies] == ["batchfifo", "cachelocal", "latboost", "mine", "sjf", "vfair"]
    mine = snap.policies[3]
    assert (mine.head, [v.id for v in mine.versions]) == (ids["v2"], [ids["v1"], ids["v2"]])
    assert (mine.versions[1].parent, mine.versions[1].author) == (ids["v1"], "agent")
    assert mine.versions[0].source == repo.get("mine", ids["v1"][:8]).source
    assert mine.versions[0].policy_toml == repo.get("mine", ids["v1"][:8]).policy_toml
    assert [e.kind for e in mine.events] == ["added", "added"]
    assert snap.policies[4].removed_at is not None  # sjf: removed policies are part of it
    assert [(b.version, b.result.id) for b in snap.benchmarks] == [(ids["v2"], "r1")]
    assert isinstance(snap.benchmarks[0].result, BenchResult)
    assert [(r.version, r.passed, r.report) for r in snap.verifications] == [
        (ids["v1"], False, {"static": "stall"}),
        (ids["v2"], True, {"static": "ok"}),
    ]
    assert [p.name for p in repo.snapshot(["mine"]).policies] == ["mine"]
    with pytest.raises(RepositoryError, match="cannot export nope"):
        repo.snapshot(["nope"])
    with open_repository(f"sqlite:///{tmp_path / 'other.db'}", import_builtins=False) as fresh:
        report = fresh.restore(snap, origin="a test snapshot")
        assert (report.archive, len(report.policies_added), report.versions_added) == ("a test snapshot", 6, 7)
        assert (report.benchmarks_added, report.verifications_added) == (1, 2)
        want, got = _comparable(repo), _comparable(fresh)
        assert (got["policies"], got["versions"], got["benchmarks"]) == (
            want["policies"],
            want["versions"],
            want["benchmarks"],
        )
        assert fresh.history("mine").events[-1].detail == "from a test snapshot"
        again = fresh.snapshot()
        assert [p.versions for p in again.policies] == [p.versions for p in snap.policies]
        assert (again.benchmarks, again.verifications) == (snap.benchmarks, snap.verifications)
        twice = fresh.restore(snap, origin="the same again")
        assert (twice.policies_added, twice.versions_added, twice.versions_present) == ([], 0, 7)
        assert (twice.benchmarks_added, twice.verifications_added) == (0, 0)


def test_restore_checks_what_it_is_given_and_writes_all_or_nothing(repo: PolicyRepository, tmp_path: Path) -> None:
    ids = _fill(repo, tmp_path)
    snap = repo.snapshot(["mine", "latboost"])
    target = f"sqlite:///{tmp_path / 'target.db'}"
    with open_repository(target, import_builtins=False) as dest:
        dest.add_policy(make_policy(tmp_path / "t", "already_here"))
        before = table_snapshot(target)

        forged = snap.model_copy(deep=True)
        forged.policies[1].versions[0].source = "/* evil */\n"
        with pytest.raises(
            CorruptArchive, match=f"version {ids['v1'][:12]} of mine hashes to .*; its files were changed"
        ):
            dest.restore(forged, origin="forged")
        assert table_snapshot(target) == before

        headless = snap.model_copy(deep=True)
        headless.policies[1].head = "0" * 64
        with pytest.raises(CorruptArchive, match="the head 000000000000 of mine is not one of its versions"):
            dest.restore(headless, origin="headless")
        assert table_snapshot(target) == before

        orphan = snap.model_copy(deep=True)
        orphan.policies[1].versions = orphan.policies[1].versions[1:]
        orphan.policies[1].versions[0].parent = "f" * 64
        with pytest.raises(CorruptArchive, match="neither in the archive nor in this repository"):
            dest.restore(orphan, origin="orphan")
        assert table_snapshot(target) == before

        # the policies and versions are written before the records: an unknown record's version rolls them back
        stray = snap.model_copy(deep=True)
        stray.benchmarks[0].version = "e" * 64
        with pytest.raises(VersionNotFound):
            dest.restore(stray, origin="stray")
        assert table_snapshot(target) == before
        assert [p.name for p in dest.list_policies()] == ["already_here"]
