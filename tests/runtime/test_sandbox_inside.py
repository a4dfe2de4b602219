"""schedcp itself running on a sched_ext host: inside the sandbox guest, whose root is the host's
filesystem mounted read-only. Its data belongs in a writable data folder (SCHEDCP_DATA), and
without one it must say so instead of SQLite's "unable to open database file"."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from schedcp.sandbox import Sandbox

SCHEDCP = str(Path(sys.executable).with_name("schedcp"))
DATA = "/tmp/schedcp-inside/data"
ENV = {"SCHEDCP_DATA": DATA, "SCHEDCP_CACHE": "/tmp/schedcp-inside/cache", "SCHEDCP_CONFIG": "/nonexistent.toml"}


@pytest.mark.sandbox
def test_schedcp_runs_in_the_guest_with_a_writable_data_folder(vm: Sandbox) -> None:
    assert vm.run(["test", "-x", SCHEDCP], timeout=30).rc == 0, f"{SCHEDCP} is not visible in the guest"
    # The read-only root: a clear error naming the fix, and a non-zero exit.
    ro = vm.run([SCHEDCP, "policy", "list"], timeout=120, env={"SCHEDCP_CONFIG": "/nonexistent.toml"})
    assert ro.rc != 0
    assert "SCHEDCP_DATA" in ro.stderr + ro.stdout, ro.stderr
    assert "unable to open database file" not in ro.stderr + ro.stdout

    try:
        listed = vm.run([SCHEDCP, "policy", "list", "--json"], timeout=120, env=ENV)
        assert listed.rc == 0, listed.stderr
        names = {p["name"] for p in json.loads(listed.stdout)["policies"]}
        assert {"fifo", "vtime", "deadline"} <= names

        st = vm.run([SCHEDCP, "status", "--json"], timeout=120, env=ENV, rt=True)
        assert st.rc == 0, st.stderr
        status = json.loads(st.stdout)
        assert status["sched_ext"] is True, "the guest's kernel has sched_ext"
        assert status["state"] == "disabled"

        watched = vm.run([SCHEDCP, "watch", "--for", "3", "--interval", "1", "--json"], timeout=120, env=ENV, rt=True)
        assert watched.rc == 0, watched.stderr
        assert json.loads(watched.stdout)["looks"] >= 2
        assert vm.run(["test", "-f", f"{DATA}/schedcp.db"], timeout=30).rc == 0, "the repository is in the data folder"
    finally:
        vm.run(["rm", "-rf", "/tmp/schedcp-inside"], timeout=60)
