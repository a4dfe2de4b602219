"""The classifier on every benchmark workload as recorded over separate sandbox boots.

tests/data/analysis/boots/<set>/<size>/boot<k>/<workload>.json.gz are whole profiles written by
scripts/record-classes.py (docs/analysis.md, "Classification over boots"): five quiet boots at
sizes tiny and small, and boots with CPU hogs running on the host, as a busy CI machine has.
Every rule change is checked against all of them here, without booting anything: each
workload must get its declared class in every run, and a close call must say so.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from schedcp.analysis.classify import CLOSE_MARGIN
from schedcp.analysis.engine import finish_profile
from schedcp.bench.registry import all_workloads
from schedcp.models.profile import WorkloadProfile
from schedcp.models.vocabulary import SIZES

BOOTS = Path(__file__).resolve().parents[1] / "data" / "analysis" / "boots"
RECORDINGS = sorted(BOOTS.glob("*/*/boot*/*.json.gz"))


def test_every_workload_was_recorded_at_two_sizes_over_five_boots() -> None:
    seen: dict[tuple[str, str], set[str]] = {}
    for path in RECORDINGS:
        boot, size = f"{path.parents[2].name}/{path.parent.name}", path.parents[1].name
        seen.setdefault((path.name.removesuffix(".json.gz"), size), set()).add(boot)
    for name in all_workloads():
        for size in ("tiny", "small"):
            assert len(seen.get((name, size), set())) >= 5, (name, size)
    assert {size for _, size in seen} <= set(SIZES)


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: "/".join(p.parts[-4:]).removesuffix(".json.gz"))
def test_the_recorded_workload_gets_its_declared_class(path: Path) -> None:
    declared = all_workloads()[path.name.removesuffix(".json.gz")].info.workload_class
    profile = finish_profile(WorkloadProfile.model_validate_json(gzip.decompress(path.read_bytes())))
    found = [(c.workload_class, c.confidence) for c in profile.classes]
    assert profile.primary_class == declared, found
    if profile.close_call:
        assert profile.class_margin is not None
        assert profile.class_margin < CLOSE_MARGIN
        assert profile.close_call[0] == declared
        assert "Close call" in profile.summary
    else:
        assert profile.class_margin is None or profile.class_margin >= CLOSE_MARGIN, found
