"""One exception hierarchy for schedcp.

Every message says what happened and what to do next; only the CLI and the MCP boundary
catch broadly, everything else lets these travel up unchanged.
"""

from __future__ import annotations


class SchedcpError(Exception):
    """Base of every error schedcp raises on purpose; the CLI turns it into exit code 1."""

    exit_code = 1


class ConfigError(SchedcpError):
    """The configuration file or an option is invalid."""


class SetupError(SchedcpError):
    """A host prerequisite (QEMU, clang, bpftool, the sandbox kernel) is missing or wrong."""


class SandboxError(SchedcpError):
    """The sandbox VM could not be booted or driven."""


class LostVMError(SandboxError):
    """The VM died or stopped answering; its console tail is attached for diagnosis."""

    def __init__(self, message: str, console_tail: str = "") -> None:
        super().__init__(message + (f"\n--- guest console (last lines) ---\n{console_tail}" if console_tail else ""))
        self.console_tail = console_tail


class CommandTimeout(SandboxError):
    """A command inside the sandbox ran past its timeout and was killed."""


class BuildError(SchedcpError):
    """A policy failed to compile; carries the compiler's output."""

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message + (f"\n{log}" if log else ""))
        self.log = log


class PolicyNotFound(SchedcpError):
    """No policy of that name exists."""


class PolicyError(SchedcpError):
    """A policy's metadata or tunables are invalid."""


class VerifierRejected(SchedcpError):
    """The kernel's BPF verifier refused the policy; carries the verifier log."""

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message + (f"\n--- verifier log ---\n{log}" if log else ""))
        self.log = log


class PolicyEjected(SchedcpError):
    """The kernel disabled a running policy (watchdog stall, runtime error, ...)."""

    exit_code = 3

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class DeployError(SchedcpError):
    """A verified policy could not be attached or detached."""


class DeployRefused(DeployError):
    """A deploy was not attempted: nothing on the target changed (a foreign scheduler without
    --replace, a canary that names no task, sched_ext busy)."""


class RepositoryError(SchedcpError):
    """The policy repository (its database or an archive) refused an operation; nothing was written."""


class DuplicatePolicy(RepositoryError):
    """A policy of that name exists already and the new content was not declared as a version of it."""


class NotVerified(RepositoryError):
    """No passing verification report for this exact version and tunables: it may not reach a kernel."""


class VersionNotFound(RepositoryError):
    """No stored version matches the id (prefix) or label given."""


class CorruptArchive(RepositoryError):
    """A policy archive is truncated, malformed, or its contents do not match their hashes."""


class AnalysisError(SchedcpError):
    """A workload could not be analysed: no such command, pid or cgroup, or nothing to observe."""


class Cancelled(SchedcpError):
    """The caller cancelled a long operation; it stopped at the next step and cleaned up (VM shut
    down, policy detached). A result is recorded only when its operation completes, so a
    cancelled benchmark records nothing; profiles of workloads checked before the cancel stay."""

    exit_code = 130
