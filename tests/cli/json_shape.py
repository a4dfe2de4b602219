"""The shape of a JSON document: its keys at every level, without the values.

`--json` output is an interface: scripts and agents parse it. A shape records which keys a
command prints (lists merged over their items), so a test can say the keys did not change
while the values (timestamps, ids, measurements) do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Shape = Any  # dict[str, Shape] | {"[]": Shape} | "scalar" | "null"


def shape(value: Any) -> Shape:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return {str(k): shape(v) for k, v in value.items()}
    if isinstance(value, list):
        merged: Shape = "null"
        for item in value:
            merged = merge(merged, shape(item))
        return {"[]": merged}
    return "scalar"


def merge(a: Shape, b: Shape) -> Shape:
    if a == "null":
        return b
    if b == "null":
        return a
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: merge(a.get(k, "null"), b.get(k, "null")) for k in {**a, **b}}
    return a


# Objects whose keys are data, not interface: a policy's tunables and stats, a workload's
# metrics per sample, the rounds of an overhead measurement, an audited tool call's arguments.
# Their keys are not compared.
DATA_MAPS = frozenset(
    {"tunables", "stats", "metrics", "policy_stats", "loaded_tunables", "exit_info", "untraced", "traced", "arguments"}
)


def differences(expected: Shape, actual: Shape, path: str = "$") -> list[str]:
    """Where two shapes disagree; a null on either side (no value that time) matches anything."""
    if expected == "null" or actual == "null" or expected == actual:
        return []
    is_map = isinstance(expected, dict) and isinstance(actual, dict) and "[]" not in expected and "[]" not in actual
    if is_map and path.rsplit(".", 1)[-1] in DATA_MAPS:
        return []
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = [f"{path}.{k}: missing" for k in expected if k not in actual]
        out += [f"{path}.{k}: new" for k in actual if k not in expected]
        for k in expected.keys() & actual.keys():
            out += differences(expected[k], actual[k], f"{path}.{k}")
        return out
    return [f"{path}: {type(expected).__name__} became {type(actual).__name__}"]


EXPECTED = Path(__file__).parent / "data" / "json-shapes.json"


def assert_shape(name: str, data: Any) -> None:
    """`data` (one command's --json output) has the keys recorded for `name`, no more, no fewer.

    tests/cli/data/json-shapes.json records every command's keys; a change there is a change of
    an interface, listed in docs/cli-json.md.
    """
    expected = json.loads(EXPECTED.read_text())[name]
    problems = differences(expected, shape(data))
    assert not problems, f"--json of {name} changed shape (docs/cli-json.md):\n" + "\n".join(problems)
