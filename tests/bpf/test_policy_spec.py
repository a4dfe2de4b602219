"""policy.toml: tunable parsing and ranges, folder checks, finding policies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from schedcp.bpf.policy import (
    PolicySpec,
    TunableSpec,
    builtin_dir,
    builtin_policies,
    find_policy,
    load_policy,
)
from schedcp.errors import PolicyError, PolicyNotFound

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"

SLICE = TunableSpec(type="u64", unit="ns", default=20_000_000, min=100_000, max=100_000_000)
COUNT = TunableSpec(type="u32", default=4, min=1, max=64)
SIGNED = TunableSpec(type="s32", default=0, min=-10, max=10)
FLAG = TunableSpec(type="bool", default=True)


@pytest.mark.parametrize(
    ("spec", "text", "value"),
    [
        (COUNT, "8", 8),
        (COUNT, " 16 ", 16),
        (SLICE, "5_000_000", 5_000_000),
        (SLICE, "5ms", 5_000_000),
        (SLICE, "5MS", 5_000_000),
        (SLICE, "250us", 250_000),
        (SLICE, "1_000us", 1_000_000),
        (SLICE, "100000ns", 100_000),
        (SLICE, "0s", None),  # parsed, then out of range: checked below
        (SIGNED, "-3", -3),
    ],
)
def test_parse_integers_and_durations(spec: TunableSpec, text: str, value: int | None) -> None:
    if value is None:
        with pytest.raises(PolicyError, match="outside its range"):
            spec.parse("t", text)
        return
    parsed = spec.parse("t", text)
    assert parsed == value
    assert type(parsed) is int


def test_parse_seconds() -> None:
    wide = TunableSpec(type="u64", unit="ns", default=1, min=0, max=10**10)
    assert wide.parse("t", "2s") == 2_000_000_000


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("1", True), ("yes", True), ("ON", True), ("false", False), ("0", False), ("off", False)],
)
def test_parse_bools(text: str, value: bool) -> None:
    assert FLAG.parse("direct_idle", text) is value


def test_parse_bool_garbage() -> None:
    with pytest.raises(PolicyError, match="direct_idle is a bool"):
        FLAG.parse("direct_idle", "maybe")


@pytest.mark.parametrize("text", ["", "abc", "1.5", "5 ms", "0x10", "ms", "5min"])
def test_parse_garbage(text: str) -> None:
    with pytest.raises(PolicyError, match="takes an integer"):
        SLICE.parse("slice_ns", text)


def test_duration_suffix_rejected_without_ns_unit() -> None:
    with pytest.raises(PolicyError, match="drop the 'ms' suffix"):
        COUNT.parse("nr_queues", "5ms")
    us = TunableSpec(type="u64", unit="us", default=10)
    with pytest.raises(PolicyError, match="is in us"):
        us.parse("wait_us", "10us")


def test_range_error_mentions_the_range_and_unit() -> None:
    with pytest.raises(PolicyError) as info:
        SLICE.parse("slice_ns", "1")
    message = str(info.value)
    assert "slice_ns=1 ns" in message
    assert "[100000, 100000000]" in message


def test_type_limits_apply_without_explicit_range() -> None:
    u32 = TunableSpec(type="u32", default=0)
    assert u32.parse("x", str(2**32 - 1)) == 2**32 - 1
    with pytest.raises(PolicyError, match=r"\[0, 4294967295\]"):
        u32.parse("x", str(2**32))
    with pytest.raises(PolicyError, match="outside"):
        u32.parse("x", "-1")


def test_check_rejects_wrong_python_types() -> None:
    with pytest.raises(PolicyError, match="takes an integer"):
        COUNT.check("n", True)
    with pytest.raises(PolicyError, match="is a bool"):
        FLAG.check("f", 2)
    assert FLAG.check("f", 0) is False


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "u32", "default": 100, "min": 0, "max": 10},
        {"type": "u32", "default": -1},
        {"type": "u32", "default": 5, "min": 10, "max": 1},
        {"type": "s32", "default": 0, "max": 2**31},
        {"type": "u8", "default": 0},
        {"type": "u32", "default": 0, "step": 1},
    ],
)
def test_invalid_tunable_specs(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TunableSpec.model_validate(fields)


def test_default_outside_range_message() -> None:
    with pytest.raises(ValueError, match=r"default 100 outside \[0, 10\]"):
        TunableSpec.model_validate({"type": "u32", "default": 100, "min": 0, "max": 10})


def test_policy_spec_needs_name_and_summary() -> None:
    with pytest.raises(ValueError, match="summary"):
        PolicySpec.model_validate({"name": "x"})


def _policy_dir(tmp_path: Path, name: str, toml: str, source: bool = True) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "policy.toml").write_text(toml)
    if source:
        (folder / f"{name}.bpf.c").write_text("/* empty */\n")
    return folder


def test_load_policy_ok(tmp_path: Path) -> None:
    folder = _policy_dir(
        tmp_path,
        "mine",
        'name = "mine"\nsummary = "s"\n[tunables.n]\ntype = "u32"\ndefault = 3\nmax = 5\n',
    )
    policy = load_policy(folder)
    assert policy.name == "mine"
    assert policy.source == folder / "mine.bpf.c"
    assert policy.spec.tunables["n"].min == 0
    assert policy.spec.tunables["n"].max == 5
    assert policy.resolve_tunables() == {"n": 3}
    assert policy.resolve_tunables({"n": "5"}) == {"n": 5}


def test_load_policy_without_toml(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"no policy\.toml"):
        load_policy(tmp_path)


def test_load_policy_bad_toml(tmp_path: Path) -> None:
    folder = _policy_dir(tmp_path, "bad", 'name = "bad"\nsummary = \n')
    with pytest.raises(PolicyError, match=r"invalid .*policy\.toml"):
        load_policy(folder)


def test_load_policy_unknown_key(tmp_path: Path) -> None:
    folder = _policy_dir(tmp_path, "typo", 'name = "typo"\nsummary = "s"\ntunabels = {}\n')
    with pytest.raises(PolicyError, match="tunabels"):
        load_policy(folder)


def test_load_policy_bad_default(tmp_path: Path) -> None:
    folder = _policy_dir(
        tmp_path, "range", 'name = "range"\nsummary = "s"\n[tunables.n]\ntype = "u32"\ndefault = 9\nmax = 5\n'
    )
    with pytest.raises(PolicyError, match="outside"):
        load_policy(folder)


def test_load_policy_folder_name_mismatch(tmp_path: Path) -> None:
    folder = _policy_dir(tmp_path, "folder", 'name = "other"\nsummary = "s"\n', source=False)
    (folder / "other.bpf.c").write_text("")
    with pytest.raises(PolicyError, match="must agree"):
        load_policy(folder)


def test_load_policy_missing_source(tmp_path: Path) -> None:
    folder = _policy_dir(tmp_path, "nosrc", 'name = "nosrc"\nsummary = "s"\n', source=False)
    (folder / "policy.bpf.c").write_text("")  # the old name does not count
    with pytest.raises(PolicyError, match="no source file") as info:
        load_policy(folder)
    assert "nosrc.bpf.c" in str(info.value)


@pytest.mark.parametrize("name", ["Fifo", "9lives", "has-dash", "a" * 32, ""])
def test_load_policy_bad_name(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "policy.toml").write_text(f'name = "{name}"\nsummary = "s"\n')
    with pytest.raises(PolicyError, match="lower-case"):
        load_policy(folder)


def test_builtin_policies_include_fifo() -> None:
    names = [p.name for p in builtin_policies()]
    assert "fifo" in names
    assert "include" not in names


def test_find_builtin_by_name() -> None:
    fifo = find_policy("fifo")
    assert fifo.path == builtin_dir() / "fifo"
    assert fifo.source.is_file()
    assert fifo.spec.tunables["slice_ns"].unit == "ns"


def test_find_policy_unknown_lists_builtins() -> None:
    with pytest.raises(PolicyNotFound) as info:
        find_policy("nope")
    message = str(info.value)
    assert "no policy named 'nope'" in message
    for policy in builtin_policies():
        assert policy.name in message


def test_find_policy_include_dir_is_not_a_policy() -> None:
    with pytest.raises(PolicyNotFound):
        find_policy("include")


@pytest.mark.parametrize("name", ["good", "stall", "reject", "broken_c"])
def test_find_policy_by_path(name: str) -> None:
    policy = find_policy(str(FIXTURES / name))
    assert policy.name == name
    assert policy.path == (FIXTURES / name).resolve()
    assert policy.source.is_file()


def test_find_policy_by_relative_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES.parent)
    assert find_policy("policies/good").name == "good"


def test_find_policy_missing_path(tmp_path: Path) -> None:
    with pytest.raises(PolicyNotFound, match="no policy folder"):
        find_policy(str(tmp_path / "absent"))


def test_find_policy_dot_slash_is_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(FIXTURES / "good", tmp_path / "good")
    monkeypatch.chdir(tmp_path)
    assert find_policy("./good").path == tmp_path / "good"


def test_resolve_tunables_defaults_and_overrides() -> None:
    fifo = find_policy("fifo")
    assert fifo.resolve_tunables() == {"slice_ns": 20_000_000, "direct_idle": True}
    assert fifo.resolve_tunables({"slice_ns": "5ms", "direct_idle": "off"}) == {
        "slice_ns": 5_000_000,
        "direct_idle": False,
    }


def test_resolve_unknown_tunable_lists_known() -> None:
    with pytest.raises(PolicyError) as info:
        find_policy("fifo").resolve_tunables({"slice": "5ms"})
    message = str(info.value)
    assert "no tunable 'slice'" in message
    assert "direct_idle, slice_ns" in message


def test_resolve_tunable_on_policy_without_tunables() -> None:
    with pytest.raises(PolicyError, match=r"it has: none"):
        find_policy(str(FIXTURES / "stall")).resolve_tunables({"slice_ns": "1"})
