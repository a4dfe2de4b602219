"""The policy repository: versions by content hash, history, search, results, import/export, workload profiles.

SQLite by default (WAL, one file under the data folder), PostgreSQL for a fleet (`--db`).
See docs/repository.md (its module map says which module owns which table).
"""

from schedcp.repository.models import (
    AddResult,
    BenchmarkRecord,
    BestEntry,
    PolicyHistory,
    PolicyRecord,
    PolicyVersion,
    ProfileRecord,
    RepositorySnapshot,
    SearchHit,
    VerificationRecord,
    WorkloadQuery,
)
from schedcp.repository.store import PolicyRepository, open_repository, parse_ref

__all__ = [
    "AddResult",
    "BenchmarkRecord",
    "BestEntry",
    "PolicyHistory",
    "PolicyRecord",
    "PolicyRepository",
    "PolicyVersion",
    "ProfileRecord",
    "RepositorySnapshot",
    "SearchHit",
    "VerificationRecord",
    "WorkloadQuery",
    "open_repository",
    "parse_ref",
]
