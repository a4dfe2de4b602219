"""What was measured and checked about versions: the tables `benchmark_results` and `verification_reports`.

A benchmark result is stored against the exact version that ran, reduced to its primary metric
(ratio, gain and their intervals, verdict) for ranking, with the whole BenchResult kept beside
it; a verification report is stored as canonical JSON, once per (version, report hash). Both are
idempotent, so recording the same result twice (or importing an archive twice) stores it once.
Which policy a version belongs to, its label and whether the policy is removed are asked of
`versions.py` (`find`, `describe`, `version_ids`), never read from its tables here.

`best_for` ranks (version, tunables, workload) by the newest measurement against the default
scheduler: see its docstring and docs/repository.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from schedcp.errors import PolicyError, RepositoryError
from schedcp.models.bench import BenchResult
from schedcp.repository import ranking, versions
from schedcp.repository.content import canonical_json, sha256_hex
from schedcp.repository.db import Row, Tx, chunks, marks, now
from schedcp.repository.models import (
    BenchmarkRecord,
    BenchmarkSnapshot,
    BestEntry,
    PolicyVersion,
    VerificationRecord,
    VerificationSnapshot,
    VersionInfo,
    VersionStats,
)

Tier = Literal["better", "not significant", "worse"]
TIERS: dict[Tier, int] = {"better": 0, "not significant": 1, "worse": 2}


def _tier(verdict: str) -> Tier:
    """A significant improvement, a significant regression, or neither (including no interval)."""
    if verdict == "better":
        return "better"
    if verdict == "worse":
        return "worse"
    return "not significant"


def _inverse(x: float | None) -> float | None:
    if x is None:
        return None
    return 1 / x if x > 0 else float("inf")


def result_to_json(result: BenchResult) -> str:
    # json (not pydantic's JSON mode) keeps an infinite gain as Infinity instead of null.
    return json.dumps(result.model_dump(mode="python"), default=str)


def report_data(report: str | Mapping[str, Any] | BaseModel) -> Any:
    """A verification report as JSON data, from JSON text, a mapping or a model."""
    if isinstance(report, BaseModel):
        return report.model_dump(mode="json")
    if isinstance(report, str):
        try:
            return json.loads(report)
        except json.JSONDecodeError as exc:
            raise RepositoryError(f"a verification report must be JSON: {exc}") from exc
    return dict(report)


# -- benchmark results ------------------------------------------------------------------------


def record_benchmark(tx: Tx, version: str, workload: str | None, result: BenchResult) -> BenchmarkRecord:
    """Store one benchmark result of a version (id or prefix; its candidate side); idempotent per result id."""
    if workload is not None and workload != result.workload.name:
        raise RepositoryError(
            f"workload {workload!r} does not match the result, which measured {result.workload.name!r}"
        )
    rid, _ = insert_benchmark(tx, versions.find(tx, version), result, now())
    return _benchmarks(tx, "id = ?", (rid,))[0]


def insert_benchmark(tx: Tx, version: PolicyVersion, result: BenchResult, recorded_at: str) -> tuple[int, bool]:
    """(record id, whether it is new): the same result of the same version is stored once."""
    name = version.policy
    cand = result.candidate
    if cand is None:
        raise RepositoryError(
            f"benchmark {result.id} measured only the baseline; there is no result for policy {name} to record"
        )
    if cand.name != name:
        raise RepositoryError(
            f"benchmark {result.id} measured {cand.name!r} as the candidate, not policy {name!r} "
            f"(version {version.short})"
        )
    for key, value in cand.tunables.items():
        if key not in version.spec.tunables:
            raise PolicyError(f"benchmark {result.id}: policy {name} has no tunable {key!r}")
        version.spec.tunables[key].check(key, value)
    primary = result.workload.primary
    try:
        metric = result.metric(primary)
    except KeyError:
        raise RepositoryError(f"benchmark {result.id} has no value for its primary metric {primary!r}") from None
    c = metric.comparison
    if c is None:
        raise RepositoryError(f"benchmark {result.id}: metric {primary} has no comparison with the baseline")
    if metric.better == "lower":
        gain_low, gain_high = _inverse(c.ci_high), _inverse(c.ci_low)
    else:
        gain_low, gain_high = c.ci_low, c.ci_high
    tunables = {k: cand.tunables[k] for k in sorted(cand.tunables)}
    rid = tx.scalar(
        "INSERT INTO benchmark_results(version_id, result_id, workload, workload_class, size, baseline, "
        "tunables, metric, unit, better, ratio, ci_low, ci_high, gain, gain_low, gain_high, significant, "
        "verdict, repeat, emulated, measured_at, recorded_at, result_json) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (version_id, result_id) DO NOTHING RETURNING id",
        (
            version.id,
            result.id,
            result.workload.name,
            result.workload.workload_class,
            result.size,
            result.baseline.name,
            json.dumps(tunables),
            metric.name,
            metric.unit,
            metric.better,
            c.ratio,
            c.ci_low,
            c.ci_high,
            c.gain,
            gain_low,
            gain_high,
            c.significant,
            c.verdict,
            result.repeat,
            result.emulated,
            result.created,
            recorded_at,
            result_to_json(result),
        ),
    )
    if rid is not None:
        return int(rid), True
    rid = tx.scalar("SELECT id FROM benchmark_results WHERE version_id = ? AND result_id = ?", (version.id, result.id))
    return int(rid), False


def benchmarks(tx: Tx, version: str | None = None, policy: str | None = None) -> list[BenchmarkRecord]:
    """Stored results, newest first: of one version (id or prefix), of every version of a policy, or all."""
    if version is not None:
        return _benchmarks(tx, "version_id = ?", (versions.find(tx, version).id,))
    if policy is not None:
        ids = versions.version_ids(tx, policy)
        found = [r for part in chunks(ids) for r in _benchmarks(tx, f"version_id IN ({marks(len(part))})", part)]
        return sorted(found, key=lambda r: (r.measured_at, r.id), reverse=True)  # the order of _benchmarks
    return _benchmarks(tx, "1 = 1", ())


def _benchmarks(tx: Tx, where: str, params: Sequence[Any]) -> list[BenchmarkRecord]:
    rows = tx.execute(f"SELECT * FROM benchmark_results WHERE {where} ORDER BY measured_at DESC, id DESC", params)
    owners = versions.describe(tx, (r["version_id"] for r in rows))
    return [
        BenchmarkRecord.model_validate(
            {
                **r,
                "policy": owners[r["version_id"]].policy,
                "version": r["version_id"],
                "tunables": json.loads(r["tunables"]),
            }
        )
        for r in rows
    ]


def benchmark_result(tx: Tx, record_id: int) -> BenchResult:
    """The full BenchResult behind a stored record."""
    text = tx.scalar("SELECT result_json FROM benchmark_results WHERE id = ?", (record_id,))
    if text is None:
        raise RepositoryError(f"no benchmark record {record_id}")
    return BenchResult.model_validate(json.loads(text))


# -- verification reports ---------------------------------------------------------------------


def record_verification(tx: Tx, version: str, report: Any, passed: bool) -> VerificationRecord:
    """Store a verification report (JSON data) for a version (id or prefix); idempotent for the same report."""
    rid, _ = insert_verification(tx, versions.find(tx, version).id, report, passed, now())
    return _verifications(tx, "id = ?", (rid,))[0]


def insert_verification(tx: Tx, version_id: str, report: Any, passed: bool, created_at: str) -> tuple[int, bool]:
    """(record id, whether it is new): the same report of the same version is stored once."""
    text = canonical_json(report).decode()
    digest = sha256_hex(text.encode())
    rid = tx.scalar(
        "INSERT INTO verification_reports(version_id, passed, report_sha256, report_json, created_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (version_id, report_sha256) DO NOTHING RETURNING id",
        (version_id, bool(passed), digest, text, created_at),
    )
    if rid is not None:
        return int(rid), True
    rid = tx.scalar(
        "SELECT id FROM verification_reports WHERE version_id = ? AND report_sha256 = ?", (version_id, digest)
    )
    return int(rid), False


def verifications(tx: Tx, version: str) -> list[VerificationRecord]:
    """The reports of one version (id or prefix), newest first."""
    return _verifications(tx, "version_id = ?", (versions.find(tx, version).id,))


def verification(tx: Tx, record_id: int) -> VerificationRecord:
    """One stored report by its id (what `get_policy` lists and `report://ID` names)."""
    found = _verifications(tx, "id = ?", (record_id,))
    if not found:
        raise RepositoryError(f"no verification report with id {record_id}")
    return found[0]


def _verifications(tx: Tx, where: str, params: Sequence[Any]) -> list[VerificationRecord]:
    rows = tx.execute(f"SELECT * FROM verification_reports WHERE {where} ORDER BY id DESC", params)
    owners = versions.describe(tx, (r["version_id"] for r in rows))
    return [
        VerificationRecord.model_validate(
            {
                **r,
                "policy": owners[r["version_id"]].policy,
                "version": r["version_id"],
                "report": json.loads(r["report_json"]),
            }
        )
        for r in rows
    ]


def version_stats(tx: Tx, ids: Sequence[str]) -> dict[str, VersionStats]:
    """Per version: how many benchmark results and verification reports, and whether the newest report passed."""
    stats: dict[str, VersionStats] = {}
    for part in chunks(ids):
        where = f"version_id IN ({marks(len(part))})"
        for r in tx.execute(
            f"SELECT version_id, COUNT(*) AS n FROM benchmark_results WHERE {where} GROUP BY version_id", part
        ):
            stats.setdefault(r["version_id"], VersionStats()).benchmarks = int(r["n"])
        for r in tx.execute(f"SELECT version_id, passed FROM verification_reports WHERE {where} ORDER BY id", part):
            s = stats.setdefault(r["version_id"], VersionStats())
            s.verifications += 1
            s.verified = bool(r["passed"])  # in id order: the newest wins
    return stats


# -- the best known policy --------------------------------------------------------------------


def best_for(
    tx: Tx,
    workload_class: str | None = None,
    workload: str | None = None,
    include_removed: bool = False,
    limit: int | None = None,
) -> list[BestEntry]:
    """The best known (version, tunables) for a workload class and/or a workload, from measurements.

    Only results against the default scheduler count, on the workload's primary metric.
    Per (version, tunables, workload) the newest result stands (older ones are counted in
    `results`). Ranking: first the significant improvements ("better": the 95% interval of
    the gain lies above 1), then the not significant, then the significant regressions;
    within each tier by the lower end of the gain's interval (the improvement we are 97.5%
    sure of; no interval ranks last), then by the gain itself. So a significant 1.2x with
    interval [1.1, 1.3] ranks above a not significant 1.8x with interval [0.7, 2.9].
    A class matches exactly or by family (`latency-critical` covers `latency-critical-server`).
    """
    where, params = "baseline = 'default'", []
    if workload is not None:
        where += " AND workload = ?"
        params.append(workload)
    rows = tx.execute(f"SELECT * FROM benchmark_results WHERE {where} ORDER BY measured_at DESC, id DESC", params)
    owners = versions.describe(tx, (r["version_id"] for r in rows))
    groups: dict[tuple[str, str, str], list[Row]] = {}
    for r in rows:
        if not include_removed and owners[r["version_id"]].removed:
            continue
        if workload_class is not None and ranking.class_match(workload_class, r["workload_class"]) == 0:
            continue
        groups.setdefault((r["version_id"], r["tunables"], r["workload"]), []).append(r)
    entries: list[tuple[tuple[Any, ...], Row, VersionInfo, int]] = []
    for group in groups.values():
        newest = group[0]
        owner = owners[newest["version_id"]]
        low = newest["gain_low"]
        key = (
            TIERS[_tier(newest["verdict"])],
            -(low if low is not None else float("-inf")),
            -newest["gain"],
            owner.policy,
        )
        entries.append((key, newest, owner, len(group)))
    entries.sort(key=lambda e: e[0])
    return [
        BestEntry.model_validate(
            {
                **r,
                "rank": i,
                "tier": _tier(r["verdict"]),
                "policy": owner.policy,
                "version": r["version_id"],
                "label": owner.label,
                "removed": owner.removed,
                "tunables": json.loads(r["tunables"]),
                "results": n,
            }
        )
        for i, (_key, r, owner, n) in enumerate(entries[:limit] if limit else entries, 1)
    ]


# -- snapshot and restore ---------------------------------------------------------------------


def snapshot(tx: Tx, version_ids: Iterable[str]) -> tuple[list[BenchmarkSnapshot], list[VerificationSnapshot]]:
    """Every record of these versions, in the versions' order, then by record."""
    bench: list[BenchmarkSnapshot] = []
    verif: list[VerificationSnapshot] = []
    for vid in version_ids:
        for b in tx.execute(
            "SELECT id, recorded_at, result_json FROM benchmark_results WHERE version_id = ? ORDER BY id", (vid,)
        ):
            try:
                result = BenchResult.model_validate(json.loads(b["result_json"]))
            except ValidationError as exc:
                raise RepositoryError(
                    f"stored benchmark record {b['id']} of version {vid[:12]} does not match this schedcp's "
                    f"BenchResult ({exc.error_count()} errors); it was written by another version and cannot be "
                    "exported by this one"
                ) from exc
            bench.append(BenchmarkSnapshot(version=vid, recorded_at=b["recorded_at"], result=result))
        for r in tx.execute(
            "SELECT passed, created_at, report_json FROM verification_reports WHERE version_id = ? ORDER BY id",
            (vid,),
        ):
            verif.append(
                VerificationSnapshot.model_validate({**r, "version": vid, "report": json.loads(r["report_json"])})
            )
    return bench, verif


def restore(
    tx: Tx, benchmarks: Sequence[BenchmarkSnapshot], verifications: Sequence[VerificationSnapshot]
) -> tuple[int, int]:
    """Store the records of a snapshot (their versions must be stored); (benchmarks, verifications) added."""
    bench_added = verif_added = 0
    found: dict[str, PolicyVersion] = {}
    for b in benchmarks:
        if b.version not in found:
            found[b.version] = versions.find(tx, b.version)
        _, added = insert_benchmark(tx, found[b.version], b.result, b.recorded_at)
        bench_added += added
    for r in verifications:
        vid = found[r.version].id if r.version in found else versions.find(tx, r.version).id
        _, added = insert_verification(tx, vid, r.report, r.passed, r.created_at)
        verif_added += added
    return bench_added, verif_added
