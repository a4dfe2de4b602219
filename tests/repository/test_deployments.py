"""Deployment events: every host's changes kept in one repository, newest first, per host or all."""

from __future__ import annotations

from schedcp.models.deployment import DeploymentEvent
from schedcp.repository import PolicyRepository


def _event(host: str, kind: str = "deploy", policy: str | None = "vtime", **kw: object) -> DeploymentEvent:
    return DeploymentEvent.model_validate({"kind": kind, "host": host, "kernel": "7.3.4", "policy": policy, **kw})


def test_events_round_trip_and_filter_by_host(repo: PolicyRepository) -> None:
    first = repo.record_deployment(
        _event("a", tunables={"slice_ns": 5_000_000, "direct_idle": True}, version_id="v1", evidence=["attached"])
    )
    assert first.id is not None
    assert first.created_at
    repo.record_deployment(_event("b", kind="refused", reason="canary", evidence=["no passing report"]))
    repo.record_deployment(_event("a", kind="rollback", policy=None, reason="p99 over bound"))
    mine = repo.deployment_history("a")
    assert [(e.kind, e.policy) for e in mine] == [("rollback", None), ("deploy", "vtime")]
    assert mine[1].tunables == {"slice_ns": 5_000_000, "direct_idle": True}
    assert mine[1].evidence == ["attached"]
    assert mine[0].reason == "p99 over bound"
    every = repo.deployment_history(None)
    assert [e.host for e in every] == ["a", "b", "a"]
    assert repo.deployment_history(None, limit=1)[0].kind == "rollback"
    assert repo.deployment_history("nowhere") == []
