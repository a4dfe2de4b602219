"""Which host paths the guest cannot see (its own tmpfs mounts hide them), and the test
suite's one re-run for the emulator's known oops."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from schedcp.errors import LostVMError
from schedcp.sandbox.vm import GUEST_TMPFS, hidden_in_guest


def test_guest_tmpfs_matches_what_init_mounts() -> None:
    init = resources.files("schedcp.sandbox.guest").joinpath("init.sh").read_text()
    mounted = set(re.findall(r"tmpfs /newroot(/\S+)", init))
    listed = re.search(r"for d in ([^;]+); do\n\s+\[ -d \"/newroot\$d\" \] && mount -t tmpfs", init)
    assert listed is not None
    mounted |= set(listed.group(1).split())
    assert mounted == set(GUEST_TMPFS)


def test_paths_under_a_guest_tmpfs_are_hidden() -> None:
    assert hidden_in_guest(Path("/tmp/ci-clone"))
    assert hidden_in_guest(Path("/var/lib/schedcp"))
    assert hidden_in_guest(Path("/tmp"))
    assert not hidden_in_guest(Path("/work/main"))
    assert not hidden_in_guest(Path("/tmpfoo/x")), "a prefix of a name is not a parent"


_runs: list[int] = []


@pytest.mark.sandbox
def test_a_sandbox_test_lost_to_the_known_tcg_oops_runs_once_more() -> None:
    """tests/conftest.py runs it again (and says so); the second run passes."""
    _runs.append(1)
    if len(_runs) == 1:
        raise LostVMError("the sandbox VM stopped answering\n--- guest console ---\n[ 181.5] Oops: int3: 0000 [#1]")
    assert len(_runs) == 2
