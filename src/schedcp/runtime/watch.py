"""The circuit breaker: watch a deployed policy and take it off the CPUs by itself when it harms.

The kernel's own defences are slow or blind: its watchdog fires only after the policy's
`timeout_ms` (up to 30 s), and a policy that starves only some tasks, or makes every wakeup
wait a second, is never ejected. The breaker looks every `interval_s` at what the kernel
reports and trips on:

- **ejection**: the kernel disabled the policy we deployed (our pin and record are still
  there, the kernel runs something else or nothing); the reason comes from the kernel's log;
- **starvation**: a runnable task of a class sched_ext schedules (SCHED_OTHER, SCHED_BATCH,
  SCHED_EXT) did not run for longer than its bound. Read from /proc/<tid>/schedstat, so it
  needs no probe task of ours, and sees the machine's real tasks;
- **wakeup latency**: some task's mean wait for a CPU per turn, over one interval, above the
  bound (the same measure the canary uses);
- **a watched metric** (`deploy --watch CMD`): a command that prints one number, compared with
  the value measured before the deploy; it trips after `metric_samples` bad readings in a row,
  so one noisy reading does not roll a good policy back.

A trip detaches the policy and restores the one it replaced (the runtime's `previous`), or
leaves the kernel's own scheduler. It backs off instead of flapping: every trip is kept in a
state file with the object's hash, and after `max_trips` within `trip_window_s` it goes to
the default scheduler and holds there (restore at boot stops too) until an operator deploys
again. The same record makes `deploy` refuse an object that tripped the breaker recently, for
a back-off that doubles with every trip.

All commands that read the target run real-time (`rt=True`): a policy that starves normal
tasks cannot keep the breaker from looking, and the systemd unit runs the watcher itself at
SCHED_FIFO for the same reason.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from schedcp.bpf import loader
from schedcp.errors import DeployError
from schedcp.models.deployment import Deployment, SchedulerStatus
from schedcp.runner import CommandRunner
from schedcp.runtime import deploy as rt

log = logging.getLogger(__name__)

# Scheduling policies whose tasks a sched_ext scheduler runs: SCHED_OTHER, SCHED_BATCH,
# SCHED_EXT. SCHED_IDLE (5) has no progress guarantee anywhere; RT and deadline tasks are
# not sched_ext's.
WATCHED_POLICIES = (0, 3, 7)
NICED = 10  # nice at or above this: the looser starvation bound

# Prints {tid: [ns run, ns waited, turns, nice, policy, comm]} for every runnable task, in one
# real-time process (no shell: a forked helper would wait under a stalling policy).
_SAMPLE = r"""
import json, os
out = {}
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        continue
    for tid in tids:
        base = f"/proc/{pid}/task/{tid}"
        try:
            with open(base + "/stat") as f:
                st = f.read()
            rest = st[st.rindex(")") + 2:].split()
            if rest[0] != "R":
                continue
            with open(base + "/schedstat") as f:
                run, waited, turns = (int(x) for x in f.read().split())
        except (OSError, ValueError, IndexError):
            continue
        out[tid] = [run, waited, turns, int(rest[16]), int(rest[38]), st[st.index("(") + 1:st.rindex(")")]]
print(json.dumps(out))
"""


class BreakerBounds(BaseModel):
    """When the breaker trips. The defaults leave room for the kernel's own scheduler on a
    loaded machine (EEVDF kept nice-19 hogs 18 s without CPU in the verifier's stress) and
    still act well before sched_ext's 30 s watchdog."""

    interval_s: float = Field(2.0, gt=0, le=60, description="seconds between looks")
    starvation_s: float = Field(10.0, gt=0, description="a runnable task at nice < 10 may go this long without running")
    niced_starvation_s: float = Field(25.0, gt=0, description="the same for a task at nice 10 or more")
    wait_ms: float = Field(
        2000.0, gt=0, description="any task's mean wait for a CPU per turn over one interval, at most"
    )
    metric_tolerance: float = Field(0.2, ge=0, le=10, description="a watched metric may be this much worse")
    metric_samples: int = Field(3, ge=1, le=100, description="bad readings in a row before the breaker trips")
    grace_s: float = Field(4.0, ge=0, description="after a deploy or restore: no verdict on waits yet")
    max_trips: int = Field(3, ge=1, description="trips within trip_window_s before it holds the default")
    trip_window_s: float = Field(3600.0, gt=0)
    backoff_s: float = Field(300.0, ge=0, description="deploy refuses an object that tripped; doubles per trip")
    good_after_s: float = Field(
        600.0, gt=0, description="watched this long without a trip: the deployment is last-known-good"
    )


class Trip(BaseModel):
    """One time the breaker acted, kept in the state file (and as a repository event)."""

    at: float = Field(description="Unix time")
    kind: str = Field(description="ejected | starvation | latency | metric")
    policy: str
    object_sha256: str
    detail: str
    recovered_at: float | None = Field(None, description="Unix time the rollback finished (None: not acted on)")


class KnownGood(BaseModel):
    deployment: Deployment
    kernel: str = Field(description="the kernel release it ran well on")


KNOWN_GOOD_KEPT = 5


class BreakerState(BaseModel):
    """What the breaker remembers across restarts (on the controlling machine's data folder)."""

    trips: list[Trip] = Field(default_factory=list)
    hold: bool = Field(False, description="too many trips: the default scheduler stays until a new deploy")
    known_good: list[KnownGood] = Field(
        default_factory=list,
        description="deployments that ran good_after_s without a trip, newest last; one that trips later "
        "is struck off, so the one before it is the last-known-good again",
    )

    @property
    def last_known_good(self) -> KnownGood | None:
        return self.known_good[-1] if self.known_good else None


def load_state(path: Path) -> BreakerState:
    """A missing or damaged state file is an empty state: the breaker must start regardless."""
    try:
        return BreakerState.model_validate_json(path.read_text())
    except FileNotFoundError:
        return BreakerState()
    except (OSError, ValidationError, ValueError):
        log.warning("%s is damaged: the breaker starts from an empty state", path)
        return BreakerState()


def save_state(path: Path, state: BreakerState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(state.model_dump_json(indent=2))
    tmp.replace(path)


def recent_trips(state: BreakerState, bounds: BreakerBounds, now: float) -> list[Trip]:
    return [t for t in state.trips if now - t.at <= bounds.trip_window_s]


def backoff_until(state: BreakerState, sha256: str, bounds: BreakerBounds) -> float | None:
    """When an object that tripped the breaker may be deployed again (None: it may now).
    The wait doubles with each trip of that object in the window: 5, 10, 20 min..."""
    mine = [t for t in state.trips if t.object_sha256 == sha256]
    if not mine:
        return None
    last = max(t.at for t in mine)
    in_window = [t for t in mine if last - t.at <= bounds.trip_window_s]
    until = last + bounds.backoff_s * 2 ** (len(in_window) - 1)
    return until if until > time.time() else None


@dataclass
class TaskSample:
    run_ns: int
    waited_ns: int
    turns: int
    nice: int
    policy: int
    comm: str


def sample_tasks(runner: CommandRunner) -> dict[str, TaskSample]:
    """Every runnable task's schedstat, in one real-time command on the target."""
    res = runner.run([rt.SYSTEM_PYTHON, "-I", "-c", _SAMPLE], timeout=30.0, rt=True)
    if res.rc != 0:
        raise DeployError(f"cannot read the target's tasks: {res.stderr.strip()[-300:]}")
    try:
        raw = json.loads(res.stdout)
    except json.JSONDecodeError as exc:
        raise DeployError(f"the task sample is not JSON: {res.stdout[:200]!r}") from exc
    return {tid: TaskSample(*v) for tid, v in raw.items()}


@dataclass
class TaskWatch:
    """Starvation and waits per task, from successive samples. Pure logic, fed by `observe`."""

    bounds: BreakerBounds
    last: dict[str, TaskSample] = field(default_factory=dict)
    stuck_since: dict[str, float] = field(default_factory=dict)

    def observe(self, tasks: dict[str, TaskSample], now: float, judge: bool) -> tuple[str, str] | None:
        """(kind, detail) of the worst harm seen, or None. `judge` False only updates the state."""
        harm: tuple[str, str] | None = None
        stuck: dict[str, float] = {}
        for tid, cur in tasks.items():
            prev = self.last.get(tid)
            if prev is None or cur.policy not in WATCHED_POLICIES:
                continue
            if cur.run_ns == prev.run_ns:
                # Runnable at both looks and did not run in between.
                since = self.stuck_since.get(tid, now - self.bounds.interval_s)
                stuck[tid] = since
                bound = self.bounds.niced_starvation_s if cur.nice >= NICED else self.bounds.starvation_s
                if judge and now - since > bound and harm is None:
                    harm = (
                        "starvation",
                        f"task {tid} ({cur.comm}, nice {cur.nice}) has been runnable without running for "
                        f"{now - since:.1f} s (bound {bound:g} s)",
                    )
            turns = cur.turns - prev.turns
            if turns > 0 and judge and harm is None:
                per_turn_ms = (cur.waited_ns - prev.waited_ns) / turns / 1e6
                if per_turn_ms > self.bounds.wait_ms:
                    harm = (
                        "latency",
                        f"task {tid} ({cur.comm}) waited {per_turn_ms:.0f} ms per turn for a CPU over the "
                        f"last {self.bounds.interval_s:g} s (bound {self.bounds.wait_ms:g} ms)",
                    )
        self.last = tasks
        self.stuck_since = stuck
        return harm


@dataclass
class Breaker:
    """One watcher of one target. `tick` looks once; `trip` acts."""

    runner: CommandRunner
    bounds: BreakerBounds
    state_path: Path
    objects_dir: Path
    progress: Callable[[str], None] = log.info
    tasks: TaskWatch = field(init=False)
    watching: Deployment | None = None
    watching_since: float = 0.0
    bad_metric: int = 0

    def __post_init__(self) -> None:
        self.tasks = TaskWatch(self.bounds)

    def _record(self) -> Deployment | None:
        return rt._deployment(rt._read_json(self.runner, rt.CURRENT))

    def tick(self, now: float | None = None) -> tuple[SchedulerStatus, Trip | None]:
        """Look once: the status, and a Trip when the deployed policy did harm (not acted on)."""
        now = time.time() if now is None else now
        status = rt.read_status(self.runner, with_stats=False)
        record = self._record()
        if record is None:
            # Nothing of ours is deployed (or an operator rolled back): nothing to judge.
            self.watching = None
            self.tasks.observe(sample_tasks(self.runner), now, judge=False)
            return status, None
        if self.watching is None or self.watching.object_sha256 != record.object_sha256:
            self.watching, self.watching_since, self.bad_metric = record, now, 0
            self.progress(f"watching {record.policy} ({record.ops})")
        if not (status.state == "enabled" and status.ops == record.ops):
            ejection = loader.find_ejection(loader.dmesg_lines(self.runner), record.ops)
            why = ejection.reason if ejection else f"sched_ext {status.state}, running {status.ops or 'nothing'}"
            details = "".join(f"; {d}" for d in (ejection.details if ejection else []))
            return status, self._trip(now, "ejected", f"the kernel disabled {record.ops}: {why}{details}")
        judge = now - self.watching_since >= self.bounds.grace_s
        harm = self.tasks.observe(sample_tasks(self.runner), now, judge)
        if harm is not None:
            return status, self._trip(now, *harm)
        if record.watch is not None and judge:
            value = rt.read_metric(self.runner, record.watch.command)
            if rt.metric_worse(record.watch, value, self.bounds.metric_tolerance):
                self.bad_metric += 1
                self.progress(
                    f"watched metric {value:g} against {record.watch.baseline:g} before the deploy "
                    f"({self.bad_metric}/{self.bounds.metric_samples})"
                )
            else:
                self.bad_metric = 0
            if self.bad_metric >= self.bounds.metric_samples:
                return status, self._trip(
                    now,
                    "metric",
                    f"`{record.watch.command}` read {value:g} {self.bad_metric} times in a row, against "
                    f"{record.watch.baseline:g} before the deploy ({record.watch.better} is better, "
                    f"tolerance {self.bounds.metric_tolerance:.0%})",
                )
        self._promote(status, record, now)
        return status, None

    def _trip(self, now: float, kind: str, detail: str) -> Trip:
        assert self.watching is not None
        return Trip(
            at=now, kind=kind, policy=self.watching.policy, object_sha256=self.watching.object_sha256, detail=detail
        )

    def _promote(self, status: SchedulerStatus, record: Deployment, now: float) -> None:
        """Watched long enough without a trip: this deployment is the one to restore at boot."""
        if now - self.watching_since < self.bounds.good_after_s:
            return
        state = load_state(self.state_path)
        lkg = state.last_known_good
        if lkg is not None and lkg.deployment.object_sha256 == record.object_sha256:
            return
        if not self._keep_object(record):
            return
        others = [g for g in state.known_good if g.deployment.object_sha256 != record.object_sha256]
        state.known_good = [*others, KnownGood(deployment=record, kernel=status.kernel)][-KNOWN_GOOD_KEPT:]
        save_state(self.state_path, state)
        self.progress(f"{record.policy} ran {self.bounds.good_after_s:g} s without a trip: last-known-good")

    def _keep_object(self, record: Deployment) -> bool:
        """Copy the deployed object from the target into the data folder (at boot /run is empty),
        checked against its hash; False (and said) when that fails, so it is not promoted."""
        kept = kept_object(self.objects_dir, record.object_sha256)
        if kept.exists():
            return True
        res = self.runner.run(["base64", "-w0", record.object], timeout=60.0, rt=True)
        try:
            data = base64.b64decode(res.stdout, validate=True) if res.rc == 0 else b""
        except binascii.Error:
            data = b""
        if hashlib.sha256(data).hexdigest() != record.object_sha256:
            self.progress(f"cannot keep {record.policy}'s object ({record.object}): not last-known-good")
            return False
        kept.parent.mkdir(parents=True, exist_ok=True)
        tmp = kept.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(kept)
        return True

    def trip(self, trip: Trip) -> list[str]:
        """Act on a trip: detach, restore the previous policy unless tripping too often, and
        remember it. Returns what was done, in words; nothing when the trip is stale (called
        under the deploy lock: a deploy that finished since the look replaced what it judged)."""
        record = self._record()
        if record is None or record.object_sha256 != trip.object_sha256:
            self.watching = None
            return []
        state = load_state(self.state_path)
        state.trips = [*recent_trips(state, self.bounds, trip.at), trip]
        steps = [f"breaker tripped ({trip.kind}): {trip.detail}"]
        hold = len(state.trips) >= self.bounds.max_trips
        # It is not good after all: the one before it is the last-known-good again.
        state.known_good = [g for g in state.known_good if g.deployment.object_sha256 != trip.object_sha256]
        if hold:
            state.hold = True
            steps.append(
                f"{len(state.trips)} trips within {self.bounds.trip_window_s:g} s: holding the kernel's own "
                "scheduler until the next deploy"
            )
        save_state(self.state_path, state)
        if trip.kind == "ejected" and self.watching is not None:
            # The kernel already took it off; our pin and record of it are all that is left.
            self.runner.run(["rm", "-rf", self.watching.pin_dir], timeout=30.0, rt=True)
            self.runner.run(["rm", "-f", rt.CURRENT], timeout=30.0, rt=True)
        if hold:
            _, done = rt.rollback(self.runner, to_default=True, progress=self.progress)
        else:
            _, done = rt.rollback(self.runner, to_default=False, progress=self.progress)
        trip.recovered_at = time.time()
        steps += done
        self.watching = None
        self.tasks = TaskWatch(self.bounds)
        return steps


def kept_object(objects_dir: Path, sha256: str) -> Path:
    """Where the controlling machine keeps a deployed object, for restoring it after a reboot."""
    return objects_dir / f"{sha256[:16]}.bpf.o"


def restore_last_known_good(
    runner: CommandRunner,
    state: BreakerState,
    kernel: str,
    objects_dir: Path,
    progress: Callable[[str], None] = log.info,
) -> list[str]:
    """At boot: attach the last-known-good deployment again (its object is kept in the data
    folder). Refuses while the breaker holds, or when the kernel changed since it was good."""
    if state.hold:
        return ["the breaker holds the kernel's own scheduler (repeated trips): nothing restored"]
    good = state.last_known_good
    if good is None:
        return ["no last-known-good policy recorded: the kernel's own scheduler runs"]
    lkg = good.deployment
    if good.kernel != kernel:
        return [
            f"{lkg.policy} was good on kernel {good.kernel}, this is {kernel}: not restored "
            "(verify and deploy it again for this kernel)"
        ]
    obj = kept_object(objects_dir, lkg.object_sha256)
    if not obj.exists():
        return [f"the object of {lkg.policy} is no longer kept ({obj}): nothing restored"]
    return [rt.restore_kept(runner, lkg, obj, progress)]
