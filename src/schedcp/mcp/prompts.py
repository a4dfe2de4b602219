"""The server's instructions and prompts: how an agent should use the tools, and what it needs to
write a policy that passes the verifier. The write_policy prompt is built from the verifier's own
rule table, allow-lists and headers (service.verify.authoring_guide), so it cannot drift from
what the verifier checks."""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer

from schedcp.service import verify as verify_svc

INSTRUCTIONS = """\
schedcp controls Linux CPU schedulers through sched_ext: BPF programs that replace the kernel's
scheduler. You decide what to try; schedcp does it safely. Nothing reaches a kernel until the
verifier passed it, and every deploy can be rolled back.

The loop: system_info -> analyze_workload (a profile of how the workload uses the CPU) ->
search_policies / get_policy (the library, with measured results) -> verify_policy (static checks,
the kernel's BPF verifier, stress in a sandbox VM, a performance gate) -> benchmark (A/B against the
kernel's scheduler) -> deploy_policy (refused without a passing report) -> deployment_status ->
rollback if needed -> record_result (what you learned, for the next run).
Work in the sandbox VM runs one job at a time and is slow under emulation (a verify is minutes).
Only ratios measured in the same run mean anything."""


def tune_text(command: str, goal: str) -> str:
    goal_line = f"The user's goal: {goal}." if goal else "Infer the goal (makespan, p99 latency or throughput)."
    return f"""\
Make this workload faster with a verified sched_ext policy: `{command}`.
{goal_line}

1. system_info: note the CPUs and whether this host has sched_ext (else deploy to the sandbox only).
2. analyze_workload with the command (as argv). Read the profile's classes, run-queue latency,
   run lengths, wakeups and thread counts; state the goal as a metric.
3. search_policies with the profile's classes and features; get_policy on the top hits. Prefer a
   policy whose measured results include a win on this class; read its tunables and ranges.
4. Derive tunables from the profile's evidence (e.g. a slice from the measured run lengths).
5. verify_policy (quick first). If a stage fails, read its findings' "what to fix" and either
   change tunables or write a patched version (create_policy with parent; see the write_policy
   prompt). At most three attempts per candidate.
6. benchmark the passing candidate on a workload of the same class against the default.
   Count a win only when the ratio holds on a second run or size.
7. If it wins: verify_policy without quick (a full report gates deploy), deploy_policy, then
   deployment_status. If it loses: record_result with why, and try the next candidate.
8. record_result with the numbers (speed-up, p99), wins and losses alike."""


def policy_text(guide: verify_svc.AuthoringGuide, workload_class: str, goal: str) -> str:
    rules = "\n".join(f"- `{r.id}`: {r.title} Why: {r.rationale}" for r in guide.lint_rules)
    headers = "\n\n".join(f"### {name}\n```c\n{text}\n```" for name, text in guide.headers.items())
    target = f"Target workload class: {workload_class}. " if workload_class else ""
    goal_line = f"Goal: {goal}." if goal else ""
    return f"""\
Write a sched_ext scheduling policy in BPF C that passes schedcp's verifier. {target}{goal_line}

Submit it with create_policy (name, source, policy_toml, readme), then verify_policy. The
verifier's stages, in order (it stops at the first failure): {", ".join(guide.stages)}.

## Rules the lint enforces
{rules}

The ops `timeout_ms`, if set, must be within {guide.timeout_ms_range[0]}-{guide.timeout_ms_range[1]} ms.
Every tunable is a `const volatile` global declared in policy.toml with a type, default, min and
max; `.name` in the ops struct equals the policy's name; the ops variable is NAME_ops in
SEC(".struct_ops.link").

## Kfuncs you may call (declared in schedcp.bpf.h: declare nothing yourself)
{", ".join(guide.allowed_kfuncs)}

## BPF helpers you may call
{", ".join(guide.allowed_helpers)}

## Include these headers, in this order: "schedcp.bpf.h" then "schedcp_common.bpf.h"
{headers}

## A minimal policy that passes every stage (start from it; rename `minimal` everywhere)
```c
{guide.example_source}
```

policy.toml:
```toml
{guide.example_policy_toml}
```

Design hints: kernel threads must never wait behind CPU hogs (the built-in global DSQ or the local
DSQ for per-CPU ones); bound every wait (the stress includes nice 19, SCHED_IDLE, pinned tasks,
fork storms); never let a task's queue position reset when it is re-enqueued."""


def register(server: MCPServer[Any]) -> None:
    @server.prompt(name="tune_workload", title="Tune the scheduler for a workload")
    def tune_workload(command: str, goal: str = "") -> str:
        """Step-by-step: profile the workload, pick or write a policy, verify, benchmark, deploy."""
        return tune_text(command, goal)

    @server.prompt(name="write_policy", title="Write a sched_ext policy that passes the verifier")
    def write_policy(workload_class: str = "", goal: str = "") -> str:
        """The verifier's lint rules, the kfunc and helper allow-lists, our headers and a minimal
        example policy: what an agent needs to write a policy that passes."""
        return policy_text(verify_svc.authoring_guide(), workload_class, goal)
