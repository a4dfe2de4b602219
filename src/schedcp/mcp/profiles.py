"""Client profiles: which tools a client may see and call.

A server runs with one profile (`schedcp serve --profile`); a tool outside it is not even
listed, so an agent cannot be talked into calling it. The profiles nest: what `observe` may
do, `develop` may too, and `operate` may do everything.
"""

from __future__ import annotations

from typing import Literal

Profile = Literal["observe", "develop", "operate"]
PROFILES: tuple[Profile, ...] = ("observe", "develop", "operate")

# Looks only: the host, profiles, the library, the deployment's state. `analyze_workload` runs a
# command in the sandbox VM, which changes nothing a deployment depends on.
OBSERVE = (
    "system_info",
    "analyze_workload",
    "get_profile",
    "list_profiles",
    "diff_profiles",
    "list_policies",
    "search_policies",
    "get_policy",
    "list_workloads",
    "deployment_status",
)
# Adds to the library and measures, in the sandbox: nothing reaches a host's scheduler.
DEVELOP = ("create_policy", "verify_policy", "benchmark", "record_result")
# Changes what schedules a machine.
OPERATE = ("deploy_policy", "rollback")

ALL_TOOLS = OBSERVE + DEVELOP + OPERATE


def allowed(profile: Profile) -> frozenset[str]:
    """The tools a client with `profile` may list and call."""
    if profile == "observe":
        return frozenset(OBSERVE)
    if profile == "develop":
        return frozenset(OBSERVE + DEVELOP)
    return frozenset(ALL_TOOLS)
