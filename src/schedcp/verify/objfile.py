"""Static facts of a sched_ext object built elsewhere, and the lint rules they can answer.

`schedcp verify --object FILE.bpf.o` vets a scheduler we have no source for (one of the
kernel's tools/sched_ext examples, a vendor's policy): the lint stage shrinks to what the
object shows, and the kernel-verifier, dynamic and performance stages run as for our own.

What an object shows, read without running anything:
- the ELF file (pyelftools): the programs (functions in `struct_ops*/` sections), every call
  instruction (a BPF helper is `call N` with the helper's number; a kfunc is a call relocated
  to an undefined, possibly __weak, symbol), the ops table's bytes in `.struct_ops.link` and
  its relocations (which callback points at which program), the license;
- its BTF (`bpftool btf dump file -j`): the layout of struct sched_ext_ops as the object was
  compiled, so .name, .timeout_ms and the callbacks are read by field name, not by offset;
- its line table (`llvm-objdump -d -l`), when built with -g: the source line of each call.

Helper numbers are named from libbpf's bpf_helper_defs.h, the header the lint also reads them
from, so both judge a helper by the same number.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import shutil
import subprocess
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, Literal

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import Section, SymbolTableSection
from pydantic import BaseModel, Field

from schedcp.bpf.btf import OPS_SECTIONS, OPS_STRUCTS, TOOL_TIMEOUT_S, btf_types, resolve
from schedcp.bpf.toolchain import vmlinux_h
from schedcp.errors import SchedcpError, SetupError
from schedcp.models.verification import Finding, StageResult
from schedcp.sandbox.kernel import Kernel
from schedcp.verify.lint import (
    ALLOWED_CALLS,
    ALLOWED_HELPERS,
    ALLOWED_KFUNCS,
    EXIT_RECORDED,
    FORBIDDEN,
    MAX_TIMEOUT_MS,
    MIN_TIMEOUT_MS,
    OPS_NAMES,
    TIMEOUT_BOUND,
    kfunc_name,
)

log = logging.getLogger(__name__)

OBJDUMP = "llvm-objdump-19"
HELPER_DEFS = (Path("/usr/include/bpf/bpf_helper_defs.h"), Path("/usr/local/include/bpf/bpf_helper_defs.h"))
# The kernel copies .name with bpf_obj_name_cpy(): letters, digits, '_' and '.', NUL within 128.
OPS_NAME_LEN = 128
_OPS_NAME_CHARS = re.compile(r"^[A-Za-z0-9_.]+$")

# sched_ext's kfunc renames (Linux 6.13): an object built for a range of kernels imports the
# old names __weak beside the new ones and calls whichever the kernel has. Judged as the
# operation they perform, which is on the allow-list under its new name.
RENAMED_KFUNCS = {
    "scx_bpf_dispatch": "scx_bpf_dsq_insert",
    "scx_bpf_dispatch_vtime": "scx_bpf_dsq_insert_vtime",
    "scx_bpf_consume": "scx_bpf_dsq_move_to_local",
    "scx_bpf_dispatch_from_dsq": "scx_bpf_dsq_move",
    "scx_bpf_dispatch_vtime_from_dsq": "scx_bpf_dsq_move_vtime",
    "scx_bpf_dispatch_from_dsq_set_slice": "scx_bpf_dsq_move_set_slice",
    "scx_bpf_dispatch_from_dsq_set_vtime": "scx_bpf_dsq_move_set_vtime",
}
_VERSIONED = re.compile(r"^(?P<base>\w+?)___v\d+$")

# BPF instruction encoding (include/uapi/linux/bpf.h).
_CALL = 0x85  # BPF_JMP | BPF_CALL
_CALLX = 0x8D  # BPF_JMP | BPF_CALL | BPF_X: through a register
_LD_IMM64 = 0x18  # two slots
_PSEUDO_CALL = 1
_PSEUDO_KFUNC_CALL = 2


class CallSite(BaseModel):
    """One call instruction in the object."""

    kind: Literal["helper", "kfunc", "subprog", "indirect"]
    name: str = Field(description="helper name (`helper #N` if libbpf has no name for N), kfunc as imported, function")
    number: int | None = Field(None, description="the helper's number")
    function: str = Field(description="the program or subprogram that makes the call")
    file: str | None = None
    line: int | None = None


class OpsTable(BaseModel):
    """One struct sched_ext_ops variable: what the kernel would attach."""

    variable: str
    section: str
    struct: str = Field("sched_ext_ops", description="sched_ext_ops, or sched_ext_ops_cid")
    name: str = Field(description="its .name ('' when unset)")
    timeout_ms: int | None = Field(None, description="None when unset (the kernel's 30 s default)")
    flags: int = 0
    callbacks: dict[str, str] = Field(default_factory=dict, description="ops field -> program")


class ObjectFacts(BaseModel):
    """What a compiled sched_ext object declares and calls, read from its ELF and BTF."""

    path: str
    sha256: str
    license: str = ""
    programs: dict[str, str] = Field(default_factory=dict, description="program -> ELF section")
    tables: list[OpsTable] = Field(default_factory=list, description="every struct sched_ext_ops in the object")
    kfuncs: list[str] = Field(default_factory=list, description="imported kfuncs as the object names them")
    weak_kfuncs: list[str] = Field(default_factory=list, description="those imported __weak (optional)")
    helpers: list[str] = Field(default_factory=list, description="BPF helpers called, by name")
    calls: list[CallSite] = Field(default_factory=list)

    @property
    def table(self) -> OpsTable | None:
        return self.tables[0] if self.tables else None

    @property
    def ops_variable(self) -> str | None:
        return self.table.variable if self.table else None

    @property
    def name(self) -> str | None:
        return self.table.name if self.table else None

    @property
    def timeout_ms(self) -> int | None:
        return self.table.timeout_ms if self.table else None

    @property
    def callbacks(self) -> list[str]:
        return sorted(self.table.callbacks) if self.table else []


# --- reading the object --------------------------------------------------------------------------


def inspect_object(obj: Path) -> ObjectFacts:
    """Read what `obj` (a BPF ELF object) declares and calls. Raises SchedcpError if it is not one."""
    data = obj.read_bytes()
    try:
        with obj.open("rb") as f:
            elf = ELFFile(f)
            if elf["e_machine"] != "EM_BPF":
                raise SchedcpError(
                    f"{obj} is not a BPF object (machine {elf['e_machine']}); build it with clang -target bpf"
                )
            return _read(obj, data, elf)
    except ELFError as exc:
        raise SchedcpError(f"{obj} is not an ELF object ({exc}); pass the .bpf.o clang produced") from exc


def _read(obj: Path, data: bytes, elf: ELFFile) -> ObjectFacts:
    symtab = elf.get_section_by_name(".symtab")
    if not isinstance(symtab, SymbolTableSection):
        raise SchedcpError(f"{obj} has no symbol table; do not strip BPF objects")
    sections = {i: elf.get_section(i) for i in range(elf.num_sections())}
    symbols = list(symtab.iter_symbols())
    functions: dict[int, list[tuple[int, int, str]]] = {}  # section -> (start, size, name)
    programs: dict[str, str] = {}
    for sym in symbols:
        if sym["st_info"]["type"] != "STT_FUNC" or not isinstance(sym["st_shndx"], int):
            continue
        functions.setdefault(sym["st_shndx"], []).append((sym["st_value"], sym["st_size"], sym.name))
        where = sections[sym["st_shndx"]].name
        if where != ".text":
            programs[sym.name] = where
    lines = _line_table(obj)
    helper_names = bpf_helper_names()
    calls: list[CallSite] = []
    for index, section in sections.items():
        if not section["sh_flags"] & 0x4:  # SHF_EXECINSTR
            continue
        relocs = _relocations(elf, index, symtab)
        calls += _calls(section, functions.get(index, []), relocs, helper_names, lines.get(section.name, {}))
    btf = btf_types(obj)
    tables = [t for sec in OPS_SECTIONS for t in _ops_tables(elf, sec, symbols, symtab, btf)]
    kfuncs, weak = _imports(btf, symbols)
    license_section = elf.get_section_by_name("license")
    license_text = license_section.data().split(b"\0", 1)[0].decode(errors="replace") if license_section else ""
    return ObjectFacts(
        path=str(obj),
        sha256=hashlib.sha256(data).hexdigest(),
        license=license_text,
        programs=programs,
        tables=tables,
        kfuncs=sorted(kfuncs),
        weak_kfuncs=sorted(weak),
        helpers=sorted({c.name for c in calls if c.kind == "helper"}),
        calls=calls,
    )


def _relocations(elf: ELFFile, index: int, symtab: SymbolTableSection) -> dict[int, Any]:
    """Relocations applying to section `index`: byte offset -> the symbol."""
    out: dict[int, Any] = {}
    for section in elf.iter_sections():
        if isinstance(section, RelocationSection) and section["sh_info"] == index:
            for rel in section.iter_relocations():
                out[rel["r_offset"]] = symtab.get_symbol(rel["r_info_sym"])
    return out


def _calls(
    section: Section,
    functions: list[tuple[int, int, str]],
    relocs: dict[int, Any],
    helper_names: dict[int, str],
    lines: dict[int, tuple[str, int]],
) -> Iterator[CallSite]:
    code = section.data()
    slot = 0
    while slot * 8 + 8 <= len(code):
        off = slot * 8
        op, regs = code[off], code[off + 1]
        imm = int.from_bytes(code[off + 4 : off + 8], "little", signed=True)
        src = regs >> 4
        function = next((n for start, size, n in functions if start <= off < start + max(size, 8)), section.name)
        file, line = lines.get(slot, (None, None))
        if op == _CALLX:
            yield CallSite(kind="indirect", name="(through a register)", function=function, file=file, line=line)
        elif op == _CALL and src == 0:
            name = helper_names.get(imm, f"helper #{imm}")
            yield CallSite(kind="helper", name=name, number=imm, function=function, file=file, line=line)
        elif op == _CALL and src in (_PSEUDO_CALL, _PSEUDO_KFUNC_CALL):
            sym = relocs.get(off)
            if sym is not None and (sym["st_shndx"] == "SHN_UNDEF" or src == _PSEUDO_KFUNC_CALL):
                yield CallSite(kind="kfunc", name=sym.name, function=function, file=file, line=line)
            else:
                target = sym.name if sym is not None and sym.name else f"{section.name}+{(slot + imm + 1) * 8}"
                yield CallSite(kind="subprog", name=target, function=function, file=file, line=line)
        slot += 2 if op == _LD_IMM64 else 1


def _imports(btf: dict[int, dict[str, Any]], symbols: list[Any]) -> tuple[set[str], set[str]]:
    """kfuncs the object imports: extern FUNCs in BTF's .ksyms (and undefined function symbols)."""
    names = {
        btf[v["type_id"]]["name"]
        for t in btf.values()
        if t["kind"] == "DATASEC" and t["name"] == ".ksyms"
        for v in t.get("vars", [])
        if btf.get(v["type_id"], {}).get("kind") == "FUNC"
    }
    weak = set()
    for sym in symbols:
        if sym["st_shndx"] == "SHN_UNDEF" and sym.name and sym["st_info"]["type"] in ("STT_FUNC", "STT_NOTYPE"):
            if sym.name in names or sym["st_info"]["type"] == "STT_FUNC":
                names.add(sym.name)
            if sym["st_info"]["bind"] == "STB_WEAK":
                weak.add(sym.name)
    return names, weak & names


def _ops_tables(
    elf: ELFFile, section_name: str, symbols: list[Any], symtab: SymbolTableSection, btf: dict[int, dict[str, Any]]
) -> Iterator[OpsTable]:
    section = elf.get_section_by_name(section_name)
    if section is None:
        return
    index = next(i for i in range(elf.num_sections()) if elf.get_section(i).name == section_name)
    data = section.data()
    relocs = _relocations(elf, index, symtab)
    types = {t["name"]: t for t in btf.values() if t["kind"] == "VAR"}
    for sym in symbols:
        if sym["st_shndx"] != index or sym["st_info"]["type"] != "STT_OBJECT":
            continue
        var = types.get(sym.name)
        struct = resolve(btf, var["type_id"]) if var else None
        if struct is None or struct.get("name") not in OPS_STRUCTS:
            continue
        base = sym["st_value"]
        table = OpsTable(variable=sym.name, section=section_name, struct=struct["name"], name="")
        for member in struct.get("members", []):
            off = base + member["bits_offset"] // 8
            mtype = resolve(btf, member["type_id"])
            kind = mtype.get("kind") if mtype else None
            if kind == "PTR":
                target = relocs.get(off)
                if target is not None:
                    table.callbacks[member["name"]] = target.name
            elif member["name"] == "name" and kind == "ARRAY":
                raw = data[off : off + OPS_NAME_LEN]
                table.name = raw.split(b"\0", 1)[0].decode(errors="replace")
            elif member["name"] in ("timeout_ms", "flags") and kind == "INT":
                size = int(mtype.get("size", 4)) if mtype else 4
                value = int.from_bytes(data[off : off + size], "little")
                if member["name"] == "timeout_ms":
                    table.timeout_ms = value or None
                else:
                    table.flags = value
        yield table


_OBJDUMP_SECTION = re.compile(r"^Disassembly of section (?P<name>\S+):")
_OBJDUMP_LINE = re.compile(r"^; (?P<file>\S+):(?P<line>\d+)(?::\d+)?\s*$")
_OBJDUMP_INSN = re.compile(r"^\s*(?P<slot>\d+):\s")


def _line_table(obj: Path) -> dict[str, dict[int, tuple[str, int]]]:
    """Section -> instruction slot -> (file, line) from the DWARF line table; empty without -g."""
    tool = shutil.which(OBJDUMP)
    if tool is None:
        log.warning("%s not found: calls in %s are reported without source lines", OBJDUMP, obj)
        return {}
    proc = subprocess.run(
        [tool, "-d", "-l", "--no-show-raw-insn", str(obj)], capture_output=True, text=True, timeout=TOOL_TIMEOUT_S
    )
    out: dict[str, dict[int, tuple[str, int]]] = {}
    current: dict[int, tuple[str, int]] = {}
    where: tuple[str, int] | None = None
    for text in proc.stdout.splitlines():
        if m := _OBJDUMP_SECTION.match(text):
            current = out.setdefault(m.group("name"), {})
            where = None
        elif m := _OBJDUMP_LINE.match(text):
            where = (m.group("file").rsplit("/", 1)[-1], int(m.group("line")))
        elif (m := _OBJDUMP_INSN.match(text)) and where is not None:
            current[int(m.group("slot"))] = where
    return out


@functools.cache
def bpf_helper_names() -> dict[int, str]:
    """BPF helper number -> name, from libbpf's bpf_helper_defs.h (as the lint reads them)."""
    decl = re.compile(r"\(\s*\*\s*const\s+(?P<name>\w+)\s*\)\s*\(.*\)\s*=\s*\(void\s*\*\)\s*(?P<n>\d+)\s*;")
    for path in HELPER_DEFS:
        if path.exists():
            return {int(m.group("n")): m.group("name") for m in decl.finditer(path.read_text())}
    raise SetupError(
        f"libbpf's bpf_helper_defs.h is not in {', '.join(str(p.parent) for p in HELPER_DEFS)}; install libbpf-dev "
        "(`make setup`)"
    )


# --- the object's lint stage ---------------------------------------------------------------------


def judged_kfunc(name: str) -> str:
    """The kfunc an imported name is judged as: libbpf's flavour suffix dropped (`___compat`), a
    version suffix (`___v2`) or the kernel's implementation prefix (`__scx_...`) dropped, and
    sched_ext's 6.13 renames mapped to the new names."""
    base = kfunc_name(name)
    if m := _VERSIONED.match(base):
        base = m.group("base")
    if base.startswith("__scx_bpf_"):
        base = base[2:]
    return RENAMED_KFUNCS.get(base, base)


def object_static_stage(
    obj: Path, *, kernel_kfuncs: Collection[str] | None = None, facts: ObjectFacts | None = None
) -> StageResult:
    """The lint stage for an object: the rules its ELF and BTF can answer, with lint's rule ids.

    - allowed-calls: every BPF helper called and every kfunc imported is on lint's allow-list,
      none on its never-list, and no call goes through a register. A kfunc imported __weak
      that `kernel_kfuncs` (the sandbox kernel's, when given) does not have is never called
      on that kernel (the object tests bpf_ksym_exists() first) and only noted.
    - ops-names: exactly one struct sched_ext_ops, with a .name the kernel accepts.
    - timeout-bound: timeout_ms, when set, within lint's bounds.
    - exit-recorded: an .exit callback is only noted: for a scheduler we do not repair, the
      kernel's own log still says why it was disabled.
    """
    t0 = time.monotonic()
    facts = facts if facts is not None else inspect_object(obj)  # the caller may have read it already
    findings = [*_check_calls(facts, kernel_kfuncs), *_check_ops(facts), *_check_timeout(facts)]
    evidence = _evidence(facts, kernel_kfuncs)
    return StageResult(
        stage="lint",
        passed=not findings,
        duration_s=time.monotonic() - t0,
        evidence=evidence,
        findings=findings,
        fix=findings[0].fix if findings else "",
    )


def _check_calls(facts: ObjectFacts, kernel_kfuncs: Collection[str] | None) -> list[Finding]:
    out: list[Finding] = []
    first: dict[str, CallSite] = {}
    for c in facts.calls:
        first.setdefault(f"{c.kind}:{c.name}", c)
    review = "If it really needs it, it must be reviewed and added to the allow-list in schedcp/verify/lint.py."
    for helper in facts.helpers:
        site = first[f"helper:{helper}"]
        if helper in FORBIDDEN:
            out.append(
                _finding(
                    ALLOWED_CALLS,
                    site,
                    f"`{helper}` is called (in {site.function}) and is forbidden in a scheduler: {FORBIDDEN[helper]}",
                    f"Do not deploy this scheduler; its author must remove the call to {helper}.",
                )
            )
        elif helper not in ALLOWED_HELPERS:
            out.append(
                _finding(
                    ALLOWED_CALLS,
                    site,
                    f"BPF helper `{helper}` (called in {site.function}) is not on the allow-list of helpers a "
                    "scheduler needs",
                    f"Its author must remove the call to {helper}. {review}",
                )
            )
    for name in facts.kfuncs:
        judged = judged_kfunc(name)
        shown = f"`{judged}`" + ("" if judged == name else f" (imported as `{name}`)")
        if name in facts.weak_kfuncs and kernel_kfuncs is not None and kfunc_name(name) not in kernel_kfuncs:
            continue  # resolved to nothing on this kernel: every call is behind bpf_ksym_exists()
        at = first.get(f"kfunc:{name}")
        if judged in FORBIDDEN:
            out.append(_finding(ALLOWED_CALLS, at, f"{shown} is forbidden in a scheduler: {FORBIDDEN[judged]}", ""))
        elif judged not in ALLOWED_KFUNCS:
            where = f" (called in {at.function})" if at else " (imported)"
            out.append(
                _finding(
                    ALLOWED_CALLS,
                    at,
                    f"unknown kfunc {shown}{where}: not on the allow-list of kfuncs a scheduler needs",
                    f"Its author must use allowed sched_ext kfuncs instead of {judged}. {review}",
                )
            )
    for call in facts.calls:
        if call.kind == "indirect":
            out.append(
                _finding(
                    ALLOWED_CALLS,
                    call,
                    f"a call through a register in {call.function}: what it calls cannot be checked",
                    "Its author must call helpers and kfuncs by name.",
                )
            )
    return out


def _check_ops(facts: ObjectFacts) -> list[Finding]:
    if not facts.tables:
        return [
            Finding(
                rule=OPS_NAMES,
                message="the object has no struct sched_ext_ops (or sched_ext_ops_cid) table in .struct_ops.link: it "
                "is not a sched_ext scheduler",
                file=Path(facts.path).name,
                fix='Pass the scheduler\'s BPF object (the one with SEC(".struct_ops.link") struct sched_ext_ops).',
            )
        ]
    out: list[Finding] = []
    if len(facts.tables) > 1:
        names = ", ".join(f"`{t.variable}`" for t in facts.tables)
        out.append(
            Finding(
                rule=OPS_NAMES,
                message=f"the object has {len(facts.tables)} struct sched_ext_ops tables ({names}): schedcp verifies "
                "and deploys one scheduler per object",
                file=Path(facts.path).name,
                fix="Build each scheduler into its own object.",
            )
        )
    for table in facts.tables:
        if not table.name:
            problem = "sets no .name: the kernel refuses to attach it"
        elif not _OPS_NAME_CHARS.match(table.name):
            problem = f'has .name "{table.name}": the kernel accepts only letters, digits, "_" and "." there'
        else:
            continue
        out.append(
            Finding(
                rule=OPS_NAMES,
                message=f"ops table `{table.variable}` {problem}",
                file=Path(facts.path).name,
                fix='Its author must set .name to a short identifier, e.g. `.name = "simple"`.',
            )
        )
    return out


def _check_timeout(facts: ObjectFacts) -> list[Finding]:
    out: list[Finding] = []
    for table in facts.tables:
        t = table.timeout_ms
        if t is None or MIN_TIMEOUT_MS <= t <= MAX_TIMEOUT_MS:
            continue
        why = (
            f"a stalled task would wait up to {t / 1000:g} s before the kernel ejects it, longer than the verifier's "
            f"{MAX_TIMEOUT_MS // 1000} s watch"
            if t > MAX_TIMEOUT_MS
            else "the watchdog would eject it for ordinary waits on a loaded machine"
        )
        out.append(
            Finding(
                rule=TIMEOUT_BOUND,
                message=f"ops table `{table.variable}` sets timeout_ms = {t}: {why}",
                file=Path(facts.path).name,
                fix=f"Its author must set timeout_ms between {MIN_TIMEOUT_MS} and {MAX_TIMEOUT_MS} ms.",
            )
        )
    return out


def _finding(rule: str, site: CallSite | None, message: str, fix: str) -> Finding:
    return Finding(
        rule=rule,
        message=message,
        file=site.file if site else None,
        line=site.line if site else None,
        fix=fix or "Do not deploy this scheduler; its author must remove the call.",
    )


def _evidence(facts: ObjectFacts, kernel_kfuncs: Collection[str] | None) -> list[str]:
    out = [f"object {Path(facts.path).name} (sha256 {facts.sha256[:12]}), license {facts.license or 'none'}"]
    for table in facts.tables:
        timeout = f"{table.timeout_ms} ms" if table.timeout_ms else "unset (the kernel's 30 s)"
        out.append(
            f'ops table `{table.variable}` (struct {table.struct}, {table.section}): .name "{table.name}", '
            f"timeout_ms {timeout}, "
            f"callbacks: {', '.join(sorted(table.callbacks)) or 'none'}"
        )
        if table.section != ".struct_ops.link":
            out.append(
                f"`{table.variable}` is in {table.section}, not .struct_ops.link: schedcp attaches through a pinned "
                "link, which needs .struct_ops.link"
            )
        if "exit" not in table.callbacks:
            out.append(
                f"`{table.variable}` has no .exit callback ({EXIT_RECORDED} is not required of an object): why the "
                "kernel disables it is read from the kernel log only"
            )
        else:
            out.append(
                f"`{table.variable}` has .exit ({table.callbacks['exit']}); whether it records the exit info is not "
                "checked in an object"
            )
    strong = [k for k in facts.kfuncs if k not in facts.weak_kfuncs]
    out.append(f"{len(facts.programs)} programs; kfuncs imported: {', '.join(strong) or 'none'}")
    if facts.weak_kfuncs:
        if kernel_kfuncs is None:
            out.append(f"optional (__weak) kfuncs: {', '.join(facts.weak_kfuncs)}")
        else:
            here = [k for k in facts.weak_kfuncs if kfunc_name(k) in kernel_kfuncs]
            absent = [k for k in facts.weak_kfuncs if kfunc_name(k) not in kernel_kfuncs]
            out.append(f"optional (__weak) kfuncs this kernel has: {', '.join(here) or 'none'}")
            if absent:
                out.append(f"optional kfuncs this kernel lacks, so never called here: {', '.join(absent)}")
    out.append(f"BPF helpers called: {', '.join(facts.helpers) or 'none'}")
    out.append(
        "not checked in an object (no source): enqueue-inserts, dsq-lifecycle, bounded-loops (the kernel verifier "
        "proves termination), tunables-match"
    )
    return out


_KSYM_DECL = re.compile(r"^extern (?P<decl>.*) __weak __ksym;$", re.MULTILINE)
_KSYM_NAME = re.compile(r"^[^(]*?\b(?P<name>\w+)\(")
_TYPE_ATTR = re.compile(r'__attribute__\(\(\w+\("[^"]*"\)\)\)')


def kernel_kfuncs(kernel: Kernel, cache_dir: Path) -> frozenset[str] | None:
    """The kfuncs `kernel` has, from the `extern ... __weak __ksym;` prototypes bpftool (>= 7.5)
    writes into its vmlinux.h; None when the header has none (an older bpftool), so callers
    never take "no list" for "no kfuncs"."""
    text = (vmlinux_h(kernel, cache_dir) / "vmlinux.h").read_text(errors="replace")
    names = set()
    for m in _KSYM_DECL.finditer(text):
        # Type tags (`__attribute__((btf_type_tag("address_space(1)")))`) come before the name.
        if (n := _KSYM_NAME.match(_TYPE_ATTR.sub("", m.group("decl")))) is not None:
            names.add(n.group("name"))
    return frozenset(names) or None
