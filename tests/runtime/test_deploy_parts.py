"""The runtime's parts that need no kernel: the deploy lock, reading sysfs, the advice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from schedcp.errors import DeployError
from schedcp.runtime.deploy import _events, _parse_sysfs, deploy_lock, no_sched_ext_advice


def test_a_second_deploy_is_refused_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    lock = tmp_path / "runtime" / "deploy-host.lock"
    with deploy_lock(lock), pytest.raises(DeployError, match=f"pid {os.getpid()}.*rollback --default"):  # noqa: SIM117
        with deploy_lock(lock):
            pass
    with deploy_lock(lock):
        pass  # released when the first one ended


def test_a_killed_deploy_leaves_no_lock_behind(tmp_path: Path) -> None:
    lock = tmp_path / "deploy.lock"
    code = (
        "import sys, time; from pathlib import Path; from schedcp.runtime.deploy import deploy_lock\n"
        "with deploy_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(DeployError, match=f"pid {child.pid}"), deploy_lock(lock):
            pass
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        deadline = time.monotonic() + 10
        while True:
            try:
                with deploy_lock(lock):
                    break
            except DeployError:
                assert time.monotonic() < deadline, "the lock outlived its holder"
                time.sleep(0.1)
    finally:
        child.kill()
        child.wait(timeout=30)


def test_sysfs_values_and_multiline_events_are_parsed() -> None:
    out = "\n".join(
        [
            "/sys/kernel/sched_ext/state:enabled",
            "/sys/kernel/sched_ext/enable_seq:7",
            "/sys/kernel/sched_ext/root/ops:vtime",
            "/sys/kernel/sched_ext/root/events:SCX_EV_SELECT_CPU_FALLBACK 12",
            "/sys/kernel/sched_ext/root/events:SCX_EV_DISPATCH_KEEP_LAST 0",
            "not a sysfs line",
        ]
    )
    values = _parse_sysfs(out)
    assert values["state"] == "enabled"
    assert values["root/ops"] == "vtime"
    assert "nr_rejected" not in values
    assert _events(values["root/events"]) == {"SCX_EV_SELECT_CPU_FALLBACK": 12, "SCX_EV_DISPATCH_KEEP_LAST": 0}


def test_the_advice_names_the_config_option_and_the_debian_kernel() -> None:
    advice = no_sched_ext_advice("6.1.0-28-amd64")
    assert "6.1.0-28-amd64" in advice
    assert "CONFIG_SCHED_CLASS_EXT=y" in advice
    assert "linux-image-amd64" in advice
