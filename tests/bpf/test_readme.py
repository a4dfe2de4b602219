"""The README renderer: readable units and ranges, every tunable type, and only the marked regions rewritten."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from schedcp.bpf.policy import PolicySpec, StatSpec, TunableSpec, format_duration, format_range, format_value
from schedcp.bpf.readme import (
    COMMAND,
    END,
    EXIT_RECORD,
    begin_marker,
    main,
    render_stats,
    render_tunables,
    update_readme,
)
from schedcp.errors import PolicyError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"

SKELETON = f"""# demo

Hand-written idea, kept as it is | even with odd characters <b>.

## Tunables

{begin_marker("tunables")}
stale table
{END}

Hand-written advice after the table.

## Stats

{begin_marker("stats")}
{END}

## Limits

- none
"""


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (5_000_000, "5 ms"),
        (500_000, "500 us"),
        (2_000_000_000, "2 s"),
        (1_500_000, "1.5 ms"),
        (1_000_001, "1.000001 ms"),  # exact, never rounded to a value the policy does not use
        (999, "999 ns"),
        (1_000, "1 us"),
        (0, "0"),
        (-2_000, "-2 us"),
    ],
)
def test_durations_are_written_in_the_largest_unit_they_reach(ns: int, text: str) -> None:
    assert format_duration(ns) == text


@pytest.mark.parametrize(
    ("tunable", "text"),
    [
        (TunableSpec(type="u64", unit="ns", default=20_000_000), "20 ms"),
        (TunableSpec(type="u64", unit="us", default=5_000), "5 ms"),
        (TunableSpec(type="u32", unit="tasks", default=4), "4 tasks"),
        (TunableSpec(type="u32", default=4095), "4095"),
        (TunableSpec(type="s32", default=-3), "-3"),
        (TunableSpec(type="bool", default=True), "true"),
        (TunableSpec(type="bool", default=False), "false"),
        (TunableSpec(type="str16", default="lt_long_"), "`lt_long_`"),
        (TunableSpec(type="str16", default=""), "empty"),
    ],
)
def test_defaults_are_written_as_a_reader_would_set_them(tunable: TunableSpec, text: str) -> None:
    assert format_value(tunable, tunable.default) == text


@pytest.mark.parametrize(
    ("tunable", "text"),
    [
        (TunableSpec(type="u64", unit="ns", default=5_000_000, min=100_000, max=50_000_000), "100 us to 50 ms"),
        (TunableSpec(type="u64", unit="ns", default=0, min=0, max=1_000_000_000), "0 to 1 s"),
        (TunableSpec(type="u32", default=1, min=1, max=64), "1 to 64"),
        (TunableSpec(type="s32", default=0, min=-10, max=10), "-10 to 10"),
        (TunableSpec(type="u64", default=7), "any"),
        (TunableSpec(type="u32", default=5, min=5), "at least 5"),
        (TunableSpec(type="s64", default=0, max=10), "at most 10"),
        (TunableSpec(type="bool", default=True), "true or false"),
        (TunableSpec(type="str16", default="x"), "up to 15 characters"),
    ],
)
def test_ranges_leave_out_bounds_that_are_only_the_types_own(tunable: TunableSpec, text: str) -> None:
    assert format_range(tunable) == text


def test_the_tunables_table_has_one_row_per_tunable_with_its_description_on_one_line() -> None:
    spec = PolicySpec(
        name="demo",
        summary="s",
        tunables={
            "slice_ns": TunableSpec(
                type="u64", unit="ns", default=5_000_000, min=100_000, max=50_000_000, description="Long\n  text."
            ),
            "prefix": TunableSpec(type="str16", default="job_", description="Tags a | b as job_<tool>."),
            "on": TunableSpec(type="bool", default=False),
        },
    )
    assert render_tunables(spec).splitlines() == [
        "| name | type | default | range | description |",
        "|---|---|---|---|---|",
        "| `slice_ns` | u64 | 5 ms | 100 us to 50 ms | Long text. |",
        "| `prefix` | str16 | `job_` | up to 15 characters | Tags a \\| b as job_\\<tool>. |",
        "| `on` | bool | false | true or false |  |",
    ]


def test_the_stats_list_ends_with_the_exit_record_every_policy_has() -> None:
    spec = PolicySpec(
        name="demo",
        summary="s",
        stats={"nr_a": StatSpec(description="Tasks\nqueued."), "nr_b": StatSpec()},
    )
    assert render_stats(spec).splitlines() == ["- `nr_a`: Tasks queued.", "- `nr_b`", "", EXIT_RECORD]
    assert "`schedcp_exit_info`" in EXIT_RECORD


def test_a_policy_without_tunables_or_stats_says_so() -> None:
    spec = PolicySpec(name="bare", summary="s")
    assert render_tunables(spec) == "None: this policy takes no tunables.\n"
    assert render_stats(spec).splitlines() == ["No counters of its own.", "", EXIT_RECORD]


def test_only_the_marked_regions_are_rewritten_and_a_second_run_changes_nothing() -> None:
    spec = PolicySpec(
        name="demo",
        summary="s",
        tunables={"slice_ns": TunableSpec(type="u64", unit="ns", default=20_000_000, description="How long.")},
        stats={"nr_enqueued": StatSpec(description="Tasks queued.")},
    )
    text = update_readme(SKELETON, spec)
    assert "stale table" not in text
    assert "| `slice_ns` | u64 | 20 ms | any | How long. |" in text
    assert "- `nr_enqueued`: Tasks queued." in text
    outside = [part.split(END, 1)[-1] for part in text.split("<!-- policy.toml:")]
    assert outside == [part.split(END, 1)[-1] for part in SKELETON.split("<!-- policy.toml:")]
    assert update_readme(text, spec) == text


@pytest.mark.parametrize(
    "broken",
    [
        SKELETON.replace(begin_marker("stats") + "\n", ""),  # no region
        SKELETON.replace(f"stale table\n{END}", "stale table"),  # tunables never ends
        SKELETON + f"\n{begin_marker('tunables')}\n{END}\n",  # two regions
    ],
)
def test_a_readme_without_exactly_one_region_of_each_is_an_error_saying_what_to_do(broken: str) -> None:
    with pytest.raises(PolicyError, match=r"python -m schedcp\.bpf\.readme"):
        update_readme(broken, PolicySpec(name="demo", summary="s"))


def test_the_entry_point_checks_then_rewrites_a_policy_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "good"
    shutil.copytree(FIXTURES / "good", folder)
    readme = folder / "README.md"
    readme.write_text(SKELETON)

    assert main(["--check", str(folder)]) == 1
    assert f"{readme} is out of date; run: {COMMAND} {folder}" in capsys.readouterr().err
    assert readme.read_text() == SKELETON

    assert main([str(folder)]) == 0
    assert "| `slice_ns` | u64 | 20 ms | 100 us to 100 ms |" in readme.read_text()
    assert main(["--check", str(folder)]) == 0


def test_the_entry_point_reports_a_readme_without_markers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "good"
    shutil.copytree(FIXTURES / "good", folder)
    (folder / "README.md").write_text("# good\n")
    assert main(["--check", str(folder)]) == 2
    assert "policy.toml: tunables" in capsys.readouterr().err
