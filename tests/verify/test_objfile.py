"""inspect_object / object_static_stage on real objects: the built-in policies and bad fixtures.

The built-in policies are the known-good case: their objects must show what their source
says (the lint checks the source; here the same facts are read back from the ELF and BTF).
The fixtures in tests/fixtures/verify/objects break one thing each.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from schedcp.bpf.build import BuiltPolicy
from schedcp.bpf.policy import builtin_policies
from schedcp.config import Settings
from schedcp.errors import SchedcpError
from schedcp.sandbox.kernel import find_kernel
from schedcp.verify.lint import (
    ALLOWED_CALLS,
    ALLOWED_HELPERS,
    ALLOWED_KFUNCS,
    MAX_TIMEOUT_MS,
    MIN_TIMEOUT_MS,
    OPS_NAMES,
    TIMEOUT_BOUND,
)
from schedcp.verify.objfile import (
    bpf_helper_names,
    inspect_object,
    judged_kfunc,
    kernel_kfuncs,
    object_static_stage,
)

OBJECTS = Path(__file__).resolve().parents[1] / "fixtures" / "verify" / "objects"
BUILTINS = [p.name for p in builtin_policies()]
Build = Callable[..., BuiltPolicy]


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


# --- no BPF toolchain needed ----------------------------------------------------------------------


def test_kfunc_names_are_judged_as_the_operation() -> None:
    """Objects built for many kernels import flavours, versions and pre-6.13 names."""
    assert judged_kfunc("scx_bpf_dsq_insert") == "scx_bpf_dsq_insert"
    assert judged_kfunc("scx_bpf_dsq_insert___v2___compat") == "scx_bpf_dsq_insert"
    assert judged_kfunc("scx_bpf_dsq_move_to_local___v1") == "scx_bpf_dsq_move_to_local"
    assert judged_kfunc("__scx_bpf_dsq_insert_vtime") == "scx_bpf_dsq_insert_vtime"
    assert judged_kfunc("scx_bpf_dispatch___compat") == "scx_bpf_dsq_insert"
    assert judged_kfunc("scx_bpf_consume___old") == "scx_bpf_dsq_move_to_local"
    assert judged_kfunc("bpf_send_signal") == "bpf_send_signal"


def test_helper_numbers_come_from_libbpf() -> None:
    names = bpf_helper_names()
    assert names[1] == "bpf_map_lookup_elem"
    assert names[109] == "bpf_send_signal"
    assert len(names) > 200


def test_not_a_bpf_object(tmp_path: Path) -> None:
    text = tmp_path / "x.bpf.o"
    text.write_text("not an ELF file")
    with pytest.raises(SchedcpError, match="not an ELF object"):
        inspect_object(text)
    host_binary = shutil.which("true")
    assert host_binary is not None
    with pytest.raises(SchedcpError, match="not a BPF object"):
        inspect_object(Path(host_binary))


# --- built objects ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kfuncs_here() -> frozenset[str]:
    settings = Settings()
    found = kernel_kfuncs(find_kernel(settings.kernels_dir, settings.sandbox.kernel), settings.cache_dir)
    assert found is not None
    return found


@pytest.mark.bpf
def test_kernel_kfunc_list(kfuncs_here: frozenset[str]) -> None:
    assert {"scx_bpf_dsq_insert", "scx_bpf_dsq_insert___v2", "bpf_arena_alloc_pages"} <= kfuncs_here
    assert "btf_type_tag" not in kfuncs_here  # a type attribute before the name, not a kfunc
    assert "scx_bpf_dispatch" not in kfuncs_here  # renamed before 7.3


@pytest.mark.bpf
@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_policy_objects(name: str, build: Build, kfuncs_here: frozenset[str]) -> None:
    built = build(name)
    facts = inspect_object(built.obj)
    assert facts.ops_variable == f"{name}_ops"
    assert facts.name == name
    assert facts.timeout_ms is None or MIN_TIMEOUT_MS <= facts.timeout_ms <= MAX_TIMEOUT_MS
    assert {"enqueue", "exit"} <= set(facts.callbacks)
    assert facts.license == "GPL"
    # Every callback is one of the object's programs, in a struct_ops section.
    assert facts.table is not None
    for op, program in facts.table.callbacks.items():
        assert facts.programs[program].startswith("struct_ops"), op
    assert {"scx_bpf_dsq_insert", "scx_bpf_dsq_insert_vtime"} & set(facts.kfuncs)
    assert set(facts.kfuncs) <= ALLOWED_KFUNCS
    assert set(facts.helpers) <= ALLOWED_HELPERS
    # Calls carry the source line they come from (-g), in the policy or our headers.
    sites = [c for c in facts.calls if c.kind in ("kfunc", "helper")]
    assert sites
    assert all(c.file is not None and c.line for c in sites)
    assert any(c.file == f"{name}.bpf.c" for c in sites)
    stage = object_static_stage(built.obj, kernel_kfuncs=kfuncs_here)
    assert stage.passed, stage.findings
    assert stage.stage == "lint"
    assert any(f'.name "{name}"' in e for e in stage.evidence)


@pytest.mark.bpf
def test_signal_helper_is_refused(build: Build) -> None:
    built = build(str(OBJECTS / "sendsig"))
    facts = inspect_object(built.obj)
    assert "bpf_send_signal" in facts.helpers
    [site] = [c for c in facts.calls if c.name == "bpf_send_signal"]
    assert (site.kind, site.number, site.function) == ("helper", 109, "sendsig_enqueue")
    stage = object_static_stage(built.obj)
    assert not stage.passed
    [finding] = stage.findings
    assert finding.rule == ALLOWED_CALLS
    assert "bpf_send_signal" in finding.message
    assert "forbidden" in finding.message
    source = OBJECTS / "sendsig" / "sendsig.bpf.c"
    assert (finding.file, finding.line) == ("sendsig.bpf.c", line_of(source, "bpf_send_signal(19)"))
    assert stage.fix == finding.fix


@pytest.mark.bpf
def test_ops_tables_problems(build: Build) -> None:
    built = build(str(OBJECTS / "badops"))
    facts = inspect_object(built.obj)
    assert [t.variable for t in facts.tables] == ["badops_ops", "badops_other_ops"]
    assert (facts.name, facts.timeout_ms, facts.callbacks) == ("bad-ops", 60000, ["enqueue"])
    stage = object_static_stage(built.obj)
    got = sorted((f.rule, f.message.split(":")[0]) for f in stage.findings)
    assert got == [
        (OPS_NAMES, 'ops table `badops_ops` has .name "bad-ops"'),
        (OPS_NAMES, "ops table `badops_other_ops` sets no .name"),
        (OPS_NAMES, "the object has 2 struct sched_ext_ops tables (`badops_ops`, `badops_other_ops`)"),
        (TIMEOUT_BOUND, "ops table `badops_ops` sets timeout_ms = 60000"),
    ]
    assert any("no .exit callback" in e for e in stage.evidence)  # noted, not a finding


@pytest.mark.bpf
def test_weak_kfunc_the_kernel_lacks(build: Build, kfuncs_here: frozenset[str]) -> None:
    """A __weak kfunc is judged only where the kernel has it: elsewhere no call can reach it."""
    built = build(str(OBJECTS / "vweak"))
    facts = inspect_object(built.obj)
    assert facts.weak_kfuncs == ["scx_bpf_maybe_kfunc"]
    unknown = object_static_stage(built.obj)
    [finding] = unknown.findings
    assert finding.rule == ALLOWED_CALLS
    assert "unknown kfunc `scx_bpf_maybe_kfunc`" in finding.message
    assert finding.line == line_of(OBJECTS / "vweak" / "vweak.bpf.c", "scx_bpf_maybe_kfunc(p);")
    here = object_static_stage(built.obj, kernel_kfuncs=kfuncs_here)
    assert here.passed
    assert any("never called here: scx_bpf_maybe_kfunc" in e for e in here.evidence)


@pytest.mark.bpf
def test_strong_unknown_kfunc_is_a_finding(build: Build, kfuncs_here: frozenset[str]) -> None:
    built = build(str(OBJECTS / "vkfunc"))
    stage = object_static_stage(built.obj, kernel_kfuncs=kfuncs_here)
    [finding] = stage.findings
    assert "unknown kfunc `scx_bpf_no_such_kfunc`" in finding.message
    assert "called in vkfunc_enqueue" in finding.message
