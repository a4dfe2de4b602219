"""Bearer tokens for the HTTP transport.

Anyone who can reach the port could otherwise deploy a scheduler, so HTTP always needs a token.
The token file holds one token per line, optionally followed by the client's name for the audit
log (`TOKEN [CLIENT]`); lines starting with # are comments. A missing file is created on first
start with one random token, readable by its owner only (0600), the way ssh keeps its keys.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from mcp.server.auth.provider import AccessToken

from schedcp.service import SchedcpError


@dataclass(frozen=True)
class Token:
    token: str
    client: str


def read_tokens(path: Path) -> list[Token]:
    """The tokens in `path`; refuses a file others can read, as ssh refuses such a key."""
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except OSError as exc:
        raise SchedcpError(f"cannot read the token file {path}: {exc.strerror or exc}") from exc
    if mode & 0o077:
        raise SchedcpError(
            f"the token file {path} can be read by other users (mode {mode & 0o777:o}); `chmod 600 {path}`"
        )
    tokens = []
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts[0]) < 16:
            raise SchedcpError(f"{path}:{n}: a token needs at least 16 characters")
        tokens.append(Token(parts[0], parts[1] if len(parts) > 1 else f"token-{n}"))
    if not tokens:
        raise SchedcpError(f"the token file {path} holds no token (one per line: TOKEN [CLIENT])")
    return tokens


def ensure_token_file(path: Path) -> bool:
    """Create `path` with a fresh token when it does not exist; True if it was created."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# schedcp serve --http: one bearer token per line, then the client's name for the audit log\n")
        f.write(f"{secrets.token_urlsafe(32)} default\n")
    return True


class FileTokenVerifier:
    """The SDK's TokenVerifier over our token file (re-read on each request: a revoked token stops
    working without a restart)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        read_tokens(path)  # a bad file fails at start, not at the first request

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            tokens = read_tokens(self.path)
        except SchedcpError:
            return None
        for known in tokens:
            if hmac.compare_digest(known.token.encode(), token.encode()):
                return AccessToken(token=token, client_id=known.client, scopes=[])
        return None
