"""The `lint` fixture: lint the minimal policy of minipolicy.py with one part changed.

`lint(enqueue="...")` writes the policy folder `mini` into the test's tmp_path with that part
replaced, lints it with `values` as the tunables being verified (default: policy.toml's
defaults), and returns the findings.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from schedcp.config import Settings
from schedcp.models.verification import Finding
from schedcp.models.vocabulary import TunableValue
from schedcp.sandbox.kernel import Kernel, find_kernel
from schedcp.verify.lint import lint_policy

from .minipolicy import Lint, write_policy


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return Settings().cache_dir


@pytest.fixture(scope="session")
def kernel() -> Kernel:
    return find_kernel(Settings().kernels_dir)


@pytest.fixture
def lint(tmp_path: Path, kernel: Kernel, cache_dir: Path) -> Lint:
    def _lint(values: Mapping[str, TunableValue] | None = None, **parts: str) -> list[Finding]:
        policy = write_policy(tmp_path, **parts)
        return lint_policy(policy, policy.resolve_tunables() if values is None else values, kernel, cache_dir)

    return _lint
