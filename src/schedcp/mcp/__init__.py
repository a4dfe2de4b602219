"""The MCP server: schedcp's service layer as Model Context Protocol tools, resources and prompts.

No scheduling logic lives here: each tool validates its input, checks the caller's profile,
runs one service function (in a worker thread, with progress and cancellation), writes an audit
record, and returns the service's pydantic result. See docs/mcp.md.
"""

from schedcp.mcp.server import ServeConfig, build_server

__all__ = ["ServeConfig", "build_server"]
