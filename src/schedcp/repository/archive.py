"""Export and import the repository as one archive file (tar.gz): serialization only.

Layout:
    manifest.json                          format, versions, every file with its sha256
    policies/<name>/<version id>/<files>   each version's <name>.bpf.c, *.h, policy.toml, README.md
    records/benchmarks.json                [{version, recorded_at, result: <BenchResult>}]
    records/verifications.json             [{version, passed, created_at, report: <JSON>}]

This module turns a `RepositorySnapshot` (what `PolicyRepository.snapshot` reads) into those
bytes and back; it never touches the database. `PolicyRepository.export` and `import_` join
the two halves, and `PolicyRepository.restore` writes what `check_archive` returns in one
transaction (its rules: existing versions kept, a local head fast-forwarded only when it is an
ancestor of the archive's head, parents before children, all or nothing).

`check_archive` checks everything in the file before anything is written, so a damaged archive
is reported with its path and the first problem: the archive reads completely (a truncated
gzip or tar fails here), the manifest validates, every listed file is present with its hash and
nothing unlisted is, every version's files validate as a policy folder and hash to the
version's id, heads are among their policy's versions, records parse and name versions in the
archive. (Whether each parent is known can only be decided against the database: `restore`.)
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
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schedcp import __version__
from schedcp.errors import CorruptArchive, PolicyError, RepositoryError
from schedcp.models.bench import BenchResult
from schedcp.repository.content import META, README, content_from_texts, sha256_hex
from schedcp.repository.db import SCHEMA_VERSION, now
from schedcp.repository.models import (
    Author,
    BenchmarkSnapshot,
    ExportReport,
    PolicyEvent,
    PolicySnapshot,
    RepositorySnapshot,
    VerificationSnapshot,
    VersionSnapshot,
)

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


_Entry = TypeVar("_Entry", BenchmarkEntry, VerificationEntry)


# -- export ---------------------------------------------------------------------------------


def write_archive(snapshot: RepositorySnapshot, path: Path) -> ExportReport:
    """Write the snapshot as an archive at `path`, atomically (a temporary file, then a rename)."""
    files: dict[str, bytes] = {}
    policies: list[PolicyEntry] = []
    for p in snapshot.policies:
        versions: list[VersionEntry] = []
        for v in p.versions:
            entries: list[FileEntry] = []
            texts: list[tuple[str, Role, str]] = [(v.source_name, "source", v.source)]
            texts += [(h, "header", t) for h, t in sorted(v.headers.items())]
            texts += [(META, "policy.toml", v.policy_toml), (README, "readme", v.readme)]
            for fname, role, text in texts:
                member = f"policies/{p.name}/{v.id}/{fname}"
                data = text.encode()
                files[member] = data
                entries.append(FileEntry(path=member, role=role, sha256=sha256_hex(data)))
            versions.append(
                VersionEntry.model_validate({**v.model_dump(include=set(VersionEntry.model_fields)), "files": entries})
            )
        events = [EventEntry.model_validate(e.model_dump()) for e in p.events]
        policies.append(
            PolicyEntry.model_validate(
                {**p.model_dump(exclude={"versions", "events"}), "versions": versions, "events": events}
            )
        )
    benchmarks = [
        BenchmarkEntry(version=b.version, recorded_at=b.recorded_at, result=b.result.model_dump(mode="python"))
        for b in snapshot.benchmarks
    ]
    verifications = [VerificationEntry.model_validate(r.model_dump()) for r in snapshot.verifications]
    # json (not pydantic's JSON mode) keeps an infinite gain as Infinity, as the repository stores it.
    files[BENCHMARKS] = json.dumps([b.model_dump() for b in benchmarks], indent=1, default=str).encode()
    files[VERIFICATIONS] = json.dumps([r.model_dump() for r in verifications], indent=1).encode()
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


def check_archive(path: Path) -> RepositorySnapshot:
    """Read and check an archive; raises CorruptArchive with the first problem, naming `path`."""
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
    ids: set[str] = set()
    policies: list[PolicySnapshot] = []
    for p in manifest.policies:
        if p.name in names:
            raise CorruptArchive(f"{path}: policy {p.name!r} appears twice in the manifest")
        names.add(p.name)
        if p.head not in {v.id for v in p.versions}:
            raise CorruptArchive(f"{path}: the head {p.head[:12]} of {p.name} is not one of its versions")
        versions: list[VersionSnapshot] = []
        for v in p.versions:
            if v.id in ids:
                raise CorruptArchive(f"{path}: version {v.id[:12]} appears twice")
            ids.add(v.id)
            versions.append(_version(path, members, p.name, v))
        events = [PolicyEvent.model_validate(e.model_dump()) for e in p.events]
        policies.append(
            PolicySnapshot.model_validate(
                {**p.model_dump(exclude={"versions", "events"}), "versions": versions, "events": events}
            )
        )
    benchmarks: list[BenchmarkSnapshot] = []
    for b in _records(path, members, manifest.benchmarks, BenchmarkEntry):
        if b.version not in ids:
            raise CorruptArchive(f"{path}: a benchmark record names version {b.version[:12]}, not in the archive")
        try:
            result = BenchResult.model_validate(b.result)
        except ValidationError as exc:
            raise CorruptArchive(
                f"{path}: a benchmark record of {b.version[:12]} is not a valid result: {exc}"
            ) from exc
        benchmarks.append(BenchmarkSnapshot(version=b.version, recorded_at=b.recorded_at, result=result))
    verifications: list[VerificationSnapshot] = []
    for r in _records(path, members, manifest.verifications, VerificationEntry):
        if r.version not in ids:
            raise CorruptArchive(f"{path}: a verification record names version {r.version[:12]}, not in the archive")
        verifications.append(VerificationSnapshot.model_validate(r.model_dump()))
    return RepositorySnapshot(policies=policies, benchmarks=benchmarks, verifications=verifications)


def _version(path: Path, members: dict[str, bytes], name: str, v: VersionEntry) -> VersionSnapshot:
    """One version's files, checked against their hashes, as a policy folder and against the version id."""
    texts: dict[str, str] = {}
    headers: dict[str, str] = {}
    source: tuple[str, str] | None = None
    for f in v.files:
        data = members[f.path]
        if sha256_hex(data) != f.sha256:
            raise CorruptArchive(f"{path}: {f.path} does not match its sha256 in the manifest")
        try:
            text = data.decode()
        except UnicodeDecodeError as exc:
            raise CorruptArchive(f"{path}: {f.path} is not UTF-8 text") from exc
        fname = f.path.rsplit("/", 1)[-1]
        if f.role == "header":
            headers[fname] = text
        elif f.role == "source":
            source = (fname, text)
        else:
            texts[f.role] = text
    if source is None or "policy.toml" not in texts:
        raise CorruptArchive(f"{path}: version {v.id[:12]} of {name} lacks its source or policy.toml")
    readme = texts.get("readme", "")
    try:
        content = content_from_texts(name, source[1], texts["policy.toml"], readme, headers, origin=v.origin)
    except PolicyError as exc:
        raise CorruptArchive(f"{path}: version {v.id[:12]} of {name} is not a valid policy: {exc}") from exc
    if content.id != v.id:
        raise CorruptArchive(
            f"{path}: version {v.id[:12]} of {name} hashes to {content.id[:12]}; its files were changed"
        )
    return VersionSnapshot.model_validate(
        {
            **v.model_dump(exclude={"files"}),
            "source_name": source[0],
            "source": source[1],
            "headers": headers,
            "policy_toml": texts["policy.toml"],
            "readme": readme,
        }
    )


def _records(path: Path, members: dict[str, bytes], entry: RecordsEntry, model: type[_Entry]) -> list[_Entry]:
    data = _json(members, entry.path, path)
    if not isinstance(data, list) or len(data) != entry.count:
        raise CorruptArchive(f"{path}: {entry.path} should hold a list of {entry.count} records")
    try:
        return [model.model_validate(item) for item in data]
    except ValidationError as exc:
        raise CorruptArchive(f"{path}: invalid record in {entry.path}: {exc}") from exc
