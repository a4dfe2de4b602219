"""docs/classes.md is generated from the vocabulary, the workload registry and the built-in policies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import schedcp
from schedcp.bench.classdoc import COMMAND, render, render_builtin
from schedcp.bench.registry import all_workloads
from schedcp.bpf.policy import PolicySpec, builtin_policies
from schedcp.models.bench import Metric, WorkloadInfo
from schedcp.models.vocabulary import SIZES, WORKLOAD_CLASSES

DOC = Path(__file__).parents[2] / "docs" / "classes.md"


def _section(text: str, cls: str) -> str:
    return text.split(f"### `{cls}`\n", 1)[1].split("\n#", 1)[0]


def test_classes_doc_is_generated_and_covers_every_class_workload_and_policy() -> None:
    text = DOC.read_text()
    assert text == render_builtin(), f"docs/classes.md is out of date; run: {COMMAND}"
    for cls in WORKLOAD_CLASSES:
        assert f"### `{cls}`" in text
    for name, workload in all_workloads().items():
        assert f"`{name}`" in _section(text, workload.info.workload_class)
    for policy in builtin_policies():
        for cls in [*policy.spec.workload_classes, *policy.spec.unsuited_classes]:
            assert f"[`{policy.name}`]" in _section(text, cls)
    for size in SIZES:
        assert f"| `{size}` |" in text


def test_a_class_lists_its_workloads_and_the_policies_for_and_against_it() -> None:
    info = WorkloadInfo(
        name="ping",
        version="1",
        summary="s",
        workload_class="pipeline-messaging",
        metrics=[Metric(name="t", unit="s", better="lower")],
        primary="t",
        sizes=["small"],
    )
    fast = PolicySpec(name="fast", summary="s", workload_classes=["pipeline-messaging"])
    slow = PolicySpec(name="slow", summary="s", unsuited_classes=["pipeline-messaging", "io-bound"])
    text = render([info], [fast, slow])
    messaging = _section(text, "pipeline-messaging")
    assert "- Benchmark workloads: `ping`" in messaging
    assert "- Built-in policies made for it: [`fast`](../src/schedcp/policies/fast/README.md)" in messaging
    assert "- Built-in policies unsuited to it: [`slow`](../src/schedcp/policies/slow/README.md)" in messaging
    assert "| `pipeline-messaging` | `ping` | `fast` | `slow` |" in text
    assert "| `multi-tenant` | none | none | none |" in text
    assert "- Built-in policies unsuited to it: [`slow`]" in _section(text, "io-bound")


def test_the_vocabulary_imports_no_layer_above_it() -> None:
    # Why the generator lives in schedcp.bench: schedcp.models is imported by every layer, so it
    # must not pull the registry (or any layer) in. A fresh interpreter, so nothing is loaded yet.
    code = (
        "import importlib, json, pkgutil, sys, schedcp.models as m\n"
        "for i in pkgutil.iter_modules(m.__path__): importlib.import_module(f'schedcp.models.{i.name}')\n"
        "print(json.dumps(sorted({n.split('.')[1] for n in sys.modules if n.startswith('schedcp.')})))\n"
    )
    src = str(Path(schedcp.__file__).parents[1])  # the tree under test, not whatever is installed
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, env=env)
    loaded = set(json.loads(out.stdout))
    assert "models" in loaded
    assert not loaded & {"bench", "bpf", "repository", "analysis", "runtime", "sandbox", "cli"}
