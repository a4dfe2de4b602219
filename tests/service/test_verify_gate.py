"""The gate in front of every kernel: a passing report for exactly this version and these tunables.

The reports here are written by hand (the verifier's own runs are in tests/verify's sandbox
tests); what is tested is the repository's and the service's rule, on a real SQLite database.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from schedcp.bpf.policy import find_policy
from schedcp.cli.main import app
from schedcp.errors import NotVerified, VersionNotFound
from schedcp.models.verification import STAGES, StageResult, VerificationReport
from schedcp.service import Context
from schedcp.service.verify import latest_report, require_verified


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Context:
    monkeypatch.setenv("SCHEDCP_CONFIG", str(tmp_path / "no-config.toml"))
    url = f"sqlite:///{tmp_path / 'repo.db'}"
    monkeypatch.setenv("SCHEDCP_DB", url)
    return Context(db_url=url)


def report(version: str, tunables: dict[str, object], passed: bool) -> VerificationReport:
    stages = [StageResult(stage=s, passed=passed or s != "dynamic", duration_s=1.0) for s in STAGES]
    return VerificationReport(
        created="2026-12-02T00:00:00+00:00",
        policy="vtime",
        version_id=version,
        object_sha256="0" * 64,
        tunables=tunables,  # type: ignore[arg-type]
        stages=stages,
        passed=passed,
        stopped_at=None if passed else "dynamic",
    )


def test_gate_wants_the_exact_tunables(ctx: Context) -> None:
    defaults = find_policy("vtime").resolve_tunables()
    with ctx.repository() as repo:
        version = repo.resolve("vtime").id
        with pytest.raises(NotVerified, match=r"never verified.*schedcp verify vtime@"):
            repo.require_verified(version, defaults)
        repo.record_verification(version, report(version, defaults, passed=False), False)
        with pytest.raises(NotVerified, match="newest report failed"):
            repo.require_verified(version, defaults)
        ok = repo.record_verification(version, report(version, defaults, passed=True), True)
    assert require_verified(ctx, version, defaults).id == ok.id
    other = {**defaults, "slice_ns": 1_000_000}
    with pytest.raises(NotVerified, match="passed with other tunables"):
        require_verified(ctx, version, other)
    latest = latest_report(ctx, version)
    assert latest is not None
    assert latest.passed


def test_gate_on_an_unknown_version(ctx: Context) -> None:
    with pytest.raises(VersionNotFound):
        require_verified(ctx, "feedfacefeed", {})


def test_policy_show_prints_the_latest_report(ctx: Context) -> None:
    defaults = find_policy("vtime").resolve_tunables()
    with ctx.repository() as repo:
        version = repo.resolve("vtime").id
        repo.record_verification(version, report(version, defaults, passed=False), False)
    shown = CliRunner().invoke(app, ["policy", "show", "vtime"])
    assert shown.exit_code == 0, shown.output
    assert "latest verification report" in shown.output
    assert f"vtime@{version[:12]}" in shown.output
    assert "FAILED at dynamic" in shown.output
