"""The kernel-verifier stage: the kernel's own BPF verifier judges the exact object, nothing attached.

The lint reads the source; only the kernel can say whether the object loads: the verifier
walks every path of every program and refuses memory it cannot prove safe, loops it cannot
prove end, references not released, kfuncs this kernel lacks or forbids in a callback. Doing
that first, without attaching, means a rejected policy never becomes the scheduler for a
moment, and the dynamic stage spends its minutes only on objects that load.

How: `bpftool prog loadall OBJ DIR` in the sandbox (guest/verifier_load.py) creates the
object's maps and loads every program through the verifier, then pins the programs; for a
`.struct_ops.link` object it never registers the ops map, which is what would attach.
sched_ext's state and enable_seq are read before and after (and polled during): a load that
enabled a scheduler fails the stage. The pins are removed at once.

A rejection becomes a Finding per failing program: the verifier's own message, the source
file and line of the failing instruction (from the log's `; <code> @ file.bpf.c:LINE`
annotations, which come from the object's BTF line info), and a plain-words hint for the
common failures (HINTS). The log itself is cut to the lines around the failure: a rejected
program's log can run to millions of lines. parse_verifier_log() is pure, so its reading of
real logs is tested without a VM (tests/data/verify/logs).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ValidationError

from schedcp.errors import SchedcpError
from schedcp.models.verification import Finding, Stage, StageResult
from schedcp.runner import CommandRunner

log = logging.getLogger(__name__)

STAGE: Stage = "kernel-verifier"
PIN_ROOT = "/sys/fs/bpf/schedcp-verify"
SYSTEM_PYTHON = "/usr/bin/python3"
DEFAULT_TIMEOUT_S = 180.0
# Beyond the load's own limit: the guest script's start (about 0.5 s under emulation), reading
# the log's tail and the per-program counts, removing the pins.
SCRIPT_SLACK_S = 60.0
EXCERPT_LINES = 40
INSN_LIMIT = 1_000_000  # the verifier's per-program limit (BPF_COMPLEXITY_LIMIT_INSNS)


# --- the load ----------------------------------------------------------------------------------


class ScxCounters(BaseModel):
    state: str
    enable_seq: int


class GuestLoad(BaseModel):
    """What guest/verifier_load.py reports about one load."""

    before: ScxCounters
    after: ScxCounters
    seen: list[str] = []
    rc: int
    timed_out: bool
    load_s: float
    log: str = ""
    log_bytes: int = 0
    log_cut: int = 0
    programs: dict[str, int | None] = {}
    pins_left: bool = False

    @property
    def attached_something(self) -> bool:
        """Did sched_ext enable a scheduler while we loaded? (It must not: we never attach.)"""
        if self.after.enable_seq != self.before.enable_seq:
            return True
        return self.before.state == "disabled" and (
            self.after.state != "disabled" or any(s != "disabled" for s in self.seen)
        )


class _ScriptTimeout(SchedcpError):
    """The guest script did not report at all: the guest is overloaded or the load hung."""


def load_script() -> Path:
    return Path(str(resources.files("schedcp.verify").joinpath("guest", "verifier_load.py")))


def load_without_attach(runner: CommandRunner, obj: Path, *, timeout: float = DEFAULT_TIMEOUT_S) -> GuestLoad:
    """Load every program of `obj` through the kernel's verifier where `runner` runs; never attach.

    A load still running after `timeout` seconds is killed and reported with timed_out set.
    Raises SchedcpError when the guest script itself fails (a schedcp problem, not the policy's).
    """
    script = runner.stage(load_script())
    staged = runner.stage(obj)
    pin_dir = f"{PIN_ROOT}/{obj.name.split('.', 1)[0]}-{uuid.uuid4().hex[:8]}"
    argv = [SYSTEM_PYTHON, "-I", script, "--obj", staged, "--pin-dir", pin_dir, "--timeout", f"{timeout:g}"]
    res = runner.run(argv, timeout=timeout + SCRIPT_SLACK_S, rt=True)
    if res.timed_out:
        runner.run(["rm", "-rf", pin_dir], timeout=30.0, rt=True)
        raise _ScriptTimeout(f"the load did not report within {timeout + SCRIPT_SLACK_S:g} s")
    try:
        return GuestLoad.model_validate_json(res.stdout.strip().splitlines()[-1] if res.stdout.strip() else "")
    except (ValidationError, ValueError) as exc:
        raise SchedcpError(
            f"the kernel-verifier stage's guest script failed (exit {res.rc}): {res.stderr.strip()[-2000:]}; "
            "this is a schedcp problem, not the policy's"
        ) from exc


def kernel_verifier_stage(
    runner: CommandRunner,
    obj: Path,
    name: str,
    *,
    sources: Sequence[Path] = (),
    timeout: float = DEFAULT_TIMEOUT_S,
) -> StageResult:
    """Load `obj` through the kernel's BPF verifier without attaching it; pass when every program loads.

    `sources` are the policy's C files (and headers), to show the failing source line and to
    locate a call the kernel has no kfunc for. Raises LostVMError if the sandbox dies, and
    SchedcpError when the stage itself cannot run.
    """
    t0 = time.monotonic()
    evidence: list[str] = []
    try:
        load = load_without_attach(runner, obj, timeout=timeout)
    except _ScriptTimeout as exc:
        finding = _timeout_finding(timeout)
        evidence.append(str(exc))
        return _result(False, t0, evidence, [finding])
    findings: list[Finding] = []
    if load.attached_something:
        findings.append(
            Finding(
                rule="attached",
                message=f"sched_ext was enabled during a load that must not attach ({_scx_words(load)})",
                fix="This is a schedcp problem, not the policy's: the kernel-verifier stage must never attach. "
                "Report it with the object.",
            )
        )
    if load.pins_left:
        log.warning("the verifier stage could not remove its pins for %s", name)
    if load.timed_out:
        evidence.append(f"the load was killed after {load.load_s:.1f} s; {_scx_words(load)}")
        return _result(False, t0, evidence, [_timeout_finding(timeout), *findings])
    if load.rc != 0:
        rejections = analyse_verifier_log(load.log, sources)
        findings += [r.finding for r in rejections]
        for r in rejections:
            evidence += r.evidence()
        if not rejections:
            tail = "\n".join(load.log.strip().splitlines()[-EXCERPT_LINES:])
            findings.append(
                Finding(
                    rule="verifier",
                    message=f"bpftool could not load {name} (exit {load.rc}) and the log names no verifier error",
                    fix=GENERIC_FIX,
                )
            )
            evidence.append(f"loader output:\n{tail}")
        evidence.append(f"load failed after {load.load_s:.2f} s; {_scx_words(load)}")
        return _result(False, t0, evidence, findings)
    counts = {p: n for p, n in load.programs.items() if n is not None}
    evidence.append(
        f"loaded {len(load.programs)} program(s) of {name} through the kernel's BPF verifier in {load.load_s:.2f} s "
        f"without attaching: {_scx_words(load)}"
    )
    if counts:
        total = sum(counts.values())
        top = max(counts, key=lambda p: counts[p])
        per = ", ".join(f"{p} {n}" for p, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        evidence.append(
            f"the verifier processed {total} instructions in all (limit {INSN_LIMIT:,} per program; most: {top}, "
            f"{counts[top]}): {per}"
        )
    if load.log.strip():
        evidence.append("loader messages: " + " | ".join(load.log.strip().splitlines()[:5]))
    return _result(not findings, t0, evidence, findings)


def _result(passed: bool, t0: float, evidence: list[str], findings: list[Finding]) -> StageResult:
    return StageResult(
        stage=STAGE,
        passed=passed,
        duration_s=time.monotonic() - t0,
        evidence=evidence,
        findings=findings,
        fix="" if passed or not findings else findings[0].fix,
    )


def _scx_words(load: GuestLoad) -> str:
    b, a = load.before, load.after
    if b.state == "disabled" and not load.attached_something:
        return f"sched_ext stayed disabled (enable_seq {b.enable_seq} before and after)"
    return (
        f"sched_ext was {b.state} before and {a.state} after (seen during: {', '.join(load.seen) or '-'}), "
        f"enable_seq {b.enable_seq} -> {a.enable_seq}"
    )


def _timeout_finding(timeout: float) -> Finding:
    return Finding(
        rule="verifier",
        message=f"the kernel verifier did not finish within {timeout:g} s; the load was stopped and counts as rejected",
        fix="The verifier walks every path through the program, and a loop it cannot bound it walks once per "
        "possible iteration: bound loops by a compile-time constant or use bpf_for(i, 0, n), which the verifier "
        "checks once; split long callbacks into smaller functions and cut branches inside loops.",
    )


# --- reading the verifier's log ------------------------------------------------------------------


@dataclass(frozen=True)
class Hint:
    """A class of verifier failure: how to recognise its message, and what to do about it.

    `fix` may name the message's named groups and {program} (the failing program).
    """

    kind: str
    pattern: re.Pattern[str]
    fix: str


GENERIC_FIX = (
    "Read the verifier's message and the source line it points at: the message names the register (R0-R10) "
    "and what the verifier could not prove about it. Make the check the verifier needs explicit in C right "
    "before that line (a NULL test, a bounds test, a release), or simplify the code there."
)

# First match wins, so the narrower patterns come first. Matched against the verifier's message
# lines (or libbpf's, when the load failed before the verifier ran).
HINTS: tuple[Hint, ...] = (
    Hint(
        "unbounded-loop",
        re.compile(r"infinite loop detected|back-edge from insn|unbounded loop|loop detected"),
        "The loop's state is the same after an iteration, so the verifier cannot see it end: a busy-wait, or a "
        "loop whose exit condition nothing in its body changes. Never wait inside a callback; bound every loop "
        "by a compile-time constant or write it as bpf_for(i, 0, n) / bpf_repeat(n).",
    ),
    Hint(
        "too-large",
        re.compile(r"BPF program is too large|jumps is too complex|too many states|Processed \d+ insn"),
        "The verifier gave up: it walks every path and each iteration of a loop it cannot bound, up to 1 million "
        "instructions per program. Most often a loop is bounded by a variable (a global, a tunable, a map value): "
        "bound it by a compile-time constant or use bpf_for(i, 0, n), which the verifier checks once. Otherwise "
        "move work out of the loop, cut branches inside it, or split the callback into smaller functions.",
    ),
    Hint(
        "null-check",
        re.compile(r"_or_null|[Pp]ossibly NULL pointer|may be NULL"),
        "The pointer may be NULL here: map lookups, task/cgroup storage gets, bpf_task_from_pid(), "
        "bpf_cgroup_from_id() and similar return NULL when there is nothing to return. Test it right after the "
        "call (`if (!ptr) return ...;`) and use it only on the non-NULL path.",
    ),
    Hint(
        "scalar-deref",
        re.compile(r"invalid mem access 'scalar'"),
        "A plain number is used as a pointer: the verifier tracks pointers only from what it knows (a map value, "
        "the callback's arguments, a kfunc's result); an address stored in a global or computed is just a "
        "number. Keep the pointer you got from the verifier-known source, or read kernel memory with "
        "bpf_probe_read_kernel().",
    ),
    Hint(
        "out-of-range",
        re.compile(
            r"invalid access to map value|outside of the allowed memory range|min value is negative|"
            r"unbounded min value|invalid (?:indirect )?(?:read|write|access)|invalid mem access|access beyond|"
            r"!read_ok|invalid stack|math between .* pointer|pointer arithmetic|off=-?\d+ size=\d+"
        ),
        "A memory access may fall outside its object: check an index against the array's size right before "
        "using it (`if (i >= ARRAY_SIZE(a)) return;`), or mask it with size - 1 when the size is a power of two, "
        "and make the index unsigned; the check must be on the same variable the access uses.",
    ),
    Hint(
        "unreleased-reference",
        re.compile(r"Unreleased reference|reference leak|[Uu]nreleased resource"),
        "A reference is still held when the callback returns: every bpf_task_from_pid()/bpf_task_acquire() needs "
        "bpf_task_release(), bpf_cgroup_from_id()/bpf_cgroup_acquire() needs bpf_cgroup_release(), "
        "bpf_cpumask_create() needs bpf_cpumask_release(), scx_bpf_get_idle_cpumask() needs "
        "scx_bpf_put_idle_cpumask(), on every path including early returns.",
    ),
    Hint(
        "kfunc-context",
        re.compile(
            r"calling kernel function (?P<kfunc>\w+) is not allowed|"
            r"program must be sleepable to call sleepable kfunc (?P<kfunc2>\w+)|"
            r"kernel func (?P<kfunc3>\w+) is sleepable within"
        ),
        "sched_ext allows each kfunc only in some callbacks, and {program} may not call it: e.g. "
        "scx_bpf_dsq_move_to_local() only in ops.dispatch, scx_bpf_create_dsq() only in ops.init or another "
        'sleepable callback (SEC("struct_ops.s/...")), scx_bpf_select_cpu_dfl() only in ops.select_cpu. Move '
        "the call to a callback that may make it, or record what you need and act on it there.",
    ),
    Hint(
        "unknown-kfunc",
        re.compile(
            r"extern \((?:func|var) ksym\) '(?P<kfunc>[^']+)': not found in kernel|"
            r"kfunc '(?P<kfunc2>[^']+)' is referenced but wasn't resolved|failed to find kernel BTF type ID|"
            r"calling kernel function is not allowed|kernel btf_id \d+ is not a function|"
            r"failed to find BTF for extern '(?P<kfunc3>[^']+)'"
        ),
        "This kernel has no such kfunc (or not with that name): check the name against the kernel's kfunc list "
        "(the lint's allow-list in docs/verify.md); sched_ext renamed several (scx_bpf_dispatch is now "
        "scx_bpf_dsq_insert, scx_bpf_consume is scx_bpf_dsq_move_to_local). An optional kfunc must be declared "
        "__weak and called only after `if (bpf_ksym_exists(name))`.",
    ),
    Hint(
        "helper-not-allowed",
        re.compile(r"program of this type cannot use helper|unknown func (?P<helper>\w+)#\d+"),
        "sched_ext programs may not call this BPF helper: use a sched_ext kfunc or another helper on the lint's "
        "allow-list (docs/verify.md).",
    ),
    Hint(
        "return-value",
        re.compile(r"At program exit the register R0|should have been in"),
        "{program} returns a value its callback may not return: ops.init and ops.init_task return 0 or a negative "
        "errno, ops.select_cpu a CPU number; make every return path return a value in the range the message "
        "gives.",
    ),
    Hint(
        "map-create",
        re.compile(r"map '(?P<map>[^']+)': failed to create"),
        "The kernel refused to create a map: most often its max_entries is 0 in the object because the "
        "scheduler's own loader sizes it before loading (e.g. to the number of CPUs); schedcp loads the object "
        "as built, so give it a size in the BPF source (__uint(max_entries, N)). Otherwise the map's type, flags "
        "or key/value sizes are not valid on this kernel.",
    ),
    Hint(
        "kconfig",
        re.compile(r"failed to open system Kconfig"),
        "The object reads kernel configuration values (extern ... __kconfig) and libbpf found neither "
        "/boot/config-<release> nor /proc/config.gz where it was loaded. That is the environment, not the code: "
        "provide the kernel's config file there, or drop the __kconfig externs.",
    ),
    Hint(
        "unsupported-callback",
        re.compile(
            r"attach to unsupported member (?P<member>\w+)|Cannot find member (?P<member2>\w+) in kernel BTF|"
            r"struct_ops init_kern"
        ),
        "The ops table sets a callback or field this kernel's struct sched_ext_ops does not have: drop it, or "
        "use the name this kernel uses (docs/verify.md lists the kernel's kfuncs; vmlinux.h its ops fields).",
    ),
)

_BEGIN = re.compile(r"prog '(?P<prog>[^']+)': -- BEGIN PROG LOAD LOG --")
_END = "-- END PROG LOAD LOG --"
_INSN = re.compile(r"^(?P<idx>\d+): (?:\([0-9a-f]{2}\)|<)")
_STATE = re.compile(r"^(?:\d+: (?:R\d|frame|fp-)|from \d+ to \d+:|cur state:|old state:|func '\w+' arg\d)")
_ANNOTATION = re.compile(r"^;(?P<code>.*) @ (?P<file>[^\s:]+):(?P<line>\d+)\s*$")
_PROCESSED = re.compile(r"^processed (?P<n>\d+) insns")
_AT = re.compile(r"^\s+(?P<prog>\S+) @ (?P<file>[^\s:]+):(?P<line>\d+)(?::\d+)?\s*$")
_SECTION = re.compile(r"^(?P<name>Reason|At|Causal path|Suggestion):\s*$")
_UNRELEASED = re.compile(r"alloc_insn=(?P<insn>\d+)")
_LOOP_AT = re.compile(r"infinite loop detected at insn (?P<insn>\d+)")
_LIBBPF_NOISE = re.compile(r"failed to load object|failed to load: -\d+|^Error: failed to load object file")


@dataclass(frozen=True)
class Location:
    file: str
    line: int
    code: str = ""


@dataclass
class Rejection:
    """One program the verifier refused (or libbpf's reason for not loading at all)."""

    finding: Finding
    kind: str
    program: str | None = None
    insn: int | None = None
    code: str = ""
    processed: int | None = None
    kernel_reason: str = ""
    kernel_suggestion: str = ""
    excerpt: list[str] = field(default_factory=list)

    def evidence(self) -> list[str]:
        f = self.finding
        what = f"the kernel verifier rejected {self.program}" if self.program else "the load failed before the verifier"
        at = "the reference taken at" if self.kind == "unreleased-reference" else "at"
        where = f" {at} {f.where()}" if f.file else ""
        insn = f" (failing instruction {self.insn})" if self.insn is not None else ""
        code = f": `{self.code}`" if self.code else ""
        done = f", after processing {self.processed} instructions" if self.processed is not None else ""
        out = [f"{what}{where}{insn}{code}{done}: {f.message}"]
        if self.kernel_reason:
            out.append(f"the kernel explains: {self.kernel_reason}")
        if self.excerpt:
            out.append("verifier log, around the failure:\n" + "\n".join(self.excerpt))
        return out


def parse_verifier_log(log: str, sources: Sequence[Path] = ()) -> list[Finding]:
    """Findings from a failed load's output (libbpf's messages with the verifier's log inside).

    One Finding per program the verifier refused (libbpf stops at the first), or one for a
    load libbpf refused before the verifier ran (a kfunc the kernel lacks). `sources` are the
    policy's files: a finding's file is named as they name it, and a libbpf error without a
    log is located by searching them. Empty when the text holds neither.
    """
    return [r.finding for r in analyse_verifier_log(log, sources)]


def analyse_verifier_log(log: str, sources: Sequence[Path] = ()) -> list[Rejection]:
    """parse_verifier_log() with what the stage shows besides the Finding (trimmed log, counts)."""
    lines = log.splitlines()
    out: list[Rejection] = []
    i = 0
    while i < len(lines):
        m = _BEGIN.search(lines[i])
        if m is None:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == _END), len(lines))
        out.append(_program_rejection(m.group("prog"), lines[i + 1 : end], sources))
        i = end + 1
    if not out:
        rejection = _libbpf_rejection(lines, sources)
        if rejection is not None:
            out.append(rejection)
    return out


def _program_rejection(program: str, block: list[str], sources: Sequence[Path]) -> Rejection:
    stop = next(
        (i for i, line in enumerate(block) if line.startswith("Verification failed") or _PROCESSED.match(line)),
        len(block),
    )
    pre = block[:stop]
    while pre and not pre[-1].strip():
        pre.pop()
    # Where each instruction was first seen, under which source annotation.
    annotation: Location | None = None
    first_at: dict[int, Location | None] = {}
    last_insn: tuple[int, int] | None = None  # (line index, instruction)
    at_last: Location | None = None
    for j, line in enumerate(pre):
        a = _ANNOTATION.match(line)
        if a is not None:
            annotation = Location(_base(a.group("file")), int(a.group("line")), a.group("code").strip())
            continue
        m = _INSN.match(line)
        if m is not None:
            idx = int(m.group("idx"))
            first_at.setdefault(idx, annotation)
            last_insn = (j, idx)
            at_last = annotation
    start = last_insn[0] + 1 if last_insn else 0
    messages = [
        line.strip()
        for line in pre[start:]
        if line.strip() and not _ANNOTATION.match(line) and not _STATE.match(line) and not _INSN.match(line)
    ]
    reason, suggestion, at_location, after = _kernel_explanation(block[stop:])
    messages += after
    message = "; ".join(messages[:3]) or "the verifier refused the program without a message"
    processed = next((int(m.group("n")) for line in block if (m := _PROCESSED.match(line))), None)

    where = at_location or at_last
    if (u := _UNRELEASED.search(message)) is not None:
        where = first_at.get(int(u.group("insn"))) or where
    elif (lp := _LOOP_AT.search(message)) is not None:
        where = first_at.get(int(lp.group("insn"))) or where
    if where is not None and at_last is not None and where.file == at_last.file and where.line == at_last.line:
        where = at_last  # keeps the code text the annotation carries
    code = (where.code if where else "") or (_source_line(sources, where) if where else "")
    kind, fix = _hint(message, program)
    if suggestion:
        fix += f" (The kernel suggests: {suggestion})"
    finding = Finding(
        rule="verifier",
        message=message,
        file=_source_name(sources, where.file) if where else None,
        line=where.line if where else None,
        fix=fix,
    )
    return Rejection(
        finding=finding,
        kind=kind,
        program=program,
        insn=last_insn[1] if last_insn else None,
        code=code,
        processed=processed,
        kernel_reason=reason,
        kernel_suggestion=suggestion,
        excerpt=_excerpt(block, last_insn[0] if last_insn else max(stop - 1, 0)),
    )


def _kernel_explanation(rest: list[str]) -> tuple[str, str, Location | None, list[str]]:
    """Newer kernels (7.x) follow the error with `Verification failed: ...` and sections
    Reason/At/Causal path/Suggestion: take the reason, the suggestion, the `At:` location and
    any verifier message after the sections (before `processed N insns`)."""
    sections: dict[str, list[str]] = {}
    current: str | None = None
    after: list[str] = []
    for line in rest:
        if _PROCESSED.match(line):
            break
        if line.startswith("Verification failed"):
            current = None
            continue
        m = _SECTION.match(line)
        if m is not None:
            current = m.group("name")
            sections[current] = []
            continue
        if current is not None and line.startswith(" "):
            sections[current].append(line)
        elif line.strip():
            current = None
            after.append(line.strip())
    at = None
    for line in sections.get("At", []):
        m = _AT.match(line)
        if m is not None:
            at = Location(_base(m.group("file")), int(m.group("line")))
            break

    def words(name: str) -> str:
        return " ".join(line.strip() for line in sections.get(name, []))

    return words("Reason"), words("Suggestion"), at, after


def _libbpf_rejection(lines: list[str], sources: Sequence[Path]) -> Rejection | None:
    """A load libbpf stopped before any program reached the verifier (no program log)."""
    said = [line.removeprefix("libbpf:").strip() for line in lines if line.startswith(("libbpf:", "Error:"))]
    useful = [line for line in said if not _LIBBPF_NOISE.search(line)]
    if not useful and not said:
        return None
    # The line a hint knows, else the last one: libbpf warns and retries before it gives up.
    known = [line for line in useful if any(h.pattern.search(line) for h in HINTS)]
    message = known[0] if known else (useful or said)[-1]
    kind, fix = _hint(message, None)
    where: Location | None = None
    m = next((h.pattern.search(message) for h in HINTS if h.kind == kind), None)
    if m is not None:
        groups = {k: v for k, v in m.groupdict().items() if v}
        name = next((v for k, v in groups.items() if k.startswith(("kfunc", "member", "map"))), None)
        if name is not None:
            where = _find_use(sources, name)
    return Rejection(
        finding=Finding(
            rule="verifier",
            message=message,
            file=where.file if where else None,
            line=where.line if where else None,
            fix=fix,
        ),
        kind=kind,
        code=where.code if where else "",
        excerpt=[line for line in lines if line.strip()][-EXCERPT_LINES:],
    )


def _hint(message: str, program: str | None) -> tuple[str, str]:
    for hint in HINTS:
        m = hint.pattern.search(message)
        if m is not None:
            values = {k.rstrip("0123456789"): v for k, v in m.groupdict().items() if v}
            values["program"] = program or "this program"
            return hint.kind, hint.fix.format_map(_Blank(values))
    return "generic", GENERIC_FIX


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "this program" if key == "program" else key


def _excerpt(block: list[str], at: int, limit: int = EXCERPT_LINES) -> list[str]:
    """At most `limit` lines: the instructions before the failure, the failure and the kernel's
    explanation up to `processed N insns` (its causal path left out first when space is short)."""
    end = next((j for j in range(at, len(block)) if _PROCESSED.match(block[j])), len(block) - 1)
    after = block[at : end + 1]
    if len(after) > limit - 8 and any(line.startswith("Causal path:") for line in after):
        c = next(j for j, line in enumerate(after) if line.startswith("Causal path:"))
        s = next((j for j in range(c, len(after)) if after[j].startswith("Suggestion:")), len(after))
        after = [*after[:c], f"(causal path: {s - c - 1} lines left out)", *after[s:]]
    if len(after) > limit - 8:
        keep = limit - 10
        after = [*after[:keep], f"... ({len(after) - keep - 1} lines left out) ...", after[-1]]
    before = block[max(0, at - (limit - len(after))) : at]
    return [*before, *after]


def _base(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _source_name(sources: Sequence[Path], file: str) -> str:
    """The file as the author names it: its name among `sources` (the log has no folders)."""
    for path in sources:
        if path.name == file:
            return path.name
    return file


def _source_line(sources: Sequence[Path], where: Location) -> str:
    for path in sources:
        if path.name == where.file:
            try:
                text = path.read_text(errors="replace").splitlines()
            except OSError:
                return ""
            return text[where.line - 1].strip() if 0 < where.line <= len(text) else ""
    return ""


def _find_use(sources: Sequence[Path], name: str) -> Location | None:
    """The first line in `sources` that uses `name` (a call, `.name =` in an ops table, a map's
    definition), not its `__ksym` declaration: where a kfunc, field or map the kernel refused is."""
    word = re.escape(name)
    use = re.compile(rf'(?:\b{word}\s*\(|\.{word}\s*=|\b{word}\s+SEC\("\.maps"\))')
    for path in sources:
        try:
            text = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for n, line in enumerate(text, 1):
            if use.search(line) and "__ksym" not in line:
                return Location(path.name, n, line.strip())
    return None
