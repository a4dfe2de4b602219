"""Set a compiled policy's `const volatile` tunables by patching its .rodata in the ELF object.

libbpf loads .rodata exactly as the object holds it and freezes it, so writing the values
into a copy of the object before load is equivalent to libbpf's set-before-load, keeps the
loader a plain `bpftool struct_ops register`, and makes the patched object's hash identify
the exact code *and* tunables that a verification report covers.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from schedcp.bpf.policy import SIZES, TunableType
from schedcp.errors import BuildError
from schedcp.models.vocabulary import TunableValue

_FORMATS = {"u32": "<I", "u64": "<Q", "s32": "<i", "s64": "<q", "bool": "<B"}


@dataclass(frozen=True)
class RodataVar:
    name: str
    file_offset: int
    size: int


def rodata_vars(obj: Path) -> dict[str, RodataVar]:
    """Global variables in the object's .rodata with their file offsets."""
    with obj.open("rb") as f:
        elf = ELFFile(f)
        rodata_index = None
        rodata_offset = 0
        for i, sec in enumerate(elf.iter_sections()):
            if sec.name == ".rodata":
                rodata_index, rodata_offset = i, sec["sh_offset"]
        if rodata_index is None:
            return {}
        symtab = elf.get_section_by_name(".symtab")
        if not isinstance(symtab, SymbolTableSection):
            raise BuildError(f"{obj} has no symbol table; compile with clang -g")
        out = {}
        for sym in symtab.iter_symbols():
            if sym["st_shndx"] == rodata_index and sym["st_info"]["type"] == "STT_OBJECT":
                out[sym.name] = RodataVar(sym.name, rodata_offset + sym["st_value"], sym["st_size"])
        return out


def apply_tunables(obj: Path, out: Path, types: Mapping[str, TunableType], values: Mapping[str, TunableValue]) -> Path:
    """Write `out`: `obj` with each tunable's value in .rodata; sizes must match the C types."""
    data = bytearray(obj.read_bytes())
    variables = rodata_vars(obj)
    for name, value in values.items():
        var = variables.get(name)
        if var is None:
            raise BuildError(f"tunable {name} is in policy.toml but not a `const volatile` global in the object")
        kind = types[name]
        if var.size != SIZES[kind]:
            raise BuildError(f"tunable {name} is {kind} in policy.toml ({SIZES[kind]} bytes) but {var.size} bytes in C")
        if kind == "str16":
            data[var.file_offset : var.file_offset + var.size] = str(value).encode().ljust(var.size, b"\0")
        else:
            struct.pack_into(_FORMATS[kind], data, var.file_offset, int(value))
    out.write_bytes(bytes(data))
    return out


def read_tunables(obj: Path, types: Mapping[str, TunableType]) -> dict[str, int | str]:
    """The values a (patched) object will load with: lets tests and reports check the bytes."""
    data = obj.read_bytes()
    variables = rodata_vars(obj)
    out: dict[str, int | str] = {}
    for name, kind in types.items():
        if name not in variables:
            continue
        var = variables[name]
        if kind == "str16":
            out[name] = data[var.file_offset : var.file_offset + var.size].split(b"\0", 1)[0].decode()
        else:
            out[name] = struct.unpack_from(_FORMATS[kind], data, var.file_offset)[0]
    return out
