"""Every policy folder agrees with itself: names, ops table, tunables, stats, exit record."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schedcp.bpf.policy import Policy, builtin_dir, builtin_policies, load_policy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"
FIXTURE_NAMES = ["good", "reject", "stall"]  # broken_c does not compile on purpose

# C spellings accepted for each policy.toml type.
C_TYPES = {
    "u32": {"u32", "__u32"},
    "u64": {"u64", "__u64"},
    "s32": {"s32", "__s32"},
    "s64": {"s64", "__s64"},
    "bool": {"bool", "_Bool"},
    "str16": {"char[16]"},
}


def _all_policies() -> list[Policy]:
    return [*builtin_policies(), *(load_policy(FIXTURES / n) for n in FIXTURE_NAMES)]


POLICIES = {f"{'builtin' if p.path.parent == builtin_dir() else 'fixture'}:{p.name}": p for p in _all_policies()}
BUILTINS = {k: p for k, p in POLICIES.items() if k.startswith("builtin:")}


def _source(policy: Policy) -> str:
    # Drop comments, so a name in a comment cannot satisfy a check.
    text = policy.source.read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _ops_table(policy: Policy) -> tuple[str, str]:
    """(variable, body) of the `struct sched_ext_ops` table."""
    tables = re.findall(r"struct\s+sched_ext_ops\s+(\w+)\s*=\s*\{(.*?)\};", _source(policy), flags=re.S)
    assert len(tables) == 1, f"{policy.source}: expected exactly one sched_ext_ops table"
    return tables[0]


def _prog_body(source: str, prog: str) -> str:
    m = re.search(rf"BPF_PROG\(\s*{prog}\b[^)]*\)\s*\{{(.*?)\n\}}", source, flags=re.S)
    assert m, f"no BPF_PROG({prog}, ...)"
    return m.group(1)


def test_there_is_at_least_one_builtin() -> None:
    assert "builtin:fifo" in BUILTINS


@pytest.mark.parametrize("key", sorted(POLICIES))
def test_names_agree(key: str) -> None:
    policy = POLICIES[key]
    name = policy.path.name
    assert policy.spec.name == name
    assert policy.source.name == f"{name}.bpf.c"
    assert policy.source.is_file()
    variable, body = _ops_table(policy)
    assert variable == f"{name}_ops"
    assert re.findall(r'\.name\s*=\s*"([^"]*)"', body) == [name]


@pytest.mark.parametrize("key", sorted(POLICIES))
def test_callbacks_are_named_after_the_policy(key: str) -> None:
    policy = POLICIES[key]
    source = _source(policy)
    _, body = _ops_table(policy)
    wired = re.findall(r"\.(\w+)\s*=\s*\(void\s*\*\)\s*(\w+)", body)
    assert wired, "the ops table wires no callbacks"
    for op, prog in wired:
        assert prog == f"{policy.name}_{op}"
        sections = re.findall(rf'SEC\("struct_ops(?:\.s)?/(\w+)"\)\s*\w+\s+BPF_PROG\(\s*{prog}\b', source)
        assert sections == [prog], f'{prog} is not defined under SEC("struct_ops/{prog}")'


@pytest.mark.parametrize("key", sorted(POLICIES))
def test_tunables_are_const_volatile_globals_of_the_declared_type(key: str) -> None:
    policy = POLICIES[key]
    declarations = re.findall(r"^const\s+volatile\s+(\w+)\s+(\w+)\s*(\[\d+\])?\s*=", _source(policy), flags=re.M)
    globals_by_name = {var: ctype + dims for ctype, var, dims in declarations}
    for name, tunable in policy.spec.tunables.items():
        assert name in globals_by_name, f"tunable {name} is not a `const volatile` global"
        assert globals_by_name[name] in C_TYPES[tunable.type], (
            f"tunable {name} is {tunable.type} in policy.toml but {globals_by_name[name]} in C"
        )


@pytest.mark.parametrize("key", sorted(POLICIES))
def test_stats_are_globals(key: str) -> None:
    policy = POLICIES[key]
    source = _source(policy)
    for stat in policy.spec.stats:
        m = re.search(rf"^(?!const\b)(?:\w+\s+)+{stat}\s*(?:\[[^\]]*\])?\s*(?:=[^;]*)?;", source, flags=re.M)
        assert m, f"stat {stat} is not a (writable) global in {policy.source.name}"


@pytest.mark.parametrize("key", sorted(POLICIES))
def test_exit_callback_records_the_exit(key: str) -> None:
    policy = POLICIES[key]
    _, body = _ops_table(policy)
    exits = re.findall(r"\.exit\s*=\s*\(void\s*\*\)\s*(\w+)", body)
    if key.startswith("builtin:"):
        assert exits, "built-in policies must have an exit callback"
    for prog in exits:
        assert "schedcp_record_exit(" in _prog_body(_source(policy), prog)


@pytest.mark.parametrize("key", sorted(BUILTINS))
def test_builtins_have_a_readme(key: str) -> None:
    policy = BUILTINS[key]
    readme = policy.path / "README.md"
    assert readme.is_file()
    text = readme.read_text()
    assert text.startswith(f"# {policy.name}\n")
    for tunable in policy.spec.tunables:
        assert f"`{tunable}`" in text, f"README.md does not describe tunable {tunable}"
    for stat in policy.spec.stats:
        assert f"`{stat}`" in text, f"README.md does not describe stat {stat}"
    assert "`schedcp_exit_info`" in text, "README.md does not say where the exit reason is recorded"


@pytest.mark.parametrize("key", sorted(BUILTINS))
def test_builtins_include_the_shared_header_first(key: str) -> None:
    includes = re.findall(r'^#include\s+[<"]([^>"]+)[>"]', _source(BUILTINS[key]), flags=re.M)
    assert includes[0] == "schedcp.bpf.h"
    assert "vmlinux.h" not in includes
