"""`schedcp status | deploy | rollback | history` on this host, whatever its kernel.

Our machines' kernels lack sched_ext, and there the runtime must say so and refuse, with what
to do; on a sched_ext host these tests check what the kernel says instead. The deploy path on
a sched_ext kernel is tests/runtime/test_sandbox_runtime.py's, in the sandbox guest.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from schedcp.cli.main import app

HAS_SCHED_EXT = Path("/sys/kernel/sched_ext").is_dir()


pytestmark = pytest.mark.usefixtures("no_vm")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_status_tells_the_truth_about_this_kernel() -> None:
    done = invoke("status", "--json")
    assert done.exit_code == 0, done.output
    st = json.loads(done.output)
    assert st["sched_ext"] is HAS_SCHED_EXT
    assert st["kernel"] == Path("/proc/sys/kernel/osrelease").read_text().strip()
    if not HAS_SCHED_EXT:
        assert st["state"] is None
        assert not st["ours"]
        assert "no sched_ext" in invoke("status").output


@pytest.mark.skipif(HAS_SCHED_EXT, reason="this host's kernel has sched_ext: the refusal is for kernels without it")
def test_deploy_refuses_without_sched_ext_says_what_to_do_and_records_it() -> None:
    done = invoke("deploy", "vtime", "--reason", "try")
    assert done.exit_code == 1
    assert "CONFIG_SCHED_CLASS_EXT=y" in done.output
    assert "trixie" in done.output
    events = json.loads(invoke("history", "--json").output)
    assert [(e["kind"], e["policy"], e["reason"]) for e in events] == [("refused", "vtime", "try")]
    assert events[0]["kernel"] == Path("/proc/sys/kernel/osrelease").read_text().strip()


def test_an_unknown_policy_is_refused_before_anything_else() -> None:
    done = invoke("deploy", "no-such-policy")
    assert done.exit_code == 1
    assert "no-such-policy" in done.output
    assert json.loads(invoke("history", "--all-hosts", "--json").output) == []


@pytest.mark.skipif(HAS_SCHED_EXT, reason="rolling back would stop this host's sched_ext scheduler")
def test_rollback_to_default_without_sched_ext_is_a_clear_no_op() -> None:
    done = invoke("rollback", "--default", "--json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    assert result["status"]["sched_ext"] is False
    assert result["event"]["kind"] == "rollback"
