"""From a policy folder and tunables to the exact object that will be loaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from schedcp.bpf.policy import Policy
from schedcp.bpf.rodata import apply_tunables
from schedcp.bpf.toolchain import compile_policy, file_sha256
from schedcp.models.vocabulary import TunableValue
from schedcp.sandbox.kernel import Kernel


@dataclass(frozen=True)
class BuiltPolicy:
    """A compiled policy with its tunables written in; `sha256` names code *and* tunables."""

    policy: Policy
    tunables: dict[str, TunableValue]
    obj: Path
    sha256: str

    @property
    def name(self) -> str:
        return self.policy.name


def build_policy(
    policy: Policy, tunables: dict[str, TunableValue], kernel: Kernel, cache_dir: Path, out_dir: Path
) -> BuiltPolicy:
    plain = compile_policy(policy.source, out_dir / f"{policy.name}.plain.o", kernel, cache_dir)
    types = {k: t.type for k, t in policy.spec.tunables.items()}
    staged = out_dir / f"{policy.name}.bpf.o"
    apply_tunables(plain, staged, types, tunables)
    sha = file_sha256(staged)
    # libbpf names the object's maps after the file up to its first dot, cut to 8 characters;
    # 4 of the policy's name and 4 of the hash keep this build's maps recognisable and distinct.
    final = out_dir / f"{policy.name[:4]}{sha[:4]}.bpf.o"
    staged.replace(final)
    plain.unlink(missing_ok=True)
    return BuiltPolicy(policy=policy, tunables=dict(tunables), obj=final, sha256=sha)
