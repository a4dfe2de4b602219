"""The MCP server's tools, resources and prompts (see the package docstring and docs/mcp.md).

Every tool is one service call. What this module adds is what an untrusted caller needs around
it: typed, bounded parameters (names restricted to safe patterns, no file paths at all, so
nothing outside our data folder can be named), unknown arguments refused, the caller's profile
(a tool outside it is not registered), a readable `is_error` result for every failure, and an
audit record of every call.
"""

from __future__ import annotations

import contextvars
import hashlib
import inspect
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

import anyio
from mcp.server import MCPServer, ServerRequestContext
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import CallNext, HandlerResult
from mcp.server.mcpserver import Context as MCPContext
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schedcp import __version__
from schedcp.mcp import prompts
from schedcp.mcp.auth import FileTokenVerifier
from schedcp.mcp.jobs import Busy, Jobs, SharedSandbox
from schedcp.mcp.profiles import Profile, allowed
from schedcp.service import (
    Cancelled,
    CommandRunner,
    Context,
    DeployRefused,
    NotVerified,
    PolicyEvent,
    ProfileDiff,
    SchedcpError,
    SchedulerStatus,
    Settings,
    Size,
    WorkloadClass,
    WorkloadProfile,
    WorkloadQuery,
)
from schedcp.service import analyze as analyze_svc
from schedcp.service import audit as audit_svc
from schedcp.service import bench as bench_svc
from schedcp.service import policies as policies_svc
from schedcp.service import runtime as runtime_svc
from schedcp.service import system as system_svc
from schedcp.service import verify as verify_svc

log = logging.getLogger(__name__)
T = TypeVar("T")

# -- parameter types: safe patterns and bounds ---------------------------------------------------

# A stored policy: NAME, NAME@VERSION or a version id prefix. Never a folder: a client names
# only what the repository holds (create_policy puts it there).
PolicyRef = Annotated[
    str,
    Field(
        pattern=r"^([a-z][a-z0-9_]{0,30}(@[A-Za-z0-9][A-Za-z0-9._+-]{0,39})?|[0-9a-f]{6,64})$",
        description="a stored policy: NAME, NAME@VERSION or a version id prefix (6+ hex digits)",
    ),
]
PolicyName = Annotated[
    str, Field(pattern=r"^[a-z][a-z0-9_]{0,30}$", description="lower-case letters, digits and _ (max 31)")
]
WorkloadName = Annotated[
    str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="a benchmark workload (see list_workloads)")
]
ProfileId = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9_-]{4,64}$", description="a stored profile's id or unique prefix")
]
TunableName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,63}$")]
TunableArg = str | int | float | bool
Tunables = Annotated[
    dict[TunableName, TunableArg],
    Field(
        max_length=32,
        description='tunable values by name, e.g. {"slice_ns": "5ms"}; text is parsed by the tunable\'s type '
        "and unit, and values are range-checked against policy.toml",
    ),
]
Target = Annotated[
    Literal["host", "sandbox"],
    Field(description="this host (needs a sched_ext kernel), or the sandbox VM (for trials and tests)"),
]
Reason = Annotated[str, Field(max_length=500, description="why, for the record")]
CanaryTarget = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:@/-]{1,200}$")]

MAX_SOURCE = policies_svc.MAX_SOURCE_BYTES
MAX_TEXT = 64 * 1024

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
ADDITIVE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)


@dataclass
class ServeConfig:
    """How one server runs: whose tools, which database, which client for the audit log."""

    settings: Settings
    profile: Profile = "operate"
    db_url: str | None = None
    client: str = "stdio"  # the audit log's client when the transport does not name one (stdio)
    sandbox: CommandRunner | None = None  # a VM the caller keeps (tests); None: boot one when needed
    vm_wait_s: float = 600.0
    token_file: Any = None  # Path to the HTTP bearer tokens; None: no auth (stdio, in-process)
    http_url: str | None = None  # this server's URL, for the auth metadata


def _digest(text: str) -> str:
    return f"sha256:{hashlib.sha256(text.encode()).hexdigest()} ({len(text.encode())} bytes)"


def audit_arguments(args: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments for the audit log: code by hash (it is in the repository by hash too),
    the rest as given."""
    out: dict[str, Any] = {}
    for key, value in args.items():
        if key in ("source", "readme") and isinstance(value, str):
            out[key] = _digest(value)
        elif key == "headers" and isinstance(value, dict):
            out[key] = {k: _digest(v) if isinstance(v, str) else v for k, v in value.items()}
        else:
            out[key] = value
    return out


def _outcome(exc: BaseException) -> Literal["error", "refused", "cancelled"]:
    if isinstance(exc, Cancelled):
        return "cancelled"
    if isinstance(exc, NotVerified | DeployRefused | Busy):
        return "refused"
    return "error"


def _message(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        fields = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors())
        return f"invalid input: {fields}"
    return str(exc)


# Set per tools/call by AuditRefusals; the tool's own wrapper (Tools.call) marks it, so the
# middleware knows whether the call reached a tool at all. A dict, mutated, so the mark is seen
# whatever task or context copy the SDK runs the handler in.
_CALL: contextvars.ContextVar[dict[str, bool] | None] = contextvars.ContextVar("schedcp_mcp_call", default=None)


class AuditRefusals:
    """Server middleware: a tools/call the SDK refused before any tool ran (an unknown tool,
    arguments that fail the schema) is audited too, as `refused` with the message the client got."""

    def __init__(self, tools: Tools) -> None:
        self.tools = tools

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call" or ctx.request_id is None:
            return await call_next(ctx)
        mark: dict[str, bool] = {}
        token = _CALL.set(mark)
        t0 = time.monotonic()
        error: str | None = None
        try:
            result = await call_next(ctx)
        except Exception as exc:
            error = str(exc) or type(exc).__name__
            raise
        finally:
            _CALL.reset(token)
        if not mark.get("entered"):
            error = error or _result_text(result) or "refused before the tool ran"
            params = dict(ctx.params or {})
            args = params.get("arguments")
            entry = audit_svc.AuditEntry(
                client=self.tools.client(None),
                tool=str(params.get("name", "?"))[:100],
                arguments=audit_arguments(args if isinstance(args, dict) else {}),
                outcome="refused",
                error=error[:2000],
                duration_s=round(time.monotonic() - t0, 3),
            )
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.tools.audit, entry)
        return result


def _result_text(result: HandlerResult) -> str:
    data = result.model_dump() if isinstance(result, BaseModel) else result or {}
    return " ".join(str(c.get("text", "")) for c in data.get("content", []) if isinstance(c, dict)).strip()


class Tools:
    """The state every tool shares: the job runner, the config, and the audit log."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.jobs = Jobs(
            config.settings,
            config.db_url,
            SharedSandbox(config.settings, config.db_url, config.sandbox, config.vm_wait_s),
        )

    def client(self, mctx: MCPContext | None) -> str:
        token = get_access_token()
        if token is not None:
            return token.client_id
        request = getattr(getattr(mctx, "request_context", None), "request", None) if mctx is not None else None
        user = getattr(request, "user", None) if request is not None else None
        access = getattr(user, "access_token", None)
        return str(getattr(access, "client_id", None) or self.config.client)

    async def call(
        self,
        mctx: MCPContext | None,
        tool: str,
        args: dict[str, Any],
        fn: Callable[[Context], T],
    ) -> T:
        """Run one service call for a tool: progress, cancellation, errors as ToolError, audit."""
        mark = _CALL.get()
        if mark is not None:
            mark["entered"] = True
        client = self.client(mctx)
        t0 = time.monotonic()
        outcome: Literal["ok", "error", "refused", "cancelled"] = "ok"
        error: str | None = None

        async def sink(step: float, message: str) -> None:
            if mctx is not None:
                await mctx.report_progress(step, None, message)

        try:
            return await self.jobs.run(fn, sink=sink if mctx is not None else None, job=f"{tool} for {client}")
        except anyio.get_cancelled_exc_class():
            outcome, error = "cancelled", "the client cancelled the call"
            raise
        except (SchedcpError, ValidationError) as exc:
            outcome, error = _outcome(exc), _message(exc)
            raise ToolError(error) from exc
        except Exception as exc:
            log.exception("tool %s failed", tool)
            outcome, error = "error", f"internal error in {tool}: {exc!r} (the server keeps serving)"
            raise ToolError(error) from exc
        finally:
            entry = audit_svc.AuditEntry(
                client=client,
                tool=tool,
                arguments=audit_arguments(args),
                outcome=outcome,
                error=error,
                duration_s=round(time.monotonic() - t0, 3),
            )
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.audit, entry)

    def audit(self, entry: audit_svc.AuditEntry) -> None:
        try:
            audit_svc.record_call(Context(self.config.settings, self.config.db_url), entry)
        except Exception:  # the audit must never turn a result into a failure; it is logged
            log.exception("could not write the audit record for %s", entry.tool)


def _forbid_unknown_arguments(server: MCPServer[Any]) -> None:
    """The SDK ignores arguments a tool does not take; an LLM's misspelled argument would then be
    dropped silently and a default used. Refuse them instead, and say so in the schema."""
    for tool in server._tool_manager.list_tools():
        model = tool.fn_metadata.arg_model
        model.model_config = ConfigDict(**{**model.model_config, "extra": "forbid"})
        model.model_rebuild(force=True)
        tool.parameters = {**tool.parameters, "additionalProperties": False}


def build_server(config: ServeConfig) -> MCPServer[Any]:
    """The server for one profile: only its tools are registered."""
    auth = None
    verifier = None
    if config.token_file is not None:
        verifier = FileTokenVerifier(config.token_file)
        url = config.http_url or "http://127.0.0.1"
        auth = AuthSettings(issuer_url=url, resource_server_url=url)
    tools = Tools(config)

    @asynccontextmanager
    async def lifespan(_: MCPServer[Any]) -> AsyncIterator[dict[str, Any]]:
        """The sandbox VM lives as long as the server: stopped (after the running job) on exit."""
        try:
            yield {}
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(tools.jobs.sandbox.close)

    server: MCPServer[Any] = MCPServer(
        "schedcp",
        lifespan=lifespan,
        version=__version__,
        instructions=prompts.INSTRUCTIONS,
        token_verifier=verifier,
        auth=auth,
        middleware=[AuditRefusals(tools)],
    )
    permitted = allowed(config.profile)

    def tool(name: str, annotations: ToolAnnotations) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            if name in permitted:
                server.tool(name=name, description=inspect.cleandoc(fn.__doc__ or ""), annotations=annotations)(fn)
            return fn

        return register

    # -- the machine --

    @tool("system_info", READ_ONLY)
    async def system_info(ctx: MCPContext) -> system_svc.SystemInfo:
        """The host kernel and whether it has sched_ext, the sandbox VM's kernel and accelerator,
        the CPU topology (cores, SMT, last-level-cache groups), and the scheduler running now."""
        return await tools.call(ctx, "system_info", {}, system_svc.system_info)

    # -- workloads --

    @tool("analyze_workload", ADDITIVE)
    async def analyze_workload(
        ctx: MCPContext,
        command: Annotated[
            list[Annotated[str, Field(max_length=4096)]],
            Field(min_length=1, max_length=64, description="argv of the workload, run in the sandbox VM"),
        ],
        duration_s: Annotated[
            float | None, Field(gt=0, le=600, description="stop it after this; None: until it exits")
        ] = None,
        timeout_s: Annotated[float, Field(gt=0, le=3600, description="killed after this")] = 600.0,
        interval_s: Annotated[float, Field(ge=0.1, le=10, description="sampling interval")] = 1.0,
        trace: Annotated[bool, Field(description="BPF tracing of run-queue latency and run lengths")] = True,
    ) -> WorkloadProfile:
        """Run a command in the sandbox VM under the collector and return its workload profile
        (run-queue latency, context switches, threads, run lengths, wakeups, CPU use, classes),
        stored in the repository (get_profile, diff_profiles)."""
        request = analyze_svc.AnalyzeRequest(
            command=command, duration_s=duration_s, timeout_s=timeout_s, interval_s=interval_s, trace=trace
        )
        args = request.model_dump(mode="json", include={"command", "duration_s", "timeout_s", "interval_s", "trace"})
        return await tools.call(ctx, "analyze_workload", args, lambda c: analyze_svc.analyze_command(c, request))

    @tool("get_profile", READ_ONLY)
    async def get_profile(ctx: MCPContext, profile_id: ProfileId) -> WorkloadProfile:
        """A stored workload profile by id (or unique prefix)."""
        return await tools.call(
            ctx, "get_profile", {"profile_id": profile_id}, lambda c: analyze_svc.show_profile(c, profile_id)
        )

    @tool("list_profiles", READ_ONLY)
    async def list_profiles(
        ctx: MCPContext,
        limit: Annotated[int, Field(ge=1, le=200)] = 20,
        workload_class: Annotated[WorkloadClass | None, Field(description="only profiles of this class")] = None,
    ) -> analyze_svc.ProfileList:
        """Stored workload profiles, newest first."""
        return await tools.call(
            ctx,
            "list_profiles",
            {"limit": limit, "workload_class": workload_class},
            lambda c: analyze_svc.list_profiles(c, limit, workload_class),
        )

    @tool("diff_profiles", READ_ONLY)
    async def diff_profiles(ctx: MCPContext, a: ProfileId, b: ProfileId) -> ProfileDiff:
        """Profile B against A: key metrics with B/A ratios, class changes, top-process changes."""
        return await tools.call(ctx, "diff_profiles", {"a": a, "b": b}, lambda c: analyze_svc.compare_profiles(c, a, b))

    @tool("list_workloads", READ_ONLY)
    async def list_workloads(ctx: MCPContext) -> bench_svc.WorkloadList:
        """The benchmark workloads (for benchmark and verify_policy): class, metrics, sizes."""
        return await tools.call(ctx, "list_workloads", {}, bench_svc.list_workloads)

    # -- the policy library --

    @tool("list_policies", READ_ONLY)
    async def list_policies(
        ctx: MCPContext, include_removed: Annotated[bool, Field(description="also removed policies")] = False
    ) -> policies_svc.PolicyList:
        """Every policy in the repository with its classes, summary, head version and results."""
        return await tools.call(
            ctx,
            "list_policies",
            {"include_removed": include_removed},
            lambda c: policies_svc.list_policies(c, include_removed),
        )

    @tool("search_policies", READ_ONLY)
    async def search_policies(
        ctx: MCPContext,
        text: Annotated[str, Field(max_length=500, description="free text, e.g. 'wakeup latency web server'")] = "",
        classes: Annotated[list[WorkloadClass], Field(max_length=8, description="a profile's classes")] = [],  # noqa: B006
        features: Annotated[
            list[Annotated[str, Field(max_length=64)]], Field(max_length=16, description="a profile's features")
        ] = [],  # noqa: B006
        limit: Annotated[int, Field(ge=1, le=50)] = 10,
    ) -> policies_svc.SearchResult:
        """Policies ranked for a workload: full text over name, classes, summary and README, plus
        fit to the profile's classes and the measured history."""
        query = WorkloadQuery(text=text, classes=list(classes), features=features)
        return await tools.call(
            ctx,
            "search_policies",
            {"text": text, "classes": classes, "features": features, "limit": limit},
            lambda c: policies_svc.search_policies(c, query, limit),
        )

    @tool("get_policy", READ_ONLY)
    async def get_policy(
        ctx: MCPContext,
        policy: PolicyRef,
        include_source: Annotated[bool, Field(description="include the BPF C source")] = True,
    ) -> policies_svc.PolicyOverview:
        """One version: metadata, tunables with ranges, source, measured results, every
        verification and the latest report in full; and the policy's history (every version,
        and the notes and measurements earlier runs recorded)."""
        return await tools.call(
            ctx,
            "get_policy",
            {"policy": policy, "include_source": include_source},
            lambda c: policies_svc.overview(c, policy, include_source=include_source),
        )

    @tool("create_policy", ADDITIVE)
    async def create_policy(
        ctx: MCPContext,
        name: PolicyName,
        source: Annotated[str, Field(min_length=1, max_length=MAX_SOURCE, description="the BPF C source")],
        policy_toml: Annotated[
            str, Field(min_length=1, max_length=MAX_TEXT, description="policy.toml (see the write_policy prompt)")
        ],
        readme: Annotated[str, Field(max_length=MAX_TEXT, description="what it is for and why it works")] = "",
        headers: Annotated[
            dict[
                Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\.h$")],
                Annotated[str, Field(max_length=MAX_TEXT)],
            ],
            Field(max_length=8, description="extra local headers: file name -> text"),
        ] = {},  # noqa: B006
        parent: Annotated[
            str | None,
            Field(
                pattern=r"^(head|[0-9a-f]{6,64}|[a-z][a-z0-9_]{0,30}@[A-Za-z0-9][A-Za-z0-9._+-]{0,39})$",
                description="for a new version of an existing policy: 'head', a version id prefix or NAME@VERSION",
            ),
        ] = None,
    ) -> policies_svc.CreateResult:
        """Store a new policy (or a new version of one) from its source and policy.toml. Checked
        as a folder would be and compiled with clang; stored as written by an agent; not loaded
        anywhere. Next: verify_policy."""
        request = policies_svc.CreateRequest(
            name=name, source=source, policy_toml=policy_toml, readme=readme, headers=headers, parent=parent
        )
        return await tools.call(
            ctx, "create_policy", request.model_dump(), lambda c: policies_svc.create_policy(c, request)
        )

    @tool("record_result", ADDITIVE)
    async def record_result(
        ctx: MCPContext,
        policy: PolicyRef,
        note: Annotated[str, Field(max_length=4000, description="what was seen, what failed and why")] = "",
        workload: Annotated[str | None, Field(max_length=200, description="what it is about")] = None,
        metric: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9_./%-]{1,64}$")] = None,
        value: Annotated[float | None, Field(description="the candidate's reading")] = None,
        baseline: Annotated[float | None, Field(description="the default scheduler's reading, same run")] = None,
        unit: Annotated[str, Field(max_length=16)] = "",
        better: Literal["higher", "lower"] | None = None,
    ) -> PolicyEvent:
        """Attach a note or a measurement made elsewhere to a policy version, where the next
        planner reads it (its history). Benchmarks run through `benchmark` are recorded already."""
        request = policies_svc.NoteRequest(
            policy=policy,
            workload=workload,
            note=note,
            metric=metric,
            value=value,
            baseline=baseline,
            unit=unit,
            better=better,
        )
        return await tools.call(
            ctx, "record_result", request.model_dump(), lambda c: policies_svc.record_note(c, request)
        )

    # -- the verifier and the benchmark harness --

    @tool("verify_policy", ADDITIVE)
    async def verify_policy(
        ctx: MCPContext,
        policy: PolicyRef,
        tunables: Tunables = {},  # noqa: B006
        workload: Annotated[WorkloadName | None, Field(description="the performance gate's workload")] = None,
        quick: Annotated[bool, Field(description="shorter stress and benchmark (about half the time)")] = False,
        until: Annotated[
            Literal["compile", "lint", "kernel-verifier", "dynamic", "performance"],
            Field(description="the last stage to run; only a full run is stored and can gate a deploy"),
        ] = "performance",
    ) -> verify_svc.VerifyResult:
        """Run the execution verifier: compile, lint, the kernel's BPF verifier, stress and
        starvation tests in the sandbox VM, and the performance gate against the default scheduler.
        Stops at the first failing stage; a failure's findings say what to fix. A passing full
        report is stored and lets deploy_policy deploy exactly this version and these tunables."""
        request = verify_svc.VerifyRequest(
            policy=policy, tunables=dict(tunables), workload=workload, quick=quick, until=until
        )
        args = {"policy": policy, "tunables": tunables, "workload": workload, "quick": quick, "until": until}
        return await tools.call(ctx, "verify_policy", args, lambda c: verify_svc.verify(c, request))

    @tool("benchmark", ADDITIVE)
    async def benchmark(
        ctx: MCPContext,
        workload: WorkloadName,
        policy: PolicyRef,
        tunables: Tunables = {},  # noqa: B006
        repeat: Annotated[int, Field(ge=1, le=10, description="measured runs a side, after a warm-up each")] = 3,
        size: Annotated[
            Size | None, Field(description="the workload's size (see list_workloads); None: its default")
        ] = None,
    ) -> bench_svc.BenchRunResult:
        """A/B: the kernel's default scheduler and the policy alternately in one sandbox boot;
        ratios against the baseline measured in the same run; recorded against the version."""
        request = bench_svc.BenchRunRequest(
            workload=workload, policy=policy, tunables=dict(tunables), repeat=repeat, size=size
        )
        args = {"workload": workload, "policy": policy, "tunables": tunables, "repeat": repeat, "size": size}
        return await tools.call(ctx, "benchmark", args, lambda c: bench_svc.run_benchmark(c, request))

    # -- the runtime --

    @tool("deploy_policy", DESTRUCTIVE)
    async def deploy_policy(
        ctx: MCPContext,
        policy: PolicyRef,
        tunables: Tunables = {},  # noqa: B006
        target: Target = "host",
        canary: Annotated[
            list[CanaryTarget],
            Field(max_length=16, description="PIDs, cgroup paths or command names that run it first"),
        ] = [],  # noqa: B006
        canary_s: Annotated[float, Field(gt=0, le=600, description="how long the canary phase lasts")] = 10.0,
        replace: Annotated[bool, Field(description="take over from a scheduler schedcp did not start")] = False,
        reason: Reason = "",
    ) -> runtime_svc.DeployResult:
        """Make a verified version the target's scheduler (a canary first when given), pinned so it
        outlives this server. Refused without a passing verification of this exact version and
        tunables. A cancelled deploy is rolled back."""
        if any(".." in c.split("/") for c in canary):
            raise ToolError("invalid input: canary: a cgroup path may not contain '..'")
        request = runtime_svc.DeployRequest(
            policy=policy,
            tunables=dict(tunables),
            where=target,
            canary=canary,
            canary_s=canary_s,
            replace=replace,
            reason=reason or "deployed through the MCP server",
        )
        args = {"policy": policy, "tunables": tunables, "target": target, "canary": canary, "reason": reason}
        return await tools.call(ctx, "deploy_policy", args, lambda c: _deploy_or_undo(c, request))

    @tool("rollback", DESTRUCTIVE)
    async def rollback(
        ctx: MCPContext,
        target: Target = "host",
        to_default: Annotated[bool, Field(description="the kernel's own scheduler, whatever the records say")] = False,
        reason: Reason = "",
    ) -> runtime_svc.RollbackResult:
        """Return the target to the previous deployment, or the kernel's own scheduler."""
        request = runtime_svc.RollbackRequest(
            to_default=to_default, reason=reason or "rolled back through the MCP server", where=target
        )
        args = {"target": target, "to_default": to_default, "reason": reason}
        return await tools.call(ctx, "rollback", args, lambda c: runtime_svc.rollback(c, request))

    @tool("deployment_status", READ_ONLY)
    async def deployment_status(ctx: MCPContext, target: Target = "host") -> SchedulerStatus:
        """What schedules the target now, from the kernel (sched_ext state, ops, counters), whether
        schedcp put it there, its deployment record and the policy's own counters."""
        if target == "sandbox" and not tools.jobs.sandbox.booted:
            raise ToolError("no sandbox VM is running in this server, so nothing is deployed there")
        return await tools.call(
            ctx,
            "deployment_status",
            {"target": target},
            lambda c: runtime_svc.status(c, target),
        )

    _forbid_unknown_arguments(server)
    _resources(server, tools)
    prompts.register(server)
    return server


def _deploy_or_undo(ctx: Context, request: runtime_svc.DeployRequest) -> runtime_svc.DeployResult:
    """Deploy; when the caller cancelled while the deploy finished anyway, roll it back, so a
    cancelled deploy never leaves the new scheduler attached."""
    result = runtime_svc.deploy(ctx, request)
    try:
        ctx.check()
    except Cancelled:
        quiet = Context(ctx.settings, ctx.repository_url)
        runtime_svc.rollback(
            quiet, runtime_svc.RollbackRequest(reason="the deploy's caller cancelled", where=request.where)
        )
        raise
    return result


def _resources(server: MCPServer[Any], tools: Tools) -> None:
    """Read-only views by URI: policies, their source, profiles, reports, the current scheduler."""

    def ctx() -> Context:
        return Context(tools.config.settings, tools.config.db_url)

    async def blocking(fn: Callable[[], T]) -> T:
        try:
            return await anyio.to_thread.run_sync(fn)
        except SchedcpError as exc:
            raise ValueError(str(exc)) from exc

    @server.resource("policy://{name}", mime_type="application/json")
    async def policy_resource(name: str) -> str:
        """A policy's head version (metadata, results, verifications) and its whole history."""

        def read() -> str:
            detail = policies_svc.show_policy(ctx(), name)
            history = policies_svc.policy_history(ctx(), detail.name)
            return json.dumps({"head": detail.model_dump(mode="json"), "history": history.model_dump(mode="json")})

        return await blocking(read)

    @server.resource("policy://{name}/source", mime_type="text/x-c")
    async def policy_source(name: str) -> str:
        """The head version's BPF C source."""
        detail = await blocking(lambda: policies_svc.show_policy(ctx(), name, include_source=True))
        return detail.source or ""

    @server.resource("profile://{profile_id}", mime_type="application/json")
    async def profile_resource(profile_id: str) -> str:
        """A stored workload profile."""
        profile = await blocking(lambda: analyze_svc.show_profile(ctx(), profile_id))
        return profile.model_dump_json()

    @server.resource("report://{report_id}", mime_type="application/json")
    async def report_resource(report_id: str) -> str:
        """A stored verification report by its id (get_policy lists them)."""
        if not report_id.isdigit():
            raise ValueError(f"a report id is a number, not {report_id!r}")
        record = await blocking(lambda: verify_svc.get_record(ctx(), int(report_id)))
        return str(record.model_dump_json())

    @server.resource("scheduler://current", mime_type="application/json")
    async def scheduler_current() -> str:
        """This host's scheduler now: name, class (sched_ext or the kernel's own) and state, the
        way scxtop's MCP server names it, with schedcp's deployment record."""
        status = await blocking(lambda: runtime_svc.status(ctx(), "host"))
        current = {
            "name": status.ops if status.state == "enabled" and status.ops else "eevdf",
            "class": "sched_ext" if status.state == "enabled" else "fair",
            "state": status.state or "unavailable",
            "scheduler": status.scheduler,
            "status": status.model_dump(mode="json"),
        }
        return json.dumps(current)

    @server.resource("topology://info", mime_type="application/json")
    async def topology_info() -> str:
        """This host's CPUs: cores, SMT, last-level-cache groups, NUMA nodes."""
        return (await blocking(system_svc.topology)).model_dump_json()
