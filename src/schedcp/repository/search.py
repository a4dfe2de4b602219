"""The full-text index of the active policies, and the search query that reads it.

Owns `policy_fts` (SQLite FTS5) and `policy_search` (PostgreSQL, a weighted tsvector with a GIN
index): one document per active policy, made of its head version's name, workload classes,
summary + description and README. `versions.py` decides when a document changes (a new head,
new documentation, a removal) and calls `put` or `delete`; nothing else touches these tables.
The two engines differ more here than anywhere else, so both forms of each statement sit side
by side in this module. The rules that turn a query into terms and rank the hits are pure
functions in `ranking.py`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict

from schedcp.errors import RepositoryError
from schedcp.repository import ranking
from schedcp.repository.db import Tx
from schedcp.repository.models import SearchHit, WorkloadQuery

# Weights of the searchable fields: name and workload classes above summary above README.
# SQLite: bm25() column weights; PostgreSQL: tsvector weights A (name, classes), B (summary), D (README).
FTS_WEIGHTS = {"name": 10.0, "classes": 8.0, "summary": 4.0, "readme": 1.0}
PG_RANK_WEIGHTS = "{0.1, 0.2, 0.4, 1.0}"  # D, C, B, A, as ts_rank_cd wants them
_TERM = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_SCORES = ("score", "text_score", "class_score", "penalty")


def put(tx: Tx, policy_id: int, name: str, classes: Sequence[str], summary: str, readme: str) -> None:
    """Index (or re-index) one policy's document."""
    delete(tx, policy_id)
    if tx.dialect.name == "sqlite":
        tx.execute(
            "INSERT INTO policy_fts(rowid, name, classes, summary, readme) VALUES (?, ?, ?, ?, ?)",
            (policy_id, name, " ".join(classes), summary, readme),
        )
    else:
        tx.execute(
            "INSERT INTO policy_search(policy_id, document) VALUES (?, "
            "setweight(to_tsvector('english', ?), 'A') || setweight(to_tsvector('english', ?), 'A') || "
            "setweight(to_tsvector('english', ?), 'B') || setweight(to_tsvector('english', ?), 'D'))",
            (policy_id, name.replace("_", " "), " ".join(classes), summary, readme),
        )


def delete(tx: Tx, policy_id: int) -> None:
    """Drop a policy from the index (removed, or about to be re-indexed)."""
    if tx.dialect.name == "sqlite":
        tx.execute("DELETE FROM policy_fts WHERE rowid = ?", (policy_id,))
    else:
        tx.execute("DELETE FROM policy_search WHERE policy_id = ?", (policy_id,))


def text_rank(tx: Tx, terms: Sequence[str]) -> dict[int, float]:
    """Policy id -> relevance (higher is better) for documents matching any of `terms`.

    Terms are lower-case words or hyphenated phrases (`latency-critical`); anything else is
    dropped here, so no user text ever reaches the query syntax of either engine.
    """
    clean = sorted({t for t in terms if _TERM.match(t)})
    if not clean:
        return {}
    if tx.dialect.name == "sqlite":
        match = " OR ".join('"' + t.replace("-", " ") + '"' for t in clean)
        w = FTS_WEIGHTS
        rows = tx.execute(
            f"SELECT rowid AS policy_id, bm25(policy_fts, {w['name']}, {w['classes']}, {w['summary']}, "
            f"{w['readme']}) AS rank FROM policy_fts WHERE policy_fts MATCH ?",
            (match,),
        )
        return {int(r["policy_id"]): -float(r["rank"]) for r in rows}  # bm25: lower is better
    query = " | ".join("(" + " <-> ".join(t.split("-")) + ")" for t in clean)
    rows = tx.execute(
        f"SELECT policy_id, ts_rank_cd('{PG_RANK_WEIGHTS}', document, q) AS rank "
        "FROM policy_search, to_tsquery('english', ?) AS q WHERE document @@ q",
        (query,),
    )
    return {int(r["policy_id"]): float(r["rank"]) for r in rows}


def plan_query(query: str | WorkloadQuery) -> ranking.QueryPlan:
    """The terms and classes to look for; an empty query is refused before any database work."""
    q = WorkloadQuery(text=query) if isinstance(query, str) else query
    plan = ranking.plan(q.text, q.classes, q.features)
    if not plan.terms and not plan.classes:
        raise RepositoryError("empty query: give some words, a workload class or a feature")
    return plan


def search(tx: Tx, plan: ranking.QueryPlan, candidates: Sequence[ranking.Candidate], limit: int) -> list[SearchHit]:
    """The candidates (the active policies' heads, from `versions.search_candidates`) ranked for `plan`."""
    scored = ranking.rank(plan, list(candidates), text_rank(tx, plan.terms))[: max(limit, 0)]
    return [
        SearchHit.model_validate(
            {**asdict(s.candidate), **asdict(s), "rank": i, **{k: round(getattr(s, k), 4) for k in _SCORES}}
        )
        for i, s in enumerate(scored, 1)
    ]
