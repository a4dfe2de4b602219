"""Every built-in README's tunables table and stats list are what policy.toml says."""

from __future__ import annotations

import pytest

from schedcp.bpf.policy import builtin_policies
from schedcp.bpf.readme import COMMAND, begin_marker, main, readme_path, update_readme

BUILTINS = {p.name: p for p in builtin_policies()}


def test_the_eight_builtins_are_found_so_none_goes_unchecked() -> None:
    assert len(BUILTINS) >= 8


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_the_readme_is_what_the_generator_writes(name: str) -> None:
    policy = BUILTINS[name]
    text = readme_path(policy).read_text(encoding="utf-8")
    assert text == update_readme(text, policy.spec, str(readme_path(policy))), (
        f"{readme_path(policy)} is out of date with its policy.toml; edit policy.toml (not the README's "
        f"generated table or list), then run: {COMMAND}"
    )


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_the_generated_regions_sit_under_their_headings(name: str) -> None:
    text = readme_path(BUILTINS[name]).read_text(encoding="utf-8")
    assert f"## Tunables\n\n{begin_marker('tunables')}\n" in text
    assert f"## Stats\n\n{begin_marker('stats')}\n" in text


def test_the_check_entry_point_passes_on_the_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 0
    assert capsys.readouterr().err == ""
