"""The verifier's lint stage: our own static rules on a policy's BPF C source.

The kernel's verifier proves a program memory-safe and terminating; it does not know what a
scheduler must do. A policy that drops a task in ops.enqueue, parks tasks in a DSQ nothing
reads, or calls bpf_send_signal() passes it, and is found only when the watchdog ejects it or
a process dies. These rules catch such mistakes from the source, in well under a second, with
the file, the line and what to change, so an LLM can repair its policy before a VM boots.

They work on clang's own AST of the source (ast.py), not on text: macros such as BPF_PROG,
bpf_for and scx_error() are expanded as the compiler expands them, and calls are followed
into the functions a policy defines and the shared headers (schedcp_common.bpf.h), so an
enqueue that inserts through a helper passes and one whose helper inserts only sometimes
does not.

Each rule is listed in RULES with why it exists; docs/verify.md shows them (render_rules()).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from schedcp.bpf.policy import Policy, TunableSpec, TunableType
from schedcp.errors import PolicyError
from schedcp.models.verification import Finding
from schedcp.models.vocabulary import TunableValue
from schedcp.sandbox.kernel import Kernel
from schedcp.verify.ast import (
    Node,
    TranslationUnit,
    c_string,
    call_args,
    const_int,
    is_constant,
    parse_policy_source,
    strip,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rule:
    """One lint rule: its id (what a Finding's `rule` says), what it checks, and why."""

    id: str
    title: str
    rationale: str


ALLOWED_CALLS = "allowed-calls"
ENQUEUE_INSERTS = "enqueue-inserts"
DSQ_LIFECYCLE = "dsq-lifecycle"
BOUNDED_LOOPS = "bounded-loops"
EXIT_RECORDED = "exit-recorded"
TUNABLES_MATCH = "tunables-match"
OPS_NAMES = "ops-names"
TIMEOUT_BOUND = "timeout-bound"

# --- thresholds ------------------------------------------------------------------------------

# The verifier's dynamic stage watches a policy for 10 s and must see the kernel's watchdog
# eject a stalling one within that time, so timeout_ms may not exceed it. (The kernel's own
# maximum, SCX_WATCHDOG_MAX_TIMEOUT, is 30 s, which is also what an unset timeout_ms means.)
MAX_TIMEOUT_MS = 10_000
# Below 1 s the watchdog mistakes ordinary waiting for a stall: with 20 ms slices, 50
# runnable tasks on our 2-vCPU sandbox wait 50 x 20 ms / 2 = 500 ms each round under any
# fair policy, and a build workload has that many.
MIN_TIMEOUT_MS = 1_000
# Custom DSQ ids have bit 63 clear; ids with it set are the kernel's built-in DSQs
# (SCX_DSQ_GLOBAL, SCX_DSQ_LOCAL, SCX_DSQ_LOCAL_ON | cpu), which need no create.
DSQ_BUILTIN_BIT = 1 << 63

# --- what a policy may call -----------------------------------------------------------------

# sched_ext kfuncs of our kernel (shared/data/kfuncs-7.3.4.txt) a scheduler may call. Left out:
# the sub-scheduler controls (scx_bpf_sub_*) and scx_bpf_cid_override, which act on other
# schedulers or on the CPU-id mapping every scheduler sees; schedcp policies are root
# schedulers and none needs them. Add one here after review when a policy does.
SCX_KFUNCS = frozenset(
    {
        "scx_bpf_cid_curr",
        "scx_bpf_cid_to_cpu",
        "scx_bpf_cid_topo",
        "scx_bpf_cidperf_cap",
        "scx_bpf_cidperf_cur",
        "scx_bpf_cidperf_set",
        "scx_bpf_cpu_curr",
        "scx_bpf_cpu_node",
        "scx_bpf_cpu_to_cid",
        "scx_bpf_cpuperf_cap",
        "scx_bpf_cpuperf_cur",
        "scx_bpf_cpuperf_set",
        "scx_bpf_create_dsq",
        "scx_bpf_destroy_dsq",
        "scx_bpf_dispatch_cancel",
        "scx_bpf_dispatch_nr_slots",
        "scx_bpf_dsq_insert",
        "scx_bpf_dsq_insert_vtime",
        "scx_bpf_dsq_move",
        "scx_bpf_dsq_move_set_slice",
        "scx_bpf_dsq_move_set_vtime",
        "scx_bpf_dsq_move_to_local",
        "scx_bpf_dsq_move_vtime",
        "scx_bpf_dsq_nr_queued",
        "scx_bpf_dsq_peek",
        "scx_bpf_dsq_reenq",
        "scx_bpf_dump_bstr",
        "scx_bpf_error_bstr",
        "scx_bpf_events",
        "scx_bpf_exit_bstr",
        "scx_bpf_get_idle_cpumask",
        "scx_bpf_get_idle_cpumask_node",
        "scx_bpf_get_idle_smtmask",
        "scx_bpf_get_idle_smtmask_node",
        "scx_bpf_get_online_cpumask",
        "scx_bpf_get_possible_cpumask",
        "scx_bpf_kick_cid",
        "scx_bpf_kick_cpu",
        "scx_bpf_locked_rq",
        "scx_bpf_now",
        "scx_bpf_nr_cids",
        "scx_bpf_nr_cpu_ids",
        "scx_bpf_nr_node_ids",
        "scx_bpf_nr_online_cids",
        "scx_bpf_online_cmask",
        "scx_bpf_pick_any_cpu",
        "scx_bpf_pick_any_cpu_node",
        "scx_bpf_pick_idle_cpu",
        "scx_bpf_pick_idle_cpu_node",
        "scx_bpf_put_cpumask",
        "scx_bpf_put_idle_cpumask",
        "scx_bpf_reenqueue_local",
        "scx_bpf_select_cpu_and",
        "scx_bpf_select_cpu_dfl",
        "scx_bpf_task_cgroup",
        "scx_bpf_task_cid",
        "scx_bpf_task_cpu",
        "scx_bpf_task_running",
        "scx_bpf_task_set_dsq_vtime",
        "scx_bpf_task_set_slice",
        "scx_bpf_test_and_clear_cpu_idle",
        "scx_bpf_this_cid",
        "scx_bpf_tid_to_task",
    }
)

# Generic BPF kfuncs schedulers use (sched-ext/scx's common headers): cpumasks, cgroup and
# task references, RCU, open-coded iterators (bpf_for, bpf_repeat, DSQ walks), BPF-owned
# objects and their trees and lists, locks, string helpers for matching task names.
BPF_KFUNCS = frozenset(
    {
        *(
            f"bpf_cpumask_{op}"
            for op in [
                "acquire",
                "and",
                "any_and_distribute",
                "any_distribute",
                "clear",
                "clear_cpu",
                "copy",
                "create",
                "empty",
                "equal",
                "first",
                "first_and",
                "first_zero",
                "full",
                "intersects",
                "or",
                "populate",
                "release",
                "set_cpu",
                "setall",
                "subset",
                "test_and_clear_cpu",
                "test_and_set_cpu",
                "test_cpu",
                "weight",
                "xor",
            ]
        ),
        "bpf_cgroup_acquire",
        "bpf_cgroup_ancestor",
        "bpf_cgroup_from_id",
        "bpf_cgroup_release",
        "bpf_task_acquire",
        "bpf_task_release",
        "bpf_task_from_pid",
        "bpf_task_from_vpid",
        "bpf_task_under_cgroup",
        "bpf_rcu_read_lock",
        "bpf_rcu_read_unlock",
        "bpf_preempt_disable",
        "bpf_preempt_enable",
        "bpf_res_spin_lock",
        "bpf_res_spin_unlock",
        *(
            f"bpf_iter_{kind}_{op}"
            for kind in ("num", "bits", "scx_dsq", "css", "css_task", "task")
            for op in ("new", "next", "destroy")
        ),
        *(f"bpf_{name}" for name in ("obj_new", "obj_drop", "percpu_obj_new", "percpu_obj_drop", "refcount_acquire")),
        *(
            f"bpf_{name}_impl"
            for name in ("obj_new", "obj_drop", "percpu_obj_new", "percpu_obj_drop", "refcount_acquire")
        ),
        *(f"bpf_rbtree_{op}" for op in ("add", "add_impl", "first", "remove", "left", "right", "root")),
        *(
            f"bpf_list_{op}"
            for op in [
                "push_front",
                "push_back",
                "push_front_impl",
                "push_back_impl",
                "pop_front",
                "pop_back",
                "front",
                "back",
                "empty",
            ]
        ),
        "bpf_cast_to_kern_ctx",
        "bpf_rdonly_cast",
        "bpf_timer_cancel_async",
        *(
            f"bpf_{name}"
            for name in [
                "strcmp",
                "strcasecmp",
                "strncasecmp",
                "strlen",
                "strnlen",
                "strchr",
                "strchrnul",
                "strnchr",
                "strrchr",
                "strstr",
                "strnstr",
            ]
        ),
    }
)

ALLOWED_KFUNCS = SCX_KFUNCS | BPF_KFUNCS

# BPF helpers (bpf_helper_defs.h) a scheduler legitimately needs: maps and local storage,
# clocks, CPU and task identity, reading kernel memory, locks, timers, bounded loops,
# ring buffers and printk for reporting.
ALLOWED_HELPERS = frozenset(
    {
        "bpf_map_lookup_elem",
        "bpf_map_update_elem",
        "bpf_map_delete_elem",
        "bpf_map_push_elem",
        "bpf_map_pop_elem",
        "bpf_map_peek_elem",
        "bpf_map_lookup_percpu_elem",
        "bpf_for_each_map_elem",
        "bpf_task_storage_get",
        "bpf_task_storage_delete",
        "bpf_cgrp_storage_get",
        "bpf_cgrp_storage_delete",
        "bpf_ktime_get_ns",
        "bpf_ktime_get_boot_ns",
        "bpf_ktime_get_coarse_ns",
        "bpf_jiffies64",
        "bpf_get_smp_processor_id",
        "bpf_get_numa_node_id",
        "bpf_get_prandom_u32",
        "bpf_get_current_pid_tgid",
        "bpf_get_current_comm",
        "bpf_get_current_task",
        "bpf_get_current_task_btf",
        "bpf_get_current_cgroup_id",
        "bpf_probe_read_kernel",
        "bpf_probe_read_kernel_str",
        "bpf_this_cpu_ptr",
        "bpf_per_cpu_ptr",
        "bpf_kptr_xchg",
        "bpf_spin_lock",
        "bpf_spin_unlock",
        "bpf_timer_init",
        "bpf_timer_set_callback",
        "bpf_timer_start",
        "bpf_timer_cancel",
        "bpf_loop",
        "bpf_ringbuf_output",
        "bpf_ringbuf_reserve",
        "bpf_ringbuf_submit",
        "bpf_ringbuf_discard",
        "bpf_ringbuf_query",
        "bpf_trace_printk",
        "bpf_trace_vprintk",
        "bpf_snprintf",
        "bpf_strncmp",
    }
)

# Calls that are never right in a scheduler, with the reason the finding gives.
FORBIDDEN = {
    "bpf_send_signal": "it signals whatever task is current, and a scheduler callback runs in any task's context, "
    "so it would stop or kill an unrelated process",
    "bpf_send_signal_thread": "it signals whatever thread is current, and a scheduler callback runs in any task's "
    "context, so it would stop or kill an unrelated thread",
    "bpf_send_signal_task": "a scheduler has no business signalling tasks; it can stop or kill any process",
    "bpf_probe_write_user": "it writes into the memory of whatever user process is current, corrupting an unrelated "
    "program",
    "bpf_override_return": "it makes a kernel function return what the program says, for error injection, which "
    "can break the kernel",
    "bpf_sys_bpf": "it runs bpf() syscall commands from inside the kernel, so it could load or change other BPF "
    "programs",
    "bpf_sys_close": "it closes file descriptors of whatever process is current",
}

# Compiler builtins that compile to plain BPF instructions (atomics, memcpy/memset, CO-RE).
BUILTIN_PREFIXES = ("__builtin_", "__sync_", "__atomic_")

# ops.enqueue's duty: one of these on every path (or an abort, below).
INSERTS = frozenset({"scx_bpf_dsq_insert", "scx_bpf_dsq_insert_vtime"})
# scx_error() / scx_exit(): the kernel disables the policy with a reason; the task does not
# have to be queued any more (every task goes back to the fair scheduler).
ABORTS = frozenset({"scx_bpf_error_bstr", "scx_bpf_exit_bstr"})
# Busy-waiting on one of these in a loop condition spins a CPU inside the scheduler.
CLOCKS = frozenset(
    {"bpf_ktime_get_ns", "bpf_ktime_get_boot_ns", "bpf_ktime_get_coarse_ns", "bpf_jiffies64", "scx_bpf_now"}
)
# Functions that copy memory: (destination argument, source argument).
COPIES = {
    "bpf_probe_read_kernel": (0, 2),
    "bpf_probe_read_kernel_str": (0, 2),
    "__builtin_memcpy": (0, 1),
}

DsqOp = Literal["create", "consume", "iterate", "insert"]
# Which argument of each DSQ kfunc is a DSQ id, and what the call does to that DSQ.
DSQ_ARGS: dict[str, tuple[DsqOp, int]] = {
    "scx_bpf_create_dsq": ("create", 0),
    "scx_bpf_dsq_move_to_local": ("consume", 0),
    "bpf_iter_scx_dsq_new": ("iterate", 1),
    "scx_bpf_dsq_insert": ("insert", 1),
    "scx_bpf_dsq_insert_vtime": ("insert", 1),
    "scx_bpf_dsq_move": ("insert", 2),
    "scx_bpf_dsq_move_vtime": ("insert", 2),
}
MOVES_FROM_ITERATOR = frozenset({"scx_bpf_dsq_move", "scx_bpf_dsq_move_vtime"})

# The C types each policy.toml tunable type may be (typedefs resolved; BPF is LP64).
C_TYPES: dict[TunableType, frozenset[str]] = {
    "u32": frozenset({"unsigned int"}),
    "u64": frozenset({"unsigned long long", "unsigned long"}),
    "s32": frozenset({"int"}),
    "s64": frozenset({"long long", "long"}),
    "bool": frozenset({"_Bool"}),
    "str16": frozenset({"char[16]"}),
}
C_SPELLING: dict[TunableType, str] = {
    "u32": "u32",
    "u64": "u64",
    "s32": "s32",
    "s64": "s64",
    "bool": "bool",
    "str16": "char[16]",
}

RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule(
            ALLOWED_CALLS,
            "Every call is to a function the policy or our headers define, a compiler builtin, or a kfunc or BPF "
            "helper on the allow-list; no signals, user-memory writes, return overrides or bpf() syscalls, and no "
            "kfunc the lint does not know (`unknown kfunc`), no indirect call, no inline-assembly call.",
            "The kernel verifier lets a struct_ops program call many helpers that make no sense in a scheduler and "
            "some that do harm: a scheduler callback runs in the context of whatever task is current, so "
            "bpf_send_signal() or bpf_probe_write_user() would hit an unrelated process. An allow-list of what "
            "schedulers need keeps a generated policy to scheduling.",
        ),
        Rule(
            ENQUEUE_INSERTS,
            "Every path through ops.enqueue inserts the task into a dispatch queue (scx_bpf_dsq_insert, "
            "scx_bpf_dsq_insert_vtime, or a helper that inserts on all its paths) or aborts with scx_error()/"
            "scx_exit().",
            "A task that enqueue returns without inserting is lost: nothing will run it, the kernel's watchdog "
            "reports a stall after timeout_ms and ejects the policy. The verifier cannot see this; a test run "
            "finds it only if the path is taken.",
        ),
        Rule(
            DSQ_LIFECYCLE,
            "Every custom DSQ created with a constant id is consumed somewhere (scx_bpf_dsq_move_to_local, or an "
            "iteration over it that moves tasks); every constant custom DSQ inserted into or consumed from is "
            "created.",
            "Tasks inserted into a DSQ nothing consumes wait until the watchdog ejects the policy (the stall "
            "fixture does exactly that); inserting into a DSQ that was never created makes the kernel eject the "
            "policy at the first insert.",
        ),
        Rule(
            BOUNDED_LOOPS,
            "Every loop is bounded: an open-coded iterator (bpf_for, bpf_repeat, bpf_for_each, a bpf_iter_*_next "
            "condition), or a loop variable stepped towards a compile-time constant (literal, #define, enum, "
            "`const` global). A `const volatile` tunable does not count as constant; `while (1)` and busy-waits on "
            "a clock are findings.",
            "Most scheduler callbacks run with a runqueue lock held: a long loop stalls a CPU. A loop bounded by a "
            "tunable is verified with one value and may be loaded with another, up to its policy.toml maximum, "
            "where the verifier's instruction limit rejects it or it runs far longer than tested; bpf_for bounds "
            "it at run time whatever the value.",
        ),
        Rule(
            EXIT_RECORDED,
            "The ops table has an .exit callback, and it records the exit info: calls schedcp_record_exit(ei) or "
            "otherwise copies from its struct scx_exit_info argument into a global.",
            "The kernel says why it disabled a policy (stall, error, which task) only in the scx_exit_info it "
            "passes to ops.exit, for the duration of that call. Without a copy, an ejection leaves no reason the "
            "verifier, the runtime or an LLM repairing the policy can read.",
        ),
        Rule(
            TUNABLES_MATCH,
            "Every `const volatile` global is a [tunables.NAME] in policy.toml and every declared tunable is a "
            "`const volatile` global of the declared type, initialised to policy.toml's default; the values being "
            "verified are in their declared ranges.",
            "Userspace writes tunables into the object's .rodata by name and size from policy.toml: a tunable "
            "missing on either side, or of another size, is silently not set or fails at load; a C default that "
            "differs from policy.toml's means the documented default is not what runs.",
        ),
        Rule(
            OPS_NAMES,
            "There is exactly one struct sched_ext_ops table, named `<policy>_ops`, and its .name is the policy's "
            "name (the folder and policy.toml `name`).",
            "The kernel reports the attached scheduler by .name (/sys/kernel/sched_ext/root/ops, and in dmesg when "
            "it ejects one): the runtime checks it to confirm its policy is the one attached and finds the ejection "
            "by it. bpftool pins the attached table under its variable name, which `<policy>_ops` keeps "
            "recognisable.",
        ),
        Rule(
            TIMEOUT_BOUND,
            f"The ops table's timeout_ms, when set, is between {MIN_TIMEOUT_MS} and {MAX_TIMEOUT_MS} ms.",
            f"The verifier's dynamic stage watches a policy for {MAX_TIMEOUT_MS // 1000} s and must see a stalling "
            f"policy ejected within that time (the kernel allows up to 30 s). Below {MIN_TIMEOUT_MS // 1000} s the "
            "watchdog mistakes ordinary waits on a loaded machine for stalls.",
        ),
    )
}


def render_rules() -> str:
    """The "## Lint rules" section of docs/verify.md, from RULES and the allow-lists."""
    lines = [
        "## Lint rules",
        "",
        "Generated from `schedcp.verify.lint.RULES` by `python -m schedcp.verify.lint`; a test fails when this",
        "section is out of date. A finding names the rule, the file and line, what is wrong and what to change.",
        "",
        "| id | what it checks | why |",
        "|---|---|---|",
    ]
    lines += [f"| `{r.id}` | {r.title} | {r.rationale} |" for r in RULES.values()]
    lines += [
        "",
        "### Calls a policy may make",
        "",
        "sched_ext kfuncs: " + ", ".join(f"`{n}`" for n in sorted(SCX_KFUNCS)) + ".",
        "",
        "Other kfuncs: " + ", ".join(f"`{n}`" for n in sorted(BPF_KFUNCS)) + ".",
        "",
        "BPF helpers: " + ", ".join(f"`{n}`" for n in sorted(ALLOWED_HELPERS)) + ".",
        "",
        "Never: " + "; ".join(f"`{n}` ({why})" for n, why in FORBIDDEN.items()) + ".",
        "",
    ]
    return "\n".join(lines)


# --- the program under analysis ----------------------------------------------------------------


@dataclass(frozen=True)
class Callee:
    """What a call calls."""

    kind: Literal["local", "kfunc", "helper", "builtin", "undefined", "indirect"]
    name: str  # as written
    canonical: str  # a kfunc without its ___flavour suffix; a helper by its number's name


def kfunc_name(name: str) -> str:
    """`scx_bpf_dsq_insert___v2` -> `scx_bpf_dsq_insert`: libbpf resolves a kfunc by the name
    before its last `___` flavour suffix, so the lint must judge that name."""
    for i in range(len(name) - 5, -1, -1):
        if name[i] != "_" and name[i + 1 : i + 4] == "___" and name[i + 4] != "_":
            return name[: i + 1]
    return name


def _helper_number(decl: Node) -> int | None:
    """`static long (* const bpf_x)(...) = (void *) 109;`: a helper by number, as libbpf declares them."""
    if decl.kind != "VarDecl" or "(*" not in decl.qual_type or not decl.inner:
        return None
    init = decl.inner[0]
    while init.kind in ("ImplicitCastExpr", "CStyleCastExpr", "ParenExpr") and init.inner:
        if init.attrs.get("castKind") == "IntegralToPointer":
            return None if init.inner[0].kind != "IntegerLiteral" else int(init.inner[0].attrs.get("value", -1))
        init = init.inner[0]
    return None


def _is_global_lvalue(expr: Node, tu: TranslationUnit) -> bool:
    """Does writing to `expr` write to a global (a field of it, an element of it, through it)?"""
    while True:
        expr = strip(expr)
        through = expr.kind in ("MemberExpr", "ArraySubscriptExpr")
        through |= expr.kind == "UnaryOperator" and expr.opcode in ("&", "*")
        if through and expr.inner:
            expr = expr.inner[0]
        elif expr.kind == "DeclRefExpr" and (ref := expr.ref) is not None:
            return ref.id in tu.global_ids
        else:
            return False


def _mentions(expr: Node, decl_id: str) -> bool:
    return any(n.kind == "DeclRefExpr" and (r := n.ref) is not None and r.id == decl_id for n in expr.walk())


@dataclass
class _Site:
    """One DSQ id use: which operation, the id (None: not a constant), where."""

    op: DsqOp
    dsq: int | None
    node: Node


@dataclass
class _Program:
    """A parsed policy and what the rules share: callbacks, reachability, call summaries."""

    tu: TranslationUnit
    policy: Policy
    tunables: Mapping[str, TunableValue]
    helper_names: dict[int, str] = field(default_factory=dict)
    tables: list[Node] = field(default_factory=list)  # struct sched_ext_ops globals of the policy
    fields: dict[str, Node] = field(default_factory=dict)  # the first table's set fields
    _inserts: dict[str, Literal["all", "some", "none"]] = field(default_factory=dict)
    _dsq_flows: dict[str, frozenset[tuple[DsqOp, int]]] = field(default_factory=dict)
    _records: dict[tuple[str, int], bool] = field(default_factory=dict)
    _reachable: list[Node] | None = None

    def __post_init__(self) -> None:
        for decl in self.tu.decls:
            number = _helper_number(decl)
            if number is not None and self.tu.origin_of(decl) == "system" and decl.name:
                self.helper_names.setdefault(number, decl.name)
            if (
                decl.kind == "VarDecl"
                and decl.desugared_type.replace("const ", "") == "struct sched_ext_ops"
                and self.tu.origin_of(decl) == "policy"
            ):
                self.tables.append(decl)
        if self.tables and self.tables[0].inner and self.tables[0].inner[0].kind == "InitListExpr":
            values = self.tables[0].inner[0].inner
            self.fields = {
                name: value
                for name, value in zip(self.tu.ops_fields, values, strict=False)
                if value.kind != "ImplicitValueInitExpr"
            }

    # -- findings --

    def finding(self, rule: str, node: Node | None, message: str, fix: str, at_end: bool = False) -> Finding:
        """A finding at `node` (its first token, or with `at_end` its last), or at the source file."""
        pos = None if node is None else node.end_pos if at_end else node.pos
        file = self.tu.display(pos.file) if pos is not None and pos.file else self.tu.display(str(self.tu.source))
        return Finding(rule=rule, message=message, file=file, line=pos.line if pos else None, fix=fix)

    def toml_finding(self, rule: str, tunable: str | None, message: str, fix: str) -> Finding:
        """A finding about policy.toml, at the [tunables.NAME] line when there is one."""
        line: int | None = None
        meta = self.policy.path / "policy.toml"
        if tunable is not None and meta.exists():
            for number, text in enumerate(meta.read_text().splitlines(), start=1):
                if text.strip().replace(" ", "") in (f"[tunables.{tunable}]", f'[tunables."{tunable}"]'):
                    line = number
                    break
        return Finding(rule=rule, message=message, file="policy.toml", line=line, fix=fix)

    # -- calls --

    def callee(self, call: Node) -> Callee:
        target = strip(call.inner[0]) if call.inner else call
        ref = target.ref if target.kind == "DeclRefExpr" else None
        if ref is None:
            return Callee("indirect", "", "")
        name = ref.name
        if ref.kind == "FunctionDecl":
            if name in self.tu.functions:
                return Callee("local", name, name)
            if name.startswith(BUILTIN_PREFIXES):
                return Callee("builtin", name, name)
            decls = self.tu.declarations.get(name, [])
            # Not in the dump at all: declared in vmlinux.h (the PCH), where only kfuncs are.
            if not decls or any(d.section() == ".ksyms" for d in decls):
                return Callee("kfunc", name, kfunc_name(name))
            return Callee("undefined", name, name)
        if ref.kind == "VarDecl":
            decl = self.tu.by_id.get(ref.id)
            number = _helper_number(decl) if decl is not None else None
            if number is not None:
                return Callee("helper", name, self.helper_names.get(number, f"helper #{number}"))
        return Callee("indirect", name, name)

    def calls(self, fn: Node) -> Iterator[tuple[Node, Callee]]:
        body = fn.body
        if body is None:
            return
        for node in body.walk():
            if node.kind == "CallExpr":
                yield node, self.callee(node)

    def callback(self, op: str) -> Node | None:
        """The function an ops field points at, as defined (None: unset or not defined here)."""
        value = self.fields.get(op)
        if value is None:
            return None
        target = strip(value)
        ref = target.ref if target.kind == "DeclRefExpr" else None
        return self.tu.functions.get(ref.name) if ref is not None else None

    def unwrap(self, fn: Node) -> Node:
        """The function with the author's code: BPF_PROG(name, args...) defines `name(ctx)`,
        whose whole body calls `____name(ctx, args...)`, where the author's code is."""
        inner = self.tu.functions.get(f"____{fn.name}")
        body = fn.body
        if inner is None or body is None:
            return fn
        calls = [n for n in body.walk() if n.kind == "CallExpr" and self.callee(n).name == inner.name]
        return inner if calls else fn

    def roots(self) -> list[Node]:
        """Where the kernel starts running the policy: the ops callbacks and every SEC() program."""
        names: set[str] = set()
        for value in self.fields.values():
            for node in value.walk():
                if node.kind == "DeclRefExpr" and (ref := node.ref) is not None and ref.name in self.tu.functions:
                    names.add(ref.name)
        for name, fn in self.tu.functions.items():
            section = fn.section()
            if section is not None and section != ".ksyms" and self.tu.origin_of(fn) == "policy":
                names.add(name)
        return [self.tu.functions[n] for n in sorted(names)]

    def reachable(self) -> list[Node]:
        """Every function that can run: the roots and every function they name (called, or
        passed as a value, e.g. a timer callback)."""
        if self._reachable is None:
            seen: dict[str, Node] = {}
            stack = self.roots()
            while stack:
                fn = stack.pop()
                if fn.name is None or fn.name in seen:
                    continue
                seen[fn.name] = fn
                body = fn.body
                assert body is not None
                for node in body.walk():
                    if node.kind == "DeclRefExpr" and (ref := node.ref) is not None and ref.kind == "FunctionDecl":
                        target = self.tu.functions.get(ref.name)
                        if target is not None:
                            stack.append(target)
            self._reachable = sorted(seen.values(), key=lambda f: (str(f.pos.file), f.pos.line or 0))
        return self._reachable

    def entries(self) -> set[str]:
        """Functions the kernel or a helper calls, not the source: the roots, and functions
        passed as values (their parameters are not the source's constants)."""
        names = {str(f.name) for f in self.roots()}
        for fn in self.reachable():
            called = {id(strip(call.inner[0])) for call, _ in self.calls(fn) if call.inner}
            body = fn.body
            assert body is not None
            for node in body.walk():
                if node.kind == "DeclRefExpr" and id(node) not in called:
                    ref = node.ref
                    if ref is not None and ref.kind == "FunctionDecl" and ref.name in self.tu.functions:
                        names.add(ref.name)
        return names

    def in_scope(self) -> list[Node]:
        """The functions whose code the call and loop rules read: all the policy defines, and
        whatever else can run (shared-header helpers it calls)."""
        chosen = {f.name: f for f in self.tu.functions.values() if self.tu.origin_of(f) == "policy"}
        chosen.update({f.name: f for f in self.reachable()})
        return sorted(chosen.values(), key=lambda f: (str(f.pos.file), f.pos.line or 0))

    # -- summaries --

    def inserts(self, name: str) -> Literal["all", "some", "none"]:
        """Does function `name` insert a task into a DSQ on all, some or none of its paths?"""
        if name not in self._inserts:
            self._inserts[name] = "none"  # while we look (BPF has no recursion anyway)
            flow = _PathFlow(self)
            flow.run(self.tu.functions[name])
            ends = flow.exit_states()
            self._inserts[name] = "all" if False not in ends else "some" if True in ends else "none"
        return self._inserts[name]

    def dsq_flows(self, name: str) -> frozenset[tuple[DsqOp, int]]:
        """Which parameters of function `name` reach a DSQ kfunc as its DSQ id, and as what."""
        if name not in self._dsq_flows:
            self._dsq_flows[name] = frozenset()
            fn = self.tu.functions[name]
            params = {p.id: i for i, p in enumerate(fn.params)}
            flows: set[tuple[DsqOp, int]] = set()
            for call, callee in self.calls(fn):
                for op, index in self.dsq_args(callee):
                    args = call_args(call)
                    arg = strip(args[index]) if index < len(args) else None
                    ref = arg.ref if arg is not None and arg.kind == "DeclRefExpr" else None
                    if ref is not None and ref.id in params:
                        flows.add((op, params[ref.id]))
            self._dsq_flows[name] = frozenset(flows)
        return self._dsq_flows[name]

    def dsq_args(self, callee: Callee) -> list[tuple[DsqOp, int]]:
        if callee.kind == "kfunc" and callee.canonical in DSQ_ARGS:
            return [DSQ_ARGS[callee.canonical]]
        if callee.kind == "local":
            return sorted(self.dsq_flows(callee.name))
        return []

    def records(self, name: str, index: int) -> bool:
        """Does function `name` copy from its parameter `index` into a global (directly, with a
        copy helper, or through a function it passes the parameter to)?"""
        key = (name, index)
        if key not in self._records:
            self._records[key] = False
            fn = self.tu.functions[name]
            params = fn.params
            body = fn.body
            if index < len(params) and body is not None:
                self._records[key] = self._copies_param(body, params[index].id)
        return self._records[key]

    def _copies_param(self, body: Node, param_id: str) -> bool:
        for node in body.walk():
            if node.kind in ("BinaryOperator", "CompoundAssignOperator") and len(node.inner) == 2:
                if node.kind == "BinaryOperator" and node.opcode != "=":
                    continue
                lhs, rhs = node.inner
                if _is_global_lvalue(lhs, self.tu) and _mentions(rhs, param_id):
                    return True
            elif node.kind == "CallExpr":
                callee, args = self.callee(node), call_args(node)
                copy = COPIES.get(callee.canonical)
                if copy is not None and max(copy) < len(args):
                    dst, src = args[copy[0]], args[copy[1]]
                    if _is_global_lvalue(dst, self.tu) and _mentions(src, param_id):
                        return True
                if callee.kind == "local" and any(
                    _mentions(arg, param_id) and self.records(callee.name, i) for i, arg in enumerate(args)
                ):
                    return True
        return False

    def const(self, expr: Node) -> int | None:
        return const_int(expr, self.tu)

    def tunable_globals(self) -> dict[str, Node]:
        """The policy's `const volatile` globals: its tunables as C declares them."""
        found: dict[str, Node] = {}
        for decl in self.tu.decls:
            if decl.kind == "VarDecl" and decl.name and self.tu.origin_of(decl) == "policy":
                qualifiers = set(decl.qual_type.split()[:2])
                if {"const", "volatile"} <= qualifiers:
                    found.setdefault(decl.name, decl)
        return found


# --- rule: allowed-calls -------------------------------------------------------------------------


def _check_calls(prog: _Program) -> list[Finding]:
    out: list[Finding] = []
    review = (
        "If the policy really needs it, it must be reviewed and added to the allow-list in "
        "schedcp/verify/lint.py (docs/verify.md lists what is allowed)."
    )
    for fn in prog.in_scope():
        body = fn.body
        assert body is not None
        for node in body.walk():
            if node.kind == "GCCAsmStmt" and re.search(r"\bcall", prog.tu.spelled(node)):
                out.append(
                    prog.finding(
                        ALLOWED_CALLS,
                        node,
                        "inline assembly with a call instruction: it can reach any helper by number, which the lint "
                        "cannot check",
                        "Call the helper or kfunc from C instead of assembly.",
                    )
                )
            if node.kind != "CallExpr":
                continue
            callee = prog.callee(node)
            name, canonical = callee.name, callee.canonical
            shown = f"`{canonical}`" + ("" if name == canonical else f" (called as `{name}`)")
            if callee.kind in ("local", "builtin"):
                continue
            if canonical in FORBIDDEN:
                out.append(
                    prog.finding(
                        ALLOWED_CALLS,
                        node,
                        f"{shown} is forbidden in a scheduler: {FORBIDDEN[canonical]}",
                        f"Remove the call to {name}: a scheduler acts on tasks only by when and where it runs them.",
                    )
                )
            elif callee.kind == "kfunc" and canonical not in ALLOWED_KFUNCS:
                out.append(
                    prog.finding(
                        ALLOWED_CALLS,
                        node,
                        f"unknown kfunc {shown}: not on the allow-list of kfuncs a scheduler needs",
                        f"Use an allowed sched_ext kfunc (scx_bpf_*) instead of {name}, or drop the call. {review}",
                    )
                )
            elif callee.kind == "helper" and canonical not in ALLOWED_HELPERS:
                out.append(
                    prog.finding(
                        ALLOWED_CALLS,
                        node,
                        f"BPF helper {shown} is not on the allow-list of helpers a scheduler needs",
                        f"Remove the call to {canonical}. {review}",
                    )
                )
            elif callee.kind == "undefined":
                out.append(
                    prog.finding(
                        ALLOWED_CALLS,
                        node,
                        f"`{name}` is neither defined in the policy, nor a kfunc (declared `__ksym`), nor a BPF helper",
                        f"Define {name} in the policy (static __always_inline), or declare the kfunc it stands for "
                        "with __ksym if it is on the allow-list.",
                    )
                )
            elif callee.kind == "indirect":
                out.append(
                    prog.finding(
                        ALLOWED_CALLS,
                        node,
                        "indirect call (through a function pointer): BPF cannot call through pointers, and the lint "
                        "cannot tell what it calls",
                        "Call the function by name.",
                    )
                )
    return out


# --- rule: enqueue-inserts ----------------------------------------------------------------------

States = frozenset[bool]  # on the paths reaching a point: has the task been inserted yet?
_NONE: States = frozenset()
_NOT_YET: States = frozenset({False})
_DONE: States = frozenset({True})


@dataclass(frozen=True)
class _Out:
    """How a statement can end: falling through, by break, by continue (states of each)."""

    fall: States
    brk: States = _NONE
    cont: States = _NONE


@dataclass
class _Switch:
    entry: States
    has_default: bool = False


class _PathFlow:
    """Follows every path through a function, tracking whether the task has been inserted.

    Conservative where the code is beyond it: a loop body may run zero or more times, a goto's
    target may be reached without an insert, and a helper counts only if it inserts on every
    one of its own paths.
    """

    def __init__(self, prog: _Program) -> None:
        self.prog = prog
        self.returns: dict[int, tuple[Node, States]] = {}
        self.end: tuple[Node, States] | None = None
        self.partial: set[str] = set()  # helpers called that insert on some paths only
        self.switches: list[_Switch] = []

    def run(self, fn: Node) -> None:
        body = fn.body
        assert body is not None
        out = self.stmt(body, _NOT_YET)
        self.end = (body, out.fall)

    def exit_states(self) -> States:
        states: set[bool] = set()
        for _, s in self.returns.values():
            states |= s
        if self.end is not None:
            states |= self.end[1]
        return frozenset(states)

    def missing(self) -> list[tuple[Node, bool]]:
        """(node, is_return) for each return (or the closing brace) reachable without an insert."""
        found = [(node, True) for node, s in self.returns.values() if False in s]
        if self.end is not None and False in self.end[1]:
            found.append((self.end[0], False))
        return sorted(found, key=lambda item: self._line(item[0], item[1]))

    @staticmethod
    def _line(node: Node, is_return: bool) -> int:
        return (node.pos.line if is_return else node.end_pos.line) or 0

    # statements

    def stmt(self, node: Node, s: States) -> _Out:
        kind = node.kind
        if node.is_null or kind in ("NullStmt", "GCCAsmStmt"):
            return _Out(s)
        if kind == "CompoundStmt":
            brk: set[bool] = set()
            cont: set[bool] = set()
            for child in node.inner:
                out = self.stmt(child, s)
                brk |= out.brk
                cont |= out.cont
                s = out.fall
            return _Out(s, frozenset(brk), frozenset(cont))
        if kind in ("CaseStmt", "DefaultStmt"):
            if self.switches:
                s = s | self.switches[-1].entry
                self.switches[-1].has_default |= kind == "DefaultStmt"
            return self.stmt(node.inner[-1], s) if node.inner else _Out(s)
        if kind == "LabelStmt":  # a goto may jump here from a path that has not inserted
            return self.stmt(node.inner[0], s | _NOT_YET) if node.inner else _Out(s | _NOT_YET)
        if kind in ("GotoStmt", "IndirectGotoStmt"):
            return _Out(_NONE)
        if kind == "ReturnStmt":
            s = self.expr(node.inner[0], s) if node.inner else s
            old = self.returns.get(id(node))
            self.returns[id(node)] = (node, s | old[1] if old else s)
            return _Out(_NONE)
        if kind == "BreakStmt":
            return _Out(_NONE, brk=s)
        if kind == "ContinueStmt":
            return _Out(_NONE, cont=s)
        if kind == "AttributedStmt":
            return self.stmt(node.inner[-1], s)
        if kind == "IfStmt":
            return self._if(node, s)
        if kind == "WhileStmt":
            return self._loop(node.inner[0], None, node.inner[1], s, do=False)
        if kind == "DoStmt":
            return self._loop(node.inner[1], None, node.inner[0], s, do=True)
        if kind == "ForStmt":
            init, _, cond, inc, body = node.inner
            return self._loop(cond, inc, body, self.stmt(init, s).fall, do=False)
        if kind == "SwitchStmt":
            s = self.expr(node.inner[0], s)
            self.switches.append(_Switch(s))
            out = self.stmt(node.inner[-1], _NONE)
            switch = self.switches.pop()
            after = out.fall | out.brk | (_NONE if switch.has_default else s)
            return _Out(after, cont=out.cont)
        if kind == "DeclStmt":
            for decl in node.inner:
                for child in decl.inner:
                    if not child.kind.endswith("Attr"):
                        s = self.expr(child, s)
            return _Out(s)
        return _Out(self.expr(node, s))

    def _if(self, node: Node, s: States) -> _Out:
        cond, then = node.inner[0], node.inner[1]
        other = node.inner[2] if node.attrs.get("hasElse") and len(node.inner) > 2 else None
        when_true, when_false = self.cond(cond, s)
        taken = self.stmt(then, when_true)
        skipped = self.stmt(other, when_false) if other is not None else _Out(when_false)
        return _Out(taken.fall | skipped.fall, taken.brk | skipped.brk, taken.cont | skipped.cont)

    def _loop(self, cond: Node, inc: Node | None, body: Node, s: States, do: bool) -> _Out:
        head, brk, exits = s, _NONE, _NONE
        for _ in range(4):  # states only grow, from {False} to {False, True}: this converges
            if do:
                out = self.stmt(body, head)
                again, exits = self.cond(cond, out.fall | out.cont)
            else:
                again, exits = self.cond(cond, head)
                out = self.stmt(body, again)
                again = out.fall | out.cont
                if inc is not None and not inc.is_null:
                    again = self.expr(inc, again)
            brk = brk | out.brk
            if again <= head:
                break
            head = head | again
        return _Out(exits | brk)

    def cond(self, node: Node, s: States) -> tuple[States, States]:
        """The states when a condition is true and when it is false; `a && f()` is true only
        after f() ran. A constant condition has no states on its impossible side; a missing
        one (`for (;;)`) is always true."""
        if not s:
            return s, s
        if node.is_null:
            return s, _NONE
        inner = node
        while inner.kind in ("ImplicitCastExpr", "ParenExpr") and inner.inner:
            inner = inner.inner[0]
        if inner.kind == "BinaryOperator" and inner.opcode in ("&&", "||"):
            lhs_true, lhs_false = self.cond(inner.inner[0], s)
            if inner.opcode == "&&":
                rhs_true, rhs_false = self.cond(inner.inner[1], lhs_true)
                return rhs_true, lhs_false | rhs_false
            rhs_true, rhs_false = self.cond(inner.inner[1], lhs_false)
            return lhs_true | rhs_true, rhs_false
        if inner.kind == "UnaryOperator" and inner.opcode == "!" and inner.inner:
            when_true, when_false = self.cond(inner.inner[0], s)
            return when_false, when_true
        known = self.prog.const(inner)
        after = self.expr(inner, s)
        if known is None:
            return after, after
        return (after, _NONE) if known else (_NONE, after)

    # expressions

    def expr(self, node: Node, s: States) -> States:
        if not s or node.is_null:
            return s
        kind = node.kind
        if kind == "BinaryOperator" and node.opcode in ("&&", "||"):
            when_true, when_false = self.cond(node, s)
            return when_true | when_false
        if kind == "ConditionalOperator":
            when_true, when_false = self.cond(node.inner[0], s)
            return self.expr(node.inner[1], when_true) | self.expr(node.inner[2], when_false)
        if kind == "BinaryConditionalOperator":  # a ?: b
            first = self.expr(node.inner[0], s)
            return first | self.expr(node.inner[-1], first)
        if kind == "StmtExpr":
            return self.stmt(node.inner[0], s).fall
        if kind == "UnaryExprOrTypeTraitExpr":  # sizeof does not run its operand
            return s
        for child in node.inner:
            s = self.expr(child, s)
        if kind == "CallExpr" and s:
            callee = self.prog.callee(node)
            if callee.kind == "kfunc" and callee.canonical in INSERTS | ABORTS:
                return _DONE
            if callee.kind == "local":
                effect = self.prog.inserts(callee.name)
                if effect == "all":
                    return _DONE
                if effect == "some":
                    self.partial.add(callee.name)
        return s


def _check_enqueue(prog: _Program) -> list[Finding]:
    wrapper = prog.callback("enqueue")
    if wrapper is None:
        return []  # no ops.enqueue: the kernel queues every task on the global DSQ itself
    fn = prog.unwrap(wrapper)
    flow = _PathFlow(prog)
    flow.run(fn)
    out = []
    for node, is_return in flow.missing():
        helpers = sorted(flow.partial)
        why = f"; {', '.join(f'`{h}`' for h in helpers)} insert(s) on only some of their paths" if helpers else ""
        place = "this return" if is_return else "the end of the function"
        message = (
            f"ops.enqueue (`{wrapper.name}`) can reach {place} without inserting the task into a dispatch queue{why}: "
            "nothing will run the task, the kernel reports a stall after timeout_ms and ejects the policy"
        )
        fix = (
            "Insert the task on this path before it ends: scx_bpf_dsq_insert(p, DSQ_ID, slice_ns, enq_flags) or "
            "scx_bpf_dsq_insert_vtime(...), e.g. into SCX_DSQ_GLOBAL as a fallback; if the path means a bug, call "
            'scx_error("...") so the kernel ejects the policy with a reason instead of a stall.'
        )
        if helpers:
            fix += f" Or make {', '.join(helpers)} insert on every one of its paths."
        out.append(prog.finding(ENQUEUE_INSERTS, node, message, fix, at_end=not is_return))
    return out


# --- rule: dsq-lifecycle ------------------------------------------------------------------------


def _dsq_sites(prog: _Program) -> list[_Site]:
    """Every place a DSQ id reaches a DSQ kfunc, directly or through helpers, with its value."""
    sites: list[_Site] = []
    entries = prog.entries()
    for fn in prog.reachable():
        params = {p.id for p in fn.params}
        for call, callee in prog.calls(fn):
            args = call_args(call)
            for op, index in prog.dsq_args(callee):
                if index >= len(args):
                    continue
                arg = strip(args[index])
                ref = arg.ref if arg.kind == "DeclRefExpr" else None
                if ref is not None and ref.id in params:
                    continue  # the callers of fn pass the id: counted at their call
                sites.append(_Site(op, _dsq_value(prog, arg), call))
        if fn.name in entries:  # called by the kernel: its parameters are not our constants
            sites += [_Site(op, None, fn) for op, _ in prog.dsq_flows(str(fn.name))]
    return sites


def _dsq_value(prog: _Program, arg: Node) -> int | None:
    """A DSQ id argument: a custom constant, DSQ_BUILTIN_BIT for a built-in DSQ, None if unknown."""
    for node in arg.walk():
        ref = node.ref if node.kind == "DeclRefExpr" else None
        if ref is not None and ref.kind == "EnumConstantDecl" and ref.name.startswith("SCX_DSQ_"):
            return DSQ_BUILTIN_BIT  # SCX_DSQ_GLOBAL, SCX_DSQ_LOCAL, SCX_DSQ_LOCAL_ON | cpu
    value = prog.const(arg)
    if value is not None and value & DSQ_BUILTIN_BIT:
        return DSQ_BUILTIN_BIT
    return value


def _check_dsqs(prog: _Program) -> list[Finding]:
    sites = [s for s in _dsq_sites(prog) if s.dsq != DSQ_BUILTIN_BIT]
    moves_from_iterator = any(
        callee.kind == "kfunc" and callee.canonical in MOVES_FROM_ITERATOR
        for fn in prog.reachable()
        for _, callee in prog.calls(fn)
    )
    consuming: tuple[DsqOp, ...] = ("consume", "iterate") if moves_from_iterator else ("consume",)
    created = {s.dsq for s in sites if s.op == "create"}
    consumed = {s.dsq for s in sites if s.op in consuming}
    out: list[Finding] = []
    # A DSQ id the lint cannot compute (e.g. one per CPU) might be any id: then it cannot say
    # that a constant one is missing.
    if None not in consumed:
        for site in sites:
            if site.op == "create" and site.dsq is not None and site.dsq not in consumed:
                out.append(
                    prog.finding(
                        DSQ_LIFECYCLE,
                        site.node,
                        f"DSQ {site.dsq} is created here but nothing consumes it (no "
                        f"scx_bpf_dsq_move_to_local({site.dsq}) and no iteration over it that moves tasks): tasks "
                        "inserted into it are never run, and the watchdog ejects the policy",
                        f"In ops.dispatch, move tasks from DSQ {site.dsq} to the local DSQ: "
                        f"scx_bpf_dsq_move_to_local({site.dsq}) (or schedcp_move_to_local({site.dsq}, NULL)); "
                        "if the DSQ is not needed, do not create it.",
                    )
                )
    if None not in created:
        for site in sites:
            if site.op in ("insert", "consume", "iterate") and site.dsq is not None and site.dsq not in created:
                what = "inserts into" if site.op == "insert" else "reads from"
                out.append(
                    prog.finding(
                        DSQ_LIFECYCLE,
                        site.node,
                        f"this {what} DSQ {site.dsq}, which is never created: the kernel ejects the policy at the "
                        "first use of a DSQ that does not exist",
                        'Create it in ops.init (sleepable, SEC("struct_ops.s/...")): '
                        f"scx_bpf_create_dsq({site.dsq}, -1) or schedcp_create_dsq({site.dsq}); or use a built-in "
                        "DSQ such as SCX_DSQ_GLOBAL.",
                    )
                )
    return out


# --- rule: bounded-loops ------------------------------------------------------------------------

_LOOPS = ("ForStmt", "WhileStmt", "DoStmt")
_STEPS_UP = ("++",)
_STEPS_DOWN = ("--",)


def _loop_parts(loop: Node) -> tuple[Node, Node | None, Node]:
    """(condition, increment, body) of a loop."""
    if loop.kind == "ForStmt":
        _, _, cond, inc, body = loop.inner
        return cond, inc, body
    if loop.kind == "WhileStmt":
        return loop.inner[0], None, loop.inner[1]
    return loop.inner[1], None, loop.inner[0]


def _comparisons(cond: Node) -> Iterator[Node]:
    """The comparisons a condition requires: itself, or each side of an `&&`."""
    cond = strip(cond)
    if cond.kind == "BinaryOperator" and cond.opcode == "&&":
        for side in cond.inner:
            yield from _comparisons(side)
    elif cond.kind == "BinaryOperator" and cond.opcode in ("<", "<=", ">", ">="):
        yield cond


def _local_var(expr: Node, tu: TranslationUnit) -> str | None:
    expr = strip(expr)
    ref = expr.ref if expr.kind == "DeclRefExpr" else None
    if ref is None or ref.kind not in ("VarDecl", "ParmVarDecl") or ref.id in tu.global_ids:
        return None
    return ref.id


def _steps(prog: _Program, code: Node, var: str) -> tuple[set[str], bool]:
    """How `code` changes variable `var`: the directions it steps ("up", "down"), and whether
    it changes it any other way (assignment, address taken, a step the lint cannot size)."""
    directions: set[str] = set()
    other = False
    for node in code.walk():
        if node.kind == "UnaryOperator" and node.inner and _local_var(node.inner[0], prog.tu) == var:
            if node.opcode in _STEPS_UP:
                directions.add("up")
            elif node.opcode in _STEPS_DOWN:
                directions.add("down")
            elif node.opcode == "&":
                other = True
        elif node.kind in ("BinaryOperator", "CompoundAssignOperator") and len(node.inner) == 2:
            if _local_var(node.inner[0], prog.tu) != var or node.opcode not in ("=", "+=", "-=", "*=", "<<=", "|="):
                continue
            amount = prog.const(node.inner[1])
            if node.opcode in ("+=", "-=") and amount is not None and amount > 0:
                directions.add("up" if node.opcode == "+=" else "down")
            else:
                other = True
    return directions, other


def _bounded_by_constant(prog: _Program, loop: Node, cond: Node, inc: Node | None, body: Node) -> bool:
    """A loop variable compared with a constant, and stepped only towards it on every iteration."""
    for comparison in _comparisons(cond):
        lhs, rhs = comparison.inner
        op = comparison.opcode or ""
        for var_side, const_side, rising in ((lhs, rhs, op in ("<", "<=")), (rhs, lhs, op in (">", ">="))):
            var = _local_var(var_side, prog.tu)
            if var is None or not is_constant(const_side, prog.tu):
                continue
            wanted = "up" if rising else "down"
            if loop.kind == "ForStmt":
                step, step_other = _steps(prog, inc, var) if inc is not None and not inc.is_null else (set(), False)
                in_body, body_other = _steps(prog, body, var)
                if step == {wanted} and not step_other and not body_other and in_body <= {wanted}:
                    return True
            else:
                # while/do: the step must run on every iteration: at the top level of the body,
                # with no `continue` that could skip it.
                statements = body.inner if body.kind == "CompoundStmt" else [body]
                top = [
                    _steps(prog, s, var)[0] for s in statements if s.kind in ("UnaryOperator", "CompoundAssignOperator")
                ]
                everywhere, other = _steps(prog, body, var)
                skips = any(n.kind == "ContinueStmt" for n in _own_statements(body))
                if any(t == {wanted} for t in top) and everywhere == {wanted} and not other and not skips:
                    return True
    return False


def _own_statements(body: Node) -> Iterator[Node]:
    """The nodes of a loop body that belong to this loop (not to a loop nested in it)."""
    stack = [body]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(c for c in node.inner if c.kind not in _LOOPS)


def _iterates(prog: _Program, cond: Node) -> bool:
    """The condition advances an open-coded iterator (bpf_for, bpf_repeat, bpf_for_each, or a
    bpf_iter_*_next call): the kernel bounds those loops whatever their arguments."""
    for node in cond.walk():
        if node.kind == "CallExpr":
            callee = prog.callee(node)
            if (
                callee.kind == "kfunc"
                and callee.canonical.startswith("bpf_iter_")
                and callee.canonical.endswith("_next")
            ):
                return True
    return False


def _check_loops(prog: _Program) -> list[Finding]:
    out: list[Finding] = []
    fix = (
        "Bound the loop: use bpf_for(i, 0, n) (an open-coded iterator the kernel bounds whatever n is), or compare "
        "the loop variable with a compile-time constant it steps towards, e.g. `for (i = 0; i < MAX_CPUS && i < n; "
        "i++)` with MAX_CPUS a #define."
    )
    for fn in prog.in_scope():
        body = fn.body
        assert body is not None
        for loop in body.walk():
            if loop.kind not in _LOOPS:
                continue
            cond, inc, loop_body = _loop_parts(loop)
            if not cond.is_null and _iterates(prog, cond):
                continue
            known = 1 if cond.is_null else prog.const(cond)
            if known == 0:
                continue  # do { } while (0): runs once
            clocks = sorted(
                {c.canonical for n in cond.walk() if n.kind == "CallExpr" for c in [prog.callee(n)]} & CLOCKS
            )
            if known is not None:
                message = "this loop's condition is always true: it ends only by a break the lint cannot bound"
            elif clocks:
                message = (
                    f"busy-wait: the loop waits on the clock ({', '.join(clocks)}), spinning a CPU inside the "
                    "scheduler, usually with a runqueue lock held"
                )
            elif _bounded_by_constant(prog, loop, cond, inc, loop_body):
                continue
            else:
                message = "the lint cannot show this loop ends: " + _why_unbounded(prog, cond)
            out.append(prog.finding(BOUNDED_LOOPS, loop, message, fix))
    return out


def _why_unbounded(prog: _Program, cond: Node) -> str:
    tunables = prog.tunable_globals()
    for comparison in _comparisons(cond):
        for side in comparison.inner:
            ref = strip(side).ref if strip(side).kind == "DeclRefExpr" else None
            if ref is not None and ref.name in tunables and tunables[ref.name].id == ref.id:
                return (
                    f"it is bounded by `{ref.name}`, a const volatile tunable, which is set at load time (up to its "
                    "policy.toml maximum), not a compile-time constant"
                )
            if ref is not None and ref.id in prog.tu.global_ids:
                return f"it is bounded by `{ref.name}`, a global variable, not a compile-time constant"
    return "its condition is not a loop variable compared with a constant that every iteration steps towards"


# --- rule: exit-recorded ------------------------------------------------------------------------


def _check_exit(prog: _Program) -> list[Finding]:
    if not prog.tables:
        return []  # ops-names reports the missing table
    table = prog.tables[0]
    fix = (
        "Add an exit callback and wire it as .exit in the ops table: "
        'SEC("struct_ops/NAME_exit") void BPF_PROG(NAME_exit, struct scx_exit_info *ei) { schedcp_record_exit(ei); }'
    )
    wrapper = prog.callback("exit")
    if wrapper is None:
        what = "no .exit callback" if "exit" not in prog.fields else "an .exit callback that is not defined here"
        return [
            prog.finding(
                EXIT_RECORDED,
                table,
                f"the ops table has {what}: when the kernel disables the policy, why (stall, error, which task) is "
                "lost",
                fix,
            )
        ]
    fn = prog.unwrap(wrapper)
    args = [i for i, p in enumerate(fn.params) if "scx_exit_info" in p.qual_type]
    if not args:
        return [
            prog.finding(
                EXIT_RECORDED,
                fn,
                f"the exit callback `{wrapper.name}` does not take the struct scx_exit_info * argument, so it "
                "cannot record why the policy exited",
                fix,
            )
        ]
    if any(prog.records(str(fn.name), i) for i in args):
        return []
    return [
        prog.finding(
            EXIT_RECORDED,
            fn,
            f"the exit callback `{wrapper.name}` does not record its struct scx_exit_info: the kernel's reason for "
            "disabling the policy is lost when the callback returns",
            "Call schedcp_record_exit(ei) in the exit callback (schedcp.bpf.h), which copies the kind, code, reason "
            "and message into schedcp_exit_info for userspace.",
        )
    ]


# --- rule: tunables-match -----------------------------------------------------------------------


def _c_default(prog: _Program, decl: Node, tunable: TunableSpec) -> TunableValue | None:
    """The value a `const volatile` global starts with (None: not a constant the lint can read)."""
    init = next((c for c in decl.inner if not c.kind.endswith("Attr")), None)
    if tunable.type == "str16":
        if init is None:
            return ""
        text = c_string(strip(init))
        if text is None and prog.const(init) == 0:
            return ""
        return text.rstrip("\0") if text is not None else None
    value = 0 if init is None else prog.const(init)
    if value is None:
        return None
    return bool(value) if tunable.type == "bool" else value


def _check_tunables(prog: _Program) -> list[Finding]:
    out: list[Finding] = []
    spec = prog.policy.spec.tunables
    found = prog.tunable_globals()
    for name, decl in found.items():
        if name not in spec:
            out.append(
                prog.finding(
                    TUNABLES_MATCH,
                    decl,
                    f"`{name}` is a `const volatile` global (a tunable) but policy.toml has no [tunables.{name}]: "
                    "userspace can never set it",
                    f"Declare it in policy.toml ([tunables.{name}] with type, default, unit, min, max, description), "
                    "or, if it is not meant to be set from outside, make it a #define or a plain global.",
                )
            )
    for name, tunable in spec.items():
        declared = found.get(name)
        spelled = f"const volatile {C_SPELLING[tunable.type]} {name} = {_c_literal(tunable, tunable.default)};"
        if tunable.type == "str16":
            spelled = f"const volatile char {name}[16] = {_c_literal(tunable, tunable.default)};"
        if declared is None:
            other = next((d for d in prog.tu.declarations.get(name, []) if prog.tu.origin_of(d) == "policy"), None)
            extra = f" (`{name}` is declared as `{other.qual_type}`, without const volatile)" if other else ""
            out.append(
                prog.toml_finding(
                    TUNABLES_MATCH,
                    name,
                    f"policy.toml declares tunable `{name}` but the source has no `const volatile` global of that "
                    f"name{extra}: setting it would fail",
                    f"Declare it at file scope in the .bpf.c: `{spelled}`; or remove [tunables.{name}] from "
                    "policy.toml.",
                )
            )
            continue
        ctype = " ".join(w for w in declared.desugared_type.split() if w not in ("const", "volatile"))
        if ctype.replace(" [", "[") not in C_TYPES[tunable.type]:
            out.append(
                prog.finding(
                    TUNABLES_MATCH,
                    declared,
                    f"tunable `{name}` is {tunable.type} in policy.toml but `{declared.qual_type}` in C: userspace "
                    f"writes {tunable.type}-sized values into it",
                    f"Make the C declaration `{spelled}` or change its type in policy.toml.",
                )
            )
            continue
        value = _c_default(prog, declared, tunable)
        if value is None:
            out.append(
                prog.finding(
                    TUNABLES_MATCH,
                    declared,
                    f"the initializer of tunable `{name}` is not a constant the lint can read",
                    f"Initialise it with a literal or a #define equal to policy.toml's default: `{spelled}`",
                )
            )
        elif not _same_value(tunable, value, tunable.default):
            out.append(
                prog.finding(
                    TUNABLES_MATCH,
                    declared,
                    f"tunable `{name}` starts at {_c_literal(tunable, value)} in C but policy.toml's default is "
                    f"{_c_literal(tunable, tunable.default)}: the documented default is not what runs unless "
                    "userspace sets it",
                    f"Make them equal: `{spelled}`, or change the default in policy.toml.",
                )
            )
    for name, value in prog.tunables.items():
        if name not in spec:
            out.append(
                prog.toml_finding(
                    TUNABLES_MATCH,
                    None,
                    f"the tunables being verified set `{name}`, which policy.toml does not declare",
                    f"Drop {name} from the values, or declare it in policy.toml. "
                    f"Declared: {', '.join(spec) or 'none'}.",
                )
            )
            continue
        try:
            spec[name].check(name, value)
        except PolicyError as exc:
            out.append(
                prog.toml_finding(
                    TUNABLES_MATCH,
                    name,
                    str(exc),
                    f"Use a value {spec[name].accepts()} for {name}, or widen its range in policy.toml if the policy "
                    "really works outside it.",
                )
            )
    return out


def _same_value(tunable: TunableSpec, a: TunableValue, b: TunableValue) -> bool:
    if tunable.type == "str16":
        return a == b
    if tunable.type == "bool":
        return bool(a) == bool(b)
    return not isinstance(a, str) and not isinstance(b, str) and int(a) == int(b)


def _c_literal(tunable: TunableSpec, value: TunableValue) -> str:
    if tunable.type == "str16":
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if tunable.type == "bool":
        return "true" if value else "false"
    return str(int(value))


# --- rules: ops-names, timeout-bound ------------------------------------------------------------


def _check_ops(prog: _Program) -> list[Finding]:
    name = prog.policy.name
    variable = f"{name}_ops"
    table_text = (
        f'SEC(".struct_ops.link") struct sched_ext_ops {variable} = {{ .enqueue = (void *){name}_enqueue, ..., '
        f'.name = "{name}" }};'
    )
    if not prog.tables:
        return [
            prog.finding(
                OPS_NAMES,
                None,
                "the source has no struct sched_ext_ops table: there is nothing for the kernel to attach",
                f"End the source with the ops table: {table_text}",
            )
        ]
    out = [
        prog.finding(
            OPS_NAMES,
            extra,
            f"a second struct sched_ext_ops table `{extra.name}`: a policy is one scheduler",
            f"Keep one ops table, `{variable}`.",
        )
        for extra in prog.tables[1:]
    ]
    table = prog.tables[0]
    if table.name != variable:
        out.append(
            prog.finding(
                OPS_NAMES,
                table,
                f"the ops table is called `{table.name}`; policy `{name}` must call it `{variable}`",
                f"Rename it: struct sched_ext_ops {variable} = {{ ... }};",
            )
        )
    value = prog.fields.get("name")
    written = c_string(strip(value)) if value is not None else None
    if written is None:
        out.append(
            prog.finding(
                OPS_NAMES,
                value or table,
                "the ops table sets no .name (or not as a string literal): the kernel would show the policy without "
                "its name",
                f'Add `.name = "{name}",` to the ops table.',
            )
        )
    elif written.rstrip("\0") != name:
        out.append(
            prog.finding(
                OPS_NAMES,
                value,
                f'the ops table\'s .name is "{written}" but the policy is `{name}` (its folder and policy.toml)',
                f'Set `.name = "{name}",`.',
            )
        )
    return out


def _check_timeout(prog: _Program) -> list[Finding]:
    value = prog.fields.get("timeout_ms")
    if value is None:
        return []
    timeout = prog.const(value)
    fix = f"Set `.timeout_ms = 5000,` (any value from {MIN_TIMEOUT_MS} to {MAX_TIMEOUT_MS} ms)."
    if timeout is None:
        return [prog.finding(TIMEOUT_BOUND, value, "timeout_ms is not a constant the lint can read", fix)]
    if timeout > MAX_TIMEOUT_MS:
        return [
            prog.finding(
                TIMEOUT_BOUND,
                value,
                f"timeout_ms = {timeout}: a stalled task would wait up to {timeout / 1000:g} s before the kernel "
                f"ejects the policy, longer than the verifier's {MAX_TIMEOUT_MS // 1000} s watch",
                fix,
            )
        ]
    if 0 < timeout < MIN_TIMEOUT_MS:
        return [
            prog.finding(
                TIMEOUT_BOUND,
                value,
                f"timeout_ms = {timeout}: the watchdog would eject the policy for ordinary waits on a loaded machine",
                fix,
            )
        ]
    return []


_CHECKS: dict[str, Callable[[_Program], list[Finding]]] = {
    ALLOWED_CALLS: _check_calls,
    ENQUEUE_INSERTS: _check_enqueue,
    DSQ_LIFECYCLE: _check_dsqs,
    BOUNDED_LOOPS: _check_loops,
    EXIT_RECORDED: _check_exit,
    TUNABLES_MATCH: _check_tunables,
    OPS_NAMES: _check_ops,
    TIMEOUT_BOUND: _check_timeout,
}
assert _CHECKS.keys() == RULES.keys()


def lint_policy(policy: Policy, tunables: Mapping[str, TunableValue], kernel: Kernel, cache_dir: Path) -> list[Finding]:
    """Check a policy's source against every rule in RULES; an empty list means it passes.

    `tunables` are the values being verified (checked against policy.toml's ranges). Raises
    BuildError if the source does not parse (the compile stage should have caught that).
    """
    started = time.perf_counter()
    tu = parse_policy_source(policy.source, policy.path, kernel, cache_dir)
    prog = _Program(tu=tu, policy=policy, tunables=tunables)
    findings: list[Finding] = []
    for check in _CHECKS.values():
        findings += check(prog)
    findings.sort(key=lambda f: (f.file != "policy.toml", f.file or "", f.line or 0, f.rule))
    log.info("lint of %s: %d finding(s) in %.2f s", policy.name, len(findings), time.perf_counter() - started)
    return findings


if __name__ == "__main__":
    print(render_rules(), end="")
