"""HostRunner: exit codes, both streams, timeouts that kill the whole process group; staging."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from schedcp.errors import SchedcpError
from schedcp.runner import HostRunner, stage_into


def _dead(pid: int) -> bool:
    """Gone, or a zombie waiting for init to reap it: either way no longer running."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


def _wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not _dead(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_exit_code_and_both_streams() -> None:
    res = HostRunner().run(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=10)
    assert res.rc == 3
    assert res.stdout == "out\n"
    assert res.stderr == "err\n"
    assert not res.timed_out
    assert not res.ok
    assert res.argv == ["sh", "-c", "echo out; echo err >&2; exit 3"]
    assert res.duration_s >= 0


def test_success_is_ok() -> None:
    res = HostRunner().run(["true"], timeout=10)
    assert res.rc == 0
    assert res.ok


def test_check_raises_on_failure() -> None:
    with pytest.raises(SchedcpError, match=r"failed \(4\)"):
        HostRunner().run(["sh", "-c", "echo boom >&2; exit 4"], timeout=10, check=True)


def test_input_env_and_cwd(tmp_path: Path) -> None:
    res = HostRunner().run(
        ["sh", "-c", 'cat; printf "%s" "$SCHEDCP_T"; pwd'],
        timeout=10,
        input=b"from stdin\n",
        env={"SCHEDCP_T": "v a l"},
        cwd=tmp_path,
    )
    assert res.stdout == f"from stdin\nv a l{tmp_path}\n"


def test_stdin_is_not_inherited() -> None:
    # Without input the command must not wait on the test's stdin.
    res = HostRunner().run(["cat"], timeout=10)
    assert res.rc == 0
    assert not res.timed_out
    assert res.stdout == ""


def test_timeout_kills_quickly() -> None:
    t0 = time.monotonic()
    res = HostRunner().run(["sleep", "30"], timeout=0.5)
    elapsed = time.monotonic() - t0
    assert res.timed_out
    assert not res.ok
    assert elapsed < 20  # killed at the timeout, not after the command's 30 s (a wide margin for a busy host)


def test_timeout_kills_the_whole_process_group() -> None:
    t0 = time.monotonic()
    res = HostRunner().run(["sh", "-c", "sleep 30 & echo $!; wait"], timeout=0.5)
    assert res.timed_out
    assert time.monotonic() - t0 < 20
    child = int(res.stdout.strip())
    assert _wait_dead(child, timeout=5), f"background sleep {child} survived the timeout"


def test_default_timeout_applies() -> None:
    res = HostRunner(default_timeout=0.3).run(["sleep", "30"])
    assert res.timed_out


def test_stage_returns_an_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "obj.o").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    staged = HostRunner().stage(Path("obj.o"))
    assert os.path.isabs(staged)
    assert staged == str(tmp_path / "obj.o")


def test_stage_into_copies_atomically(tmp_path: Path) -> None:
    src = tmp_path / "src" / "fifo1234.bpf.o"
    src.parent.mkdir()
    src.write_bytes(os.urandom(4096))
    share = tmp_path / "share"
    share.mkdir()
    dest = stage_into(share, src)
    assert dest == share / "fifo1234.bpf.o"
    assert dest.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in share.iterdir()) == ["fifo1234.bpf.o"]
    # Staging again replaces the file in place.
    src.write_bytes(b"new")
    assert stage_into(share, src).read_bytes() == b"new"
    assert sorted(p.name for p in share.iterdir()) == ["fifo1234.bpf.o"]


def test_stage_into_keeps_the_executable_bit(tmp_path: Path) -> None:
    prog = tmp_path / "prog.sh"
    prog.write_text("#!/bin/sh\necho ran\n")
    prog.chmod(0o755)
    dest_dir = tmp_path / "share"
    dest_dir.mkdir()
    staged = stage_into(dest_dir, prog)
    assert staged.stat().st_mode & 0o777 == 0o755
    assert subprocess.run([str(staged)], capture_output=True, text=True, check=True).stdout == "ran\n"
