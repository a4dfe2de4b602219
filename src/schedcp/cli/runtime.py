"""`schedcp deploy | status | rollback | history`: the runtime on this host."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from schedcp.cli.common import DbOpt, JsonOpt, SetOpt, emit_json, handles_errors, out, session


def _print_status(st: Any) -> None:
    """A SchedulerStatus, in words (typed Any: the CLI imports only the service layer)."""
    out.print(f"{st.host} ({st.kernel}): {st.scheduler}", highlight=False, markup=False, soft_wrap=True)
    if st.sched_ext:
        out.print(
            f"  sched_ext {st.state}, enable_seq {st.enable_seq}, nr_rejected {st.nr_rejected}, "
            f"switch_all {st.switch_all}",
            highlight=False,
            markup=False,
        )
    if st.deployment is not None:
        d = st.deployment
        sets = ", ".join(f"{k}={v}" for k, v in d.tunables.items())
        out.print(
            f"  deployed {d.policy}@{d.version_id[:12]} ({sets}) at {d.deployed_at}, verification #{d.verification_id}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    if st.stats:
        out.print(
            "  policy stats: " + ", ".join(f"{k}={v}" for k, v in st.stats.items()), highlight=False, markup=False
        )
    nonzero = {k: v for k, v in st.events.items() if v}
    if nonzero:
        out.print("  events: " + ", ".join(f"{k} {v}" for k, v in nonzero.items()), highlight=False, markup=False)


def _print_change(done: Any, as_json: bool) -> None:
    """A DeployResult or RollbackResult: the steps taken, then the status they left."""
    if as_json:
        emit_json(done)
        return
    for step in done.steps:
        out.print(step, highlight=False, markup=False, soft_wrap=True)
    _print_status(done.status)


@handles_errors
def deploy(
    policy: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or a version id prefix")],
    set_: SetOpt = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="take over from a sched_ext scheduler schedcp did not start")
    ] = False,
    reason: Annotated[str, typer.Option("--reason", help="why, for the record")] = "",
    canary: Annotated[
        list[str] | None,
        typer.Option("--canary", help="PID, cgroup path or command name that runs it first (repeatable)"),
    ] = None,
    canary_seconds: Annotated[float, typer.Option("--canary-seconds", min=1, max=600)] = 10.0,
    canary_latency_ms: Annotated[
        float, typer.Option("--canary-latency-ms", min=0.001, help="the canary's mean wait per turn, at most")
    ] = 500.0,
    watch: Annotated[
        str | None,
        typer.Option(
            "--watch",
            help="shell command printing one number (e.g. requests/s): measured before, checked after the "
            "canary and by `schedcp watch`",
        ),
    ] = None,
    watch_better: Annotated[str, typer.Option("--watch-better", help="higher | lower")] = "higher",
    watch_tolerance: Annotated[
        float, typer.Option("--watch-tolerance", min=0, max=10, help="how much worse the canary's reading may be")
    ] = 0.2,
    force: Annotated[
        bool, typer.Option("--force", help="deploy a build that tripped the circuit breaker within its back-off")
    ] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a verified policy version this host's scheduler (refused without a passing
    verification report for that version and these tunables). It stays attached after schedcp
    exits; `schedcp rollback` undoes it. With --canary, the named tasks run it first (partial
    mode) for --canary-seconds; it is widened to every task only if they fared well. With
    --watch, that metric must hold after the canary, and `schedcp watch` keeps checking it."""
    from schedcp.service import runtime as service
    from schedcp.service.common import parse_assignments

    request = service.DeployRequest(
        policy=policy,
        tunables=dict(parse_assignments(set_)),
        replace=replace,
        reason=reason,
        canary=canary or [],
        canary_s=canary_seconds,
        canary_latency_ms=canary_latency_ms,
        watch=watch,
        watch_better=watch_better,
        watch_tolerance=watch_tolerance,
        force=force,
    )
    with session(db=db, quiet=as_json) as ctx:
        _print_change(service.deploy(ctx, request), as_json)


@handles_errors
def status(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Which scheduler runs on this host: the kernel's view, and whether schedcp deployed it."""
    from schedcp.service import runtime as service

    with session(db=db, quiet=as_json) as ctx:
        st = service.status(ctx)
    if as_json:
        emit_json(st)
    else:
        _print_status(st)


@handles_errors
def rollback(
    default: Annotated[
        bool, typer.Option("--default", help="the kernel's own scheduler, whatever schedcp's records say")
    ] = False,
    reason: Annotated[str, typer.Option("--reason", help="why, for the record")] = "",
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Back to the previous deployment, or with --default to the kernel's own scheduler (stops any
    sched_ext scheduler, schedcp's or not)."""
    from schedcp.service import runtime as service

    with session(db=db, quiet=as_json) as ctx:
        _print_change(service.rollback(ctx, service.RollbackRequest(to_default=default, reason=reason)), as_json)


@handles_errors
def history(
    all_hosts: Annotated[bool, typer.Option("--all-hosts", help="every host sharing the repository")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="events to show")] = 50,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Deployments, rollbacks, refusals and failures, newest first, from the repository."""
    from schedcp.service import runtime as service

    with session(db=db, quiet=as_json) as ctx:
        events = service.history(ctx, all_hosts=all_hosts, limit=limit)
    if as_json:
        emit_json([e.model_dump(mode="json") for e in events])
        return
    if not events:
        out.print("no deployment events recorded")
    for e in events:
        what = f"{e.policy}@{(e.version_id or '')[:12]}" if e.policy else "default scheduler"
        line = f"{e.created_at[:19]}  {e.host}  {e.kind:8}  {what}"
        if e.reason:
            line += f"  ({e.reason})"
        out.print(line, highlight=False, markup=False, soft_wrap=True)
        if e.kind in ("refused", "failed") and e.evidence:
            out.print(f"    {e.evidence[-1].splitlines()[0]}", highlight=False, markup=False, soft_wrap=True)


@handles_errors
def watch(
    interval: Annotated[float, typer.Option("--interval", min=0.1, max=60, help="seconds between looks")] = 2.0,
    for_: Annotated[
        float | None, typer.Option("--for", min=1, help="stop after this many seconds (default: run until stopped)")
    ] = None,
    starvation_s: Annotated[
        float, typer.Option("--starvation-s", min=0.1, help="a runnable task at nice < 10 may wait this long")
    ] = 10.0,
    wait_ms: Annotated[
        float, typer.Option("--wait-ms", min=1, help="any task's mean wait per turn over one look, at most")
    ] = 2000.0,
    metric_samples: Annotated[
        int, typer.Option("--metric-samples", min=1, help="bad metric readings in a row before it trips")
    ] = 3,
    metric_tolerance: Annotated[
        float, typer.Option("--metric-tolerance", min=0, max=10, help="how much worse the metric may read")
    ] = 0.2,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The circuit breaker (run by systemd as schedcp-watch.service): watch the deployed policy and
    roll back by itself on ejection, starvation, long waits for a CPU or a regressing --watch metric;
    after repeated trips it holds the kernel's own scheduler instead of flapping."""
    from schedcp.service import runtime as service
    from schedcp.service.runtime import WatchRequest

    bounds = service.BreakerBounds(
        interval_s=interval,
        starvation_s=starvation_s,
        wait_ms=wait_ms,
        metric_samples=metric_samples,
        metric_tolerance=metric_tolerance,
    )
    with session(db=db, quiet=as_json) as ctx:
        done = service.watch(ctx, WatchRequest(bounds=bounds, duration_s=for_))
    if as_json:
        emit_json(done)
        return
    out.print(f"{done.looks} looks, {len(done.trips)} trip(s)", highlight=False, markup=False)
    _print_status(done.status)


@handles_errors
def restore(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """At boot (schedcp-restore.service): attach the last-known-good policy again, unless the
    circuit breaker holds the kernel's own scheduler or the kernel changed since."""
    from schedcp.service import runtime as service

    with session(db=db, quiet=as_json) as ctx:
        done = service.restore(ctx)
    if as_json:
        emit_json(done)
        return
    for step in done.steps:
        out.print(step, highlight=False, markup=False, soft_wrap=True)
    _print_status(done.status)
