"""`schedcp policy` over the repository: list, show, add, search, history, remove, export, import, best."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from schedcp.bench.harness import summarize
from schedcp.cli.main import app
from schedcp.models.bench import BenchResult, Metric, Sample, SchedulerChoice, WorkloadInfo
from schedcp.repository import open_repository

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "repo_policies"
WAKE = WorkloadInfo(
    name="wake",
    version="1",
    summary="test",
    workload_class="latency-critical-server",
    metrics=[Metric(name="p99_us", unit="us", better="lower")],
    primary="p99_us",
    sizes=["small"],
)


LATENCY_POLICIES = {"latency", "latboost"}  # the built-in and the fixture
FIXTURE_NAMES = {"batchfifo", "cachelocal", "latboost", "sjf", "vfair"}


@pytest.fixture(autouse=True)
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test has its own SQLite repository (through $SCHEDCP_DB) and no user config."""
    monkeypatch.setenv("SCHEDCP_CONFIG", str(tmp_path / "no-config.toml"))
    url = f"sqlite:///{tmp_path / 'repo.db'}"
    monkeypatch.setenv("SCHEDCP_DB", url)
    return url


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def ok(*args: str) -> Result:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result


def js(*args: str) -> dict:  # type: ignore[type-arg]
    return json.loads(ok(*args, "--json").stdout)  # type: ignore[no-any-return]


def failed(*args: str) -> Result:
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def test_list_imports_the_builtin_library() -> None:
    data = js("policy", "list")
    fifo = next(p for p in data["policies"] if p["name"] == "fifo")
    assert fifo["author"] == "builtin"
    assert len(fifo["version_id"]) == 64
    assert fifo["tunables"]["slice_ns"]["unit"] == "ns"
    assert "fifo" in ok("policy", "list").stdout


def test_add_search_show_history() -> None:
    added = js("policy", "add", str(FIXTURES))["added"]
    assert sorted(a["name"] for a in added) == ["batchfifo", "cachelocal", "latboost", "sjf", "vfair"]
    hits = js("policy", "search", "latency sensitive web server")["hits"]
    # The built-in library is in the repository too: its `latency` policy may come first.
    assert hits[0]["name"] in LATENCY_POLICIES
    assert hits[0]["reasons"]
    names = [h["name"] for h in hits]
    assert "latboost" in names
    assert "batchfifo" not in names or names.index("latboost") < names.index("batchfifo")
    assert "latboost" in ok("policy", "search", "latency sensitive web server").stdout
    by_class = js("policy", "search", "--class", "batch-long-tail", "--feature", "skewed-job-lengths", "--limit", "10")
    assert next(h["name"] for h in by_class["hits"] if h["name"] in FIXTURE_NAMES) == "sjf"
    vid = next(a["version"] for a in added if a["name"] == "latboost")
    shown = js("policy", "show", f"latboost@{vid[:8]}")
    assert (shown["name"], shown["version_id"], shown["author"], shown["is_head"]) == ("latboost", vid, "user", True)
    assert Path(shown["path"]).name == "latboost"
    assert "latboost" in ok("policy", "show", "latboost", "--source").stdout
    hist = js("policy", "history", "latboost")
    assert [v["id"] for v in hist["versions"]] == [vid]
    assert "latboost" in ok("policy", "history", "latboost").stdout


def test_show_a_folder_and_extract_a_version(tmp_path: Path) -> None:
    folder = js("policy", "show", str(FIXTURES / "sjf"))
    assert folder["name"] == "sjf"
    assert len(folder["version_id"]) == 64
    ok("policy", "add", str(FIXTURES / "sjf"))
    shown = js("policy", "show", "sjf", "--extract", str(tmp_path / "out"))
    assert shown["version_id"] == folder["version_id"]
    assert (tmp_path / "out" / "sjf" / "sjf.bpf.c").read_text() == (FIXTURES / "sjf" / "sjf.bpf.c").read_text()


def test_new_versions_need_a_parent(tmp_path: Path) -> None:
    ok("policy", "add", str(FIXTURES / "vfair"))
    mine = tmp_path / "vfair"
    mine.mkdir()
    for f in (FIXTURES / "vfair").iterdir():
        (mine / f.name).write_text(f.read_text())
    (mine / "vfair.bpf.c").write_text("/* changed */\n")
    result = failed("policy", "add", str(mine), "--author", "agent")
    assert "already exists" in result.output
    assert "--parent head" in result.output
    added = js("policy", "add", str(mine), "--author", "agent", "--parent", "head")["added"][0]
    assert (added["status"], added["author"]) == ("added", "agent")
    builtin = invoke("policy", "add", str(mine), "--author", "builtin")
    assert builtin.exit_code == 2, builtin.output  # a usage error: `builtin` is reserved for the library
    assert "'builtin' is not one of 'user', 'agent'" in " ".join(re.sub("[│╭╮╰╯─]", " ", builtin.output).split())


def test_bad_input_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no policy.toml" in failed("policy", "add", str(empty)).output
    assert "no policy named 'nope'" in failed("policy", "show", "nope").output
    ok("policy", "add", str(FIXTURES / "sjf"))
    assert "at least 6 hex digits" in failed("policy", "show", "sjf@abc").output
    assert "empty query" in failed("policy", "search", "the").output
    bogus = tmp_path / "bogus.tgz"
    bogus.write_bytes(b"definitely not an archive")
    assert "not a complete gzip file" in failed("policy", "import", str(bogus)).output


def test_remove_keeps_history() -> None:
    ok("policy", "add", str(FIXTURES / "cachelocal"))
    assert js("policy", "remove", "cachelocal")["removed"] == "cachelocal"
    assert "cachelocal" not in [p["name"] for p in js("policy", "list")["policies"]]
    assert "cachelocal" in [p["name"] for p in js("policy", "list", "--all")["policies"]]
    assert "was removed" in failed("policy", "show", "cachelocal").output
    events = [e["kind"] for e in js("policy", "history", "cachelocal")["events"]]
    assert events == ["added", "removed"]
    assert "already removed" in failed("policy", "remove", "cachelocal").output


def test_export_then_import_into_another_database(tmp_path: Path) -> None:
    ok("policy", "add", str(FIXTURES))
    archive = tmp_path / "lib.tar.gz"
    exported = js("policy", "export", str(archive))
    assert exported["versions"] >= 6
    other = f"sqlite:///{tmp_path / 'other.db'}"
    imported = js("policy", "--db", other, "import", str(archive))
    assert "latboost" in imported["policies_added"] or imported["versions_present"] > 0
    assert js("policy", "--db", other, "search", "latency sensitive web server")["hits"][0]["name"] in LATENCY_POLICIES
    assert "imported" in ok("policy", "--db", other, "import", str(archive)).stdout
    assert "wrote" in ok("policy", "export", str(tmp_path / "again.tgz")).stdout


def test_best_ranks_recorded_results(db: str) -> None:
    ok("policy", "add", str(FIXTURES))
    assert "no benchmark results" in ok("policy", "best", "--class", "latency-critical-server").stdout
    with open_repository(db) as repo:
        for name, cand in (("latboost", [70.0, 71.0, 69.0]), ("vfair", [95.0, 96.0, 94.0])):
            samples = [
                Sample(side=side, round=i, warmup=False, metrics={"p99_us": v}, duration_s=1.0)  # type: ignore[arg-type]
                for side, values in (("baseline", [100.0, 101.0, 99.0]), ("candidate", cand))
                for i, v in enumerate(values, 1)
            ]
            result = BenchResult(
                id=f"r-{name}",
                created="2026-11-26T00:00:00+00:00",
                host="t",
                workload=WAKE,
                size="small",
                repeat=3,
                baseline=SchedulerChoice(name="default"),
                candidate=SchedulerChoice(name=name),
                boot=None,
                emulated=True,
                samples=samples,
                metrics=summarize(WAKE, samples),
            )
            repo.record_benchmark(repo.get(name).id, "wake", result)
    ranking = js("policy", "best", "--class", "latency-critical-server")["ranking"]
    assert [r["policy"] for r in ranking] == ["latboost", "vfair"]
    assert ranking[0]["gain"] == pytest.approx(100 / 70)
    assert "latboost" in ok("policy", "best", "--workload", "wake").stdout
    shown = js("policy", "show", "latboost")
    assert shown["benchmarks"][0]["result_id"] == "r-latboost"
    assert "wake" in ok("policy", "show", "latboost").stdout


def test_db_option_overrides_the_environment(tmp_path: Path) -> None:
    other = tmp_path / "via-option.db"
    ok("policy", "--db", f"sqlite:///{other}", "list")
    assert other.exists()
    assert "unsupported database URL" in failed("policy", "--db", "mysql://x/y", "list").output
