"""The repository's module boundaries, checked by a test instead of by review.

Each table is read and written by one module only (docs/repository.md, "Module map"); no module
calls another's private names; archive.py runs no SQL; the package imports none of the layers
above it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import schedcp.repository
from schedcp.repository.db import MIGRATIONS, POSTGRESQL, SQLITE

PACKAGE = Path(schedcp.repository.__file__).parent
OWNERS = {
    "schema_migrations": "db",
    "policies": "versions",
    "policy_versions": "versions",
    "policy_events": "versions",
    "repository_meta": "versions",
    "policy_fts": "search",
    "policy_search": "search",
    "benchmark_results": "results",
    "verification_reports": "results",
    "profiles": "profiles",
    "deployment_events": "deployments",
    "audit_log": "audit",
}
# a table named in a statement that reads or writes rows (DDL names tables too, only in db.py's migrations)
_DML = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN)\s+([a-z_]+)\b")
_ABOVE = ("schedcp.bench", "schedcp.analysis", "schedcp.runtime", "schedcp.cli", "schedcp.mcp", "schedcp.agent")


def _modules() -> dict[str, str]:
    return {p.stem: p.read_text() for p in sorted(PACKAGE.glob("*.py"))}


def test_every_table_has_one_owner_module() -> None:
    created = set()
    for m in MIGRATIONS:
        for dialect in (SQLITE, POSTGRESQL):
            for stmt in m.statements(dialect):
                # A migration that rebuilds a table creates it under a versioned name first.
                created.update(re.sub(r"_v\d+$", "", t) for t in re.findall(r"CREATE (?:VIRTUAL )?TABLE (\w+)", stmt))
    assert created | {"schema_migrations"} == set(OWNERS)


def test_sql_on_a_table_appears_only_in_its_owner_module() -> None:
    strays = []
    for module, text in _modules().items():
        if module == "db":
            # The migrations may copy rows while they rebuild a table: schema work, not DML.
            text = text[: text.index("MIGRATIONS: tuple[Migration, ...] = (")] + text[text.index("SCHEMA_VERSION = ") :]
        for table in set(_DML.findall(text)):
            assert table in OWNERS, f"{module}.py names an unknown table {table!r}"
            if OWNERS[table] != module:
                strays.append(f"{module}.py runs SQL on {table} (owned by {OWNERS[table]}.py)")
    assert not strays


def test_archive_only_serializes() -> None:
    """No SQL, no transaction, no repository object: only records in, bytes out (and back)."""
    text = _modules()["archive"]
    assert not _DML.search(text)
    used = {
        (node.module, a.name)
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("schedcp.repository")
        for a in node.names
    }
    assert {m for m, _ in used} <= {"schedcp.repository.content", "schedcp.repository.models", "schedcp.repository.db"}
    assert {n for m, n in used if m == "schedcp.repository.db"} <= {"SCHEMA_VERSION", "now"}
    assert ".execute(" not in text
    assert ".transaction(" not in text


# Tx and Database are two halves of one connection, in one module.
_FRIENDS = {("db", "self.db._execute")}


def test_no_module_uses_private_names_of_another() -> None:
    """No `from x import _name`, and no `obj._name` but on self (what archive.py did with `repo._policy_row`)."""
    problems = []
    for module, text in _modules().items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("schedcp"):
                problems += [
                    f"{module}.py imports {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                    continue
                if (module, ast.unparse(node)) not in _FRIENDS:
                    problems.append(f"{module}.py:{node.lineno} uses {ast.unparse(node)}")
    assert not problems


def test_the_repository_imports_no_layer_above_it() -> None:
    problems = []
    for module, text in _modules().items():
        for node in ast.walk(ast.parse(text)):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            problems += [f"{module}.py imports {t}" for t in targets if t.startswith(_ABOVE)]
    assert not problems
