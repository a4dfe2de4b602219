"""The classifier: every benchmark workload's shape gets its declared class, with or without BPF data;
recorded real profiles (tests/data/analysis/profiles, from this repository's own host runs) too;
partial profiles still get a class that says what was missing; each rule's edges."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import get_args

import pytest

from schedcp.analysis import classify as rules
from schedcp.analysis.classify import classify, signals
from schedcp.models.profile import JobSizes, WorkloadProfile
from schedcp.models.vocabulary import WorkloadClass

from .profile_builder import BENCHMARK_PROFILES, dist, make_profile, proc

RECORDED = Path(__file__).resolve().parents[1] / "data" / "analysis" / "profiles"
RAW = Path(__file__).resolve().parents[1] / "data" / "analysis"
NUMBER = re.compile(r"\d")


def procfs_only(p: WorkloadProfile) -> WorkloadProfile:
    """The same workload as the collector reports it when BPF could not be loaded."""
    return p.model_copy(
        update={
            "sources": [s.model_copy(update={"available": False}) if s.name == "bpf" else s for s in p.sources],
            "wake_pairs": [],
            "runq_latency": None,
            "run_length": None,
            "complete": False,
            "missing": ["bpf: the tracer did not load"],
            "totals": p.totals.model_copy(update={"wakeups_per_s": 0.0}),
            "processes": [
                q.model_copy(update={"wakeups": 0, "run_length": None, "runq_latency": None}) for q in p.processes
            ],
        }
    )


@pytest.mark.parametrize("name", sorted(BENCHMARK_PROFILES))
def test_benchmark_shapes_get_their_declared_class(name: str) -> None:
    build, expected = BENCHMARK_PROFILES[name]
    classes = classify(build())
    assert classes, "no class at all"
    assert classes[0].workload_class == expected, [(c.workload_class, c.confidence) for c in classes]
    assert classes[0].confidence >= 0.7
    assert all(NUMBER.search(e) for e in classes[0].evidence[:2]), classes[0].evidence
    confidences = [c.confidence for c in classes]
    assert confidences == sorted(confidences, reverse=True)


@pytest.mark.parametrize("name", sorted(BENCHMARK_PROFILES))
def test_without_bpf_the_class_stands_with_less_confidence(name: str) -> None:
    build, expected = BENCHMARK_PROFILES[name]
    full = classify(build())
    partial = classify(procfs_only(build()))
    assert partial[0].workload_class == expected, [(c.workload_class, c.confidence) for c in partial]
    assert partial[0].confidence < full[0].confidence
    assert any("missing: BPF" in e for e in partial[0].evidence), partial[0].evidence


def test_every_class_is_reachable() -> None:
    tops = {classify(build())[0].workload_class for build, _ in BENCHMARK_PROFILES.values()}
    assert tops == set(get_args(WorkloadClass))


def _recorded() -> list[Path]:
    return sorted(RECORDED.glob("*.json"))


def load(path: Path) -> WorkloadProfile:
    """A recording's profile (the files carry it under "profile", beside the expected class)."""
    return WorkloadProfile.model_validate(json.loads(path.read_text())["profile"])


def _recorded_cases() -> list[object]:
    """Each recording; one with a "known_gap" is a strict xfail (it must start passing once fixed)."""
    cases: list[object] = []
    for path in _recorded():
        gap = json.loads(path.read_text()).get("known_gap")
        marks = [pytest.mark.xfail(strict=True, reason=gap)] if gap else []
        cases.append(pytest.param(path, id=path.stem, marks=marks))
    return cases


@pytest.mark.parametrize("path", _recorded_cases())
def test_recorded_profiles(path: Path) -> None:
    """Real profiles from the engine on our 2-CPU host; the file says which class it must get."""
    data = json.loads(path.read_text())
    expected = data.pop("expected_class")
    profile = WorkloadProfile.model_validate(data["profile"])
    classes = classify(profile)
    assert classes[0].workload_class == expected, [(c.workload_class, c.confidence) for c in classes]
    assert classes[0].confidence >= 0.6


def test_recorded_profiles_are_there() -> None:
    """Host and sandbox recordings cover every benchmark class (io-bound is not a benchmark)."""
    expected: dict[str, set[str]] = {"host": set(), "sandbox": set()}
    for path in _recorded():
        expected[path.stem.split("-")[0]].add(json.loads(path.read_text())["expected_class"])
    benchmark_classes = set(get_args(WorkloadClass)) - {"io-bound"}
    assert expected["sandbox"] == benchmark_classes
    # cgroup-weights needs the cpu controller in a cgroup2 root; our host has no cgroup2 there.
    assert expected["host"] == benchmark_classes - {"multi-tenant"}


def _raw_collections() -> list[Path]:
    """The collection side's recorded RawCollections (not its bpftool dumps)."""
    found = []
    for path in sorted(RAW.glob("*.json")):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "samples" in data and "bpf" in data:
            found.append(path)
    return found


def test_there_are_raw_collections_to_classify() -> None:
    assert len(_raw_collections()) >= 3  # the parametrized test below must not run on nothing


@pytest.mark.parametrize("path", _raw_collections(), ids=lambda p: p.stem)
def test_raw_collections_from_the_engine_classify_cleanly(path: Path) -> None:
    """Whatever the collection side records in tests/data/analysis: classes are well-formed."""
    from schedcp.analysis import measure
    from schedcp.analysis.raw import RawCollection
    from schedcp.analysis.summary import summarize
    from schedcp.models.profile import Target

    raw = RawCollection.model_validate_json(path.read_text())
    target = Target(kind=raw.target.kind, command=raw.target.command, pid=raw.target.pid, cgroup=raw.target.cgroup)
    profile = measure.build_profile(raw, where="host", target=target)
    classes = classify(profile)
    for c in classes:
        assert 0 <= c.confidence <= 1
        assert c.evidence
    assert len(summarize(profile, classes).split()) <= 300


# -- missing data ----------------------------------------------------------------------------


def test_no_activity_gives_no_class() -> None:
    p = make_profile([], runq=None, run=None)
    assert classify(p) == []


def test_totals_without_processes_are_judged_as_one_group() -> None:
    base = BENCHMARK_PROFILES["pipe"][0]()
    p = base.model_copy(update={"processes": [], "wake_pairs": []})
    classes = classify(p)
    assert classes[0].workload_class == "pipeline-messaging"
    assert any("per-process numbers for 100% of the CPU" in e for e in classes[0].evidence)
    assert classes[0].confidence < classify(base)[0].confidence


def test_cpu_missing_from_the_processes_becomes_its_own_group() -> None:
    """Short-lived tasks that procfs sampling missed still count (the totals hold them)."""
    pipe = BENCHMARK_PROFILES["pipe"][0]()
    only_parent = [q for q in pipe.processes if q.comm == "perf"]
    p = pipe.model_copy(update={"processes": only_parent, "wake_pairs": []})
    groups = signals(p).groups
    assert [g.comm for g in groups] == ["perf", "(not attributed to a process)"]
    assert classify(p)[0].workload_class == "pipeline-messaging"


def test_processes_without_switch_counts_are_not_hogs() -> None:
    """procfs-only: switches in the totals but none per process (who blocks is unknown)."""
    server = procfs_only(BENCHMARK_PROFILES["wakeup-latency"][0]())
    blind = server.model_copy(
        update={
            "processes": [
                q.model_copy(update={"voluntary_switches": 0, "involuntary_switches": 0}) for q in server.processes
            ]
        }
    )
    classes = classify(blind)
    assert classes[0].workload_class == "latency-critical-server"
    assert any("per-process context switches" in e for e in classes[0].evidence)


def test_io_without_psi_is_weak_and_says_so() -> None:
    p = make_profile([proc("dd", 1, 0.3, 500, 5)], io_some_pct=None)
    io = next(c for c in classify(p) if c.workload_class == "io-bound")
    assert io.confidence < 0.5
    assert any("not measured: I/O pressure" in e for e in io.evidence)


def test_io_pressure_with_busy_cpus_is_not_io_bound() -> None:
    p = make_profile([proc("stress-ng-cpu", 2, 19.0, 2, 5000)], io_some_pct=40.0)
    assert "io-bound" not in {c.workload_class for c in classify(p)}


# -- rule edges ------------------------------------------------------------------------------


def test_long_tail_needs_skew() -> None:
    """The same batch with equal jobs is plain CPU-bound batch work."""
    p = BENCHMARK_PROFILES["long-tail-compress"][0]()
    even = p.model_copy(update={"processes": [q for q in p.processes if not q.comm.startswith("lt_long")]})
    classes = [c.workload_class for c in classify(even)]
    assert "batch-long-tail" not in classes
    assert classes[0] == "cpu-bound-batch"


def test_long_tail_from_skew_within_one_name() -> None:
    jobs = [JobSizes(comm="gzip", count=20, cpu=dist(100_000, 2_000_000, count=20, mx=3_000_000), skew=30.0)]
    p = make_profile(
        [proc("gzip", 20, 3.0, 30, 4000, window_s=2.0, exits=20, execs=20), proc("sh", 1, 0.1, 30, 2, window_s=2.0)],
        window_s=2.0,
        job_sizes=jobs,
        peak_processes=21,
        execs=20,
    )
    top = classify(p)[0]
    assert top.workload_class == "batch-long-tail"
    assert any("30.0 within gzip" in e or "skew 30x" in e for e in top.evidence), top.evidence


def test_long_job_made_of_serial_steps() -> None:
    """long-tail-compile: the long job is a driver running 39 short-sized steps one after another."""
    w = 40.0
    short = proc("lt_short_cc1", 39, 18.0, 50, 5000, window_s=w, exits=39, execs=39)
    steps = proc("lt_long_cc1", 39, 17.0, 70, 1200, window_s=w, exits=39, execs=39)
    jobs = [
        JobSizes(comm="lt_short_cc1", count=39, cpu=dist(400_000, 460_000, count=39), lifetime=dist(8e6), skew=1.2),
        JobSizes(comm="lt_long_cc1", count=39, cpu=dist(380_000, 440_000, count=39), lifetime=dist(410_000), skew=1.1),
    ]
    p = make_profile([short, steps, proc("python3", 1, 0.2, 200, 50)], window_s=w, job_sizes=jobs, execs=80)
    top = classify(p)[0]
    assert top.workload_class == "batch-long-tail"
    assert any("serial chain: 39 lt_long_cc1 jobs" in e for e in top.evidence), top.evidence
    # the same steps released with the batch (waiting like it) are no long job
    jobs[1] = jobs[1].model_copy(update={"lifetime": dist(8e6)})
    together = make_profile([short, steps], window_s=w, job_sizes=jobs, execs=80)
    assert "batch-long-tail" not in {c.workload_class for c in classify(together)}


def test_refinement_ranks_above_cpu_bound_batch() -> None:
    classes = classify(BENCHMARK_PROFILES["long-tail-compress"][0]())
    order = [c.workload_class for c in classes]
    assert order.index("batch-long-tail") < order.index("cpu-bound-batch")
    general = next(c for c in classes if c.workload_class == "cpu-bound-batch")
    assert any("refined by batch-long-tail" in e for e in general.evidence)


def test_a_wrapper_scripts_utilities_are_not_the_batch_or_a_build() -> None:
    """cgroup-weights in the sandbox: hogs plus a script's awk/wc/mkdir (execs, a few % of the CPU).
    Below multi-tenant, what the tenants run is CPU-bound batch work."""
    for size in ("tiny", "small"):
        path = RECORDED / f"sandbox-cgroup-weights-{size}.json"
        profile = WorkloadProfile.model_validate(json.loads(path.read_text())["profile"])
        classes = classify(profile)
        assert [c.workload_class for c in classes[:2]] == ["multi-tenant", "cpu-bound-batch"], classes
        assert {"fork-heavy-build", "batch-long-tail"}.isdisjoint(c.workload_class for c in classes)


def test_recorded_cgroup_weights_quotes_both_tenants_with_their_weights() -> None:
    path = RECORDED / "sandbox-cgroup-weights-small.json"
    profile = WorkloadProfile.model_validate(json.loads(path.read_text())["profile"])
    top = classify(profile)[0]
    assert re.fullmatch(r"2 cgroups: /schedcp_b \d+% \(weight 300\), /schedcp_a \d+% \(weight 100\)", top.evidence[0])
    start = next(c for c in profile.cgroup_cpu if c.start)
    assert start.path == "/"
    assert start.share_pct < 5  # the script's shell; the hogs moved to their tenants' cgroups


def test_no_other_recording_is_multi_tenant() -> None:
    """The *-waking recordings have CPU per cgroup: each benchmark stays in the cgroup it started in."""
    with_cgroups = 0
    for path in _recorded():
        data = json.loads(path.read_text())
        if data["expected_class"] != "multi-tenant":
            profile = WorkloadProfile.model_validate(data["profile"])
            assert "multi-tenant" not in {c.workload_class for c in classify(profile)}, path.name
            with_cgroups += bool(profile.cgroup_cpu)
    assert with_cgroups >= 8


def test_communicating_processes_are_not_a_job_batch() -> None:
    """perf messaging's 80 finished processes with skewed CPU are not a long-tail batch."""
    p = BENCHMARK_PROFILES["messaging"][0]()
    jobs = [JobSizes(comm="sched-messaging", count=80, cpu=dist(10_000, 40_000, count=80, mx=48_000), skew=4.8)]
    classes = [c.workload_class for c in classify(p.model_copy(update={"job_sizes": jobs}))]
    assert classes[0] == "pipeline-messaging"
    assert "batch-long-tail" not in classes


def test_a_bystander_parent_is_not_a_periodic_task() -> None:
    """perf's parent, woken a few times by the idle task, must not make messaging 'periodic'."""
    p = BENCHMARK_PROFILES["messaging"][0]()
    parent = proc("perf", 1, 0.013, 18, 0)
    p = p.model_copy(update={"processes": [*p.processes, parent]})
    p.wake_pairs.append(p.wake_pairs[0].model_copy(update={"waker": "swapper", "wakee": "perf", "count": 18}))
    assert "periodic-soft-realtime" not in {c.workload_class for c in classify(p)}


def test_idle_wakers_do_not_count_against_peers() -> None:
    """Remote wakeups show the idle task as waker; the peer share uses the known wakers only."""
    p = make_profile(
        [proc("sched-pipe", 2, 6.0, 100_000, 20_000)],
        pairs=[("swapper", "sched-pipe", 70_000), ("sched-pipe", "sched-pipe", 30_000)],
    )
    (g,) = signals(p).groups
    assert g.peer_share == pytest.approx(1.0)
    mostly_idle = make_profile(
        [proc("sched-pipe", 2, 6.0, 100_000, 20_000)],
        pairs=[("swapper", "sched-pipe", 90_000), ("sched-pipe", "sched-pipe", 10_000)],
    )
    assert signals(mostly_idle).groups[0].peer_share is None  # too few known wakers to judge


def test_hogs_beside_a_server_are_mixed_but_beside_a_timer_periodic() -> None:
    mixed = classify(BENCHMARK_PROFILES["mixed-interactive-batch"][0]())
    cyclic = classify(BENCHMARK_PROFILES["cyclictest"][0]())
    assert mixed[0].workload_class == "mixed-interactive-batch"
    assert cyclic[0].workload_class == "periodic-soft-realtime"
    assert "mixed-interactive-batch" not in {c.workload_class for c in cyclic}


def test_a_process_storm_is_a_build_not_a_batch() -> None:
    classes = classify(BENCHMARK_PROFILES["build"][0]())
    assert classes[0].workload_class == "fork-heavy-build"
    assert any("execs per process alive at once" in e for e in classes[0].evidence)


def test_thresholds_are_named_and_documented() -> None:
    """Every threshold is a module constant (the docs list them); none is 0 or negative."""
    names = [n for n in dir(rules) if n.isupper() and isinstance(getattr(rules, n), float | int)]
    assert len(names) >= 30
    assert all(getattr(rules, n) > 0 for n in names)


# -- multi-tenant ----------------------------------------------------------------------------


def test_multi_tenant_ranks_above_what_the_tenants_run_and_quotes_the_cgroups() -> None:
    classes = classify(BENCHMARK_PROFILES["cgroup-weights"][0]())
    assert [c.workload_class for c in classes[:2]] == ["multi-tenant", "cpu-bound-batch"]
    assert classes[0].evidence[0] == "2 cgroups: /schedcp_b 70% (weight 300), /schedcp_a 29% (weight 100)"
    assert any("ranked below multi-tenant" in e for e in classes[1].evidence)


def test_one_cgroup_or_only_the_start_cgroup_is_not_multi_tenant() -> None:
    hogs = [proc("stress-ng-cpu", 4, 19.0, 10, 9000, run_p50_us=4000)]
    started_there = make_profile(hogs, cgroups=[("/user.slice", 1.0, 100, True)])
    one_tenant = make_profile(hogs, cgroups=[("/schedcp_a", 0.95, 100, False), ("/", 0.05, None, True)])
    # The start cgroup is not a tenant however much it used: a job moved to one cgroup is one tenant.
    moved_one = make_profile(hogs, cgroups=[("/", 0.6, None, True), ("/schedcp_a", 0.4, 100, False)])
    for p in (started_there, one_tenant, moved_one):
        assert "multi-tenant" not in {c.workload_class for c in classify(p)}


def test_a_side_cgroup_is_not_a_tenant() -> None:
    """A tenant needs 10% of the workload's CPU; together the tenants half of it."""
    hogs = [proc("stress-ng-cpu", 4, 19.0, 10, 9000, run_p50_us=4000)]
    side = make_profile(hogs, cgroups=[("/", 0.6, None, True), ("/a", 0.35, 100, False), ("/b", 0.05, 100, False)])
    small = make_profile(hogs, cgroups=[("/", 0.6, None, True), ("/a", 0.2, 100, False), ("/b", 0.2, 100, False)])
    assert "multi-tenant" not in {c.workload_class for c in classify(side)}
    assert "multi-tenant" not in {c.workload_class for c in classify(small)}


def test_profiles_without_cgroup_cpu_are_never_multi_tenant() -> None:
    """Profiles recorded before per-cgroup CPU have none: the rule does not guess."""
    for build, _ in BENCHMARK_PROFILES.values():
        p = build().model_copy(update={"cgroup_cpu": []})
        assert "multi-tenant" not in {c.workload_class for c in classify(p)}


def test_equal_weights_are_still_tenants_with_less_confidence() -> None:
    hogs = [proc("stress-ng-cpu", 4, 19.0, 10, 9000, run_p50_us=4000)]
    equal = make_profile(hogs, cgroups=[("/a", 0.5, 100, False), ("/b", 0.5, 100, False)])
    unequal = make_profile(hogs, cgroups=[("/a", 0.5, 100, False), ("/b", 0.5, 300, False)])
    c_eq = next(c for c in classify(equal) if c.workload_class == "multi-tenant")
    c_un = next(c for c in classify(unequal) if c.workload_class == "multi-tenant")
    assert c_eq.confidence < c_un.confidence


def test_a_batch_driver_woken_often_is_not_the_interactive_side_of_a_mixed_workload() -> None:
    """What made CI flake: at the tiny size the long-tail driver (python3) was woken more than
    INTERACTIVE_MIN_TASK_WAKEUPS_PER_S times a second per task while it wrote the jobs' inputs,
    and the profile read as mixed-interactive-batch (0.89) ahead of batch-long-tail (0.79). The
    jobs are its own children (they wake it as they end): it drives the batch."""
    from schedcp.analysis.classify import INTERACTIVE_MIN_TASK_WAKEUPS_PER_S, batch_drivers, signals

    profile = load(RECORDED / "sandbox-long-tail-compress-tiny-waking.json")
    driver = next(p for p in profile.processes if p.comm == "python3")
    scale = 1.2 * INTERACTIVE_MIN_TASK_WAKEUPS_PER_S * driver.tasks * profile.window_s / driver.wakeups
    driver.wakeups = round(driver.wakeups * scale)
    for pair in profile.wake_pairs:  # the extra wakeups came from where the others did (interrupts)
        if pair.wakee == "python3":
            pair.count = round(pair.count * scale)
    sig = signals(profile)
    group = next(g for g in sig.groups if g.comm == "python3")
    assert (group.role, group.kind) == ("waker", "server")  # as in CI: it looks like a request handler
    assert group.wakeups_per_s / group.tasks > INTERACTIVE_MIN_TASK_WAKEUPS_PER_S
    assert "python3" in batch_drivers(sig)
    classes = classify(profile)
    assert classes[0].workload_class == "batch-long-tail"
    assert "mixed-interactive-batch" not in [c.workload_class for c in classes]


def test_a_service_beside_long_running_hogs_is_still_mixed() -> None:
    """The driver rule needs a batch of finished jobs: stress-ng's hogs beside wakeup_server are none."""
    from schedcp.analysis.classify import batch_drivers, signals

    profile = load(RECORDED / "sandbox-mixed-interactive-batch-tiny-waking.json")
    assert batch_drivers(signals(profile)) == {}
    assert classify(profile)[0].workload_class == "mixed-interactive-batch"
