"""Export and import the repository as one archive file (tar.gz).

Layout:
    manifest.json                          format, versions, every file with its sha256
    policies/<name>/<version id>/<files>   each version's <name>.bpf.c, *.h, policy.toml, README.md
    records/benchmarks.json                [{version, recorded_at, result: <BenchResult>}]
    records/verifications.json             [{version, passed, created_at, report: <JSON>}]

Import checks everything before it writes anything: the archive reads completely (a truncated
gzip or tar fails here), the manifest validates, every listed file is present with its hash
and nothing unlisted is, every version's files validate as a policy folder and hash to the
version's id, parents and heads are known, records parse. Then one transaction writes it all.
Existing versions are kept as they are; a local head moves to the archive's head only when it is
an ancestor of it (a fast-forward), otherwise it is kept and reported.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schedcp import __version__
from schedcp.errors import CorruptArchive, PolicyError, RepositoryError
from schedcp.models.bench import BenchResult
from schedcp.repository.content import META, README, PolicyContent, canonical_json, content_from_texts, sha256_hex
from schedcp.repository.db import SCHEMA_VERSION, Row, Tx, now
from schedcp.repository.models import Author, ExportReport, ImportReport

if TYPE_CHECKING:
    from schedcp.repository.store import PolicyRepository

FORMAT = "schedcp-policy-archive"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
BENCHMARKS = "records/benchmarks.json"
VERIFICATIONS = "records/verifications.json"
MAX_TOTAL_BYTES = 512 * 1024 * 1024
MAX_MEMBERS = 200_000
Role = Literal["source", "header", "policy.toml", "readme"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileEntry(_Strict):
    path: str
    role: Role
    sha256: str


class VersionEntry(_Strict):
    id: str
    parent: str | None
    author: Author
    label: str
    created_at: str
    docs_updated_at: str | None
    origin: str
    files: list[FileEntry]


class EventEntry(_Strict):
    kind: str
    version: str | None
    detail: str
    created_at: str


class PolicyEntry(_Strict):
    name: str
    created_at: str
    updated_at: str
    removed_at: str | None
    head: str
    versions: list[VersionEntry]
    events: list[EventEntry]


class RecordsEntry(_Strict):
    path: str
    sha256: str
    count: int


class Manifest(_Strict):
    format: Literal["schedcp-policy-archive"]
    format_version: int
    created_at: str
    schedcp_version: str
    schema_version: int
    policies: list[PolicyEntry]
    benchmarks: RecordsEntry
    verifications: RecordsEntry


class BenchmarkEntry(_Strict):
    version: str
    recorded_at: str
    result: dict[str, Any]


class VerificationEntry(_Strict):
    version: str
    passed: bool
    created_at: str
    report: Any = Field(default=None)


# -- export ---------------------------------------------------------------------------------


def export_archive(repo: PolicyRepository, path: Path, names: list[str] | None = None) -> ExportReport:
    """Write every policy (or those named), removed ones included, with all versions and records."""
    files: dict[str, bytes] = {}
    policies: list[PolicyEntry] = []
    benchmarks: list[dict[str, Any]] = []
    verifications: list[dict[str, Any]] = []
    with repo.db.transaction(write=False) as tx:  # one snapshot
        prows = tx.execute("SELECT * FROM policies ORDER BY name")
        if names is not None:
            known = {r["name"] for r in prows}
            missing = [n for n in names if n not in known]
            if missing:
                raise RepositoryError(f"cannot export {', '.join(missing)}: no such policy")
            prows = [r for r in prows if r["name"] in names]
        for prow in prows:
            versions: list[VersionEntry] = []
            for v in tx.execute("SELECT * FROM policy_versions WHERE policy_id = ? ORDER BY seq", (prow["id"],)):
                entries: list[FileEntry] = []
                texts: list[tuple[str, Role, str]] = [(v["source_name"], "source", v["source"])]
                texts += [(h, "header", t) for h, t in sorted(json.loads(v["headers"]).items())]
                texts += [(META, "policy.toml", v["policy_toml"]), (README, "readme", v["readme"])]
                for fname, role, text in texts:
                    member = f"policies/{prow['name']}/{v['id']}/{fname}"
                    data = text.encode()
                    files[member] = data
                    entries.append(FileEntry(path=member, role=role, sha256=sha256_hex(data)))
                versions.append(
                    VersionEntry(
                        id=v["id"],
                        parent=v["parent_id"],
                        author=v["author"],
                        label=v["label"],
                        created_at=v["created_at"],
                        docs_updated_at=v["docs_updated_at"],
                        origin=v["origin"],
                        files=entries,
                    )
                )
                for b in tx.execute(
                    "SELECT recorded_at, result_json FROM benchmark_results WHERE version_id = ? ORDER BY id",
                    (v["id"],),
                ):
                    benchmarks.append(
                        {"version": v["id"], "recorded_at": b["recorded_at"], "result": json.loads(b["result_json"])}
                    )
                for r in tx.execute(
                    "SELECT passed, created_at, report_json FROM verification_reports WHERE version_id = ? ORDER BY id",
                    (v["id"],),
                ):
                    verifications.append(
                        {
                            "version": v["id"],
                            "passed": bool(r["passed"]),
                            "created_at": r["created_at"],
                            "report": json.loads(r["report_json"]),
                        }
                    )
            events = [
                EventEntry(kind=e["kind"], version=e["version_id"], detail=e["detail"], created_at=e["created_at"])
                for e in tx.execute(
                    "SELECT kind, version_id, detail, created_at FROM policy_events WHERE policy_id = ? ORDER BY id",
                    (prow["id"],),
                )
            ]
            policies.append(
                PolicyEntry(
                    name=prow["name"],
                    created_at=prow["created_at"],
                    updated_at=prow["updated_at"],
                    removed_at=prow["removed_at"],
                    head=prow["head_version"],
                    versions=versions,
                    events=events,
                )
            )
    files[BENCHMARKS] = json.dumps(benchmarks, indent=1).encode()
    files[VERIFICATIONS] = json.dumps(verifications, indent=1).encode()
    manifest = Manifest(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        created_at=now(),
        schedcp_version=__version__,
        schema_version=SCHEMA_VERSION,
        policies=policies,
        benchmarks=RecordsEntry(path=BENCHMARKS, sha256=sha256_hex(files[BENCHMARKS]), count=len(benchmarks)),
        verifications=RecordsEntry(
            path=VERIFICATIONS, sha256=sha256_hex(files[VERIFICATIONS]), count=len(verifications)
        ),
    )
    data = _tar_gz({MANIFEST: manifest.model_dump_json(indent=1).encode(), **files})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return ExportReport(
        archive=str(path),
        sha256=sha256_hex(data),
        policies=len(policies),
        versions=sum(len(p.versions) for p in policies),
        benchmarks=len(benchmarks),
        verifications=len(verifications),
    )


def _tar_gz(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in [MANIFEST, *sorted(n for n in files if n != MANIFEST)]:
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(files[name]))
    return gzip.compress(raw.getvalue(), mtime=0)


# -- import ---------------------------------------------------------------------------------


def _read_members(path: Path) -> dict[str, bytes]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RepositoryError(f"cannot read archive {path}: {exc}") from exc
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise CorruptArchive(f"{path} is not a complete gzip file ({exc}); it is truncated or not an archive") from exc
    if len(raw) > MAX_TOTAL_BYTES:
        raise CorruptArchive(f"{path} unpacks to {len(raw)} bytes, more than the {MAX_TOTAL_BYTES} allowed")
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for i, info in enumerate(tar):
                if i >= MAX_MEMBERS:
                    raise CorruptArchive(f"{path} holds more than {MAX_MEMBERS} files")
                if info.isdir():
                    continue
                name = info.name
                parts = name.split("/")
                if not info.isfile() or name.startswith("/") or ".." in parts or "" in parts:
                    raise CorruptArchive(f"{path}: member {name!r} is not a plain relative file")
                if name in members:
                    raise CorruptArchive(f"{path}: member {name!r} appears twice")
                f = tar.extractfile(info)
                if f is None:
                    raise CorruptArchive(f"{path}: member {name!r} cannot be read")
                members[name] = f.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise CorruptArchive(f"{path} is not a readable tar archive ({exc})") from exc
    return members


def _json(members: dict[str, bytes], name: str, path: Path) -> Any:
    try:
        return json.loads(members[name].decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptArchive(f"{path}: {name} is not valid JSON ({exc})") from exc


class _Checked:
    """An archive whose every byte has been checked against its manifest."""

    def __init__(
        self,
        manifest: Manifest,
        contents: dict[str, PolicyContent],
        benchmarks: list[BenchmarkEntry],
        verifications: list[VerificationEntry],
    ) -> None:
        self.manifest = manifest
        self.contents = contents  # version id -> content
        self.benchmarks = benchmarks
        self.verifications = verifications
        self.versions = {v.id: (p, v) for p in manifest.policies for v in p.versions}


def check_archive(path: Path) -> _Checked:
    """Everything import verifies before it writes; raises CorruptArchive with the first problem."""
    members = _read_members(path)
    if MANIFEST not in members:
        raise CorruptArchive(f"{path} has no {MANIFEST}; it is not a schedcp policy archive")
    raw_manifest = _json(members, MANIFEST, path)
    version = raw_manifest.get("format_version") if isinstance(raw_manifest, dict) else None
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise CorruptArchive(
            f"{path} has archive format {version}; this schedcp reads up to {FORMAT_VERSION}: upgrade schedcp"
        )
    try:
        manifest = Manifest.model_validate(raw_manifest)
    except ValidationError as exc:
        raise CorruptArchive(f"{path}: invalid {MANIFEST}: {exc}") from exc
    listed = {MANIFEST, manifest.benchmarks.path, manifest.verifications.path}
    for p in manifest.policies:
        for v in p.versions:
            listed.update(f.path for f in v.files)
    for name in sorted(listed - set(members)):
        raise CorruptArchive(f"{path}: {name} is listed in the manifest but missing from the archive")
    for name in sorted(set(members) - listed):
        raise CorruptArchive(f"{path}: {name} is in the archive but not in its manifest")
    for entry in [manifest.benchmarks, manifest.verifications]:
        if sha256_hex(members[entry.path]) != entry.sha256:
            raise CorruptArchive(f"{path}: {entry.path} does not match its sha256 in the manifest")
    names: set[str] = set()
    contents: dict[str, PolicyContent] = {}
    for p in manifest.policies:
        if p.name in names:
            raise CorruptArchive(f"{path}: policy {p.name!r} appears twice in the manifest")
        names.add(p.name)
        ids = {v.id for v in p.versions}
        if p.head not in ids:
            raise CorruptArchive(f"{path}: the head {p.head[:12]} of {p.name} is not one of its versions")
        for v in p.versions:
            if v.id in contents:
                raise CorruptArchive(f"{path}: version {v.id[:12]} appears twice")
            contents[v.id] = _version_content(path, members, p.name, v)
    benchmarks = _records(path, members, manifest.benchmarks, BenchmarkEntry)
    verifications = _records(path, members, manifest.verifications, VerificationEntry)
    for b in benchmarks:
        if b.version not in contents:
            raise CorruptArchive(f"{path}: a benchmark record names version {b.version[:12]}, not in the archive")
        try:
            BenchResult.model_validate(b.result)
        except ValidationError as exc:
            raise CorruptArchive(
                f"{path}: a benchmark record of {b.version[:12]} is not a valid result: {exc}"
            ) from exc
    for r in verifications:
        if r.version not in contents:
            raise CorruptArchive(f"{path}: a verification record names version {r.version[:12]}, not in the archive")
    return _Checked(manifest, contents, benchmarks, verifications)


def _version_content(path: Path, members: dict[str, bytes], name: str, v: VersionEntry) -> PolicyContent:
    texts: dict[str, str] = {}
    headers: dict[str, str] = {}
    source = None
    for f in v.files:
        data = members[f.path]
        if sha256_hex(data) != f.sha256:
            raise CorruptArchive(f"{path}: {f.path} does not match its sha256 in the manifest")
        try:
            text = data.decode()
        except UnicodeDecodeError as exc:
            raise CorruptArchive(f"{path}: {f.path} is not UTF-8 text") from exc
        if f.role == "header":
            headers[f.path.rsplit("/", 1)[-1]] = text
        elif f.role == "source":
            source = text
        else:
            texts[f.role] = text
    if source is None or "policy.toml" not in texts:
        raise CorruptArchive(f"{path}: version {v.id[:12]} of {name} lacks its source or policy.toml")
    try:
        content = content_from_texts(
            name, source, texts["policy.toml"], texts.get("readme", ""), headers, origin=v.origin
        )
    except PolicyError as exc:
        raise CorruptArchive(f"{path}: version {v.id[:12]} of {name} is not a valid policy: {exc}") from exc
    if content.id != v.id:
        raise CorruptArchive(
            f"{path}: version {v.id[:12]} of {name} hashes to {content.id[:12]}; its files were changed"
        )
    return content


def _records(path: Path, members: dict[str, bytes], entry: RecordsEntry, model: type[Any]) -> list[Any]:
    data = _json(members, entry.path, path)
    if not isinstance(data, list) or len(data) != entry.count:
        raise CorruptArchive(f"{path}: {entry.path} should hold a list of {entry.count} records")
    try:
        return [model.model_validate(item) for item in data]
    except ValidationError as exc:
        raise CorruptArchive(f"{path}: invalid record in {entry.path}: {exc}") from exc


def import_archive(repo: PolicyRepository, path: Path) -> ImportReport:
    checked = check_archive(path)
    report = ImportReport(archive=str(path))
    with repo.db.transaction() as tx:
        pids: dict[str, tuple[int, Row | None]] = {}
        for p in sorted(checked.manifest.policies, key=lambda p: p.name):  # lock rows in name order
            prow = repo._policy_row(tx, p.name, lock=True)
            created = None
            if prow is None:
                created = tx.scalar(
                    "INSERT INTO policies(name, created_at, updated_at, removed_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (name) DO NOTHING RETURNING id",
                    (p.name, p.created_at, p.updated_at, p.removed_at),
                )
                if created is None:  # created by a concurrent writer a moment ago
                    prow = repo._policy_row(tx, p.name, lock=True)
            if prow is None:
                assert created is not None
                pid = int(created)
                report.policies_added.append(p.name)
            else:
                pid = int(prow["id"])
            pids[p.name] = (pid, prow)
        _insert_versions(repo, tx, checked, pids, report)
        for p in checked.manifest.policies:
            pid, prow = pids[p.name]
            _adopt_head(repo, tx, checked, p, pid, prow, report)
        for b in checked.benchmarks:
            vrow = repo._version_row(tx, b.version)
            assert vrow is not None
            _, added = repo._insert_benchmark(tx, vrow, BenchResult.model_validate(b.result), b.recorded_at)
            report.benchmarks_added += added
        for r in checked.verifications:
            text = canonical_json(r.report).decode()
            _, added = repo._insert_verification(tx, r.version, r.passed, sha256_hex(text.encode()), text, r.created_at)
            report.verifications_added += added
    return report


def _insert_versions(
    repo: PolicyRepository, tx: Tx, checked: _Checked, pids: dict[str, tuple[int, Row | None]], report: ImportReport
) -> None:
    """Every version not stored yet, parents before children (a parent may be in another policy)."""
    pending = [(p, v) for p in checked.manifest.policies for v in p.versions]
    while pending:
        waiting = []
        for p, v in pending:
            pid = pids[p.name][0]
            existing = repo._version_row(tx, v.id)
            if existing is not None:
                if int(existing["policy_id"]) != pid:
                    raise CorruptArchive(f"version {v.id[:12]} belongs to another policy in this repository")
                report.versions_present += 1
                continue
            if v.parent is not None and repo._version_row(tx, v.parent) is None:
                if v.parent not in checked.versions:
                    raise CorruptArchive(
                        f"parent {v.parent[:12]} of {p.name}@{v.id[:12]} is neither in the archive nor in this "
                        "repository"
                    )
                waiting.append((p, v))
                continue
            repo._insert_version_row(
                tx, pid, checked.contents[v.id], v.author, v.parent, v.created_at, v.origin, v.docs_updated_at
            )
            report.versions_added += 1
        if len(waiting) == len(pending):
            raise CorruptArchive(f"the parents of {len(waiting)} versions form a cycle")
        pending = waiting


def _adopt_head(
    repo: PolicyRepository,
    tx: Tx,
    checked: _Checked,
    p: PolicyEntry,
    pid: int,
    prow: Row | None,
    report: ImportReport,
) -> None:
    if prow is None:
        repo._set_head(tx, pid, p.head)
        tx.execute("UPDATE policies SET updated_at = ? WHERE id = ?", (p.updated_at, pid))
        for e in p.events:
            repo._event(tx, pid, e.version, e.kind, e.detail, at=e.created_at)
        repo._event(tx, pid, p.head, "imported", f"from {report.archive}")
    else:
        local_head = prow["head_version"]
        if local_head == p.head:
            repo._event(tx, pid, p.head, "imported", f"from {report.archive}; same head")
        elif _is_ancestor(tx, local_head, p.head, checked):
            repo._set_head(tx, pid, p.head)
            report.heads_moved.append(p.name)
            repo._event(tx, pid, p.head, "imported", f"from {report.archive}; head fast-forwarded")
        else:
            report.heads_kept.append(p.name)
            repo._event(
                tx, pid, local_head, "imported", f"from {report.archive}; its head {p.head[:12]} was not adopted"
            )
    repo._reindex(tx, pid)


def _is_ancestor(tx: Tx, ancestor: str | None, version: str, checked: _Checked) -> bool:
    seen: set[str] = set()
    current: str | None = version
    while current is not None and current not in seen:
        if current == ancestor:
            return True
        seen.add(current)
        if current in checked.versions:
            current = checked.versions[current][1].parent
        else:
            row: Row | None = tx.one("SELECT parent_id FROM policy_versions WHERE id = ?", (current,))
            current = row["parent_id"] if row else None
    return False
