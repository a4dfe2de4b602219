"""Render docs/configuration.md from the settings model, so the docs cannot drift from the code."""

from __future__ import annotations

from pydantic import BaseModel

from schedcp.config import SandboxSettings, Settings

HEADER = """# Configuration

Generated from `schedcp.config` by `python -m schedcp.configdoc > docs/configuration.md`;
a test fails when this file is out of date.

schedcp reads `$SCHEDCP_CONFIG`, else `~/.config/schedcp/config.toml`. Every key is optional;
unknown keys are an error. `$SCHEDCP_CACHE` overrides the default cache folder.

```toml
[sandbox]
vcpus = 2
memory_mb = 4096
```
"""


def _table(title: str, model: type[BaseModel], skip: set[str]) -> str:
    rows = [f"\n## {title}\n", "| key | type | default | description |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        default = "computed" if field.default_factory is not None else f"`{field.default!r}`"
        kind = getattr(field.annotation, "__name__", str(field.annotation))
        rows.append(f"| `{name}` | {kind} | {default} | {field.description or ''} |")
    return "\n".join(rows) + "\n"


def render() -> str:
    return HEADER + _table("top level", Settings, {"sandbox"}) + _table("[sandbox]", SandboxSettings, set())


if __name__ == "__main__":
    print(render(), end="")
