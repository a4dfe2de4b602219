"""Policy folders and their metadata (policy.toml): names, tunables, stats.

A policy folder holds `<name>.bpf.c`, `policy.toml` and `README.md`; the folder name, the
source file name, the ops table and its `.name` all agree. The source is named after the
policy, not `policy.bpf.c`, because libbpf names an object's maps after the file
(`fifo.bss`), which keeps the maps of a loaded policy recognisable in `bpftool map`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schedcp.errors import PolicyError, PolicyNotFound
from schedcp.models.vocabulary import LEGACY_CLASSES, WORKLOAD_CLASSES, TunableValue, WorkloadClass

TunableType = Literal["u32", "u64", "s32", "s64", "bool", "str16"]
# str16: a C `char name[16]` holding up to 15 printable ASCII characters, e.g. a task-name
# prefix (TASK_COMM_LEN is 16), so a policy can be told which processes are which.
STR16_MAX = 15

TYPE_RANGES: dict[str, tuple[int, int]] = {
    "u32": (0, 2**32 - 1),
    "u64": (0, 2**64 - 1),
    "s32": (-(2**31), 2**31 - 1),
    "s64": (-(2**63), 2**63 - 1),
    "bool": (0, 1),
    "str16": (0, STR16_MAX),  # bounds on the length
}
SIZES = {"u32": 4, "u64": 8, "s32": 4, "s64": 8, "bool": 1, "str16": 16}
DURATION_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


# Largest first: a duration is written in the largest unit it reaches (5000000 ns -> 5 ms).
_BY_SIZE = sorted(DURATION_UNITS.items(), key=lambda kv: kv[1], reverse=True)


def format_duration(ns: int) -> str:
    """`ns` in the largest unit it reaches, exactly (1500000 -> "1.5 ms", 999 -> "999 ns")."""
    if ns == 0:
        return "0"
    sign, size = ("-" if ns < 0 else ""), abs(ns)
    unit, scale = next((u, s) for u, s in _BY_SIZE if size >= s)
    # Decimal keeps every digit (1000001 ns is "1.000001 ms", never a rounded "1 ms").
    number = format((Decimal(size) / scale).normalize(), "f")
    return f"{sign}{number} {unit}"


def format_value(tunable: TunableSpec, value: TunableValue) -> str:
    """A value as a reader would write it: durations in a readable unit, bools as true/false."""
    if tunable.type == "bool":
        return "true" if value else "false"
    if tunable.type == "str16":
        return f"`{value}`" if value else "empty"
    assert isinstance(value, int)
    if tunable.unit in DURATION_UNITS:
        return format_duration(value * DURATION_UNITS[tunable.unit])
    return f"{value} {tunable.unit}" if tunable.unit else str(value)


def format_range(tunable: TunableSpec) -> str:
    """The values `--set` accepts; a bound that is only the type's own limit is left out."""
    if tunable.type == "bool":
        return "true or false"
    if tunable.type == "str16":
        return f"up to {STR16_MAX} characters"
    assert tunable.min is not None  # filled in by TunableSpec's validator
    assert tunable.max is not None
    type_lo, type_hi = TYPE_RANGES[tunable.type]
    lo, hi = format_value(tunable, tunable.min), format_value(tunable, tunable.max)
    if tunable.max == type_hi:
        return "any" if tunable.min == type_lo else f"at least {lo}"
    if tunable.min == type_lo and type_lo != 0:
        return f"at most {hi}"
    return f"{lo} to {hi}"


class TunableSpec(BaseModel):
    """One `const volatile` knob of a policy, set before load."""

    model_config = ConfigDict(extra="forbid")

    type: TunableType
    default: TunableValue
    unit: str | None = None
    min: int | None = None
    max: int | None = None
    description: str = ""

    @model_validator(mode="after")
    def _default_in_range(self) -> TunableSpec:
        lo, hi = TYPE_RANGES[self.type]
        self.min = lo if self.min is None else self.min
        self.max = hi if self.max is None else self.max
        if not lo <= self.min <= self.max <= hi:
            raise ValueError(f"range [{self.min}, {self.max}] does not fit type {self.type}")
        if self.type == "str16":
            _check_str16("default", self.default)
            return self
        if isinstance(self.default, str):
            raise ValueError(f"default {self.default!r} is not a {self.type}")
        if not self.min <= int(self.default) <= self.max:
            raise ValueError(f"default {self.default} outside [{self.min}, {self.max}]")
        return self

    def show(self, value: TunableValue) -> str:
        """A value as a person writes it (20 ms, true, `lt_long`): for tables, READMEs, agents."""
        return format_value(self, value)

    def accepts(self) -> str:
        """The values `--set` takes, in words (100 us to 100 ms; true or false)."""
        return format_range(self)

    def parse(self, name: str, text: str, declared_range: bool = True) -> TunableValue:
        """Parse a command-line value; durations take ns/us/ms/s suffixes when the unit is ns.
        `declared_range=False` checks only what the type can hold (see Policy.resolve_tunables)."""
        if self.type == "str16":
            return self.check(name, text)
        raw = text.strip().lower().replace("_", "")
        value: int
        if self.type == "bool":
            if raw in ("1", "true", "yes", "on"):
                return True
            if raw in ("0", "false", "no", "off"):
                return False
            raise PolicyError(f"tunable {name} is a bool; give true or false, not {text!r}")
        m = re.fullmatch(r"(-?\d+)(ns|us|ms|s)?", raw)
        if not m:
            raise PolicyError(
                f"tunable {name} takes an integer{' duration' if self.unit == 'ns' else ''}, not {text!r}"
            )
        value = int(m.group(1))
        if m.group(2):
            if self.unit != "ns":
                raise PolicyError(
                    f"tunable {name} is in {self.unit or 'plain numbers'}; drop the {m.group(2)!r} suffix"
                )
            value *= DURATION_UNITS[m.group(2)]
        return self.check(name, value, declared_range)

    def check(self, name: str, value: TunableValue, declared_range: bool = True) -> TunableValue:
        assert self.min is not None
        assert self.max is not None
        if self.type == "str16":
            try:
                return _check_str16(name, value)
            except ValueError as exc:
                raise PolicyError(str(exc)) from exc
        if isinstance(value, str):
            raise PolicyError(
                f"tunable {name} takes {'a bool' if self.type == 'bool' else 'an integer'}, got {value!r}"
            )
        if self.type == "bool":
            if not isinstance(value, bool) and value not in (0, 1):
                raise PolicyError(f"tunable {name} is a bool, got {value!r}")
            return bool(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise PolicyError(f"tunable {name} takes an integer, got {value!r}")
        lo, hi = (self.min, self.max) if declared_range else TYPE_RANGES[self.type]
        if not lo <= value <= hi:
            unit = f" {self.unit}" if self.unit else ""
            what = "its range" if declared_range else f"what a {self.type} holds"
            raise PolicyError(f"tunable {name}={value}{unit} is outside {what} [{lo}, {hi}]{unit}")
        return value


def _check_str16(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"tunable {name} takes a string, got {value!r}")
    if len(value) > STR16_MAX or not all(" " < ch <= "~" for ch in value):
        raise ValueError(
            f"tunable {name} takes up to {STR16_MAX} printable ASCII characters without spaces, got {value!r}"
        )
    return value


class StatSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = ""


LATENCY_CEILING_MS = 5000.0
"""The loosest wakeup-latency bound a policy may declare for the verifier's probe."""


class VerifySpec(BaseModel):
    """What a policy trades away on purpose, so the verifier's dynamic stage does not enforce it.

    Only two things can be relaxed, never the stall and starvation bounds: CPU shares (equal CPU
    hogs sharing equally, a nice-19 hog not getting more than a nice-0 one: a longest-job-first
    batch policy gives CPU by job size instead) and the wakeup-latency bound, up to
    LATENCY_CEILING_MS. The report shows every relaxation and its reason, so
    whoever deploys sees what the policy does not promise.
    """

    model_config = ConfigDict(extra="forbid")
    fairness: bool = Field(True, description="false: CPU shares (equal hogs, nice levels) are not promised")
    latency_ms: float | None = Field(
        None, gt=0, le=LATENCY_CEILING_MS, description="a looser p99 wakeup-latency bound than the default"
    )
    reason: str = Field("", description="why; required when anything is relaxed")

    @model_validator(mode="after")
    def _reason_given(self) -> VerifySpec:
        if (not self.fairness or self.latency_ms is not None) and not self.reason.strip():
            raise ValueError("[verify] relaxes a check: say why in `reason`")
        return self


class PolicySpec(BaseModel):
    """The contents of policy.toml."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: str = "0.1.0"
    summary: str
    description: str = ""
    workload_classes: list[WorkloadClass] = Field(
        default_factory=list, description="classes it is made for (schedcp.models.vocabulary, docs/classes.md)"
    )
    unsuited_classes: list[WorkloadClass] = Field(
        default_factory=list, description="classes it is known to hurt: search ranks it down for them"
    )
    kernel_features: list[str] = Field(default_factory=lambda: ["sched_ext"])
    tunables: dict[str, TunableSpec] = Field(default_factory=dict)
    stats: dict[str, StatSpec] = Field(default_factory=dict)
    verify: VerifySpec = Field(default_factory=VerifySpec, description="checks relaxed on purpose (rare)")

    @classmethod
    def from_stored(cls, data: dict[str, object]) -> PolicySpec:
        """A spec stored by an earlier schedcp, whose classes may predate the one vocabulary.

        Versions are immutable, so their stored policy.toml cannot be fixed: names from before
        the vocabulary map to the class they meant (LEGACY_CLASSES), names with no counterpart
        are dropped, so an old repository stays readable.
        """
        fixed = dict(data)
        for key in ("workload_classes", "unsuited_classes"):
            names = fixed.get(key)
            if isinstance(names, list):
                mapped = [LEGACY_CLASSES.get(str(n), n) for n in names]
                fixed[key] = list(dict.fromkeys(n for n in mapped if n in WORKLOAD_CLASSES))
        return cls.model_validate(fixed)


@dataclass(frozen=True)
class Policy:
    """A policy folder on disk with its validated metadata."""

    path: Path
    spec: PolicySpec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def source(self) -> Path:
        return self.path / f"{self.spec.name}.bpf.c"

    def resolve_tunables(
        self, overrides: dict[str, str] | None = None, declared_range: bool = True
    ) -> dict[str, TunableValue]:
        """Defaults overlaid with `overrides` (name -> text), every value range-checked.

        The verifier passes `declared_range=False`: a value outside policy.toml's range (but one
        the type can hold) is then its lint stage's finding, in the report an agent reads, rather
        than an error before any stage ran."""
        values: dict[str, TunableValue] = {k: t.default for k, t in self.spec.tunables.items()}
        for key, text in (overrides or {}).items():
            if key not in self.spec.tunables:
                known = ", ".join(sorted(self.spec.tunables)) or "none"
                raise PolicyError(f"policy {self.name} has no tunable {key!r} (it has: {known})")
            values[key] = self.spec.tunables[key].parse(key, text, declared_range)
        return values


def builtin_dir() -> Path:
    return Path(str(resources.files("schedcp.policies")))


def load_policy(path: Path) -> Policy:
    """Read and check one policy folder."""
    meta = path / "policy.toml"
    if not meta.exists():
        raise PolicyError(f"{path} has no policy.toml; every policy needs its metadata (name, summary, tunables)")
    try:
        spec = PolicySpec.model_validate(tomllib.loads(meta.read_text()))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise PolicyError(f"invalid {meta}: {exc}") from exc
    if not _NAME.match(spec.name):
        raise PolicyError(f"policy name {spec.name!r} must be lower-case letters, digits and _ (max 31)")
    if spec.name != path.name:
        raise PolicyError(f"policy {spec.name!r} lives in folder {path.name!r}; the two must agree")
    policy = Policy(path=path, spec=spec)
    if not policy.source.exists():
        raise PolicyError(f"policy {spec.name} has no source file {policy.source}")
    return policy


def builtin_policies() -> list[Policy]:
    root = builtin_dir()
    return [load_policy(d) for d in sorted(root.iterdir()) if (d / "policy.toml").exists()]


def find_policy(name_or_path: str) -> Policy:
    """A built-in policy by name, or a policy folder by path."""
    candidate = Path(name_or_path)
    if "/" in name_or_path or candidate.is_dir():
        if not candidate.is_dir():
            raise PolicyNotFound(f"no policy folder at {candidate}")
        return load_policy(candidate.resolve())
    folder = builtin_dir() / name_or_path
    if not (folder / "policy.toml").exists():
        names = ", ".join(p.name for p in builtin_policies()) or "none"
        raise PolicyNotFound(f"no policy named {name_or_path!r}; built-in policies: {names}")
    return load_policy(folder)
