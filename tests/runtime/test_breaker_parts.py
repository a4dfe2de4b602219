"""The circuit breaker's judgement, fed samples directly: no kernel needed.

The real breaker against a real sched_ext kernel is tests/runtime/test_sandbox_breaker.py."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from schedcp.errors import DeployError
from schedcp.models.deployment import Deployment, MetricWatch
from schedcp.models.run import CommandResult
from schedcp.runner import HostRunner
from schedcp.runtime.deploy import measure_baseline, metric_worse, read_metric
from schedcp.runtime.watch import (
    Breaker,
    BreakerBounds,
    BreakerState,
    TaskSample,
    TaskWatch,
    Trip,
    backoff_until,
    load_state,
    sample_tasks,
    save_state,
)

BOUNDS = BreakerBounds(interval_s=1.0, starvation_s=3.0, niced_starvation_s=10.0, wait_ms=500.0)


def task(run: int, waited: int = 0, turns: int = 0, nice: int = 0, policy: int = 0) -> TaskSample:
    return TaskSample(run_ns=run, waited_ns=waited, turns=turns, nice=nice, policy=policy, comm="t")


def looks(samples: list[dict[str, TaskSample]], judge: bool = True) -> list[tuple[str, str] | None]:
    w = TaskWatch(BOUNDS)
    return [w.observe(s, float(i), judge) for i, s in enumerate(samples)]


def test_a_runnable_task_that_never_runs_trips_after_its_bound() -> None:
    seen = looks([{"7": task(100)} for _ in range(6)])
    # Stuck from the look before the second one: 4 s at the 5th look is over 3 s.
    assert seen[:4] == [None, None, None, None]
    assert seen[4] is not None
    kind, detail = seen[4]
    assert kind == "starvation"
    assert "task 7 (t, nice 0)" in detail
    assert "bound 3 s" in detail


def test_a_task_that_runs_between_looks_is_not_starving() -> None:
    assert looks([{"7": task(100 * i)} for i in range(1, 10)]) == [None] * 9


def test_a_task_that_sleeps_between_looks_starts_over() -> None:
    samples: list[dict[str, TaskSample]] = [{"7": task(100)}, {"7": task(100)}, {}, {"7": task(100)}, {"7": task(100)}]
    assert looks(samples) == [None] * 5


def test_niced_tasks_get_the_looser_bound_and_sched_idle_none() -> None:
    niced = looks([{"7": task(100, nice=19)} for _ in range(6)])
    assert niced == [None] * 6
    idle = looks([{"7": task(100, policy=5)} for _ in range(30)])
    assert idle == [None] * 30


def test_no_verdict_during_the_grace_period() -> None:
    assert looks([{"7": task(100)} for _ in range(8)], judge=False) == [None] * 8


def test_a_long_mean_wait_per_turn_trips_as_latency() -> None:
    seen = looks([{"7": task(1, 0, 0)}, {"7": task(2, 2_000_000_000, 2)}])
    assert seen[0] is None
    assert seen[1] is not None
    assert seen[1][0] == "latency"
    assert "waited 1000 ms per turn" in seen[1][1]


def test_the_back_off_doubles_with_each_trip_of_the_same_object() -> None:
    now = time.time()
    bounds = BreakerBounds(backoff_s=100.0)
    one = BreakerState(trips=[Trip(at=now, kind="ejected", policy="p", object_sha256="a", detail="x")])
    until = backoff_until(one, "a", bounds)
    assert until == pytest.approx(now + 100)
    assert backoff_until(one, "b", bounds) is None, "another build is not held back"
    two = BreakerState(trips=[*one.trips, Trip(at=now, kind="starvation", policy="p", object_sha256="a", detail="y")])
    assert backoff_until(two, "a", bounds) == pytest.approx(now + 200)
    old = BreakerState(trips=[Trip(at=now - 1000, kind="ejected", policy="p", object_sha256="a", detail="x")])
    assert backoff_until(old, "a", bounds) is None, "served its back-off"


def test_a_damaged_state_file_is_an_empty_state(tmp_path: Path) -> None:
    path = tmp_path / "breaker.json"
    path.write_text("{not json")
    assert load_state(path) == BreakerState()
    assert load_state(tmp_path / "missing.json") == BreakerState()
    save_state(path, BreakerState(hold=True))
    assert load_state(path).hold


def test_metric_direction_and_tolerance() -> None:
    higher = MetricWatch(command="x", better="higher", baseline=100.0)
    assert not metric_worse(higher, 85.0, 0.2)
    assert metric_worse(higher, 79.0, 0.2)
    assert not metric_worse(higher, 500.0, 0.2)
    lower = MetricWatch(command="x", better="lower", baseline=10.0)
    assert metric_worse(lower, 12.5, 0.2)
    assert not metric_worse(lower, 1.0, 0.2)
    assert not metric_worse(MetricWatch(command="x"), 0.0, 0.2), "no baseline: nothing to compare"


def test_the_metric_command_runs_and_must_print_a_number() -> None:
    runner = HostRunner()
    assert read_metric(runner, "echo warming up; echo '42.5 req/s'") == 42.5
    with pytest.raises(DeployError, match="gave no number"):
        read_metric(runner, "echo fine")
    with pytest.raises(DeployError, match="exit 3"):
        read_metric(runner, "echo 1; exit 3")
    watch = measure_baseline(runner, MetricWatch(command="echo 7", better="lower"))
    assert watch.baseline == 7.0


def test_this_hosts_tasks_can_be_sampled() -> None:
    tasks = sample_tasks(HostRunner())
    assert tasks, "at least the sampler itself is runnable"
    assert all(t.run_ns >= 0 and t.turns >= 0 for t in tasks.values())


class _RecordOnly:
    """A target whose only answer is our deployment record (what `Breaker.trip` reads first)."""

    def __init__(self, record: str | None) -> None:
        self.record = record
        self.ran: list[list[str]] = []

    def run(self, argv: Sequence[str], timeout: float | None = None, **_: object) -> CommandResult:
        self.ran.append(list(argv))
        if list(argv[:1]) == ["cat"] and self.record is not None:
            return CommandResult(argv=list(argv), rc=0, stdout=self.record)
        return CommandResult(argv=list(argv), rc=1)

    def stage(self, path: Path) -> str:
        return str(path)


def _deployment(sha: str) -> Deployment:
    return Deployment(
        policy="p",
        version_id="v",
        tunables={},
        object_sha256=sha,
        object="/run/schedcp/objects/p.bpf.o",
        ops="p",
        pin_dir="/sys/fs/bpf/schedcp/deployed/p",
        deployed_at="2026-12-02T00:00:00+00:00",
    )


@pytest.mark.parametrize("record", [None, "other"])
def test_a_stale_trip_does_nothing(tmp_path: Path, record: str | None) -> None:
    """Judged on one deployment, acted on under the lock after a deploy replaced it (or an
    operator rolled it back): the breaker must not roll back what it never judged."""
    runner = _RecordOnly(None if record is None else _deployment(record).model_dump_json())
    b = Breaker(runner, BOUNDS, tmp_path / "breaker.json", tmp_path / "objects")
    trip = Trip(at=time.time(), kind="ejected", policy="p", object_sha256="judged", detail="x")
    assert b.trip(trip) == []
    assert [a[0] for a in runner.ran] == ["cat"], "nothing but the record was touched"
    assert load_state(tmp_path / "breaker.json").trips == [], "a stale trip is not counted"
