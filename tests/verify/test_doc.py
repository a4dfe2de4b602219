"""docs/verify.md's "Lint rules" section is generated from the rules themselves."""

from __future__ import annotations

import re
from pathlib import Path

from schedcp.verify.lint import RULES, render_rules

DOC = Path(__file__).parents[2] / "docs" / "verify.md"


def _section(text: str, heading: str) -> str:
    """From `heading` up to the next second-level heading (or the end)."""
    start = text.index(heading)
    following = re.search(r"^## ", text[start + len(heading) :], flags=re.M)
    return text[start : start + len(heading) + following.start()] if following else text[start:]


def test_the_lint_rules_section_is_generated_and_lists_every_rule() -> None:
    section = _section(DOC.read_text(), "## Lint rules\n")
    assert section == render_rules() + "\n", (
        "docs/verify.md is out of date: replace its '## Lint rules' section with the output of "
        "`python -m schedcp.verify.lint`"
    )
    for rule in RULES.values():
        assert f"| `{rule.id}` | {rule.title} | {rule.rationale} |" in section


def test_every_rule_says_what_it_checks_and_why_in_one_table_cell_each() -> None:
    for rule_id, rule in RULES.items():
        assert rule.id == rule_id
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", rule.id)
        for text in (rule.title, rule.rationale):
            assert text.strip()
            assert "|" not in text
            assert "\n" not in text
