"""The sandbox VM against the real kernel: commands, output, exit codes, timeouts, shares."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from schedcp.errors import CommandTimeout, SandboxError
from schedcp.sandbox import Sandbox

pytestmark = pytest.mark.sandbox


def test_boot_reports_the_sched_ext_kernel(vm: Sandbox) -> None:
    assert vm.info is not None
    assert vm.info.kernel == vm.kernel.release
    assert vm.info.boot_s > 0
    assert vm.run(["uname", "-r"]).stdout.strip() == vm.kernel.release
    assert vm.read_text("/sys/kernel/sched_ext/state").strip() == "disabled"


def test_exit_code_and_both_streams_come_back(vm: Sandbox) -> None:
    r = vm.run(["sh", "-c", "echo to-out; echo to-err >&2; exit 7"])
    assert r.rc == 7
    assert r.stdout == "to-out\n"
    assert r.stderr == "to-err\n"
    assert not r.timed_out


def test_stdin_reaches_the_command(vm: Sandbox) -> None:
    assert vm.run(["tr", "a-z", "A-Z"], input=b"hello sandbox").stdout == "HELLO SANDBOX"


def test_large_output_is_complete(vm: Sandbox) -> None:
    r = vm.run(["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x"], timeout=120)
    assert r.rc == 0
    assert len(r.stdout) == 3_000_000
    assert not r.truncated


def test_timeout_kills_the_whole_process_group(vm: Sandbox) -> None:
    t0 = time.monotonic()
    r = vm.run(["sh", "-c", "sleep 300 & echo $! > /tmp/bgpid; sleep 300"], timeout=2)
    assert r.timed_out
    assert time.monotonic() - t0 < 60
    alive = vm.run(["sh", "-c", 'kill -0 "$(cat /tmp/bgpid)"'])
    assert alive.rc != 0, "the background child outlived its timed-out command"
    with pytest.raises(CommandTimeout):
        vm.run(["sleep", "300"], timeout=1, check=True)


def test_background_children_do_not_outlive_the_command(vm: Sandbox) -> None:
    r = vm.run(["sh", "-c", "sleep 300 & echo $!"], timeout=60)
    assert r.rc == 0
    assert vm.run(["kill", "-0", r.stdout.strip()]).rc != 0


def test_commands_are_normal_priority_and_the_agent_real_time(vm: Sandbox) -> None:
    # The agent must keep answering while a scheduler under test stalls normal tasks, and the
    # commands must be scheduled by that scheduler, not escape it.
    assert "SCHED_FIFO" in vm.run(["chrt", "-p", "1"]).stdout
    assert "SCHED_OTHER" in vm.run(["sh", "-c", "chrt -p $$"]).stdout


def test_share_is_writable_and_root_read_only(vm: Sandbox) -> None:
    share: Path = vm.test_share  # type: ignore[attr-defined]
    target = share / "from-guest.txt"
    assert vm.run(["sh", "-c", f"echo written-in-guest > {target}"]).rc == 0
    assert target.read_text() == "written-in-guest\n"
    assert vm.run(["touch", "/usr/schedcp-must-not-exist"]).rc != 0
    assert not Path("/usr/schedcp-must-not-exist").exists()
    staged = vm.stage(target)
    assert vm.run(["cat", staged]).stdout == "written-in-guest\n"


def test_missing_program_is_a_clear_error(vm: Sandbox) -> None:
    with pytest.raises(SandboxError, match="cannot start"):
        vm.run(["/nonexistent/program"])
    assert vm.ping()


def test_a_lost_shared_vm_is_replaced_for_the_next_test(shared_vm: Any) -> None:
    """A guest oops in one test must cost that test only, not every sandbox test after it."""
    first = shared_vm.get()
    assert first.proc is not None
    first.proc.kill()
    first.proc.wait(timeout=30)
    second = shared_vm.get()
    assert second is not first
    assert second.ping()
    assert second.run(["true"]).rc == 0
    assert shared_vm.reboots >= 1


def test_loopback_is_up_for_servers(vm: Sandbox) -> None:
    """A server under test listens on 127.0.0.1 and a client in the guest reaches it."""
    script = (
        "import socket\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)\n"
        "c = socket.create_connection(s.getsockname(), timeout=5); a, _ = s.accept()\n"
        "c.sendall(b'ping'); print(a.recv(4).decode())\n"
    )
    res = vm.run(["python3", "-c", script], timeout=60)
    assert res.rc == 0, res.stderr
    assert res.stdout.strip() == "ping"
