"""`schedcp serve`: the MCP server, over stdio (the default) or streamable HTTP.

Over stdio, stdout is the protocol: everything else (logs, the token notice) goes to stderr.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from schedcp.cli.common import DbOpt, VcpuOpt, err, handles_errors
from schedcp.mcp import ServeConfig, build_server
from schedcp.mcp.auth import ensure_token_file
from schedcp.mcp.profiles import PROFILES, Profile
from schedcp.service import Context


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@handles_errors
def serve(
    http: Annotated[
        bool, typer.Option("--http", help="streamable HTTP instead of stdio (needs a bearer token)")
    ] = False,
    host: Annotated[str, typer.Option(help="HTTP: the address to bind (loopback unless you mean it)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="HTTP: the port")] = 8765,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            help="HTTP: bearer tokens, one per line (TOKEN [CLIENT]); created with a fresh token, mode 0600, "
            "if missing. Default: mcp-tokens in the data folder",
        ),
    ] = None,
    profile: Annotated[
        str,
        typer.Option(
            help=f"the tools clients may use: {', '.join(PROFILES)} (observe: looks only; develop: + create, "
            "verify, benchmark, record; operate: + deploy and rollback)"
        ),
    ] = "operate",
    client: Annotated[str, typer.Option(help="stdio: the client's name in the audit log")] = "stdio",
    vm_wait: Annotated[
        float, typer.Option("--vm-wait", min=0, help="seconds a call waits for the sandbox VM before it is refused")
    ] = 600.0,
    vcpus: VcpuOpt = None,
    db: DbOpt = None,
) -> None:
    """Serve schedcp's tools, resources and prompts over the Model Context Protocol."""
    if profile not in PROFILES:
        err.print(f"[bold red]error:[/] --profile is one of {', '.join(PROFILES)}, not {profile!r}")
        raise typer.Exit(2)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    ctx = Context.create(db_url=db, vcpus=vcpus)
    chosen: Profile = profile  # narrowed by the check against PROFILES above
    config = ServeConfig(settings=ctx.settings, profile=chosen, db_url=db, client=client, vm_wait_s=vm_wait)
    if not http:
        build_server(config).run("stdio")
        return
    path = token_file or ctx.settings.data_dir / "mcp-tokens"
    if ensure_token_file(path):
        err.print(f"created {path} (mode 0600) with a new bearer token; clients send 'Authorization: Bearer TOKEN'")
    if not _loopback(host):
        err.print(f"[yellow]warning:[/] binding {host}: anyone who can reach it and holds a token can use the tools")
    config.token_file = path
    config.client = "http"
    config.http_url = f"http://{host}:{port}"
    err.print(f"schedcp MCP server ({profile}) on http://{host}:{port}/mcp; tokens in {path}")
    build_server(config).run("streamable-http", host=host, port=port)
