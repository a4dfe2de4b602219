"""Tunables written into .rodata of a real clang-built object, and read back."""

from __future__ import annotations

from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from schedcp.bpf.policy import TunableSpec, find_policy
from schedcp.bpf.rodata import apply_tunables, read_tunables, rodata_vars
from schedcp.bpf.toolchain import compile_policy
from schedcp.config import Settings, load_settings
from schedcp.errors import BuildError, PolicyError
from schedcp.sandbox.kernel import find_kernel

pytestmark = pytest.mark.bpf

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"
FIFO_TYPES = {"slice_ns": "u64", "direct_idle": "bool"}

SIGNED_SOURCE = """\
const volatile int bias = -5;
const volatile unsigned int count = 7;
const volatile long long big = -1;
const volatile unsigned long long huge = 1;
char _license[] __attribute__((section("license"), used)) = "GPL";
"""


def _compile(source: Path, out: Path) -> Path:
    settings = Settings()
    return compile_policy(source, out, find_kernel(settings.kernels_dir), settings.cache_dir)


@pytest.fixture(scope="module")
def fifo_obj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _compile(find_policy("fifo").source, tmp_path_factory.mktemp("rodata") / "fifo.o")


def test_rodata_vars_lists_the_tunables(fifo_obj: Path) -> None:
    variables = rodata_vars(fifo_obj)
    assert set(variables) >= {"slice_ns", "direct_idle"}
    assert variables["slice_ns"].size == 8
    assert variables["direct_idle"].size == 1
    # Stats live in .bss, not .rodata.
    assert "nr_enqueued" not in variables


def test_file_offsets_point_into_rodata(fifo_obj: Path) -> None:
    with fifo_obj.open("rb") as f:
        rodata = ELFFile(f).get_section_by_name(".rodata")
        start, size = rodata["sh_offset"], rodata["sh_size"]
    for var in rodata_vars(fifo_obj).values():
        assert start <= var.file_offset
        assert var.file_offset + var.size <= start + size


def test_read_defaults(fifo_obj: Path) -> None:
    assert read_tunables(fifo_obj, FIFO_TYPES) == {"slice_ns": 20_000_000, "direct_idle": 1}


def test_apply_and_read_back(fifo_obj: Path, tmp_path: Path) -> None:
    before = fifo_obj.read_bytes()
    out = apply_tunables(fifo_obj, tmp_path / "patched.o", FIFO_TYPES, {"slice_ns": 5_000_000, "direct_idle": False})
    assert out == tmp_path / "patched.o"
    assert read_tunables(out, FIFO_TYPES) == {"slice_ns": 5_000_000, "direct_idle": 0}
    assert fifo_obj.read_bytes() == before, "the input object must not change"
    after = out.read_bytes()
    assert len(after) == len(before)
    variables = rodata_vars(fifo_obj)
    touched = set()
    for name in FIFO_TYPES:
        var = variables[name]
        touched |= set(range(var.file_offset, var.file_offset + var.size))
    changed = {i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b}
    assert changed
    assert changed <= touched, "only the tunables' bytes may change"


def test_apply_defaults_is_identity(fifo_obj: Path, tmp_path: Path) -> None:
    out = apply_tunables(fifo_obj, tmp_path / "same.o", FIFO_TYPES, {"slice_ns": 20_000_000, "direct_idle": True})
    assert out.read_bytes() == fifo_obj.read_bytes()


def test_tunable_missing_from_object(fifo_obj: Path, tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="not a `const volatile` global") as info:
        apply_tunables(fifo_obj, tmp_path / "x.o", {"nr_queues": "u32"}, {"nr_queues": 3})
    assert "nr_queues" in str(info.value)
    assert not (tmp_path / "x.o").exists()


def test_stat_is_not_a_tunable(fifo_obj: Path, tmp_path: Path) -> None:
    # A .bss counter of the right size is still not settable before load.
    with pytest.raises(BuildError, match="nr_enqueued"):
        apply_tunables(fifo_obj, tmp_path / "x.o", {"nr_enqueued": "u64"}, {"nr_enqueued": 1})


def test_size_mismatch(fifo_obj: Path, tmp_path: Path) -> None:
    with pytest.raises(BuildError) as info:
        apply_tunables(fifo_obj, tmp_path / "x.o", {"slice_ns": "u32"}, {"slice_ns": 1})
    message = str(info.value)
    assert "slice_ns" in message
    assert "4 bytes" in message
    assert "8 bytes in C" in message


def test_signed_and_unsigned_widths(tmp_path: Path) -> None:
    src = tmp_path / "widths.bpf.c"
    src.write_text(SIGNED_SOURCE)
    obj = _compile(src, tmp_path / "widths.o")
    types = {"bias": "s32", "count": "u32", "big": "s64", "huge": "u64"}
    assert {n: v.size for n, v in rodata_vars(obj).items()} == {"bias": 4, "count": 4, "big": 8, "huge": 8}
    assert read_tunables(obj, types) == {"bias": -5, "count": 7, "big": -1, "huge": 1}
    values = {"bias": -(2**31), "count": 2**32 - 1, "big": -(2**63), "huge": 2**64 - 1}
    patched = apply_tunables(obj, tmp_path / "patched.o", types, values)
    assert read_tunables(patched, types) == values


def test_object_without_rodata(tmp_path: Path) -> None:
    obj = _compile(FIXTURES / "stall" / "stall.bpf.c", tmp_path / "stall.o")
    assert rodata_vars(obj) == {}
    assert read_tunables(obj, {"slice_ns": "u64"}) == {}


def test_str16_tunable_round_trips_through_rodata(tmp_path: Path) -> None:
    src = tmp_path / "named.bpf.c"
    src.write_text(
        '#include "schedcp.bpf.h"\n'
        'char _license[] SEC("license") = "GPL";\n'
        'const volatile char long_prefix[16] = "lt_long_";\n'
        "u64 seen;\n"
        "SEC(\"tp_btf/sched_switch\") int BPF_PROG(named_sw) { if (long_prefix[0] == 'x') seen++; return 0; }\n"
    )
    kernel = find_kernel(load_settings().kernels_dir)
    obj = compile_policy(src, tmp_path / "named.o", kernel, load_settings().cache_dir)
    assert rodata_vars(obj)["long_prefix"].size == 16
    assert read_tunables(obj, {"long_prefix": "str16"}) == {"long_prefix": "lt_long_"}
    out = apply_tunables(obj, tmp_path / "p.o", {"long_prefix": "str16"}, {"long_prefix": "batch_big"})
    assert read_tunables(out, {"long_prefix": "str16"}) == {"long_prefix": "batch_big"}


def test_str16_spec_validation() -> None:
    spec = TunableSpec(type="str16", default="lt_long_")
    assert spec.parse("p", "job_") == "job_"
    with pytest.raises(PolicyError, match="15 printable"):
        spec.parse("p", "x" * 16)
    with pytest.raises(PolicyError, match="15 printable"):
        spec.parse("p", "has space")
    with pytest.raises(ValueError, match="15 printable"):
        TunableSpec(type="str16", default="é")
    with pytest.raises(ValueError, match="is not a u64"):
        TunableSpec(type="u64", default="text")
