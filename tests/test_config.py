"""Settings: defaults in code, a TOML file over them, errors that name the file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from schedcp.config import Settings, config_path, load_settings
from schedcp.errors import ConfigError


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDCP_CONFIG", str(tmp_path / "absent.toml"))
    settings = load_settings()
    assert settings.sandbox.kernel == "newest"
    assert settings.sandbox.vcpus == (os.cpu_count() or 2)
    assert settings.sandbox.memory_mb == 2048
    assert settings.sandbox.accel == "auto"
    assert settings.sandbox.qemu == "qemu-system-x86_64"
    assert settings.sandbox.boot_timeout_s > 0
    assert settings.sandbox.command_timeout_s > 0
    assert settings.kernels_dir == settings.cache_dir / "kernels"


def test_config_path_follows_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDCP_CONFIG", str(tmp_path / "x.toml"))
    assert config_path() == tmp_path / "x.toml"


def test_config_path_default_is_under_xdg_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCHEDCP_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_path() == tmp_path / "schedcp" / "config.toml"


def test_toml_file_overrides_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[sandbox]\nvcpus = 3\nmemory_mb = 1024\naccel = "tcg"\n')
    monkeypatch.setenv("SCHEDCP_CONFIG", str(cfg))
    settings = load_settings()
    assert settings.sandbox.vcpus == 3
    assert settings.sandbox.memory_mb == 1024
    assert settings.sandbox.accel == "tcg"
    # Keys the file does not mention keep their defaults.
    assert settings.sandbox.qemu == "qemu-system-x86_64"


def test_explicit_path_argument_wins_over_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_cfg = tmp_path / "env.toml"
    env_cfg.write_text("[sandbox]\nvcpus = 5\n")
    arg_cfg = tmp_path / "arg.toml"
    arg_cfg.write_text("[sandbox]\nvcpus = 7\n")
    monkeypatch.setenv("SCHEDCP_CONFIG", str(env_cfg))
    assert load_settings(arg_cfg).sandbox.vcpus == 7


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "broken.toml"
    cfg.write_text("[sandbox\nvcpus = 3\n")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        load_settings(cfg)


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "typo.toml"
    cfg.write_text("[sandbox]\nvcpu = 3\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert str(cfg) in str(info.value)
    assert "vcpu" in str(info.value)


def test_unknown_section_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "section.toml"
    cfg.write_text("[sandbx]\nvcpus = 3\n")
    with pytest.raises(ConfigError, match=r"section\.toml"):
        load_settings(cfg)


@pytest.mark.parametrize(
    "body",
    ["[sandbox]\nvcpus = 0\n", "[sandbox]\nmemory_mb = 64\n", '[sandbox]\naccel = "hvf"\n'],
)
def test_out_of_range_values_are_errors(tmp_path: Path, body: str) -> None:
    cfg = tmp_path / "range.toml"
    cfg.write_text(body)
    with pytest.raises(ConfigError, match=r"range\.toml"):
        load_settings(cfg)


def test_schedcp_cache_env_sets_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDCP_CACHE", str(tmp_path / "cache"))
    settings = Settings()
    assert settings.cache_dir == tmp_path / "cache"
    assert settings.kernels_dir == tmp_path / "cache" / "kernels"


def test_xdg_cache_home_is_the_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCHEDCP_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert Settings().cache_dir == tmp_path / "schedcp"


def test_cache_dir_in_file_beats_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDCP_CACHE", str(tmp_path / "from-env"))
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'cache_dir = "{tmp_path / "from-file"}"\n')
    assert load_settings(cfg).cache_dir == tmp_path / "from-file"


def test_unreadable_config_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=str(tmp_path)):
        load_settings(tmp_path)
