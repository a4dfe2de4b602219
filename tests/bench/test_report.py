from __future__ import annotations

from pathlib import Path

import pytest

from schedcp.bench.harness import run_ab
from schedcp.bench.report import default_name, load_json, plot, save_json
from schedcp.errors import SchedcpError
from schedcp.runner import HostRunner

from .test_harness import Counter


def test_json_round_trip_and_plot(tmp_path: Path) -> None:
    result = run_ab(HostRunner(), Counter(tmp_path / "s"), "tiny", tmp_path, repeat=2)
    path = save_json(result, tmp_path / f"{default_name(result)}.json")
    assert load_json(path) == result
    assert "counter-default-vs-default" in path.name
    png = plot(result, tmp_path / "r.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 5000


def test_corrupt_result_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SchedcpError, match="cannot read benchmark result"):
        load_json(bad)


def test_summary_markdown_has_a_row_per_compared_metric(tmp_path: Path) -> None:
    from schedcp.bench.report import summary_markdown

    result = run_ab(HostRunner(), Counter(tmp_path / "s"), "tiny", tmp_path, repeat=2)
    text = summary_markdown([result])
    rows = [line for line in text.splitlines() if line.startswith("| counter")]
    assert len(rows) == len(result.metrics)
    assert "| counter (tiny) | n (count) | higher |" in rows[0]
    assert summary_markdown([]) == ""
