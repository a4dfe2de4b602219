"""Read a BPF object's BTF (types by id, as bpftool's JSON dump gives them).

Shared by the verifier (what an object declares) and the ops-flags patch (where the flags of
its struct sched_ext_ops lie): both need struct layouts by field name, never by offsets
assumed for one kernel.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from schedcp.errors import SchedcpError, SetupError

BPFTOOL = "bpftool"
TOOL_TIMEOUT_S = 60.0
# The kernel's two ops structs (7.3): the classic one, and one whose callbacks speak in CPU ids
# (cids) instead of CPU numbers (the kernel's scx_qmap uses it).
OPS_STRUCTS = ("sched_ext_ops", "sched_ext_ops_cid")
OPS_SECTIONS = (".struct_ops.link", ".struct_ops")

BtfTypes = dict[int, dict[str, Any]]


def btf_types(obj: Path) -> BtfTypes:
    """Every BTF type of the object, by id."""
    tool = shutil.which(BPFTOOL)
    if tool is None:
        raise SetupError(f"{BPFTOOL} not found; run `make setup` to install the BPF toolchain")
    proc = subprocess.run(
        [tool, "-j", "btf", "dump", "file", str(obj)], capture_output=True, text=True, timeout=TOOL_TIMEOUT_S
    )
    if proc.returncode != 0:
        raise SchedcpError(
            f"{obj} has no BTF bpftool can read ({proc.stderr.strip()[-500:]}); build it with clang -g, which "
            "libbpf needs to load a struct_ops object anyway"
        )
    return {int(t["id"]): t for t in json.loads(proc.stdout).get("types", [])}


def resolve(btf: BtfTypes, type_id: int) -> dict[str, Any] | None:
    """Follow typedefs and qualifiers to the type itself."""
    seen = 0
    t = btf.get(type_id)
    while t is not None and t["kind"] in ("TYPEDEF", "CONST", "VOLATILE", "RESTRICT", "TYPE_TAG") and seen < 32:
        t = btf.get(t["type_id"])
        seen += 1
    return t
