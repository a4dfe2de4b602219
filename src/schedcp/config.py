"""Settings: defaults live here, a TOML file may override them, one model validates both.

Looked up in order: the path in $SCHEDCP_CONFIG, then ~/.config/schedcp/config.toml. A missing
file means defaults; a malformed one is an error (silently ignoring a typo would run the
sandbox with settings the user did not ask for).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schedcp.errors import ConfigError


def _default_data() -> Path:
    if env := os.environ.get("SCHEDCP_DATA"):
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "schedcp"


def _default_cache() -> Path:
    if env := os.environ.get("SCHEDCP_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "schedcp"


class SandboxSettings(BaseModel):
    """How the sandbox VM is booted."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    kernel: str = Field("newest", description="kernel ABI name in the cache (e.g. 7.3.4+deb13-amd64) or 'newest'")
    vcpus: int = Field(
        default_factory=lambda: min(os.cpu_count() or 2, 64),
        ge=1,
        le=64,
        description="guest CPUs; default: the host's cores",
    )
    memory_mb: int = Field(2048, ge=256, le=65536, description="guest memory in MiB")
    accel: Literal["auto", "kvm", "tcg"] = Field(
        "auto", description="auto: KVM where the CPU has vmx/svm and /dev/kvm is usable, else TCG emulation"
    )
    qemu: str = Field("qemu-system-x86_64", description="QEMU binary (name or path); must be version 10 or newer")
    boot_timeout_s: float = Field(180.0, gt=0, description="boot to a ready guest agent; TCG needs ~7 s")
    command_timeout_s: float = Field(600.0, gt=0, description="default limit for one command in the guest")


class Settings(BaseModel):
    """All of schedcp's settings."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    cache_dir: Path = Field(
        default_factory=_default_cache,
        description="kernels, vmlinux.h and initramfs; default $SCHEDCP_CACHE or ~/.cache/schedcp",
    )
    data_dir: Path = Field(
        default_factory=_default_data,
        description="benchmark results and other records; default $SCHEDCP_DATA or ~/.local/share/schedcp",
    )
    db_url: str = Field(
        "",
        description="policy repository database: sqlite:///abs/path.db or postgresql://...; "
        "$SCHEDCP_DB overrides it; empty: SQLite at data_dir/schedcp.db",
    )
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)

    @property
    def repository_url(self) -> str:
        """The policy repository's database URL: $SCHEDCP_DB, else `db_url`, else SQLite in data_dir."""
        if env := os.environ.get("SCHEDCP_DB"):
            return env
        return self.db_url or f"sqlite:///{(self.data_dir / 'schedcp.db').absolute()}"

    @property
    def kernels_dir(self) -> Path:
        return self.cache_dir / "kernels"

    @property
    def results_dir(self) -> Path:
        return self.data_dir / "results"


def config_path() -> Path:
    if env := os.environ.get("SCHEDCP_CONFIG"):
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "schedcp" / "config.toml"


def load_settings(path: Path | None = None) -> Settings:
    """Read the settings file (if any) over the defaults."""
    path = path or config_path()
    if not path.exists():
        return Settings()
    try:
        data = tomllib.loads(path.read_text())
        return Settings.model_validate(data)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ConfigError(f"invalid settings file {path}: {exc}\nFix or remove it; defaults apply without it.") from exc
