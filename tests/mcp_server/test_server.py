"""The MCP server in-process, through the SDK's own client: every tool's success and error paths
that need no VM, profiles, validation, audit, resources and prompts. The sandbox tools' success
paths are in test_sandbox_mcp.py."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult

from schedcp.config import load_settings
from schedcp.mcp import ServeConfig, build_server
from schedcp.mcp.jobs import Busy, SharedSandbox
from schedcp.mcp.profiles import ALL_TOOLS, DEVELOP, OBSERVE, OPERATE
from schedcp.mcp.server import audit_arguments
from schedcp.service import Context
from schedcp.service.audit import audit_log
from schedcp.service.verify import EXAMPLE_DIR

READ_ONLY = {
    "system_info",
    "get_profile",
    "list_profiles",
    "diff_profiles",
    "list_policies",
    "search_policies",
    "get_policy",
    "list_workloads",
    "deployment_status",
}


def with_client(profile: str = "operate", **kw: Any) -> Callable[[Callable[[Client], Awaitable[Any]]], Any]:
    """Run `body(client)` against a fresh in-process server with `profile`."""

    def run(body: Callable[[Client], Awaitable[Any]]) -> Any:
        server = build_server(ServeConfig(settings=load_settings(), profile=profile, client="pytest", **kw))  # type: ignore[arg-type]

        async def main() -> Any:
            async with Client(server) as client:
                return await body(client)

        return anyio.run(main)

    return run


def call(name: str, args: dict[str, Any] | None = None, profile: str = "operate") -> CallToolResult:
    async def body(client: Client) -> CallToolResult:
        return await client.call_tool(name, args or {})

    result: CallToolResult = with_client(profile)(body)
    return result


def text(result: CallToolResult) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


def test_every_tool_is_listed_with_its_annotations() -> None:
    async def body(client: Client) -> Any:
        return (await client.list_tools()).tools

    tools = {t.name: t for t in with_client()(body)}
    assert set(tools) == set(ALL_TOOLS)
    for name, tool in tools.items():
        assert tool.description, name
        assert tool.annotations is not None, name
        assert tool.annotations.read_only_hint is (name in READ_ONLY), name
        assert tool.annotations.destructive_hint is (name in OPERATE), name
        assert tool.input_schema.get("additionalProperties") is False, name
        assert tool.output_schema is not None, f"{name} returns no structured result"


@pytest.mark.parametrize(("profile", "expected"), [("observe", OBSERVE), ("develop", OBSERVE + DEVELOP)])
def test_a_profile_lists_only_its_tools_and_refuses_the_others(profile: str, expected: tuple[str, ...]) -> None:
    async def body(client: Client) -> Any:
        names = {t.name for t in (await client.list_tools()).tools}
        refused = await client.call_tool("deploy_policy", {"policy": "fifo"})
        return names, refused

    names, refused = with_client(profile)(body)
    assert names == set(expected)
    assert refused.is_error
    assert "deploy_policy" in text(refused)


def test_read_only_tools_answer() -> None:
    async def body(client: Client) -> dict[str, CallToolResult]:
        return {
            "system_info": await client.call_tool("system_info", {}),
            "list_policies": await client.call_tool("list_policies", {}),
            "get_policy": await client.call_tool("get_policy", {"policy": "vtime"}),
            "search_policies": await client.call_tool("search_policies", {"text": "latency", "limit": 3}),
            "list_workloads": await client.call_tool("list_workloads", {}),
            "list_profiles": await client.call_tool("list_profiles", {}),
            "deployment_status": await client.call_tool("deployment_status", {"target": "host"}),
        }

    results = with_client()(body)
    for name, result in results.items():
        assert not result.is_error, f"{name}: {text(result)}"
        assert result.structured_content is not None, name
    info = results["system_info"].structured_content
    assert info["cpus"]["online"], info
    assert info["host_sched_ext"] == Path("/sys/kernel/sched_ext").is_dir()
    names = {p["name"] for p in results["list_policies"].structured_content["policies"]}
    assert {"fifo", "vtime", "deadline"} <= names
    vtime = results["get_policy"].structured_content
    assert len(vtime["history"]["versions"]) >= 1
    assert "vtime_ops" in vtime["source"]
    assert "slice_ns" in vtime["tunables"]
    assert len(results["search_policies"].structured_content["hits"]) <= 3
    assert any(w["name"] == "messaging" for w in results["list_workloads"].structured_content["workloads"])
    assert results["list_profiles"].structured_content == {"profiles": []}
    assert results["deployment_status"].structured_content["sched_ext"] == Path("/sys/kernel/sched_ext").is_dir()


@pytest.mark.parametrize(
    ("tool", "args", "says"),
    [
        ("list_policies", {"include_removd": True}, "include_removd"),
        ("list_profiles", {"limit": 0}, "limit"),
        ("list_profiles", {"limit": 100000}, "limit"),
        ("get_policy", {"policy": "/etc/passwd"}, "policy"),
        ("get_policy", {"policy": "../../x"}, "policy"),
        ("get_policy", {"policy": "no_such_policy"}, "no_such_policy"),
        ("get_profile", {"profile_id": "../../../etc/shadow.json"}, "profile_id"),
        ("get_profile", {"profile_id": "abcdef"}, "abcdef"),
        ("diff_profiles", {"a": "abcdef", "b": "123456"}, "abcdef"),
        ("verify_policy", {"policy": "fifo", "tunables": {"slice_ns": "1h"}, "until": "lint"}, "slice_ns"),
        ("verify_policy", {"policy": "fifo", "tunables": {"no_such": 1}, "until": "lint"}, "no_such"),
        ("benchmark", {"workload": "no-such-workload", "policy": "fifo"}, "no-such-workload"),
        ("benchmark", {"workload": "messaging", "policy": "fifo", "repeat": 50}, "repeat"),
        ("record_result", {"policy": "fifo"}, "note"),
        ("record_result", {"policy": "fifo", "value": 1.5}, "metric"),
        ("deploy_policy", {"policy": "fifo", "canary": ["../../etc"]}, ".."),
    ],
)
def test_bad_input_is_a_readable_error_and_the_server_keeps_serving(tool: str, args: dict[str, Any], says: str) -> None:
    async def body(client: Client) -> tuple[CallToolResult, CallToolResult]:
        bad = await client.call_tool(tool, args)
        after = await client.call_tool("list_policies", {})
        return bad, after

    bad, after = with_client()(body)
    assert bad.is_error, text(bad)
    assert says in text(bad), text(bad)
    assert not after.is_error


def test_a_deploy_without_sched_ext_or_verification_is_refused_and_audited() -> None:
    result = call("deploy_policy", {"policy": "fifo", "target": "host"})
    assert result.is_error
    if not Path("/sys/kernel/sched_ext").is_dir():
        assert "sched_ext" in text(result)
        assert "CONFIG_SCHED_CLASS_EXT" in text(result)
    else:
        assert "schedcp verify" in text(result)
    entries = audit_log(Context(), tool="deploy_policy").entries
    assert entries
    assert entries[0].outcome == "refused"
    assert entries[0].client == "pytest"
    assert entries[0].arguments["policy"] == "fifo"


def _example(name: str) -> dict[str, str]:
    source = (EXAMPLE_DIR / "minimal.bpf.c").read_text().replace("minimal", name)
    toml = (EXAMPLE_DIR / "policy.toml").read_text().replace('name = "minimal"', f'name = "{name}"')
    return {"name": name, "source": source, "policy_toml": toml, "readme": f"# {name}\n"}


@pytest.mark.bpf
def test_create_policy_compiles_stores_and_audits_the_source_by_hash() -> None:
    args = _example("agent_fifo")

    async def body(client: Client) -> list[CallToolResult]:
        return [
            await client.call_tool("create_policy", args),
            await client.call_tool("get_policy", {"policy": "agent_fifo"}),
            await client.call_tool("create_policy", args),  # the same texts again: nothing new
            await client.call_tool(  # new texts under the same name, without saying it is a new version
                "create_policy", {**args, "source": args["source"].replace("slice_ns = 5000000", "slice_ns = 3000000")}
            ),
            await client.call_tool(
                "create_policy",
                {
                    **args,
                    "source": args["source"].replace("slice_ns = 5000000", "slice_ns = 4000000"),
                    "parent": "head",
                },
            ),
            await client.call_tool(
                "record_result",
                {
                    "policy": "agent_fifo",
                    "note": "loses on messaging",
                    "metric": "ops_s",
                    "value": 0.9,
                    "baseline": 1.0,
                },
            ),
            await client.call_tool("get_policy", {"policy": "agent_fifo", "include_source": False}),
        ]

    created, shown, again, conflict, version2, noted, later = with_client()(body)
    assert not created.is_error, text(created)
    out = created.structured_content
    assert out["added"]["name"] == "agent_fifo"
    assert len(out["object_sha256"]) == 64
    assert not shown.is_error
    assert shown.structured_content["author"] == "agent"
    assert not again.is_error
    assert again.structured_content["added"]["status"] == "unchanged"
    assert conflict.is_error
    assert "parent" in text(conflict), text(conflict)
    assert not version2.is_error, text(version2)
    assert not noted.is_error
    assert noted.structured_content["kind"] == "measurement"
    history = later.structured_content["history"]
    assert len(history["versions"]) == 2
    assert any(e["kind"] == "measurement" and "loses on messaging" in e["detail"] for e in history["events"])
    entry = audit_log(Context(), tool="create_policy").entries[-1]
    assert entry.outcome == "ok"
    assert entry.arguments["source"].startswith("sha256:")
    assert "scx_bpf_dsq_insert" not in json.dumps(entry.arguments)


@pytest.mark.bpf
@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            lambda a: {**a, "source": a["source"].replace("return schedcp_create_dsq", "return undefined_fn")},
            "undefined_fn",
        ),
        (lambda a: {**a, "name": "other_name"}, "other_name"),
        (lambda a: {**a, "policy_toml": 'name = "agent_bad"\n[tunables'}, "policy.toml"),
        (lambda a: {**a, "source": "x" * (300 * 1024)}, "source"),
    ],
)
def test_create_policy_refuses_what_would_not_build(
    change: Callable[[dict[str, str]], dict[str, str]], says: str
) -> None:
    result = call("create_policy", change(_example("agent_bad")))
    assert result.is_error
    assert says in text(result), text(result)
    listed = call("list_policies", {})
    assert "agent_bad" not in {p["name"] for p in listed.structured_content["policies"]}


def test_resources_and_prompts() -> None:
    async def body(client: Client) -> Any:
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        source = await client.read_resource("policy://fifo/source")
        policy = await client.read_resource("policy://fifo")
        current = await client.read_resource("scheduler://current")
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        write = await client.get_prompt("write_policy", {"workload_class": "batch"})
        tune = await client.get_prompt("tune_workload", {"command": "make -j4"})
        return templates, resources, source, policy, current, prompts, write, tune

    templates, resources, source, policy, current, prompts, write, tune = with_client()(body)
    assert {"policy://{name}", "policy://{name}/source", "profile://{profile_id}", "report://{report_id}"} <= templates
    assert {"scheduler://current", "topology://info"} <= resources
    assert "fifo_ops" in source.contents[0].text
    assert json.loads(policy.contents[0].text)["head"]["name"] == "fifo"
    now = json.loads(current.contents[0].text)
    assert {"name", "class", "state"} <= set(now)
    assert prompts == {"tune_workload", "write_policy"}
    guide = write.messages[0].content.text
    assert "scx_bpf_dsq_insert" in guide
    assert "schedcp.bpf.h" in guide
    assert "exit-recorded" in guide
    assert "make -j4" in tune.messages[0].content.text


def test_audit_arguments_keep_code_by_hash_only() -> None:
    args = {"name": "x", "source": "int main;", "headers": {"a.h": "#define A 1"}, "readme": "r"}
    out = audit_arguments(args)
    assert out["name"] == "x"
    assert out["source"].startswith("sha256:")
    assert "int main" not in json.dumps(out)
    assert out["headers"]["a.h"].startswith("sha256:")


class _FakeVM:
    def run(self, *a: Any, **k: Any) -> Any:
        raise AssertionError("not used")

    def stage(self, path: Path) -> str:
        return str(path)


def test_one_vm_job_at_a_time_the_next_waits_then_is_refused() -> None:
    """Two clients at once: the second VM job waits for the first; past its wait it is refused
    with a message naming the job that holds the VM, and the first is untouched."""
    shared = SharedSandbox(load_settings(), None, _FakeVM(), wait_s=1.0)  # type: ignore[arg-type]
    holding = threading.Event()
    release = threading.Event()
    seen: list[str] = []

    def first() -> None:
        with shared.lease(Context(), "benchmark for agent-a") as vm:
            assert vm is shared.lent
            holding.set()
            release.wait(10)
            seen.append("first done")

    t = threading.Thread(target=first)
    t.start()
    assert holding.wait(5)
    t0 = time.monotonic()
    with pytest.raises(Busy, match="benchmark for agent-a"), shared.lease(Context(), "verify for agent-b"):
        pass
    assert time.monotonic() - t0 >= 1.0
    release.set()
    t.join(5)
    assert seen == ["first done"]
    with shared.lease(Context(), "verify for agent-b") as vm:  # free again: the next one gets it
        assert vm is shared.lent


def test_calls_refused_before_any_tool_ran_are_audited_too() -> None:
    async def body(client: Client) -> list[CallToolResult]:
        return [
            await client.call_tool("list_profiles", {"limit": 0}),
            await client.call_tool("no_such_tool", {"x": 1}),
            await client.call_tool("list_policies", {}),
        ]

    schema, unknown, fine = with_client()(body)
    assert schema.is_error
    assert unknown.is_error
    assert not fine.is_error
    entries = {e.tool: e for e in audit_log(Context(), client="pytest").entries}
    assert entries["list_profiles"].outcome == "refused"
    assert "limit" in (entries["list_profiles"].error or "")
    assert entries["list_profiles"].arguments == {"limit": 0}
    assert entries["no_such_tool"].outcome == "refused"
    assert entries["list_policies"].outcome == "ok"
    assert len(audit_log(Context(), client="pytest", tool="list_policies").entries) == 1, "audited once"
