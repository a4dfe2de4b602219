"""Boot failures, hung and crashed guests: each gives a clear error and leaves no QEMU behind.

These boot their own VMs (they break them on purpose), so they do not use the shared one.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from schedcp.config import Settings
from schedcp.errors import LostVMError, SetupError
from schedcp.sandbox import Sandbox

pytestmark = pytest.mark.sandbox


def _settings(base: Settings, **sandbox: object) -> Settings:
    return base.model_copy(update={"sandbox": base.sandbox.model_copy(update=sandbox)})


def test_one_shot_run_powers_off_cleanly(settings: Settings) -> None:
    from schedcp.service import Context, sandbox

    ctx = Context(settings)
    done = sandbox.run(ctx, sandbox.SandboxRunRequest(command=["sh", "-c", "echo one-shot; exit 4"], timeout_s=60))
    assert done.result.rc == 4
    assert done.result.stdout == "one-shot\n"
    assert done.boot.boot_s > 0  # and the leak check after every test sees no VM left


def test_clean_shutdown_exits_qemu_and_removes_the_run_folder(settings: Settings) -> None:
    vm = Sandbox(settings)
    with vm:
        proc = vm.proc
        assert proc is not None
        assert vm.run(["true"]).rc == 0
    assert proc.returncode == 0, "QEMU should exit by itself on guest power-off"
    assert not vm.run_dir.exists()
    vm.close()  # idempotent


def test_missing_qemu_is_a_setup_error(settings: Settings) -> None:
    with pytest.raises(SetupError, match="make setup"):
        Sandbox(_settings(settings, qemu="/nonexistent/qemu-system-x86_64")).start()


def test_boot_timeout_kills_the_vm(settings: Settings) -> None:
    with pytest.raises(LostVMError, match="timed out waiting for the guest agent"):
        Sandbox(_settings(settings, boot_timeout_s=0.5)).start()


def test_hung_guest_is_killed_and_reported(settings: Settings) -> None:
    vm = Sandbox(settings)
    with vm:
        vm.grace_s = 1.0
        assert vm.proc is not None
        os.kill(vm.proc.pid, signal.SIGSTOP)  # the whole VM stops answering, as a hung guest does
        t0 = time.monotonic()
        with pytest.raises(LostVMError, match="stopped answering"):
            vm.run(["true"], timeout=1)
        assert time.monotonic() - t0 < 60  # the 1 s grace, not the default 600 s command timeout
        assert vm.proc.poll() is not None, "a lost VM must be killed"


def test_guest_kernel_crash_is_a_lost_vm_with_console(settings: Settings) -> None:
    with Sandbox(settings) as vm, pytest.raises(LostVMError) as info:
        vm.run(["sh", "-c", "echo c > /proc/sysrq-trigger"], timeout=60)
    assert "QEMU status" in str(info.value) or "stopped answering" in str(info.value)
    assert "sysrq" in info.value.console_tail.lower() or "panic" in info.value.console_tail.lower()
