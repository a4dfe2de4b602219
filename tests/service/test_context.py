"""The service Context and the small shared pieces: progress, cancellation, settings, folders, tunables."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.test_harness import Counter

from schedcp.bench.harness import run_ab
from schedcp.errors import Cancelled, PolicyError, SchedcpError
from schedcp.models.progress import Progress
from schedcp.runner import HostRunner
from schedcp.service import Context
from schedcp.service.common import build, guest_folders, parse_assignments


@pytest.fixture(autouse=True)
def _no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDCP_CONFIG", str(tmp_path / "no-config.toml"))


def test_overrides_apply_to_this_context_only() -> None:
    ctx = Context.create(vcpus=1, memory_mb=512, db_url="sqlite:////tmp/x.db")
    assert (ctx.settings.sandbox.vcpus, ctx.settings.sandbox.memory_mb) == (1, 512)
    assert ctx.repository_url == "sqlite:////tmp/x.db"
    other = Context.create()
    assert other.settings.sandbox.memory_mb == 2048
    assert other.repository_url == other.settings.repository_url


def test_every_report_reaches_the_caller_and_is_a_cancellation_point() -> None:
    seen: list[Progress] = []
    stop = {"now": False}
    ctx = Context(progress=seen.append, cancelled=lambda: stop["now"])
    ctx.report("one")
    ctx.report(Progress(message="two", done=2, total=3))
    assert [(p.message, p.done, p.total) for p in seen] == [("one", None, None), ("two", 2, 3)]
    stop["now"] = True
    with pytest.raises(Cancelled, match="cancelled by the caller"):
        ctx.report("three")
    assert seen[-1].message == "three", "the step is reported before the call stops there"
    assert Cancelled("x").exit_code == 130


def test_a_cancelled_benchmark_stops_at_the_next_run(tmp_path: Path) -> None:
    """The harness reports every run; cancelling after the first means no second run starts."""
    counter = Counter(tmp_path / "state")
    reports: list[Progress] = []
    ctx = Context(progress=reports.append, cancelled=lambda: len(reports) >= 1)
    with pytest.raises(Cancelled):
        run_ab(HostRunner(), counter, "tiny", tmp_path, repeat=3, progress=ctx.report)
    assert len(reports) == 1
    assert reports[0].done == 1
    assert reports[0].total == 8  # (3 measured + 1 warm-up) rounds x 2 sides
    assert (tmp_path / "state").read_text().strip() == "1", "one run happened, none started after the cancellation"


def test_a_cancelled_context_opens_no_runner() -> None:
    ctx = Context(cancelled=lambda: True)
    with pytest.raises(Cancelled), ctx.runner("sandbox"):
        pytest.fail("no sandbox may be booted for a cancelled call")


def test_the_host_runner_is_this_machine() -> None:
    with Context().runner("host") as runner:
        assert isinstance(runner, HostRunner)
        assert runner.run(["sh", "-c", "echo $$"]).rc == 0


def test_assignments() -> None:
    assert parse_assignments(["slice_ns=5ms", " direct_idle =false", "prefix=a=b"]) == {
        "slice_ns": "5ms",
        "direct_idle": "false",
        "prefix": "a=b",
    }
    assert parse_assignments(None) == {}
    for bad in ("slice_ns", "=5ms", " =1"):
        with pytest.raises(SchedcpError, match="NAME=VALUE"):
            parse_assignments([bad])


def test_guest_folders(tmp_path: Path) -> None:
    shares, cwd = guest_folders([tmp_path / "a"], tmp_path)
    assert shares == [(tmp_path / "a").resolve(), tmp_path.resolve()]
    assert cwd == tmp_path.resolve()
    assert guest_folders([], None) == ([], None)
    assert guest_folders([], Path("/")) == ([], None), "/ cannot be shared read-write"


def test_a_bad_tunable_fails_before_the_kernel_or_compiler_is_needed(tmp_path: Path) -> None:
    ctx = Context()
    ctx.settings.cache_dir = tmp_path / "no-cache"  # no kernel there: only the tunable check may run
    with pytest.raises(PolicyError, match="outside its range"):
        build(ctx, "fifo", {"slice_ns": "1ns"}, tmp_path)
    with pytest.raises(PolicyError, match="has no tunable 'nope'"):
        build(ctx, "fifo", {"nope": 1}, tmp_path)
