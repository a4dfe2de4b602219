"""The audit log's record: one MCP tool call, who made it, what it asked and how it ended.

The MCP server writes one per call and the repository keeps them, so an operator can answer
"what did the agent do on this host, and what was refused?" after the fact (`schedcp audit`).
It lives here, at the bottom of the layers, because the MCP layer builds it, the repository
stores it and the CLI shows it, and none of them may import another for it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

AuditOutcome = Literal["ok", "error", "refused", "cancelled"]


class AuditEntry(BaseModel):
    """One tool call as the MCP server saw it; kept whatever its outcome."""

    id: int | None = Field(None, description="the repository's id, once stored; ids grow with time")
    created_at: str = Field("", description="when it was recorded (ISO 8601 UTC), set by the repository when empty")
    client: str = Field(
        description="the MCP client's name as it introduced itself, so calls of several agents can be told apart"
    )
    tool: str = Field(description="the tool called, to find every deploy (or any other tool) quickly")
    arguments: dict[str, Any] = Field(
        description="the call's arguments as given, except that policy source code is replaced by its "
        "sha256: the log says what was asked without keeping code the repository keeps anyway"
    )
    outcome: AuditOutcome = Field(
        description="ok; error (the tool failed); refused (a gate said no, e.g. no passing verification); "
        "cancelled (the client gave up): refusals are what an operator looks for first"
    )
    error: str | None = Field(None, description="the message the client was given when the call did not succeed")
    duration_s: float = Field(ge=0, description="wall time of the call, to spot calls that hung or timed out")
