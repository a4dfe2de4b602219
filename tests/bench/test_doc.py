from pathlib import Path

from schedcp.bench.doc import render
from schedcp.bench.registry import all_workloads


def test_benchmarks_doc_is_generated_and_lists_every_workload() -> None:
    doc = Path(__file__).parents[2] / "docs" / "benchmarks.md"
    text = doc.read_text()
    assert text == render(), "run: python -m schedcp.bench.doc > docs/benchmarks.md"
    for name, workload in all_workloads().items():
        assert f"### `{name}`" in text
        for metric in workload.info.metrics:
            assert f"| `{metric.name}` |" in text
