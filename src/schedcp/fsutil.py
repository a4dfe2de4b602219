"""File writes that never leave half a file, even with several schedcp processes at once."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> Path:
    """Write to a unique temporary file beside `path`, then rename over it.

    Readers see the old file or the new one, never a partial one; two writers racing on the
    same cache entry each rename a complete file (last one wins, both are identical).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)  # mkstemp makes 0600; cached files and staged programs must be usable
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
