"""The CLI without a VM: listings, JSON output, builds, and error paths that must not boot anything."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from schedcp.bpf.policy import builtin_policies
from schedcp.bpf.rodata import read_tunables
from schedcp.cli.main import app
from schedcp.sandbox import Sandbox

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"


@pytest.fixture(autouse=True)
def _default_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user config file leaks into these tests: defaults, unless a test writes one."""
    monkeypatch.setenv("SCHEDCP_CONFIG", str(tmp_path / "no-config.toml"))


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)


def test_version() -> None:
    result = invoke("version")
    assert result.exit_code == 0
    assert result.stdout.strip() == "0.1.0"


def test_policy_list() -> None:
    result = invoke("policy", "list")
    assert result.exit_code == 0, result.output
    assert "fifo" in result.stdout


def test_policy_list_json() -> None:
    result = invoke("policy", "list", "--json")
    assert result.exit_code == 0, result.output
    names = [p["name"] for p in json.loads(result.stdout)["policies"]]
    assert names == [p.name for p in builtin_policies()]
    assert "fifo" in names


def test_policy_show_json() -> None:
    result = invoke("policy", "show", "fifo", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["name"] == "fifo"
    assert Path(data["path"]).name == "fifo"
    slice_ns = data["tunables"]["slice_ns"]
    assert slice_ns["type"] == "u64"
    assert slice_ns["unit"] == "ns"
    assert slice_ns["default"] == 20_000_000
    assert slice_ns["min"] <= slice_ns["default"] <= slice_ns["max"]
    assert set(data["stats"]) == {"nr_sync_handoffs", "nr_enqueued", "nr_direct_dispatched", "nr_dispatched"}


def test_policy_show_table() -> None:
    result = invoke("policy", "show", "fifo")
    assert result.exit_code == 0, result.output
    assert "slice_ns" in result.stdout
    assert "direct_idle" in result.stdout


def test_policy_show_fixture_by_path() -> None:
    result = invoke("policy", "show", str(FIXTURES / "good"), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["name"] == "good"


def test_policy_show_unknown() -> None:
    result = invoke("policy", "show", "nope")
    assert result.exit_code == 1
    assert "no policy named 'nope'" in result.stderr
    _no_traceback(result)


def test_policy_run_unknown_lists_builtins() -> None:
    result = invoke("policy", "run", "nope", "--", "true")
    assert result.exit_code == 1
    assert "no policy named 'nope'" in result.stderr
    for policy in builtin_policies():
        assert policy.name in result.stderr
    _no_traceback(result)


@pytest.fixture
def no_boot(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad input must fail before anything is booted: booting is an error here."""

    def boot(*args: object, **kwargs: object) -> None:
        raise AssertionError("a sandbox was started for input that should have been refused first")

    monkeypatch.setattr(Sandbox, "__init__", boot)


@pytest.mark.usefixtures("no_boot")
def test_policy_run_out_of_range_fails_before_booting() -> None:
    result = invoke("policy", "run", "fifo", "--set", "slice_ns=1", "--", "true")
    assert result.exit_code == 1
    assert "outside its range [100000, 100000000]" in result.stderr
    _no_traceback(result)


@pytest.mark.usefixtures("no_boot")
def test_policy_run_set_without_equals() -> None:
    result = invoke("policy", "run", "fifo", "--set", "bogus", "--", "true")
    assert result.exit_code == 1
    assert "NAME=VALUE" in result.stderr
    assert "'bogus'" in result.stderr
    _no_traceback(result)


def test_policy_run_unknown_tunable() -> None:
    result = invoke("policy", "run", "fifo", "--set", "slice=5ms", "--", "true")
    assert result.exit_code == 1
    assert "no tunable 'slice'" in result.stderr
    assert "direct_idle, slice_ns" in result.stderr


@pytest.mark.bpf
def test_policy_build_broken_c(tmp_path: Path) -> None:
    result = invoke("policy", "build", str(FIXTURES / "broken_c"), "-o", str(tmp_path))
    assert result.exit_code == 1
    assert "undeclared identifier 'slice_nss'" in result.stderr
    assert "broken_c.bpf.c" in result.stderr
    assert list(tmp_path.glob("*.o")) == []
    _no_traceback(result)


@pytest.mark.bpf
def test_policy_build_with_tunable_json(tmp_path: Path) -> None:
    result = invoke("policy", "build", "fifo", "--set", "slice_ns=5ms", "-o", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    obj = Path(data["object"])
    assert obj.parent == tmp_path
    assert obj.is_file()
    assert obj.name.startswith("fifo")
    assert data["policy"] == "fifo"
    assert data["tunables"] == {"slice_ns": 5_000_000, "direct_idle": True}
    assert len(data["sha256"]) == 64
    assert read_tunables(obj, {"slice_ns": "u64", "direct_idle": "bool"}) == {
        "slice_ns": 5_000_000,
        "direct_idle": 1,
    }


@pytest.mark.bpf
def test_policy_build_bad_value(tmp_path: Path) -> None:
    result = invoke("policy", "build", "fifo", "--set", "direct_idle=maybe", "-o", str(tmp_path))
    assert result.exit_code == 1
    assert "direct_idle is a bool" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.bpf
def test_sandbox_info_json() -> None:
    result = invoke("sandbox", "info", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["sched_ext"] is True
    assert info["accel"] in ("kvm", "tcg")
    assert tuple(int(x) for x in info["qemu"].split(".")) >= (10, 0)
    assert Path(info["kernel_dir"]).name == info["kernel"]


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(body)
    monkeypatch.setenv("SCHEDCP_CONFIG", str(cfg))
    return cfg


@pytest.mark.bpf
def test_sandbox_run_with_missing_qemu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _config(tmp_path, monkeypatch, '[sandbox]\nqemu = "/nonexistent/qemu-system-x86_64"\n')
    run_tmp = tmp_path / "tmp"
    run_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(run_tmp))  # where the VM's run folder goes
    result = invoke("sandbox", "run", "--", "true")
    assert result.exit_code == 1
    assert "/nonexistent/qemu-system-x86_64" in result.stderr
    assert "make setup" in result.stderr
    _no_traceback(result)
    assert list(run_tmp.iterdir()) == [], "the failed sandbox left its run folder behind"


def test_sandbox_info_with_missing_qemu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _config(tmp_path, monkeypatch, '[sandbox]\nqemu = "/nonexistent/qemu-system-x86_64"\n')
    result = invoke("sandbox", "info")
    assert result.exit_code == 1
    assert "make setup" in result.stderr
    _no_traceback(result)


@pytest.mark.bpf
def test_sandbox_run_with_missing_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _config(tmp_path, monkeypatch, '[sandbox]\nkernel = "1.2.3-none"\n')
    result = invoke("sandbox", "run", "--", "true")
    assert result.exit_code == 1
    assert "1.2.3-none" in result.stderr
    assert "make setup" in result.stderr
    _no_traceback(result)


def test_bad_config_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _config(tmp_path, monkeypatch, "[sandbox]\nvcpu = 2\n")
    result = invoke("sandbox", "info")
    assert result.exit_code == 1
    assert str(cfg) in result.stderr
    _no_traceback(result)


def test_no_arguments_shows_help() -> None:
    result = invoke()
    assert "sandbox" in result.output
    assert "policy" in result.output
