"""Generated workload variants (issue 13): deterministic per seed, covering every program and
start order, untagged; runnable by name through the registry; and the driver's new options
(several long jobs, their place in the start order, no name tags) run natively here."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from schedcp.bench.registry import get_workload
from schedcp.bench.variants import (
    ORDERS,
    LongTailVariantWorkload,
    long_tail_variants,
    variant_names,
    variant_workload,
)
from schedcp.bench.workload import guest_file
from schedcp.bench.workloads.longtail import LongTailChecksum, parse_report
from schedcp.errors import SchedcpError
from schedcp.models import CommandResult
from schedcp.runner import HostRunner

HOST_PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
FAMILIES = {"compress", "checksum", "sort", "awk", "compile", "python"}


def test_the_same_seed_gives_the_same_variants_another_seed_others() -> None:
    assert long_tail_variants(1, 8) == long_tail_variants(1, 8)
    assert long_tail_variants(1, 8)[:3] == long_tail_variants(1, 3), "a prefix of the sequence"
    assert long_tail_variants(1, 8) != long_tail_variants(2, 8)


def test_a_set_covers_every_program_and_order_before_repeating_and_has_no_tags() -> None:
    variants = long_tail_variants(7, 12)
    assert {v.family for v in variants[:6]} == FAMILIES
    assert {v.order for v in variants[:4]} == set(ORDERS)
    for v in variants:
        assert 10 <= v.short <= 40
        assert 1 <= v.long <= 3
        assert v.factor >= 2
        assert "--no-tags" in v.args()
        assert v.name == f"long-tail-v7-{v.index}"


def test_a_variant_is_a_workload_by_name() -> None:
    spec = long_tail_variants(3, 5)[4]
    workload = get_workload("long-tail-v3-4")
    assert isinstance(workload, LongTailVariantWorkload)
    assert workload.spec == spec
    assert workload.info.workload_class == "batch-long-tail"
    assert workload.info.primary == "makespan_s"
    assert spec.describe() in workload.info.summary
    assert variant_workload("long-tail-compress") is None
    with pytest.raises(SchedcpError, match="no workload named"):
        get_workload("long-tail-vX-1")
    assert variant_names("batch-long-tail", 3, 5)[4] == "long-tail-v3-4"
    with pytest.raises(SchedcpError, match="batch-long-tail"):
        variant_names("pipeline-messaging")


def test_prepare_passes_the_shape_order_and_no_tags(tmp_path: Path) -> None:
    workload = get_workload("long-tail-v1-2")
    assert isinstance(workload, LongTailVariantWorkload)
    spec = workload.spec
    prepared = workload.prepare(HostRunner(), "small", tmp_path)
    argv = prepared.argv
    assert argv[argv.index("--short") + 1] == str(spec.short)
    assert argv[argv.index("--long") + 1] == str(spec.long)
    assert argv[argv.index("--factor") + 1] == str(spec.factor)
    assert argv[argv.index("--order") + 1] == spec.order
    assert argv[argv.index("--seed") + 1] == "1"
    assert "--no-tags" in argv
    with pytest.raises(SchedcpError, match="sizes"):
        workload.prepare(HostRunner(), "full", tmp_path)


def _driver() -> ModuleType:
    spec = importlib.util.spec_from_file_location("longtail_driver", guest_file("longtail.py"))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("order", "expected"),
    [("last", {8, 9}), ("first", {0, 1}), ("middle", {4, 5}), ("spread", {2, 7})],
)
def test_long_jobs_are_placed_in_the_start_order(order: str, expected: set[int]) -> None:
    assert _driver().long_positions(10, 2, order) == frozenset(expected)


@pytest.mark.parametrize("order", ORDERS)
def test_the_driver_runs_untagged_batches_with_several_long_jobs(order: str, tmp_path: Path) -> None:
    args = ["--variant", "checksum", "--short", "3", "--long", "2", "--factor", "2", "--unit", "1"]
    args += ["--order", order, "--no-tags", "--seed", "4"]
    proc = subprocess.run(
        [HOST_PYTHON, "-I", str(guest_file("longtail.py")), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = CommandResult(argv=["longtail.py", *args], rc=0, stdout=proc.stdout, stderr=proc.stderr)
    report = parse_report(result, "checksum", "variant")
    assert (report.long_jobs, report.order, report.tags) == (2, order, False)
    assert {j.comm for j in report.jobs} == {"sha256sum"}, "no job says how big it is"
    positions = {i for i, j in enumerate(report.jobs) if j.long}
    assert positions == set(_driver().long_positions(5, 2, order))
    assert sorted(j.name for j in report.jobs if j.long) == ["long-0", "long-1"]
    assert report.long_job.end_s == max(j.end_s for j in report.jobs if j.long)
    assert set(LongTailChecksum().parse(result)) >= {"makespan_s", "makespan_over_bound"}
    assert json.loads(proc.stdout)["tags"] is False


def test_bench_list_variants_shows_the_set_and_refuses_a_class_without_one() -> None:
    from typer.testing import CliRunner

    from schedcp.cli.main import app

    runner = CliRunner()
    shown = runner.invoke(
        app, ["bench", "list", "--variants", "batch-long-tail", "--seed", "2", "--count", "3", "--json"]
    )
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert [v["name"] for v in data["variants"]] == ["long-tail-v2-0", "long-tail-v2-1", "long-tail-v2-2"]
    assert data["variants"][0]["description"] == long_tail_variants(2, 1)[0].describe()
    refused = runner.invoke(app, ["bench", "list", "--variants", "pipeline-messaging"])
    assert refused.exit_code != 0
    assert "batch-long-tail" in refused.output
