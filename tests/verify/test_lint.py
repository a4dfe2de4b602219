"""The lint rules on real clang ASTs: each rule passes correct code and finds the broken kind.

Most tests lint the `mini` policy of conftest.py with one part changed, and check the rule,
the file and line the finding points at, and that it names what is wrong.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from schedcp.bpf.policy import Policy, builtin_policies, load_policy
from schedcp.errors import BuildError
from schedcp.models.verification import Finding
from schedcp.sandbox.kernel import Kernel
from schedcp.verify.lint import (
    ALLOWED_CALLS,
    BOUNDED_LOOPS,
    DSQ_LIFECYCLE,
    ENQUEUE_INSERTS,
    EXIT_RECORDED,
    MAX_TIMEOUT_MS,
    MIN_TIMEOUT_MS,
    OPS_NAMES,
    RULES,
    TIMEOUT_BOUND,
    TUNABLES_MATCH,
    lint_policy,
)

from .minipolicy import ENQUEUE, TOML_TUNABLES, Lint, line_of

pytestmark = pytest.mark.bpf

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"
# The budget the verifier has for this stage on our 2-core machines; a lint takes ~0.2 s.
LINT_BUDGET_S = 5.0


def only(findings: list[Finding], rule: str) -> Finding:
    """The one finding, which must be of `rule`."""
    assert [f.rule for f in findings] == [rule], "\n".join(f"{f.where()}: {f.message} [{f.rule}]" for f in findings)
    return findings[0]


def show(findings: list[Finding]) -> str:
    return "\n".join(f"{f.where()}: {f.message} [{f.rule}]" for f in findings)


# --- whole policies --------------------------------------------------------------------------


@pytest.mark.parametrize("policy", builtin_policies(), ids=lambda p: p.name)
def test_every_builtin_policy_lints_clean_with_its_default_tunables(
    policy: Policy, kernel: Kernel, cache_dir: Path
) -> None:
    findings = lint_policy(policy, policy.resolve_tunables(), kernel, cache_dir)
    assert findings == [], show(findings)


def test_the_known_good_fixture_lints_clean(kernel: Kernel, cache_dir: Path) -> None:
    policy = load_policy(FIXTURES / "good")
    assert lint_policy(policy, policy.resolve_tunables(), kernel, cache_dir) == []


def test_the_stall_fixture_is_caught_before_it_runs(kernel: Kernel, cache_dir: Path) -> None:
    """The fixture the watchdog must eject (a DSQ nobody consumes) is found from its source."""
    policy = load_policy(FIXTURES / "stall")
    finding = only(lint_policy(policy, {}, kernel, cache_dir), DSQ_LIFECYCLE)
    assert finding.file == "stall.bpf.c"
    assert finding.line == line_of(FIXTURES, "return scx_bpf_create_dsq(PARKING_DSQ", "stall/stall.bpf.c")
    assert "DSQ 0" in finding.message
    assert "scx_bpf_dsq_move_to_local(0)" in finding.fix


def test_the_minimal_policy_lints_clean(lint: Lint) -> None:
    assert lint() == []


def test_lint_of_a_builtin_fits_the_stage_budget(kernel: Kernel, cache_dir: Path) -> None:
    policy = next(p for p in builtin_policies() if p.name == "deadline")  # the largest
    lint_policy(policy, {}, kernel, cache_dir)  # the first may build the cached header
    started = time.perf_counter()
    lint_policy(policy, {}, kernel, cache_dir)
    assert time.perf_counter() - started < LINT_BUDGET_S


def test_a_source_that_does_not_parse_is_a_build_error_with_clangs_words(kernel: Kernel, cache_dir: Path) -> None:
    policy = load_policy(FIXTURES / "broken_c")
    with pytest.raises(BuildError, match="does not parse") as info:
        lint_policy(policy, {}, kernel, cache_dir)
    assert "slice_nss" in info.value.log


def test_every_finding_says_where_and_what_to_do(lint: Lint) -> None:
    findings = lint(enqueue="\tbpf_send_signal(9);", timeout="\t.timeout_ms = 60000,")
    assert {f.rule for f in findings} == {ALLOWED_CALLS, ENQUEUE_INSERTS, TIMEOUT_BOUND}
    for finding in findings:
        assert finding.rule in RULES
        assert finding.file == "mini.bpf.c"
        assert finding.line is not None
        assert finding.message
        assert finding.fix


# --- allowed-calls ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "helper"),
    [
        ("bpf_send_signal(9);", "bpf_send_signal"),
        ("bpf_send_signal_thread(9);", "bpf_send_signal_thread"),
        ("bpf_probe_write_user((void *)0x1000, &nr_enqueued, 8);", "bpf_probe_write_user"),
        ("bpf_override_return(NULL, 0);", "bpf_override_return"),
        ("bpf_sys_bpf(0, NULL, 0);", "bpf_sys_bpf"),
    ],
)
def test_harmful_helpers_are_forbidden(lint: Lint, tmp_path: Path, call: str, helper: str) -> None:
    finding = only(
        lint(
            helpers=f"static void harm(void)\n{{\n\t{call}\n}}",
            dispatch="\tharm();\n\tscx_bpf_dsq_move_to_local(MINI_DSQ);",
        ),
        ALLOWED_CALLS,
    )
    assert finding.line == line_of(tmp_path, call)
    assert f"`{helper}` is forbidden" in finding.message


def test_a_helper_off_the_allow_list_is_found_even_unused_by_the_ops(lint: Lint, tmp_path: Path) -> None:
    finding = only(lint(helpers="static u64 uid(void)\n{\n\treturn bpf_get_current_uid_gid();\n}"), ALLOWED_CALLS)
    assert "`bpf_get_current_uid_gid` is not on the allow-list" in finding.message
    assert finding.line == line_of(tmp_path, "bpf_get_current_uid_gid")


def test_a_helper_called_by_number_is_judged_by_what_it_is(lint: Lint, tmp_path: Path) -> None:
    helpers = "static long (* const quiet)(u32 sig) = (void *) 109;"
    finding = only(lint(helpers=helpers, enqueue=ENQUEUE + "\n\tquiet(9);"), ALLOWED_CALLS)
    assert "`bpf_send_signal` (called as `quiet`) is forbidden" in finding.message
    assert finding.line == line_of(tmp_path, "quiet(9);")


def test_a_kfunc_the_lint_does_not_know_is_an_unknown_kfunc(lint: Lint, tmp_path: Path) -> None:
    helpers = "void bpf_mystery_kfunc(u64 x) __ksym;"
    finding = only(lint(helpers=helpers, enqueue=ENQUEUE + "\n\tbpf_mystery_kfunc(1);"), ALLOWED_CALLS)
    assert finding.message.startswith("unknown kfunc `bpf_mystery_kfunc`")
    assert finding.line == line_of(tmp_path, "bpf_mystery_kfunc(1);")


def test_a_sched_ext_kfunc_left_off_the_list_is_refused(lint: Lint) -> None:
    helpers = "bool scx_bpf_sub_dispatch(u64 cgroup_id) __ksym;"
    finding = only(
        lint(helpers=helpers, dispatch="\tscx_bpf_sub_dispatch(1);\n\tscx_bpf_dsq_move_to_local(MINI_DSQ);"),
        ALLOWED_CALLS,
    )
    assert "unknown kfunc `scx_bpf_sub_dispatch`" in finding.message


def test_a_kfunc_flavour_is_judged_by_the_kfunc_it_resolves_to(lint: Lint) -> None:
    helpers = "void scx_bpf_dsq_insert___mine(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym;"
    assert lint(helpers=helpers, enqueue="\tscx_bpf_dsq_insert___mine(p, MINI_DSQ, slice_ns, enq_flags);") == []


def test_inline_assembly_that_calls_is_found_and_a_barrier_is_not(lint: Lint, tmp_path: Path) -> None:
    finding = only(lint(enqueue=ENQUEUE + '\n\tasm volatile("call 109" ::: "memory");'), ALLOWED_CALLS)
    assert "inline assembly" in finding.message
    assert finding.line == line_of(tmp_path, "call 109")
    assert lint(enqueue=ENQUEUE + "\n\tbarrier();") == []


def test_the_calls_schedulers_make_are_allowed(lint: Lint) -> None:
    enqueue = """\
	u64 now = bpf_ktime_get_ns();
	s32 cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
	char comm[16];

	bpf_probe_read_kernel_str(comm, sizeof(comm), p->comm);
	if (cpu >= 0)
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	scx_bpf_dsq_insert_vtime(p, MINI_DSQ, slice_ns, now, enq_flags);
	bpf_printk("queued %d at %llu", p->pid, now);"""
    assert lint(enqueue=enqueue) == []


def test_an_undefined_function_is_neither_kfunc_nor_helper(lint: Lint) -> None:
    finding = only(lint(helpers="void elsewhere(void);", enqueue=ENQUEUE + "\n\telsewhere();"), ALLOWED_CALLS)
    assert "`elsewhere` is neither defined in the policy" in finding.message


# --- enqueue-inserts -------------------------------------------------------------------------


def test_an_early_return_without_insert_is_found_at_the_return(lint: Lint, tmp_path: Path) -> None:
    enqueue = """\
	if (enq_flags & SCX_ENQ_WAKEUP)
		return;	/* lost */
	scx_bpf_dsq_insert(p, MINI_DSQ, slice_ns, enq_flags);"""
    finding = only(lint(enqueue=enqueue), ENQUEUE_INSERTS)
    assert finding.line == line_of(tmp_path, "return;\t/* lost */")
    assert "`mini_enqueue`" in finding.message
    assert "scx_bpf_dsq_insert" in finding.fix


def test_falling_off_the_end_without_insert_is_found_at_the_closing_brace(lint: Lint, tmp_path: Path) -> None:
    enqueue = """\
	if (p->nr_cpus_allowed > 1)
		scx_bpf_dsq_insert(p, MINI_DSQ, slice_ns, enq_flags);
	/* the end */"""
    finding = only(lint(enqueue=enqueue), ENQUEUE_INSERTS)
    assert finding.line == line_of(tmp_path, "/* the end */") + 1
    assert "the end of the function" in finding.message


def test_an_insert_only_inside_a_loop_may_never_happen(lint: Lint) -> None:
    enqueue = """\
	u32 i;

	bpf_for(i, 0, 1)
		scx_bpf_dsq_insert(p, MINI_DSQ, slice_ns, enq_flags);"""
    only(lint(enqueue=enqueue), ENQUEUE_INSERTS)


def test_if_else_and_switch_with_default_that_all_insert_pass(lint: Lint) -> None:
    enqueue = """\
	if (enq_flags & SCX_ENQ_WAKEUP) {
		scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, slice_ns, enq_flags);
		return;
	} else if (p->nr_cpus_allowed == 1) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice_ns, enq_flags);
		return;
	}
	switch (p->prio) {
	case 100:
	case 101:
		scx_bpf_dsq_insert_vtime(p, MINI_DSQ, slice_ns, 0, enq_flags);
		break;
	default:
		scx_bpf_dsq_insert(p, MINI_DSQ, slice_ns, enq_flags);
	}"""
    assert lint(enqueue=enqueue) == []


def test_a_switch_without_default_can_skip_every_case(lint: Lint, tmp_path: Path) -> None:
    enqueue = """\
	switch (p->prio) {
	case 120:
		scx_bpf_dsq_insert(p, MINI_DSQ, slice_ns, enq_flags);
		break;
	}
} /* end */"""
    finding = only(lint(enqueue=enqueue.removesuffix("\n} /* end */")), ENQUEUE_INSERTS)
    assert "end of the function" in finding.message


def test_a_path_that_aborts_the_policy_needs_no_insert(lint: Lint) -> None:
    enqueue = """\
	if (!p) {
		scx_error("no task");
		return;
	}
	scx_bpf_dsq_insert(p, MINI_DSQ, slice_ns, enq_flags);"""
    assert lint(enqueue=enqueue) == []


def test_an_enqueue_that_inserts_only_through_a_helper_passes(lint: Lint) -> None:
    helpers = """\
static __always_inline void queue_task(struct task_struct *p, u64 enq_flags)
{
	if (p->nr_cpus_allowed == 1) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice_ns, enq_flags);
		return;
	}
	scx_bpf_dsq_insert(p, MINI_DSQ, slice_ns, enq_flags);
}"""
    assert lint(helpers=helpers, enqueue="\tqueue_task(p, enq_flags);") == []


def test_a_helper_that_inserts_on_one_path_only_does_not_count(lint: Lint, tmp_path: Path) -> None:
    helpers = """\
static __always_inline void maybe_queue(struct task_struct *p, u64 enq_flags)
{
	if (enq_flags & SCX_ENQ_WAKEUP)
		scx_bpf_dsq_insert(p, MINI_DSQ, slice_ns, enq_flags);
}"""
    finding = only(lint(helpers=helpers, enqueue="\tmaybe_queue(p, enq_flags);"), ENQUEUE_INSERTS)
    assert "`maybe_queue` insert(s) on only some of their paths" in finding.message
    assert "maybe_queue" in finding.fix
    assert finding.line == line_of(tmp_path, "maybe_queue(p, enq_flags);") + 1  # the closing brace


def test_an_insert_in_a_short_circuited_condition_may_not_run(lint: Lint) -> None:
    helpers = """\
static __always_inline bool queue_task(struct task_struct *p, u64 enq_flags)
{
	scx_bpf_dsq_insert(p, MINI_DSQ, slice_ns, enq_flags);
	return true;
}"""
    assert lint(helpers=helpers, enqueue="\tif (queue_task(p, enq_flags) || enq_flags)\n\t\treturn;") == []
    # The return is reached only after queue_task() ran; falling through is not.
    finding = only(
        lint(helpers=helpers, enqueue="\tif (enq_flags && queue_task(p, enq_flags))\n\t\treturn;"), ENQUEUE_INSERTS
    )
    assert "the end of the function" in finding.message


def test_a_policy_without_enqueue_is_served_by_the_kernel(lint: Lint) -> None:
    ops = """\
SEC(".struct_ops.link")
struct sched_ext_ops mini_ops = {
	.dispatch	= (void *)mini_dispatch,
	.init		= (void *)mini_init,
	.exit		= (void *)mini_exit,
	.name		= "mini",
};"""
    # mini_enqueue is still defined but unused: only the dispatch/init DSQ pair matters.
    assert lint(ops=ops, enqueue="") == []


# --- dsq-lifecycle ---------------------------------------------------------------------------


def test_a_created_dsq_nobody_consumes_is_found_at_its_creation(lint: Lint, tmp_path: Path) -> None:
    finding = only(lint(dispatch="\t/* never consumes */"), DSQ_LIFECYCLE)
    assert finding.line == line_of(tmp_path, "return scx_bpf_create_dsq(MINI_DSQ")
    assert "DSQ 0 is created here but nothing consumes it" in finding.message


def test_inserting_into_a_dsq_never_created_is_found_at_the_insert(lint: Lint, tmp_path: Path) -> None:
    enqueue = "\tscx_bpf_dsq_insert(p, 5, slice_ns, enq_flags);\t/* DSQ 5 */"
    findings = lint(enqueue=enqueue, dispatch="\tscx_bpf_dsq_move_to_local(MINI_DSQ);\n\tscx_bpf_dsq_move_to_local(5);")
    assert [f.rule for f in findings] == [DSQ_LIFECYCLE, DSQ_LIFECYCLE]
    insert = next(f for f in findings if "inserts into DSQ 5" in f.message)
    assert insert.line == line_of(tmp_path, "/* DSQ 5 */")
    assert "scx_bpf_create_dsq(5, -1)" in insert.fix
    assert any("reads from DSQ 5" in f.message for f in findings)


def test_dsqs_created_and_consumed_through_the_shared_helpers_pass(lint: Lint) -> None:
    init = "\treturn schedcp_create_dsq(MINI_DSQ);"
    dispatch = "\tschedcp_move_to_local(MINI_DSQ, NULL);"
    assert lint(init=init, dispatch=dispatch) == []
    findings = lint(init=init, dispatch="\tschedcp_move_to_local(3, NULL);")
    assert sorted(f.message.split(":")[0] for f in findings) == [
        "DSQ 0 is created here but nothing consumes it (no scx_bpf_dsq_move_to_local(0) and no iteration over it "
        "that moves tasks)",
        "this reads from DSQ 3, which is never created",
    ]


def test_a_helper_of_our_own_that_creates_counts_at_its_call(lint: Lint, tmp_path: Path) -> None:
    helpers = """\
enum { BIG_DSQ = 7 };

static s32 make(u64 id)
{
	return scx_bpf_create_dsq(id, -1);
}"""
    init = "\tmake(MINI_DSQ);\n\treturn make(BIG_DSQ);"
    finding = only(lint(helpers=helpers, init=init), DSQ_LIFECYCLE)
    assert "DSQ 7 is created here" in finding.message
    assert finding.line == line_of(tmp_path, "return make(BIG_DSQ);")


def test_a_dsq_walked_with_an_iterator_that_moves_tasks_is_consumed(lint: Lint) -> None:
    dispatch = """\
	struct bpf_iter_scx_dsq it;
	struct task_struct *q;

	bpf_iter_scx_dsq_new(&it, MINI_DSQ, 0);
	while ((q = bpf_iter_scx_dsq_next(&it))) {
		if (scx_bpf_dsq_move(&it, q, SCX_DSQ_LOCAL, 0))
			break;
	}
	bpf_iter_scx_dsq_destroy(&it);"""
    assert lint(dispatch=dispatch) == []


def test_dsq_ids_computed_at_run_time_are_not_second_guessed(lint: Lint) -> None:
    init = """\
	u32 i;

	bpf_for(i, 0, 4)
		scx_bpf_create_dsq(i, -1);
	return 0;"""
    enqueue = "\tscx_bpf_dsq_insert(p, scx_bpf_task_cpu(p), slice_ns, enq_flags);"
    dispatch = "\tscx_bpf_dsq_move_to_local(cpu);"
    assert lint(init=init, enqueue=enqueue, dispatch=dispatch) == []


# --- bounded-loops ---------------------------------------------------------------------------


def _loop_in_enqueue(loop: str) -> str:
    return f"\tu32 i = 0;\n\n{loop}\n{ENQUEUE}"


@pytest.mark.parametrize(
    "loop",
    [
        "\tfor (i = 0; i < 16; i++)\n\t\t__sync_fetch_and_add(&nr_enqueued, 1);",
        "\tfor (i = 16; i > 0; i -= 2)\n\t\t__sync_fetch_and_add(&nr_enqueued, 1);",
        "\tfor (i = 0; i < MINI_MAX && i < nr_enqueued; i++)\n\t\t__sync_fetch_and_add(&nr_enqueued, 1);",
        "\tbpf_for(i, 0, nr_enqueued)\n\t\t__sync_fetch_and_add(&nr_enqueued, 1);",
        "\tbpf_repeat(8)\n\t\t__sync_fetch_and_add(&nr_enqueued, 1);",
        "\twhile (i < MINI_MAX) {\n\t\t__sync_fetch_and_add(&nr_enqueued, 1);\n\t\ti++;\n\t}",
        "\t#pragma unroll\n\tfor (i = 0; i < sizeof(u64); i++)\n\t\t__sync_fetch_and_add(&nr_enqueued, 1);",
        "\tdo {\n\t\t__sync_fetch_and_add(&nr_enqueued, 1);\n\t} while (0);",
    ],
    ids=["literal", "down-by-two", "constant-and-variable", "bpf_for", "bpf_repeat", "while-step", "unroll", "do-once"],
)
def test_bounded_loops_pass(lint: Lint, loop: str) -> None:
    assert lint(helpers="#define MINI_MAX 64", enqueue=_loop_in_enqueue(loop)) == []


@pytest.mark.parametrize(
    ("loop", "says"),
    [
        ("\twhile (1)\t/* loop */\n\t\t__sync_fetch_and_add(&nr_enqueued, 1);", "always true"),
        ("\tfor (;;) {\t/* loop */\n\t\tif (nr_enqueued)\n\t\t\tbreak;\n\t}", "always true"),
        (
            "\tu64 until = bpf_ktime_get_ns() + 1000;\n\twhile (bpf_ktime_get_ns() < until)\t/* loop */\n\t\t;",
            "busy-wait",
        ),
        (
            "\tfor (i = 0; i < slice_ns; i++)\t/* loop */\n\t\t__sync_fetch_and_add(&nr_enqueued, 1);",
            "const volatile tunable",
        ),
        (
            "\tfor (i = 0; i < nr_enqueued; i++)\t/* loop */\n\t\t__sync_fetch_and_add(&nr_enqueued, 1);",
            "global variable",
        ),
        ("\tfor (i = 0; i < 16; i--)\t/* loop */\n\t\t__sync_fetch_and_add(&nr_enqueued, 1);", "steps towards"),
        ("\tfor (i = 0; i < 16; i++)\t/* loop */\n\t\ti = 0;", "steps towards"),
        (
            "\twhile (i < 16) {\t/* loop */\n\t\tif (nr_enqueued)\n\t\t\tcontinue;\n\t\ti++;\n\t}",
            "steps towards",
        ),
    ],
    ids=[
        "while-1",
        "for-ever",
        "busy-wait",
        "tunable-bound",
        "global-bound",
        "wrong-direction",
        "reset",
        "continue-skips-step",
    ],
)
def test_unbounded_loops_are_found_at_the_loop(lint: Lint, tmp_path: Path, loop: str, says: str) -> None:
    finding = only(lint(enqueue=_loop_in_enqueue(loop)), BOUNDED_LOOPS)
    assert finding.line == line_of(tmp_path, "/* loop */")
    assert says in finding.message
    assert "bpf_for" in finding.fix


# --- exit-recorded ---------------------------------------------------------------------------


def test_an_ops_table_without_exit_is_found(lint: Lint, tmp_path: Path) -> None:
    finding = only(lint(exit_field=""), EXIT_RECORDED)
    assert "no .exit callback" in finding.message
    assert finding.line == line_of(tmp_path, "struct sched_ext_ops mini_ops")


def test_an_exit_that_does_not_record_is_found(lint: Lint, tmp_path: Path) -> None:
    finding = only(lint(exit='\tbpf_printk("bye %d", ei->kind);'), EXIT_RECORDED)
    assert "does not record" in finding.message
    assert "schedcp_record_exit(ei)" in finding.fix
    assert finding.line == line_of(tmp_path, "void BPF_PROG(mini_exit")


def test_an_exit_copying_the_info_itself_or_through_a_helper_passes(lint: Lint) -> None:
    helpers = """\
u32 last_kind;
char last_reason[128];

static void keep(struct scx_exit_info *info)
{
	bpf_probe_read_kernel_str(last_reason, sizeof(last_reason), info->reason);
}"""
    assert lint(helpers=helpers, exit="\tlast_kind = ei->kind;") == []
    assert lint(helpers=helpers, exit="\tkeep(ei);") == []
    only(lint(helpers=helpers, exit='\tu32 kind = ei->kind;\n\n\tbpf_printk("%u", kind);'), EXIT_RECORDED)


# --- tunables-match --------------------------------------------------------------------------


def test_a_const_volatile_global_missing_from_policy_toml_is_found(lint: Lint, tmp_path: Path) -> None:
    tunables = "const volatile u64 slice_ns = 20000000;\nconst volatile u32 hidden_knob = 3;"
    finding = only(lint(tunables=tunables), TUNABLES_MATCH)
    assert "`hidden_knob`" in finding.message
    assert finding.line == line_of(tmp_path, "hidden_knob")


def test_a_tunable_missing_from_the_source_is_found_in_policy_toml(lint: Lint, tmp_path: Path) -> None:
    extra = '\n[tunables.boost]\ntype = "bool"\ndefault = true\n'
    finding = only(lint(toml_tunables=TOML_TUNABLES + extra), TUNABLES_MATCH)
    assert finding.file == "policy.toml"
    assert finding.line == line_of(tmp_path, "[tunables.boost]", "mini/policy.toml")
    assert "const volatile bool boost = true;" in finding.fix


def test_a_tunable_of_another_type_or_default_is_found_at_its_declaration(lint: Lint, tmp_path: Path) -> None:
    wrong_type = only(lint(tunables="const volatile u32 slice_ns = 20000000;"), TUNABLES_MATCH)
    assert "u64 in policy.toml but `const volatile u32` in C" in wrong_type.message
    assert wrong_type.line == line_of(tmp_path, "slice_ns = 20000000;")
    wrong_default = only(lint(tunables="const volatile u64 slice_ns = 5000000;"), TUNABLES_MATCH)
    assert "starts at 5000000 in C but policy.toml's default is 20000000" in wrong_default.message


def test_tunables_of_every_type_with_matching_defaults_pass(lint: Lint) -> None:
    tunables = """\
#define DEFAULT_SLICE (20 * 1000 * 1000ULL)
const volatile u64 slice_ns = DEFAULT_SLICE;
const volatile bool boost = true;
const volatile s32 nice_offset = -5;
const volatile char prefix[16] = "lt_long_";
const volatile u32 zero;"""
    toml = TOML_TUNABLES + (
        '\n[tunables.boost]\ntype = "bool"\ndefault = true\n'
        '\n[tunables.nice_offset]\ntype = "s32"\ndefault = -5\n'
        '\n[tunables.prefix]\ntype = "str16"\ndefault = "lt_long_"\n'
        '\n[tunables.zero]\ntype = "u32"\ndefault = 0\n'
    )
    assert lint(tunables=tunables, toml_tunables=toml) == []
    finding = only(lint(tunables=tunables.replace('"lt_long_"', '"lt_short_"'), toml_tunables=toml), TUNABLES_MATCH)
    assert '"lt_short_" in C' in finding.message


def test_values_being_verified_must_be_in_range_and_declared(lint: Lint, tmp_path: Path) -> None:
    finding = only(lint(values={"slice_ns": 1}), TUNABLES_MATCH)
    assert "outside its range" in finding.message
    assert finding.file == "policy.toml"
    assert finding.line == line_of(tmp_path, "[tunables.slice_ns]", "mini/policy.toml")
    assert "100 us to 100 ms" in finding.fix
    unknown = only(lint(values={"slice_ns": 20_000_000, "nope": 1}), TUNABLES_MATCH)
    assert "`nope`" in unknown.message
    assert lint(values={"slice_ns": 100_000_000}) == []


# --- ops-names -------------------------------------------------------------------------------


def test_the_ops_table_must_be_named_after_the_policy(lint: Lint, tmp_path: Path) -> None:
    finding = only(lint(ops_var="sched_ops"), OPS_NAMES)
    assert "`sched_ops`" in finding.message
    assert "mini_ops" in finding.fix
    assert finding.line == line_of(tmp_path, "struct sched_ext_ops sched_ops")


def test_the_ops_name_must_be_the_policy_name(lint: Lint, tmp_path: Path) -> None:
    finding = only(lint(name_field='\t.name = "fifo",'), OPS_NAMES)
    assert '.name is "fifo"' in finding.message
    assert finding.line == line_of(tmp_path, '.name = "fifo"')
    missing = only(lint(name_field=""), OPS_NAMES)
    assert "sets no .name" in missing.message


def test_a_source_without_an_ops_table_is_found(lint: Lint) -> None:
    finding = only(lint(ops="/* no table */"), OPS_NAMES)
    assert "no struct sched_ext_ops table" in finding.message
    assert finding.file == "mini.bpf.c"
    assert "struct sched_ext_ops mini_ops" in finding.fix


# --- timeout-bound ---------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", ["", f"\t.timeout_ms = {MIN_TIMEOUT_MS},", f"\t.timeout_ms = {MAX_TIMEOUT_MS},"])
def test_timeouts_within_the_bound_or_unset_pass(lint: Lint, timeout: str) -> None:
    assert lint(timeout=timeout) == []


@pytest.mark.parametrize(
    ("timeout_ms", "says"), [(MAX_TIMEOUT_MS + 1, "longer than"), (30_000, "longer than"), (200, "ordinary waits")]
)
def test_timeouts_out_of_the_bound_are_found(lint: Lint, tmp_path: Path, timeout_ms: int, says: str) -> None:
    finding = only(lint(timeout=f"\t.timeout_ms = {timeout_ms},"), TIMEOUT_BOUND)
    assert f"timeout_ms = {timeout_ms}" in finding.message
    assert says in finding.message
    assert finding.line == line_of(tmp_path, ".timeout_ms")
