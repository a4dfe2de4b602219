"""Cancelling a long service call on the real sandbox: it stops at the next step, the VM is shut
down (the leak check after every test would catch one left running), nothing is recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedcp.errors import Cancelled
from schedcp.models.progress import Progress
from schedcp.service import Context
from schedcp.service.bench import BenchRunRequest, run_benchmark

pytestmark = pytest.mark.sandbox


def test_a_cancelled_benchmark_stops_shuts_the_sandbox_down_and_records_nothing(tmp_path: Path) -> None:
    seen: list[Progress] = []
    ctx = Context(
        db_url=f"sqlite:///{tmp_path / 'repo.db'}",
        progress=seen.append,
        cancelled=lambda: any("warm-up" in p.message for p in seen),
    )
    out = tmp_path / "result.json"
    request = BenchRunRequest(workload="pipe", policy="fifo", size="tiny", repeat=2, output=out)
    with pytest.raises(Cancelled):
        run_benchmark(ctx, request)
    warmups = [p for p in seen if "warm-up" in p.message]
    assert len(warmups) == 1, [p.message for p in seen]  # the first run, and nothing after it
    assert warmups[0].done == 1
    assert warmups[0].total == 6
    assert not out.exists()
    with ctx.repository() as repo:
        assert repo.benchmarks(policy="fifo") == []
