"""parse_verifier_log on real logs from the sandbox kernel (tests/data/verify/logs, README there).

Each log is what the kernel-verifier stage got back when it loaded one of the fixtures in
tests/fixtures/verify/objects: the test checks the Finding's source file and line against the
fixture source, the verifier's own message, the hint's kind, and the trimmed log.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from schedcp.verify.kernel import (
    EXCERPT_LINES,
    GENERIC_FIX,
    HINTS,
    analyse_verifier_log,
    parse_verifier_log,
)

TESTS = Path(__file__).resolve().parents[1]
LOGS = TESTS / "data" / "verify" / "logs"
OBJECTS = TESTS / "fixtures" / "verify" / "objects"
SOURCES = [*sorted(OBJECTS.glob("*/*.bpf.c")), TESTS / "fixtures" / "policies" / "reject" / "reject.bpf.c"]
FIX_OF = {h.kind: h.fix for h in HINTS}


def line_of(source: str, text: str) -> int:
    """The 1-based line of `text` in a fixture source (so the test does not hard-code numbers)."""
    path = next(p for p in SOURCES if p.name == source)
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


# log, hint kind, source file, a text on the line the finding must point at, words of the message
CASES = [
    ("unbounded-loop", "unbounded-loop", "vloop.bpf.c", "while (!*(volatile", "infinite loop detected"),
    ("too-large", "too-large", "vlarge.bpf.c", "sum = (sum << 5)", "BPF program is too large"),
    ("null-check", "null-check", "vnull.bpf.c", "*count += 1;", "invalid mem access 'map_value_or_null'"),
    ("null-check-map", "null-check", "reject.bpf.c", "*count += 1;", "invalid mem access 'map_value_or_null'"),
    ("out-of-range", "out-of-range", "voob.bpf.c", "s->count[p->pid & 7] += 1;", "invalid access to map value"),
    ("scalar-deref", "scalar-deref", "vscalar.bpf.c", "*where = enq_flags;", "invalid mem access 'scalar'"),
    (
        "unreleased-reference",
        "unreleased-reference",
        "vleak.bpf.c",
        "bpf_task_from_pid(p->tgid)",
        "Unreleased reference",
    ),
    ("unknown-kfunc", "unknown-kfunc", "vkfunc.bpf.c", "scx_bpf_no_such_kfunc(p);", "not found in kernel"),
    (
        "unresolved-weak-kfunc",
        "unknown-kfunc",
        "vweak.bpf.c",
        "scx_bpf_maybe_kfunc(p);",
        "'scx_bpf_maybe_kfunc' is referenced but wasn't resolved",
    ),
    (
        "kfunc-context",
        "kfunc-context",
        "vctx.bpf.c",
        "scx_bpf_dsq_move_to_local(SCX_DSQ_GLOBAL);",
        "calling kernel function scx_bpf_dsq_move_to_local is not allowed",
    ),
]


@pytest.mark.parametrize(("log", "kind", "source", "text", "words"), CASES, ids=[c[0] for c in CASES])
def test_finding_points_at_the_failing_source_line(log: str, kind: str, source: str, text: str, words: str) -> None:
    [rejection] = analyse_verifier_log((LOGS / f"{log}.txt").read_text(), SOURCES)
    finding = rejection.finding
    assert finding.rule == "verifier"
    assert (finding.file, finding.line) == (source, line_of(source, text))
    assert words in finding.message
    assert rejection.kind == kind
    assert finding.fix.startswith(FIX_OF[kind].split("{", 1)[0])
    assert text in rejection.code  # the source line itself, read from the fixture


@pytest.mark.parametrize("log", [c[0] for c in CASES])
def test_trimmed_log_holds_the_failure(log: str) -> None:
    text = (LOGS / f"{log}.txt").read_text()
    [rejection] = analyse_verifier_log(text, SOURCES)
    assert 0 < len(rejection.excerpt) <= EXCERPT_LINES
    excerpt = "\n".join(rejection.excerpt)
    assert rejection.finding.message.split(";")[0] in excerpt
    evidence = "\n".join(rejection.evidence())
    assert rejection.finding.message in evidence
    if rejection.program is not None:  # a program reached the verifier: its count and instruction
        assert rejection.processed is not None
        assert rejection.insn is not None
        assert f"processed {rejection.processed} insns" in excerpt


def test_program_log_details() -> None:
    [r] = analyse_verifier_log((LOGS / "null-check.txt").read_text(), SOURCES)
    assert (r.program, r.insn, r.processed) == ("vnull_enqueue", 8, 8)
    # 7.x kernels explain the failure: the reason and the suggestion are kept.
    assert "may be NULL" in r.kernel_reason
    assert "NULL check" in r.kernel_suggestion
    assert "The kernel suggests: Add a NULL check" in r.finding.fix


def test_unreleased_reference_points_at_where_it_was_taken() -> None:
    """The verifier fails at the exit; the line to fix is where the reference was acquired."""
    [r] = analyse_verifier_log((LOGS / "unreleased-reference.txt").read_text(), SOURCES)
    assert r.insn == 20  # the exit instruction
    assert r.finding.line == line_of("vleak.bpf.c", "bpf_task_from_pid(p->tgid)")
    assert "the reference taken at vleak.bpf.c" in r.evidence()[0]
    assert "bpf_task_release()" in r.finding.fix


def test_huge_log_cut_by_the_stage_still_parses() -> None:
    """The stage keeps the head and the tail of a 75 MB log; the failure is in the tail."""
    text = (LOGS / "too-large.txt").read_text()
    assert "bytes of the log left out here" in text
    [r] = analyse_verifier_log(text, SOURCES)
    assert r.processed == 1_000_001
    assert "1 million" in r.finding.fix
    assert len(r.excerpt) <= EXCERPT_LINES


def test_kfunc_context_names_the_program() -> None:
    [f] = parse_verifier_log((LOGS / "kfunc-context.txt").read_text(), SOURCES)
    assert "vctx_enqueue may not call it" in f.fix
    assert "only in ops.dispatch" in f.fix


def test_without_sources_the_file_is_named_as_in_the_log() -> None:
    [f] = parse_verifier_log((LOGS / "null-check.txt").read_text())
    assert (f.file, f.line) == ("vnull.bpf.c", line_of("vnull.bpf.c", "*count += 1;"))
    [k] = parse_verifier_log((LOGS / "unknown-kfunc.txt").read_text())
    assert (k.file, k.line) == (None, None)  # libbpf names no line: only the sources could
    assert "scx_bpf_no_such_kfunc" in k.message


@pytest.mark.parametrize(
    ("log", "kind", "words"),
    [
        ("map-create", "map-create", "map 'pair_ctx': failed to create"),
        ("kconfig", "kconfig", "failed to open system Kconfig"),
    ],
)
def test_loads_libbpf_refused_before_the_verifier(log: str, kind: str, words: str) -> None:
    """The kernel's own examples built elsewhere: libbpf stops before any program is verified.
    The message is the line that says why, not libbpf's retries or its final "failed to load"."""
    [r] = analyse_verifier_log((LOGS / f"{log}.txt").read_text(), SOURCES)
    assert r.kind == kind
    assert words in r.finding.message
    assert r.program is None
    assert r.finding.fix == FIX_OF[kind]


def test_unknown_message_gets_the_generic_hint() -> None:
    log = """\
libbpf: prog 'x_enqueue': BPF program load failed: Invalid argument
libbpf: prog 'x_enqueue': -- BEGIN PROG LOAD LOG --
0: R1=ctx() R10=fp0
; @ x.bpf.c:7
0: (b7) r0 = 0
some message no hint knows
processed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
-- END PROG LOAD LOG --
"""
    [r] = analyse_verifier_log(log)
    assert (r.kind, r.finding.message, r.finding.fix) == ("generic", "some message no hint knows", GENERIC_FIX)
    assert (r.finding.file, r.finding.line, r.insn) == ("x.bpf.c", 7, 0)


def test_text_without_a_load_failure_gives_nothing() -> None:
    assert parse_verifier_log("") == []
    assert parse_verifier_log("some unrelated output\n") == []


def test_every_hint_kind_has_a_distinct_fix() -> None:
    fixes = [h.fix for h in HINTS]
    assert len(set(fixes)) == len(fixes)
    assert len({h.kind for h in HINTS}) == len(HINTS)
