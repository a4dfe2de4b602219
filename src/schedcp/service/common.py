"""Small pieces several services share: tunable assignments, guest folders, building a policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from schedcp.bpf.build import BuiltPolicy, build_policy
from schedcp.bpf.policy import Policy, find_policy
from schedcp.errors import PolicyNotFound, SchedcpError
from schedcp.models.vocabulary import TunableValue
from schedcp.sandbox import find_kernel
from schedcp.service.context import Context

Tunables = Mapping[str, TunableValue]


def parse_assignments(items: Sequence[str] | None) -> dict[str, str]:
    """`NAME=VALUE` strings (the CLI's --set, an MCP tool's list) into a mapping; the policy parses
    each value against its tunable's type and unit (`5ms` for a slice_ns, `true` for a bool)."""
    parsed: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SchedcpError(f"a tunable is set as NAME=VALUE (e.g. slice_ns=5ms), got {item!r}")
        parsed[key.strip()] = value
    return parsed


def guest_folders(shares: Sequence[Path], workdir: Path | None) -> tuple[list[Path], Path | None]:
    """The host folders the guest may write, and where its command runs.

    The guest sees the host's whole filesystem read-only; `workdir` (the caller's folder, as a
    container run with the project mounted would) is shared read-write and the command runs
    there. `/` cannot be shared read-write, so a command started from `/` runs in the guest's /tmp.
    """
    folders = [p.resolve() for p in shares]
    if workdir is None:
        return folders, None
    cwd = workdir.resolve()
    if cwd == Path("/"):
        return folders, None
    return [*folders, cwd], cwd


def resolve_policy(ctx: Context, ref: str, scratch: Path) -> Policy:
    """A built-in name or a folder as they are; anything else (a policy an agent created,
    NAME@VERSION, a version id) is checked out of the repository into `scratch`."""
    try:
        return find_policy(ref)
    except PolicyNotFound:
        if "/" in ref:
            raise
    with ctx.repository() as repo:
        try:
            version = repo.resolve(ref)
        except SchedcpError as exc:
            raise PolicyNotFound(f"no built-in policy, folder or stored version {ref!r}: {exc}") from exc
        return find_policy(str(repo.checkout(version.id, scratch)))


def build(ctx: Context, policy: str, tunables: Tunables, out_dir: Path) -> BuiltPolicy:
    """Compile a policy (a built-in name or a folder) with tunables into `out_dir`.

    Values may be text (`5ms`, `true`: parsed by the tunable's type and unit) or already typed.
    """
    found = resolve_policy(ctx, policy, out_dir / "checkout")
    text = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in tunables.items()}
    values = found.resolve_tunables(text)  # a bad value fails here, before anything is looked up or built
    kernel = find_kernel(ctx.settings.kernels_dir, ctx.settings.sandbox.kernel)
    return build_policy(found, values, kernel, ctx.settings.cache_dir, out_dir)
