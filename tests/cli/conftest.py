"""Shared by the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedcp.sandbox import Sandbox


@pytest.fixture
def no_vm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user config, a fresh repository, and a sandbox that fails the test if it boots: for
    commands that must answer without a VM."""
    monkeypatch.setenv("SCHEDCP_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.setenv("SCHEDCP_DB", f"sqlite:///{tmp_path / 'repo.db'}")

    def no_boot(*_: object, **__: object) -> None:
        raise AssertionError("this command must not boot the sandbox")

    monkeypatch.setattr(Sandbox, "start", no_boot)
