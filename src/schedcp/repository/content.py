"""A policy's stored content and its version id.

Version id = sha256 of the canonical JSON (sorted keys, no spaces, UTF-8) of

    {"name": <policy name>,
     "source": <the text of <name>.bpf.c>,
     "headers": {<file>: <text>} for the folder's own *.h files (the key is left out when there are none),
     "tunables": {<tunable>: {"type", "default", "min", "max"}}}

That is everything that decides the object a build produces and the values it may be loaded
with: code, tunable defaults, and the ranges that bound every override (widening a range
allows values nothing was verified with, so it is a new version). Documentation is not in it:
summary, description, workload classes, units, descriptions and README.md describe a version
without changing what runs, so editing them keeps the id (and with it the version's
verification reports and benchmark results) and updates the stored text in place, logged as
an event. The name is in it so an id is unique across policies even for identical code.
"headers" also holds the shared headers from policies/include/ that the source includes
(directly or through another header), as they are when the version is read: a helper in
schedcp_common.bpf.h decides what the policy does as much as its own code, so changing one
makes a new version of every policy that includes it. The version keeps those texts, and
writing it out puts them beside the source, where `#include "..."` finds them before the
include folder: an old version rebuilds with the headers it was verified with.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schedcp.bpf.policy import Policy, PolicySpec, load_policy
from schedcp.bpf.toolchain import include_dir
from schedcp.errors import PolicyError

README = "README.md"
META = "policy.toml"
_NAME = re.compile(r"[a-z][a-z0-9_]{0,30}")


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def identity_tunables(spec: PolicySpec) -> dict[str, dict[str, Any]]:
    return {
        key: {"type": t.type, "default": t.default, "min": t.min, "max": t.max}
        for key, t in sorted(spec.tunables.items())
    }


def version_id(name: str, source: str, headers: dict[str, str], spec: PolicySpec) -> str:
    ident: dict[str, Any] = {"name": name, "source": source, "tunables": identity_tunables(spec)}
    if headers:
        ident["headers"] = dict(sorted(headers.items()))
    return sha256_hex(canonical_json(ident))


@dataclass(frozen=True)
class PolicyContent:
    """The files of one policy version, validated (policy.toml parses, names agree, defaults in range)."""

    spec: PolicySpec
    source_name: str
    source: str
    policy_toml: str
    readme: str
    origin: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def id(self) -> str:
        return version_id(self.name, self.source, self.headers, self.spec)

    def files(self) -> dict[str, str]:
        """File name -> text, as the folder holds them."""
        return {self.source_name: self.source, **self.headers, META: self.policy_toml, README: self.readme}

    def write(self, folder: Path) -> Path:
        """Write the policy into `folder/<name>/` (which must not exist) and return that folder."""
        target = folder / self.name
        target.mkdir(parents=True)
        for fname, text in self.files().items():
            (target / fname).write_text(text, encoding="utf-8")
        return target


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path} is not UTF-8 text ({exc}); policy files must be text") from exc


_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([A-Za-z0-9_.-]+)"', re.M)


def shared_headers(source: str, local: dict[str, str]) -> dict[str, str]:
    """The headers from policies/include/ that `source` includes, transitively, unless the
    policy has its own copy (which the compiler would pick first)."""
    folder = include_dir()
    found: dict[str, str] = {}
    pending = [source, *local.values()]
    while pending:
        for name in _INCLUDE.findall(pending.pop()):
            path = folder / name
            if name in local or name in found or not path.is_file():
                continue
            found[name] = _text(path)
            pending.append(found[name])
    return found


def read_policy(policy: Policy | Path, origin: str | None = None) -> PolicyContent:
    """Read a policy folder (or a file in one) with the same checks as `load_policy`."""
    if isinstance(policy, Path):
        path = policy
        if path.is_file():
            if path.name == META or path.name.endswith(".bpf.c"):
                path = path.parent
            else:
                raise PolicyError(f"{path} is not a policy: give its folder, its policy.toml or its <name>.bpf.c")
        if not path.exists():
            raise PolicyError(f"no policy folder at {path}")
        policy = load_policy(path.resolve())
    headers = {h.name: _text(h) for h in sorted(policy.path.glob("*.h")) if h.is_file()}
    source = _text(policy.source)
    headers.update(shared_headers(source, headers))
    readme = policy.path / README
    return PolicyContent(
        spec=policy.spec,
        source_name=policy.source.name,
        source=source,
        policy_toml=_text(policy.path / META),
        readme=_text(readme) if readme.is_file() else "",
        origin=origin if origin is not None else str(policy.path),
        headers=headers,
    )


def content_from_texts(
    name: str, source: str, policy_toml: str, readme: str, headers: dict[str, str], origin: str
) -> PolicyContent:
    """Validate stored or archived texts exactly as a folder on disk would be validated."""
    if not _NAME.fullmatch(name):
        raise PolicyError(f"policy name {name!r} must be lower-case letters, digits and _ (max 31)")
    for fname in headers:
        if "/" in fname or not fname.endswith(".h") or fname.startswith("."):
            raise PolicyError(f"policy {name}: {fname!r} is not a header file name")
    with tempfile.TemporaryDirectory(prefix="schedcp-policy-") as tmp:
        staged = PolicyContent(
            spec=PolicySpec(name=name, summary=""),  # placeholder, replaced by the parsed policy.toml
            source_name=f"{name}.bpf.c",
            source=source,
            policy_toml=policy_toml,
            readme=readme,
            origin=origin,
            headers=headers,
        )
        try:
            folder = staged.write(Path(tmp))
        except (OSError, ValueError) as exc:
            raise PolicyError(f"policy {name!r} cannot be staged: {exc}") from exc
        return read_policy(load_policy(folder), origin=origin)
