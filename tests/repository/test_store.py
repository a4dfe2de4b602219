"""Versions, identity, history, soft delete, the built-in library, bad input (on SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from repo_helpers import FIXTURES, copy_fixtures, make_policy, table_snapshot

from schedcp.bpf.policy import builtin_dir, load_policy
from schedcp.errors import DuplicatePolicy, PolicyError, PolicyNotFound, RepositoryError, VersionNotFound
from schedcp.repository import PolicyRepository, open_repository
from schedcp.repository.content import read_policy, version_id


def test_add_stores_everything_needed_to_rebuild(repo: PolicyRepository, tmp_path: Path) -> None:
    folder = FIXTURES / "latboost"
    result = repo.add_policy(folder, author="user")
    assert result.status == "added"
    assert result.new_policy
    v = repo.get("latboost")
    content = read_policy(folder)
    assert v.id == result.version == content.id
    assert v.author == "user"
    assert v.parent is None
    assert v.is_head
    assert v.source == (folder / "latboost.bpf.c").read_text()
    assert v.policy_toml == (folder / "policy.toml").read_text()
    assert v.readme == (folder / "README.md").read_text()
    assert v.spec.tunables["slice_ns"].default == 3_000_000
    assert v.origin == str(folder)
    rebuilt = repo.checkout("latboost", tmp_path / "out")
    assert load_policy(rebuilt).name == "latboost"
    assert read_policy(rebuilt).id == v.id
    for name in ("latboost.bpf.c", "policy.toml", "README.md"):
        assert (rebuilt / name).read_text() == (folder / name).read_text()


def test_version_id_covers_code_and_tunables_not_docs(tmp_path: Path) -> None:
    def vid(**kw: object) -> str:
        shutil.rmtree(tmp_path / "p", ignore_errors=True)
        return read_policy(make_policy(tmp_path, "p", **kw)).id  # type: ignore[arg-type]

    base = vid()
    assert vid() == base  # deterministic
    assert vid(summary="Other words.", description="More.", classes=["batch-long-tail"], readme="# new\n") == base
    assert vid(label="9.9.9") == base
    assert vid(code="v2") != base  # source
    assert vid(default=6_000_000) != base  # a tunable default
    assert vid(max_ns=60_000_000) != base  # a tunable range
    spec = read_policy(make_policy(tmp_path / "x", "p")).spec
    assert version_id("p", "/* p v1 */\n", {}, spec) == base
    assert version_id("p", "/* p v1 */\n", {"local.h": "#define X 1\n"}, spec) != base
    assert version_id("q", "/* p v1 */\n", {}, spec) != base  # ids are unique across policy names


def test_local_headers_are_part_of_the_version(repo: PolicyRepository, tmp_path: Path) -> None:
    folder = make_policy(tmp_path, "hdr")
    (folder / "hdr_common.h").write_text("#define SLICE 1\n")
    first = repo.add_policy(folder)
    assert repo.get("hdr").headers == {"hdr_common.h": "#define SLICE 1\n"}
    (folder / "hdr_common.h").write_text("#define SLICE 2\n")
    second = repo.add_policy(folder, parent="head")
    assert second.version != first.version
    out = repo.checkout(f"hdr@{first.version[:8]}", tmp_path / "co")
    assert (out / "hdr_common.h").read_text() == "#define SLICE 1\n"


def test_get_by_prefix_label_and_errors(repo: PolicyRepository, tmp_path: Path) -> None:
    r1 = repo.add_policy(make_policy(tmp_path, "p", label="1.0.0"))
    r2 = repo.add_policy(make_policy(tmp_path, "p", code="v2", label="1.1.0"), parent="head")
    assert repo.get("p").id == r2.version
    assert repo.get("p", r1.version[:6]).id == r1.version
    assert repo.get("p", r1.version.upper()[:10]).id == r1.version
    assert repo.get("p", "1.0.0").id == r1.version
    assert repo.resolve(f"p@{r1.version[:7]}").id == r1.version
    assert repo.resolve(r2.version[:9]).id == r2.version  # a bare id prefix
    assert repo.version(r1.version).policy == "p"
    with pytest.raises(VersionNotFound, match="at least 6 hex digits"):
        repo.get("p", r1.version[:4])
    with pytest.raises(VersionNotFound, match="no version 'ffffffffff' of policy p"):
        repo.get("p", "ffffffffff")
    with pytest.raises(PolicyNotFound, match="no policy named 'nope' in the repository; it has: p"):
        repo.get("nope")
    with pytest.raises(RepositoryError, match="NAME@VERSION"):
        repo.resolve("p@")


def test_a_different_policy_under_an_existing_name_is_refused(repo: PolicyRepository, tmp_path: Path) -> None:
    repo.add_policy(FIXTURES / "latboost", author="builtin")
    before = table_snapshot(repo.db.url)
    impostor = make_policy(tmp_path, "latboost", code="agent-written")
    with pytest.raises(DuplicatePolicy, match=r"a policy named 'latboost' already exists .*--parent head"):
        repo.add_policy(impostor, author="agent")
    assert table_snapshot(repo.db.url) == before
    assert repo.get("latboost").author == "builtin"


def test_new_versions_need_a_parent_of_the_same_policy(repo: PolicyRepository, tmp_path: Path) -> None:
    a1 = repo.add_policy(make_policy(tmp_path, "a"))
    b1 = repo.add_policy(make_policy(tmp_path, "b"))
    with pytest.raises(DuplicatePolicy, match="belongs to another policy"):
        repo.add_policy(make_policy(tmp_path, "a", code="v2"), parent=b1.version)
    a2 = repo.add_policy(make_policy(tmp_path, "a", code="v2"), parent=a1.version[:8], author="agent")
    assert (a2.status, a2.parent, a2.author) == ("added", a1.version, "agent")
    a3 = repo.add_policy(make_policy(tmp_path, "a", code="v3"), parent=f"a@{a2.version[:6]}")
    assert a3.parent == a2.version
    # a new policy may derive from another one (a fork keeps its lineage)
    fork = repo.add_policy(make_policy(tmp_path, "a_fork"), parent=f"a@{a3.version[:6]}", author="agent")
    assert fork.new_policy
    assert repo.get("a_fork").parent == a3.version
    with pytest.raises(RepositoryError, match="does not exist yet"):
        repo.add_policy(make_policy(tmp_path, "fresh"), parent="head")


def test_readding_known_content(repo: PolicyRepository, tmp_path: Path) -> None:
    v1 = repo.add_policy(make_policy(tmp_path, "p"))
    assert repo.add_policy(make_policy(tmp_path, "p")).status == "unchanged"
    v2 = repo.add_policy(make_policy(tmp_path, "p", code="v2"), parent="head")
    back = repo.add_policy(make_policy(tmp_path, "p", code="v1"))  # a revert: no parent needed, id known
    assert (back.status, back.version) == ("head-moved", v1.version)
    assert repo.get("p").id == v1.version
    assert [v.id for v in repo.history("p").versions] == [v1.version, v2.version]


def test_docs_only_change_keeps_the_version_and_is_logged(repo: PolicyRepository, tmp_path: Path) -> None:
    v1 = repo.add_policy(make_policy(tmp_path, "p", summary="Old words.", classes=["batch-long-tail"]))
    repo.record_verification(v1.version, {"ok": True}, passed=True)
    r = repo.add_policy(make_policy(tmp_path, "p", summary="New words.", classes=["cpu-bound-batch"], readme="# x\n"))
    assert (r.status, r.version) == ("docs-updated", v1.version)
    v = repo.get("p")
    assert v.spec.summary == "New words."
    assert v.readme == "# x\n"
    assert v.docs_updated_at is not None
    hist = repo.history("p")
    assert [e.kind for e in hist.events] == ["added", "docs-updated"]
    assert hist.versions[0].verified is True  # results stay with the unchanged code
    assert repo.search("cpu-bound-batch")[0].name == "p"


def test_history_lists_versions_results_and_events(repo: PolicyRepository, tmp_path: Path) -> None:
    v1 = repo.add_policy(make_policy(tmp_path, "p", label="1"))
    v2 = repo.add_policy(make_policy(tmp_path, "p", code="v2", label="2"), parent="head", author="agent")
    repo.record_verification(v2.version, '{"static": "ok"}', passed=False)
    hist = repo.history("p")
    assert hist.head == v2.version
    assert [(v.label, v.author, v.parent, v.is_head) for v in hist.versions] == [
        ("1", "user", None, False),
        ("2", "agent", v1.version, True),
    ]
    assert hist.versions[1].verifications == 1
    assert hist.versions[1].verified is False
    assert hist.versions[0].verified is None
    assert [e.kind for e in hist.events] == ["added", "added"]
    assert all(a.created_at <= b.created_at for a, b in zip(hist.events, hist.events[1:], strict=False))


def test_remove_is_soft(repo: PolicyRepository, tmp_path: Path) -> None:
    v1 = repo.add_policy(make_policy(tmp_path, "gone", summary="Latency things.", classes=["latency-critical-server"]))
    repo.add_policy(make_policy(tmp_path, "kept"))
    hist = repo.remove("gone")
    assert hist.removed_at is not None
    assert [p.name for p in repo.list_policies()] == ["kept"]
    assert [p.name for p in repo.list_policies(include_removed=True)] == ["gone", "kept"]
    assert all(h.name != "gone" for h in repo.search("latency"))
    with pytest.raises(PolicyNotFound, match=r"was removed on .*policy history gone"):
        repo.get("gone")
    assert repo.get("gone", v1.version[:8]).removed  # old versions stay readable
    assert [e.kind for e in repo.history("gone").events] == ["added", "removed"]
    with pytest.raises(RepositoryError, match="already removed"):
        repo.remove("gone")
    with pytest.raises(PolicyNotFound):
        repo.remove("never")
    back = repo.add_policy(
        make_policy(tmp_path, "gone", summary="Latency things.", classes=["latency-critical-server"])
    )
    assert back.status == "restored"
    assert repo.search("latency")[0].name == "gone"


def test_a_removed_name_needs_a_parent_for_new_code(repo: PolicyRepository, tmp_path: Path) -> None:
    repo.add_policy(make_policy(tmp_path, "p"))
    repo.remove("p")
    with pytest.raises(DuplicatePolicy, match="removed on"):
        repo.add_policy(make_policy(tmp_path, "p", code="v2"))
    r = repo.add_policy(make_policy(tmp_path, "p", code="v2"), parent="head")
    assert r.status == "added"
    assert not repo.get("p").removed


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: (d / "policy.toml").unlink(), "has no policy.toml; every policy needs its metadata"),
        (lambda d: (d / "p.bpf.c").unlink(), "has no source file"),
        (
            lambda d: (d / "policy.toml").write_text(
                (d / "policy.toml").read_text().replace("default = 5000000", "default = 999999999")
            ),
            "default 999999999 outside",
        ),
        (
            lambda d: (d / "policy.toml").write_text((d / "policy.toml").read_text().replace('"p"', '"q"')),
            "lives in folder 'p'",
        ),
        (lambda d: (d / "policy.toml").write_text("name = [unclosed"), "invalid .*policy.toml"),
        (
            lambda d: (d / "policy.toml").write_text((d / "policy.toml").read_text() + "\nsurprise = 1\n"),
            "Extra inputs are not permitted",
        ),
        (lambda d: (d / "p.bpf.c").write_bytes(b"\xff\xfe not utf-8"), "not UTF-8 text"),
    ],
)
def test_bad_policies_are_refused_and_nothing_is_written(
    repo: PolicyRepository, tmp_path: Path, mutate: object, message: str
) -> None:
    repo.add_policy(make_policy(tmp_path / "ok", "fine"))
    before = table_snapshot(repo.db.url)
    folder = make_policy(tmp_path, "p")
    mutate(folder)  # type: ignore[operator]
    with pytest.raises(PolicyError, match=message):
        repo.add_policy(folder)
    assert table_snapshot(repo.db.url) == before


def test_a_file_without_metadata_is_refused(repo: PolicyRepository, tmp_path: Path) -> None:
    lone = tmp_path / "lone.bpf.c"
    lone.write_text("/* no policy.toml next to me */\n")
    with pytest.raises(PolicyError, match=r"has no policy\.toml"):
        repo.add_path(lone)
    other = tmp_path / "notes.txt"
    other.write_text("x")
    with pytest.raises(PolicyError, match="is not a policy"):
        repo.add_path(other)
    with pytest.raises(PolicyError, match=r"no policy\.toml, nor do its subfolders"):
        repo.add_path(tmp_path)


def test_a_library_folder_is_added_all_or_nothing(repo: PolicyRepository, tmp_path: Path) -> None:
    lib = copy_fixtures(tmp_path / "lib")
    (lib / "vfair" / "policy.toml").write_text(
        (lib / "vfair" / "policy.toml").read_text().replace("default = 5000000", "default = 1")
    )
    before = table_snapshot(repo.db.url)
    with pytest.raises(PolicyError, match="vfair"):
        repo.add_path(lib)
    assert table_snapshot(repo.db.url) == before
    shutil.rmtree(lib / "vfair")
    shutil.copytree(FIXTURES / "vfair", lib / "vfair")
    results = repo.add_path(lib)
    assert sorted(r.name for r in results) == ["batchfifo", "cachelocal", "latboost", "sjf", "vfair"]


def test_a_database_failure_half_way_rolls_everything_back(repo: PolicyRepository, tmp_path: Path) -> None:
    """The third policy's insert fails inside the database: the first two must not stay."""
    with repo.db.transaction() as tx:
        if repo.db.name == "sqlite":
            tx.execute(
                "CREATE TRIGGER no_sjf BEFORE INSERT ON policies WHEN NEW.name = 'sjf' "
                "BEGIN SELECT RAISE(ABORT, 'sjf refused by a test trigger'); END"
            )
        else:
            tx.execute(
                "CREATE FUNCTION no_sjf() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.name = 'sjf' THEN RAISE EXCEPTION 'sjf refused by a test trigger'; END IF; RETURN NEW; END $$"
            )
            tx.execute("CREATE TRIGGER no_sjf BEFORE INSERT ON policies FOR EACH ROW EXECUTE FUNCTION no_sjf()")
    before = table_snapshot(repo.db.url)
    with pytest.raises(RepositoryError, match=r"(?s)sjf refused by a test trigger.*nothing was written"):
        repo.add_path(FIXTURES)
    assert table_snapshot(repo.db.url) == before


def test_two_policies_with_one_name_in_one_add(repo: PolicyRepository, tmp_path: Path) -> None:
    a = make_policy(tmp_path / "one", "dup")
    b = make_policy(tmp_path / "two", "dup", code="other")
    with pytest.raises(DuplicatePolicy, match="two policies named 'dup'"):
        repo.add_policies([a, b])
    assert repo.list_policies() == []


def test_authors_are_checked(repo: PolicyRepository, tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="author must be one of builtin, user, agent"):
        repo.add_policy(make_policy(tmp_path, "p"), author="robot")  # type: ignore[arg-type]


# -- the built-in library -------------------------------------------------------------------


def test_the_builtin_library_is_imported_on_first_use(db_url: str, tmp_path: Path) -> None:
    root = copy_fixtures(tmp_path / "builtin", ["latboost", "sjf"])
    with open_repository(db_url, builtin_root=root) as repo:
        listed = repo.list_policies()
        assert [(p.name, p.author) for p in listed] == [("latboost", "builtin"), ("sjf", "builtin")]
        assert repo.get("sjf").origin == str(root / "sjf")
    before = table_snapshot(db_url)
    with open_repository(db_url, builtin_root=root) as repo:
        assert repo.sync_builtins() == []  # idempotent
        repo.list_policies()
    assert table_snapshot(db_url) == before


def test_a_changed_builtin_becomes_a_new_version(db_url: str, tmp_path: Path) -> None:
    root = tmp_path / "builtin"
    make_policy(root, "lib", label="1.0")
    make_policy(root, "other")
    with open_repository(db_url, builtin_root=root) as repo:
        first = repo.get("lib").id
    make_policy(root, "lib", code="v2", label="1.1")
    with open_repository(db_url, builtin_root=root) as repo:
        v = repo.get("lib")
        assert (v.author, v.parent, v.label) == ("builtin", first, "1.1")
        assert [e.detail for e in repo.history("lib").events][-1] == "built-in library update"
        # the user builds on it; a later library update must not take the head away
        mine = repo.add_policy(make_policy(tmp_path / "user", "lib", code="mine"), parent="head")
        # the user removes the other built-in; it must not come back by itself
        repo.remove("other")
    make_policy(root, "lib", code="v3", label="1.2")
    make_policy(root, "other", code="changed")
    with open_repository(db_url, builtin_root=root) as repo:
        hist = repo.history("lib")
        assert hist.head == mine.version
        assert [(v.author, v.label) for v in hist.versions] == [
            ("builtin", "1.0"),
            ("builtin", "1.1"),
            ("user", "0.1.0"),
            ("builtin", "1.2"),
        ]
        assert hist.versions[3].parent == hist.versions[1].id  # parent: the previous built-in
        assert "head kept" in hist.events[-1].detail
        assert [p.name for p in repo.list_policies()] == ["lib"]


def test_builtin_docs_edits_update_in_place(db_url: str, tmp_path: Path) -> None:
    root = tmp_path / "builtin"
    make_policy(root, "lib", summary="Before.")
    with open_repository(db_url, builtin_root=root) as repo:
        vid = repo.get("lib").id
    make_policy(root, "lib", summary="After.")
    with open_repository(db_url, builtin_root=root) as repo:
        v = repo.get("lib")
        assert (v.id, v.spec.summary) == (vid, "After.")


def test_a_broken_builtin_is_skipped_not_fatal(db_url: str, tmp_path: Path) -> None:
    root = tmp_path / "builtin"
    make_policy(root, "good")
    bad = make_policy(root, "bad")
    (bad / "bad.bpf.c").unlink()
    with open_repository(db_url, builtin_root=root) as repo:
        assert [p.name for p in repo.list_policies()] == ["good"]


def test_the_real_builtin_library(tmp_path: Path) -> None:
    with open_repository(f"sqlite:///{tmp_path / 'r.db'}") as repo:
        names = [p.name for p in repo.list_policies()]
        shipped = sorted(d.name for d in builtin_dir().iterdir() if (d / "policy.toml").is_file())
        assert names == shipped
        assert "fifo" in names
        fifo = repo.get("fifo")
        assert fifo.author == "builtin"
        assert fifo.id == read_policy(builtin_dir() / "fifo").id


def test_shared_headers_a_policy_includes_are_part_of_the_version(
    repo: PolicyRepository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A helper in policies/include/ decides behaviour like the policy's own code does."""
    include = tmp_path / "include"
    include.mkdir()
    (include / "schedcp.bpf.h").write_text('#include "vmlinux.h"\n#include "helpers.bpf.h"\n')
    (include / "helpers.bpf.h").write_text("#define KEEP 1\n")
    (include / "unused.bpf.h").write_text("#define UNUSED 1\n")
    monkeypatch.setattr("schedcp.repository.content.include_dir", lambda: include)
    folder = make_policy(tmp_path, "shr")
    (folder / "shr.bpf.c").write_text('#include "schedcp.bpf.h"\n/* shr */\n')

    first = repo.add_policy(folder)
    # Transitively included shared headers are kept; vmlinux.h (generated) and unused ones are not.
    assert sorted(repo.get("shr").headers) == ["helpers.bpf.h", "schedcp.bpf.h"]
    (include / "helpers.bpf.h").write_text("#define KEEP 2\n")
    second = repo.add_policy(folder, parent="head")
    assert second.version != first.version
    # The old version comes back with the helper it was added with, beside its source.
    out = repo.checkout(f"shr@{first.version[:8]}", tmp_path / "co")
    assert (out / "helpers.bpf.h").read_text() == "#define KEEP 1\n"
    # Read back from that folder, its local copies win and the id is the same as when added.
    assert read_policy(out).id == first.version


def test_class_names_outside_the_vocabulary_are_refused_in_a_folder(repo: PolicyRepository, tmp_path: Path) -> None:
    folder = make_policy(tmp_path, "old", classes=["throughput"])
    with pytest.raises(PolicyError, match="workload_classes"):
        repo.add_policy(folder)
    assert repo.list_policies() == []


def test_versions_stored_before_the_vocabulary_read_back_through_it(repo: PolicyRepository, tmp_path: Path) -> None:
    """A version's policy.toml text is immutable; one stored with an old class name must still read
    (as the class it meant) rather than make the repository unreadable."""
    vid = repo.add_policy(make_policy(tmp_path, "old", summary="Old words.", classes=["cpu-bound-batch"])).version
    old_toml = repo.get("old").policy_toml.replace('["cpu-bound-batch"]', '["throughput", "cache-heavy"]')
    with repo.db.transaction() as tx:  # what an earlier schedcp wrote
        tx.execute("UPDATE policy_versions SET policy_toml = ? WHERE id = ?", (old_toml, vid))
    assert repo.get("old").spec.workload_classes == ["cpu-bound-batch"]
    assert repo.list_policies()[0].workload_classes == ["cpu-bound-batch"]
