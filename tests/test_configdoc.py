from pathlib import Path

from schedcp.configdoc import render


def test_configuration_doc_is_generated_from_the_model() -> None:
    doc = Path(__file__).parents[1] / "docs" / "configuration.md"
    assert doc.read_text() == render(), "run: python -m schedcp.configdoc > docs/configuration.md"
