"""The files that connect Claude Code: .mcp.json starts our server, and each sched-agent role
in .claude/agents is allowed only tools the server has."""

from __future__ import annotations

import json
import re
from pathlib import Path

from schedcp.mcp.profiles import ALL_TOOLS, OPERATE

ROOT = Path(__file__).resolve().parents[2]
ROLES = {"observer", "planner", "executor", "learner"}


def _tools(path: Path) -> set[str]:
    front = path.read_text().split("---")[1]
    line = next(line for line in front.splitlines() if line.startswith("tools:"))
    return {t.strip() for t in line.removeprefix("tools:").split(",")}


def test_mcp_json_starts_schedcp_serve() -> None:
    server = json.loads((ROOT / ".mcp.json").read_text())["mcpServers"]["schedcp"]
    assert server["command"].endswith("schedcp")
    assert server["args"][0] == "serve"


def test_each_role_uses_only_our_tools_and_only_the_executor_deploys() -> None:
    files = {p.stem: p for p in (ROOT / ".claude" / "agents").glob("*.md")}
    assert set(files) == ROLES
    for role, path in files.items():
        tools = _tools(path)
        assert tools, role
        assert all(re.fullmatch(r"mcp__schedcp__\w+", t) for t in tools), (role, tools)
        names = {t.removeprefix("mcp__schedcp__") for t in tools}
        assert names <= set(ALL_TOOLS), (role, names - set(ALL_TOOLS))
        if role != "executor":
            assert not names & set(OPERATE), f"{role} may not deploy or roll back"
            assert "create_policy" not in names, role
