"""Render docs/classes.md: the workload-class vocabulary and what stands behind each name.

The vocabulary (schedcp.models.vocabulary) is the one list of classes every layer validates
against. This page shows it with its users: the benchmark workloads that declare each class
(the registry) and the built-in policies that say they suit it or hurt it (their policy.toml),
so a class nothing measures or nothing serves is visible. It lives here, not beside the
vocabulary, because it reads the benchmark registry and schedcp.models must not import the
layers above it; `render` takes its data as arguments, `render_builtin` reads the real ones.
"""

from __future__ import annotations

from collections.abc import Sequence

from schedcp.bench.registry import all_workloads
from schedcp.bpf.policy import PolicySpec, builtin_policies
from schedcp.models.bench import WorkloadInfo
from schedcp.models.vocabulary import (
    CLASS_DESCRIPTIONS,
    DEFAULT_SIZE,
    LEGACY_CLASSES,
    SIZE_DESCRIPTIONS,
    SIZES,
    WORKLOAD_CLASSES,
)

COMMAND = "python -m schedcp.bench.classdoc > docs/classes.md"

HEADER = f"""# Workload classes

Generated from `schedcp.models.vocabulary`, the benchmark workloads and the built-in policies'
policy.toml by `{COMMAND}`; a test fails when this file is out of date.

A workload class is a search key that every layer shares. The classifier assigns classes to a
workload profile (docs/analysis.md), each benchmark workload declares the class it stands for
(docs/benchmarks.md), a policy's policy.toml lists the classes it is made for
(`workload_classes`) and those it is known to hurt (`unsuited_classes`), and the repository ranks
policies and benchmark results by them (docs/repository.md). There is one list, `WorkloadClass`
in `schedcp.models.vocabulary`; everything else is checked against it, so a name the classifier
can say is a name a policy can declare.
"""


def _names(names: Sequence[str]) -> str:
    return ", ".join(f"`{n}`" for n in names) or "none"


def _policies(names: Sequence[str]) -> str:
    return ", ".join(f"[`{n}`](../src/schedcp/policies/{n}/README.md)" for n in names) or "none"


def render(workloads: Sequence[WorkloadInfo], policies: Sequence[PolicySpec]) -> str:
    """The page for these workloads and policies (in the order given)."""
    parts = [HEADER]
    rows = ["| class | benchmark workloads | policies made for it | policies unsuited to it |", "|---|---|---|---|"]
    sections = ["\n## Classes"]
    for cls in WORKLOAD_CLASSES:
        declared = [w.name for w in workloads if w.workload_class == cls]
        suited = [p.name for p in policies if cls in p.workload_classes]
        unsuited = [p.name for p in policies if cls in p.unsuited_classes]
        rows.append(f"| `{cls}` | {_names(declared)} | {_names(suited)} | {_names(unsuited)} |")
        sections.append(
            f"\n### `{cls}`\n\n{CLASS_DESCRIPTIONS[cls]}\n\n"
            f"- Benchmark workloads: {_names(declared)}\n"
            f"- Built-in policies made for it: {_policies(suited)}\n"
            f"- Built-in policies unsuited to it: {_policies(unsuited)}"
        )
    parts += ["\n".join(rows), *sections]

    parts.append(
        f"\n## Sizes\n\nEvery benchmark workload runs at one of these sizes (`schedcp bench run --size`); "
        f"`{DEFAULT_SIZE}` is the default. Which sizes a workload offers is in docs/benchmarks.md.\n\n"
        "| size | meaning |\n|---|---|"
    )
    parts += [f"| `{s}` | {SIZE_DESCRIPTIONS[s]} |" for s in SIZES]

    parts.append(
        "\n## Names from before the vocabulary\n\n"
        "Versions stored by schedcp 0.1 may carry these names in their policy.toml. Stored versions "
        "cannot change, so they are read with the class each name meant; a name with no class of its "
        "own is dropped. A policy folder must use the classes above.\n\n"
        "| old name | read as |\n|---|---|"
    )
    parts += [f"| `{old}` | {f'`{new}`' if new else 'dropped'} |" for old, new in LEGACY_CLASSES.items()]
    return "\n".join(parts) + "\n"


def render_builtin() -> str:
    """The page for the registry's workloads and the built-in policies: docs/classes.md."""
    return render([w.info for w in all_workloads().values()], [p.spec for p in builtin_policies()])


if __name__ == "__main__":
    print(render_builtin(), end="")
