"""clang-19 and bpftool for real: vmlinux.h, compile errors, the built object and its hash."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from schedcp.bpf import toolchain
from schedcp.bpf.build import BuiltPolicy, build_policy
from schedcp.bpf.loader import internal_map_name
from schedcp.bpf.policy import Policy, builtin_policies, find_policy
from schedcp.bpf.rodata import read_tunables
from schedcp.bpf.toolchain import compile_policy, file_sha256, vmlinux_h
from schedcp.config import Settings
from schedcp.errors import BuildError, SetupError
from schedcp.sandbox.kernel import Kernel, find_kernel

pytestmark = pytest.mark.bpf

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"
EM_BPF = "EM_BPF"


@pytest.fixture(scope="module")
def cache_dir() -> Path:
    return Settings().cache_dir


@pytest.fixture(scope="module")
def kernel(cache_dir: Path) -> Kernel:
    return find_kernel(Settings().kernels_dir)


@pytest.fixture(scope="module")
def fifo_default(kernel: Kernel, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> BuiltPolicy:
    """fifo with its default tunables, built once for this module."""
    return _build(find_policy("fifo"), kernel, cache_dir, tmp_path_factory.mktemp("fifo-default"))


def _build(policy: Policy, kernel: Kernel, cache_dir: Path, out: Path, **overrides: str) -> BuiltPolicy:
    return build_policy(policy, policy.resolve_tunables(overrides), kernel, cache_dir, out)


def _machine(obj: Path) -> str:
    with obj.open("rb") as f:
        return str(ELFFile(f)["e_machine"])


def test_vmlinux_h_is_generated_once(kernel: Kernel, tmp_path: Path) -> None:
    folder = vmlinux_h(kernel, tmp_path)
    header = folder / "vmlinux.h"
    assert folder == tmp_path / "vmlinux" / kernel.release
    text = header.read_text()
    assert "struct sched_ext_ops {" in text
    assert not list(folder.glob("*.tmp"))
    mtime = header.stat().st_mtime_ns
    assert vmlinux_h(kernel, tmp_path) == folder
    assert header.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("target", ["fifo", str(FIXTURES / "good")])
def test_compile_policy(target: str, kernel: Kernel, cache_dir: Path, tmp_path: Path) -> None:
    policy = find_policy(target)
    out = compile_policy(policy.source, tmp_path / "sub" / "p.o", kernel, cache_dir)
    assert out == tmp_path / "sub" / "p.o"
    assert _machine(out) == EM_BPF
    with out.open("rb") as f:
        sections = {s.name for s in ELFFile(f).iter_sections()}
    assert ".struct_ops.link" in sections
    assert ".BTF" in sections


def test_broken_c_carries_clangs_message(kernel: Kernel, cache_dir: Path, tmp_path: Path) -> None:
    policy = find_policy(str(FIXTURES / "broken_c"))
    with pytest.raises(BuildError) as info:
        compile_policy(policy.source, tmp_path / "broken.o", kernel, cache_dir)
    message = str(info.value)
    assert "broken_c.bpf.c does not compile" in message
    assert "undeclared identifier 'slice_nss'" in message
    assert "undeclared identifier 'slice_nss'" in info.value.log
    assert "broken_c.bpf.c:17:" in info.value.log  # file and line of the error
    assert not (tmp_path / "broken.o").exists()


def test_missing_source(kernel: Kernel, cache_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="does not exist"):
        compile_policy(tmp_path / "absent.bpf.c", tmp_path / "x.o", kernel, cache_dir)


def test_missing_clang_is_a_setup_error(
    kernel: Kernel, cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(toolchain, "CLANG", "schedcp-no-such-clang")
    with pytest.raises(SetupError, match="make setup") as info:
        compile_policy(find_policy("fifo").source, tmp_path / "x.o", kernel, cache_dir)
    assert "schedcp-no-such-clang" in str(info.value)


def test_build_policy_object(fifo_default: BuiltPolicy) -> None:
    built = fifo_default
    assert built.name == "fifo"
    assert built.tunables == {"slice_ns": 20_000_000, "direct_idle": True}
    assert built.sha256 == file_sha256(built.obj)
    assert len(built.sha256) == 64
    # Only the final object is left behind.
    assert sorted(p.name for p in built.obj.parent.iterdir()) == [built.obj.name]
    assert built.obj.name == f"fifo{built.sha256[:4]}.bpf.o"
    obj_name = built.obj.name.split(".", 1)[0]
    assert obj_name.startswith(built.name[:4])
    assert len(obj_name) == 8
    # libbpf's map names fit the kernel's 15 characters and keep the whole object name.
    for section in ("bss", "data", "rodata"):
        map_name = internal_map_name(obj_name, section)
        assert map_name == f"{obj_name}.{section}"
        assert len(map_name) <= 15


def test_build_is_deterministic(fifo_default: BuiltPolicy, kernel: Kernel, cache_dir: Path, tmp_path: Path) -> None:
    first = fifo_default
    second = _build(find_policy("fifo"), kernel, cache_dir, tmp_path)
    assert first.sha256 == second.sha256
    assert first.obj.name == second.obj.name
    assert first.obj.read_bytes() == second.obj.read_bytes()


def test_tunables_change_the_hash(fifo_default: BuiltPolicy, kernel: Kernel, cache_dir: Path, tmp_path: Path) -> None:
    fifo = find_policy("fifo")
    default = fifo_default
    shorter = _build(fifo, kernel, cache_dir, tmp_path / "b", slice_ns="5ms")
    no_idle = _build(fifo, kernel, cache_dir, tmp_path / "c", direct_idle="false")
    assert len({default.sha256, shorter.sha256, no_idle.sha256}) == 3
    types = {"slice_ns": "u64", "direct_idle": "bool"}
    assert read_tunables(shorter.obj, types) == {"slice_ns": 5_000_000, "direct_idle": 1}
    assert read_tunables(no_idle.obj, types) == {"slice_ns": 20_000_000, "direct_idle": 0}


def test_build_fixture_with_tunable(kernel: Kernel, cache_dir: Path, tmp_path: Path) -> None:
    good = find_policy(str(FIXTURES / "good"))
    built = _build(good, kernel, cache_dir, tmp_path, slice_ns="5ms")
    assert built.obj.name.startswith("good")
    assert read_tunables(built.obj, {"slice_ns": "u64"}) == {"slice_ns": 5_000_000}


def test_build_broken_c_leaves_nothing(kernel: Kernel, cache_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="undeclared identifier"):
        _build(find_policy(str(FIXTURES / "broken_c")), kernel, cache_dir, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_hash_does_not_depend_on_the_working_directory(
    kernel: Kernel, cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = find_policy("fifo")
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    monkeypatch.chdir(tmp_path / "one")
    first = _build(fifo, kernel, cache_dir, tmp_path / "a")
    monkeypatch.chdir(tmp_path / "two")
    second = _build(fifo, kernel, cache_dir, tmp_path / "b")
    assert first.sha256 == second.sha256


def _bss_symbols(obj: Path) -> set[str]:
    with obj.open("rb") as f:
        elf = ELFFile(f)
        index = next((i for i, sec in enumerate(elf.iter_sections()) if sec.name == ".bss"), None)
        symtab = elf.get_section_by_name(".symtab")
        if index is None or symtab is None:
            return set()
        return {
            s.name for s in symtab.iter_symbols() if s["st_shndx"] == index and s["st_info"]["type"] == "STT_OBJECT"
        }


@pytest.mark.parametrize("name", [p.name for p in builtin_policies()])
def test_every_bss_variable_is_a_documented_stat(name: str, kernel: Kernel, cache_dir: Path, tmp_path: Path) -> None:
    """Userspace reports all of .bss as stats, so internal state there would show up as a
    meaningless counter: it belongs in .data (SCHEDCP_STATE). Each stat is in the README."""
    policy = find_policy(name)
    built = _build(policy, kernel, cache_dir, tmp_path)
    readme = (policy.path / "README.md").read_text()
    stats_section = readme.split("## Stats", 1)[1].split("\n## ", 1)[0] if "## Stats" in readme else ""
    # A stat is documented by naming it at the start of an item, before the colon: "- `nr_x`: ...",
    # "- `nr_a`, `nr_b`: ..." or "- `nr_a` / `nr_b`: ..." (a mention inside a description is not).
    heads = re.findall(r"^\s*[-*]\s*([^:\n]*):", stats_section, flags=re.M)
    listed = {name for head in heads for name in re.findall(r"`(\w+)`", head)}
    undocumented = _bss_symbols(built.obj) - {"schedcp_exit_info"} - listed
    assert not undocumented, f"{name}: .bss variables not listed under '## Stats' in its README: {undocumented}"
