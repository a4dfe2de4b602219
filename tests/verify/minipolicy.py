"""A minimal valid policy for the lint tests, written with one part changed.

Every part below is what a correct policy has; a test that wants a finding breaks exactly one
thing (`write_policy(folder, enqueue="...")`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from schedcp.bpf.policy import Policy, load_policy
from schedcp.models.verification import Finding

SOURCE = """\
// SPDX-License-Identifier: GPL-2.0
#include "schedcp.bpf.h"
#include "schedcp_common.bpf.h"

char _license[] SEC("license") = "GPL";

#define MINI_DSQ 0

{tunables}

u64 nr_enqueued;

{helpers}

SEC("struct_ops/mini_enqueue")
void BPF_PROG(mini_enqueue, struct task_struct *p, u64 enq_flags)
{{
{enqueue}
}}

SEC("struct_ops/mini_dispatch")
void BPF_PROG(mini_dispatch, s32 cpu, struct task_struct *prev)
{{
{dispatch}
}}

SEC("struct_ops.s/mini_init")
s32 BPF_PROG(mini_init)
{{
{init}
}}

SEC("struct_ops/mini_exit")
void BPF_PROG(mini_exit, struct scx_exit_info *ei)
{{
{exit}
}}

{ops}
"""

OPS = """\
SEC(".struct_ops.link")
struct sched_ext_ops {ops_var} = {{
	.enqueue	= (void *)mini_enqueue,
	.dispatch	= (void *)mini_dispatch,
	.init		= (void *)mini_init,
{exit_field}
{timeout}
{name_field}
}};"""

ENQUEUE = "\tscx_bpf_dsq_insert(p, MINI_DSQ, slice_ns, enq_flags);"

PARTS = {
    "tunables": "const volatile u64 slice_ns = 20000000;",
    "helpers": "",
    "enqueue": "\tscx_bpf_dsq_insert(p, MINI_DSQ, slice_ns, enq_flags);\n\t__sync_fetch_and_add(&nr_enqueued, 1);",
    "dispatch": "\tscx_bpf_dsq_move_to_local(MINI_DSQ);",
    "init": "\treturn scx_bpf_create_dsq(MINI_DSQ, -1);",
    "exit": "\tschedcp_record_exit(ei);",
    "ops_var": "mini_ops",
    "exit_field": "\t.exit\t\t= (void *)mini_exit,",
    "timeout": "\t.timeout_ms\t= 5000,",
    "name_field": '\t.name\t\t= "mini",',
}

TOML = """\
name = "mini"
summary = "Test policy for the lint: the smallest correct one."

{toml_tunables}
"""

TOML_TUNABLES = """\
[tunables.slice_ns]
type = "u64"
unit = "ns"
default = 20000000
min = 100000
max = 100000000
"""

Lint = Callable[..., list[Finding]]


def write_policy(folder: Path, toml_tunables: str = TOML_TUNABLES, ops: str | None = None, **parts: str) -> Policy:
    """The `mini` policy in `folder`/mini with `parts` replaced (see PARTS)."""
    unknown = set(parts) - set(PARTS)
    assert not unknown, f"no such part: {unknown}"
    values = {**PARTS, **parts}
    values["ops"] = OPS.format(**values) if ops is None else ops
    root = folder / "mini"
    root.mkdir(parents=True, exist_ok=True)
    (root / "mini.bpf.c").write_text(SOURCE.format(**values))
    (root / "policy.toml").write_text(TOML.format(toml_tunables=toml_tunables))
    return load_policy(root)


def line_of(folder: Path, text: str, file: str = "mini/mini.bpf.c") -> int:
    """The line of the written policy's `file` that contains `text` (exactly one must)."""
    lines = [n for n, line in enumerate((folder / file).read_text().splitlines(), start=1) if text in line]
    assert len(lines) == 1, f"{text!r} is on lines {lines}"
    return lines[0]
