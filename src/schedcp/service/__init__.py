"""The one typed API under every interface (the CLI, the MCP server, the agent).

One module per capability, each a set of plain functions that take a `Context` (settings, the
repository, progress, cancellation) and pydantic request values, and return pydantic results
that serialize to exactly what `schedcp ... --json` prints:

    sandbox   info, run                                   the sched_ext VM
    runs      run_policy                                   a command under a policy, in the sandbox
    policies  list, show, search, add, history, remove,   the policy repository, and building
              export, import, best, build
    bench     list_workloads, run_benchmark, run_suite     A/B benchmarks against the default scheduler
    analyze   analyze_command, attach, list/show/compare   workload profiles
              profiles, measure_overhead, check_workloads
    verify    verify, require_verified, latest_report      the execution verifier and its gate
    runtime   deploy, status, rollback, history            a verified policy as a host's scheduler
    audit     record_call, audit_log                       the log of MCP tool calls

Interfaces import this package and nothing below it (an import-linter contract in CI checks
it), so the names a caller needs to type its own code are re-exported here.
"""

from schedcp.analysis.diff import ProfileDiff
from schedcp.config import Settings
from schedcp.errors import Cancelled, DeployRefused, NotVerified, PolicyEjected, SchedcpError
from schedcp.models import BootInfo, CommandResult
from schedcp.models.bench import BenchResult
from schedcp.models.deployment import SchedulerStatus
from schedcp.models.profile import Target, Where, WorkloadProfile
from schedcp.models.progress import Progress, ProgressFn
from schedcp.models.vocabulary import SIZES, WORKLOAD_CLASSES, Size, TunableValue, WorkloadClass
from schedcp.repository import WorkloadQuery
from schedcp.repository.models import PolicyEvent
from schedcp.runner import CommandRunner
from schedcp.runtime.session import PolicyRunReport
from schedcp.service.context import Context

__all__ = [
    "SIZES",
    "WORKLOAD_CLASSES",
    "BenchResult",
    "BootInfo",
    "Cancelled",
    "CommandResult",
    "CommandRunner",
    "Context",
    "DeployRefused",
    "NotVerified",
    "PolicyEjected",
    "PolicyEvent",
    "PolicyRunReport",
    "ProfileDiff",
    "Progress",
    "ProgressFn",
    "SchedcpError",
    "SchedulerStatus",
    "Settings",
    "Size",
    "Target",
    "TunableValue",
    "Where",
    "WorkloadClass",
    "WorkloadProfile",
    "WorkloadQuery",
]
