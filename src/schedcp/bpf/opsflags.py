"""Set bits in a compiled policy's `struct sched_ext_ops .flags`, the way rodata.py sets tunables.

The runtime's canary attaches any policy in partial mode (SCX_OPS_SWITCH_PARTIAL: only tasks
whose policy is SCHED_EXT run on it) without asking its author for a flag: libbpf loads the
ops struct exactly as the object's struct_ops section holds it, so ORing the bit into a copy of
the object before load is the same as the author having written it. The field is found by name
in the object's BTF, never at an offset assumed for one kernel; the bit's value is read from the
kernel's own BTF (vmlinux.h).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from schedcp.bpf.btf import OPS_SECTIONS, OPS_STRUCTS, btf_types, resolve
from schedcp.errors import BuildError


def ops_flags_field(obj: Path) -> tuple[int, int]:
    """(file offset, size) of the `flags` field of the object's one sched_ext ops struct."""
    btf = btf_types(obj)
    variables = {t["name"]: t for t in btf.values() if t["kind"] == "VAR"}
    found: list[tuple[int, int]] = []
    with obj.open("rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        if not isinstance(symtab, SymbolTableSection):
            raise BuildError(f"{obj} has no symbol table")
        for index, section in enumerate(elf.iter_sections()):
            if section.name not in OPS_SECTIONS:
                continue
            for sym in symtab.iter_symbols():
                if sym["st_shndx"] != index or sym["st_info"]["type"] != "STT_OBJECT":
                    continue
                var = variables.get(sym.name)
                struct = resolve(btf, var["type_id"]) if var else None
                if struct is None or struct.get("name") not in OPS_STRUCTS:
                    continue
                for member in struct.get("members", []):
                    mtype = resolve(btf, member["type_id"])
                    if member["name"] == "flags" and mtype is not None and mtype.get("kind") == "INT":
                        offset = section["sh_offset"] + sym["st_value"] + member["bits_offset"] // 8
                        found.append((offset, int(mtype.get("size", 8))))
    if len(found) != 1:
        raise BuildError(f"{obj} has {len(found)} sched_ext ops structs with a flags field; expected exactly one")
    return found[0]


def read_ops_flags(obj: Path) -> int:
    offset, size = ops_flags_field(obj)
    with obj.open("rb") as f:
        f.seek(offset)
        return int.from_bytes(f.read(size), "little")


def with_ops_flags(obj: Path, out: Path, bits: int) -> Path:
    """A copy of `obj` at `out` whose ops flags have `bits` set as well."""
    offset, size = ops_flags_field(obj)
    shutil.copyfile(obj, out)
    with out.open("r+b") as f:
        f.seek(offset)
        value = int.from_bytes(f.read(size), "little") | bits
        f.seek(offset)
        f.write(value.to_bytes(size, "little"))
    return out


def enum_value(vmlinux_h: Path, name: str) -> int:
    """An enumerator's value as the kernel's BTF gives it (vmlinux.h: `NAME = 8,`)."""
    m = re.search(rf"\b{re.escape(name)} = (-?\d+)", vmlinux_h.read_text(errors="replace"))
    if m is None:
        raise BuildError(f"{name} is not in {vmlinux_h}: this kernel's sched_ext does not have it")
    return int(m.group(1))
