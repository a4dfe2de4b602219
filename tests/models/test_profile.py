"""WorkloadProfile helpers that every layer uses: the target as text, and reading profile JSON."""

from __future__ import annotations

import pytest
from analysis.profile_builder import BENCHMARK_PROFILES

from schedcp.errors import AnalysisError
from schedcp.models.profile import Target, parse_profile_json


def test_a_target_reads_as_a_person_types_it() -> None:
    assert Target(kind="command", command=["sh", "-c", "echo hi there"]).text() == "sh -c 'echo hi there'"
    assert Target(kind="pid", pid=1234).text() == "1234"
    assert Target(kind="cgroup", cgroup="/sys/fs/cgroup/app.slice").text() == "/sys/fs/cgroup/app.slice"


def test_profile_json_is_a_profile_or_an_envelope() -> None:
    p = BENCHMARK_PROFILES["pipe"][0]()
    assert parse_profile_json(p.model_dump_json(), "x.json") == p
    assert parse_profile_json('{"profile": ' + p.model_dump_json() + "}", "y.json") == p
    with pytest.raises(AnalysisError, match=r"z\.json is not a WorkloadProfile"):
        parse_profile_json('{"totals": 1}', "z.json")
    with pytest.raises(AnalysisError, match=r"w\.json is not a WorkloadProfile JSON: Expecting value"):
        parse_profile_json("not json", "w.json")
