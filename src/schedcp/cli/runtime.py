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
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a verified policy version this host's scheduler (refused without a passing
    verification report for that version and these tunables). It stays attached after schedcp
    exits; `schedcp rollback` undoes it. With --canary, the named tasks run it first (partial
    mode) for --canary-seconds; it is widened to every task only if they fared well."""
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
