"""The systemd units in systemd/: valid for systemd, and every command they run exists."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).parents[2] / "systemd"
PLACEHOLDER = "/usr/local/bin/schedcp"


def _schedcp() -> str:
    found = Path(sys.executable).with_name("schedcp")
    assert found.exists(), f"schedcp is not installed next to {sys.executable}"
    return str(found)


def _commands(unit: Path) -> list[list[str]]:
    lines = unit.read_text().splitlines()
    return [shlex.split(line.split("=", 1)[1]) for line in lines if line.startswith(("ExecStart=", "ExecStop="))]


def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (Debian's systemd package has it)")
    for unit in sorted(UNITS.glob("*.service")):
        # The installed path is a placeholder the docs tell the operator to link; check with ours.
        (tmp_path / unit.name).write_text(unit.read_text().replace(PLACEHOLDER, _schedcp()))
    units = sorted(str(p) for p in tmp_path.glob("*.service"))
    assert len(units) == 2
    res = subprocess.run([tool, "verify", *units], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    # Unknown keys and values are only warnings for systemd: none allowed.
    assert res.stderr.strip() == "", res.stderr


def test_every_command_a_unit_runs_is_a_schedcp_command() -> None:
    seen = []
    for unit in sorted(UNITS.glob("*.service")):
        for argv in _commands(unit):
            assert argv[0] == PLACEHOLDER
            words = [a for a in argv[1:] if not a.startswith("-")][:1]
            options = [a for a in argv[1:] if a.startswith("--")]
            res = subprocess.run([_schedcp(), *words, "--help"], capture_output=True, text=True, timeout=60)
            assert res.returncode == 0, f"{unit.name}: {argv}: {res.stderr}"
            for opt in options:
                assert opt in res.stdout, f"{unit.name}: {words[0]} has no {opt}"
            seen.append(words[0])
    assert sorted(seen) == ["restore", "rollback", "watch"]
