"""The generated parts of a policy's README.md: its tunables table and its stats list.

policy.toml is the one source for what a policy's tunables and counters are: the loader
checks values against it, `schedcp policy show` prints it, an agent reads it. The README is
for people, and its tables used to be copied from policy.toml by hand; they drifted (a range
changed in one place, a stat added to the C and policy.toml but not to the README). So a README
holds those two lists only between marker lines, and this module writes what is between them:

    ## Tunables

    <!-- policy.toml: tunables -->
    (table written from policy.toml)
    <!-- end -->

    ## Stats

    <!-- policy.toml: stats -->
    (list written from policy.toml, and the exit record every policy has)
    <!-- end -->

Everything outside the markers is hand-written and kept byte for byte. To change a tunable's
or a stat's text, edit policy.toml and run `python -m schedcp.bpf.readme` (every built-in
policy, or the policy folders given); `--check` only lists the READMEs that are out of date and
exits 1, and tests/bpf/test_policy_readmes.py fails the same way. Documentation is not part of
a version's id (schedcp.repository.content), so regenerating a README keeps every version id.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from schedcp.bpf.policy import (
    Policy,
    PolicySpec,
    builtin_policies,
    format_range,
    format_value,
    load_policy,
)
from schedcp.errors import PolicyError

Region = Literal["tunables", "stats"]
REGIONS: tuple[Region, ...] = ("tunables", "stats")
END = "<!-- end -->"
COMMAND = "python -m schedcp.bpf.readme"

EXIT_RECORD = (
    "The exit reason (kind, CPU, exit code, reason and message) is recorded in `schedcp_exit_info`"
    " (see `include/schedcp.bpf.h`); the run report carries it as `exit_info`."
)


def begin_marker(region: Region) -> str:
    return f"<!-- policy.toml: {region} -->"


def _prose(text: str) -> str:
    """policy.toml text as Markdown on one line (a TOML string may hold line breaks), with `<`
    escaped: `lt_long_<tool>` would otherwise render as `lt_long_` and an unknown HTML tag."""
    return " ".join(text.split()).replace("<", "\\<")


def _cell(text: str) -> str:
    """No bare `|` in a table cell (GFM honours the escape even inside a code span)."""
    return text.replace("|", "\\|")


def render_tunables(spec: PolicySpec) -> str:
    if not spec.tunables:
        return "None: this policy takes no tunables.\n"
    rows = ["| name | type | default | range | description |", "|---|---|---|---|---|"]
    for name, t in spec.tunables.items():
        cells = [f"`{name}`", t.type, format_value(t, t.default), format_range(t), _prose(t.description)]
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows) + "\n"


def render_stats(spec: PolicySpec) -> str:
    lines = [
        f"- `{name}`: {_prose(s.description)}" if s.description.strip() else f"- `{name}`"
        for name, s in spec.stats.items()
    ]
    lines = lines or ["No counters of its own."]
    return "\n".join([*lines, "", EXIT_RECORD]) + "\n"


def render(region: Region, spec: PolicySpec) -> str:
    """What goes between the markers of `region`, blank lines around it so Markdown sees the
    table or list as its own block whatever the marker lines next to it."""
    body = render_tunables(spec) if region == "tunables" else render_stats(spec)
    return f"\n{body}\n"


def _region(text: str, region: Region, where: str) -> re.Match[str]:
    begin = begin_marker(region)
    pattern = re.compile(rf"^{re.escape(begin)}[ \t]*\n(.*?)^{re.escape(END)}[ \t]*$", re.M | re.S)
    found = list(pattern.finditer(text))
    starts = len(re.findall(rf"^{re.escape(begin)}[ \t]*$", text, re.M))
    if starts != 1 or len(found) != 1 or "<!-- policy.toml:" in found[0].group(1):
        raise PolicyError(
            f"{where}: expected one `{begin}` line with an `{END}` line after it (found {starts} of the "
            f"first); put the pair where the generated {region} belong and run `{COMMAND}`"
        )
    return found[0]


def update_readme(text: str, spec: PolicySpec, where: str = "README.md") -> str:
    """`text` with each marked region rewritten from `spec`, everything else unchanged."""
    for region in REGIONS:
        m = _region(text, region, where)
        text = text[: m.start(1)] + render(region, spec) + text[m.end(1) :]
    return text


def readme_path(policy: Policy) -> Path:
    return policy.path / "README.md"


def is_current(policy: Policy) -> bool:
    path = readme_path(policy)
    if not path.is_file():
        raise PolicyError(f"policy {policy.name} has no {path}; write one with the two marker regions")
    text = path.read_text(encoding="utf-8")
    return update_readme(text, policy.spec, str(path)) == text


def write_readme(policy: Policy) -> bool:
    """Rewrite the policy's README in place; True when it changed."""
    path = readme_path(policy)
    if not path.is_file():
        raise PolicyError(f"policy {policy.name} has no {path}; write one with the two marker regions")
    text = path.read_text(encoding="utf-8")
    new = update_readme(text, policy.spec, str(path))
    if new == text:
        return False
    path.write_text(new, encoding="utf-8")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=COMMAND, description="Write the tunables and stats of policy READMEs from their policy.toml."
    )
    parser.add_argument("folders", nargs="*", type=Path, help="policy folders (default: every built-in policy)")
    parser.add_argument("--check", action="store_true", help="change nothing; list stale READMEs and exit 1 if any")
    args = parser.parse_args(argv)
    try:
        policies = [load_policy(f.resolve()) for f in args.folders] or builtin_policies()
        if args.check:
            stale = [p for p in policies if not is_current(p)]
            fix = " ".join([COMMAND, *(str(f) for f in args.folders)])
            for p in stale:
                print(f"{readme_path(p)} is out of date; run: {fix}", file=sys.stderr)
            return 1 if stale else 0
        for p in policies:
            if write_readme(p):
                print(f"wrote {readme_path(p)}")
    except PolicyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
