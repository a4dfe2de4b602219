"""`schedcp serve` as a real process: over stdio with the SDK's stdio client, and over streamable
HTTP on loopback, where a call without the bearer token or with a wrong one is refused (401)."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from schedcp.mcp.profiles import OBSERVE
from schedcp.service import Context
from schedcp.service.audit import audit_log

SCHEDCP = Path(sys.executable).parent / "schedcp"


def test_stdio_serves_the_profiles_tools_and_logs_to_stderr_only() -> None:
    params = StdioServerParameters(
        command=str(SCHEDCP), args=["serve", "--profile", "observe", "--client", "stdio-test"], env=dict(os.environ)
    )

    async def main() -> tuple[set[str], Any]:
        async with Client(params) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            return names, await client.call_tool("list_policies", {})

    names, listed = anyio.run(main)
    assert names == set(OBSERVE)
    assert not listed.is_error
    assert "fifo" in {p["name"] for p in listed.structured_content["policies"]}
    entry = audit_log(Context(), tool="list_policies").entries[0]
    assert (entry.client, entry.outcome) == ("stdio-test", "ok")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def http_server(token_file: Path) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [str(SCHEDCP), "serve", "--http", "--port", str(port), "--token-file", str(token_file)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"schedcp serve --http did not listen on {port}: {out[-3000:]}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _initialize(url: str, headers: dict[str, str]) -> int:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    return httpx2.post(url, json=body, headers={**accept, **headers}, timeout=30).status_code


def test_http_needs_the_bearer_token(tmp_path: Path) -> None:
    token_file = tmp_path / "tokens"
    with http_server(token_file) as url:
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600, "the generated token file must be private"
        token = next(line.split()[0] for line in token_file.read_text().splitlines() if not line.startswith("#"))
        assert _initialize(url, {}) == 401
        assert _initialize(url, {"Authorization": "Bearer wrong-token-of-some-length"}) == 401
        assert _initialize(url, {"Authorization": f"Bearer {token}"}) == 200

        async def main() -> Any:
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
            async with http, Client(streamable_http_client(url, http_client=http)) as client:
                names = {t.name for t in (await client.list_tools()).tools}
                return names, await client.call_tool("deployment_status", {})

        names, status = anyio.run(main)
    assert "deploy_policy" in names
    assert not status.is_error
    entry = audit_log(Context(), tool="deployment_status").entries[0]
    assert entry.client == "default", "the audit names the token's client"


def test_http_refuses_a_token_file_others_can_read(tmp_path: Path) -> None:
    token_file = tmp_path / "tokens"
    token_file.write_text("a-token-that-is-long-enough client\n")
    token_file.chmod(0o644)
    proc = subprocess.run(
        [str(SCHEDCP), "serve", "--http", "--port", str(_free_port()), "--token-file", str(token_file)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert proc.returncode != 0
    assert "chmod 600" in proc.stderr
