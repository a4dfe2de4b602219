"""Parsers of what the guest reports: bpftool map dumps and the kernel log (captured for real)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schedcp.bpf.loader import find_ejection, internal_map_name, parse_datasec_dump

DATA = Path(__file__).resolve().parents[1] / "data"


def _text(name: str) -> str:
    return (DATA / name).read_text()


def test_bss_counters_of_fifo() -> None:
    values = parse_datasec_dump(_text("bpftool-map-dump-bss.json"))
    for counter in ("nr_enqueued", "nr_direct_dispatched", "nr_dispatched"):
        assert isinstance(values[counter], int)
        assert values[counter] > 0
    assert values["nr_direct_dispatched"] == 281
    exit_info = values["schedcp_exit_info"]
    assert exit_info["kind"] == 0  # still running when dumped: nothing recorded
    assert exit_info["reason"] == ""


def test_rodata_tunables() -> None:
    values = parse_datasec_dump(_text("bpftool-map-dump-rodata.json"))
    assert values == {"slice_ns": 5_000_000, "direct_idle": True}
    assert values["direct_idle"] is True


def test_stall_exit_record() -> None:
    values = parse_datasec_dump(_text("bpftool-map-dump-bss-stall.json"))
    exit_info = values["schedcp_exit_info"]
    assert exit_info["kind"] == 1026  # SCX_EXIT_ERROR_STALL
    assert exit_info["reason"] == "runnable task stall"
    assert exit_info["msg"].startswith("watchdog failed to check in")
    assert values["nr_enqueued"] == 7
    assert values["nr_dispatch_calls"] == 66


@pytest.mark.parametrize("text", ["", "[]"])
def test_empty_dump(text: str) -> None:
    assert parse_datasec_dump(text) == {}


def test_dump_without_btf_formatting_is_skipped() -> None:
    # Without BTF, bpftool prints raw bytes only: nothing to name, nothing to report.
    raw = [{"key": ["0x00", "0x00", "0x00", "0x00"], "value": ["0x01", "0x00"]}]
    assert parse_datasec_dump(json.dumps(raw)) == {}


def test_dump_of_several_entries_merges_them() -> None:
    dump = [
        {"formatted": {"value": {".bss": [{"a": 1}, {"b": 2}]}}},
        {"formatted": {"value": {".bss": [{"c": 3}]}}},
    ]
    assert parse_datasec_dump(json.dumps(dump)) == {"a": 1, "b": 2, "c": 3}


def _dmesg() -> list[str]:
    return _text("dmesg-fifo-then-stall.txt").splitlines()


def test_ejection_of_the_stall() -> None:
    ejection = find_ejection(_dmesg(), "stall")
    assert ejection is not None
    assert ejection.reason == "runnable task stall"
    assert ejection.details == ["stall: watchdog failed to check in for 3.004s"]


def test_detach_of_fifo() -> None:
    ejection = find_ejection(_dmesg(), "fifo")
    assert ejection is not None
    assert ejection.reason == "unregistered from user space"


def test_details_stop_at_the_next_scheduler() -> None:
    ejection = find_ejection(_dmesg(), "fifo")
    assert ejection is not None
    assert ejection.details == []


def test_ejection_of_an_unknown_scheduler() -> None:
    assert find_ejection(_dmesg(), "nope") is None
    assert find_ejection([], "fifo") is None


def test_enabled_line_alone_is_not_an_ejection() -> None:
    assert find_ejection(_dmesg()[:2], "fifo") is None


def test_the_last_disable_wins() -> None:
    lines = [
        '[1.0] sched_ext: BPF scheduler "good" disabled (runnable task stall)',
        '[2.0] sched_ext: BPF scheduler "good" enabled',
        '[3.0] sched_ext: BPF scheduler "good" disabled (unregistered from user space)',
    ]
    ejection = find_ejection(lines, "good")
    assert ejection is not None
    assert ejection.reason == "unregistered from user space"


def test_name_must_match_exactly() -> None:
    lines = ['[1.0] sched_ext: BPF scheduler "fifo2" disabled (runnable task stall)']
    assert find_ejection(lines, "fifo") is None


@pytest.mark.parametrize(
    ("obj", "section", "expected"),
    [
        ("fifo8fdc", "bss", "fifo8fdc.bss"),
        ("fifo8fdc", "rodata", "fifo8fdc.rodata"),
        ("good", "data", "good.data"),
        ("averylongobjectname", "rodata", "averylon.rodata"),
    ],
)
def test_internal_map_name(obj: str, section: str, expected: str) -> None:
    name = internal_map_name(obj, section)
    assert name == expected
    assert len(name) <= 15  # BPF_OBJ_NAME_LEN - 1
