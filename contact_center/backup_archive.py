"""The backup archive format: writing it, and reading it back only when every byte checks out.

Reading is strict: only regular files with the exact names the format defines are accepted
(no ``../``, absolute paths, links or devices), each member is streamed into a private staging
directory by name (``tarfile.extract`` is never used), and the set of members, their sizes and
SHA-256 digests must equal the manifest. Anything else raises :class:`BackupError`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict, cast

from contact_center.errors import BackupError

__all__ = [
    "ARCHIVE_RE",
    "DB_MEMBER",
    "FORMAT_VERSION",
    "FileEntry",
    "Manifest",
    "archive_name",
    "atomic_copy",
    "extract_verified",
    "file_digest",
    "fsync_dir",
    "write_archive",
]

FORMAT_VERSION = 1
ARCHIVE_RE = re.compile(r"^cc-backup-(\d{8}T\d{6}Z)\.tar\.gz$")
DB_MEMBER = {"sqlite": "database/sqlite.db", "postgresql": "database/postgres.dump"}
MANIFEST = "manifest.json"
_MEMBER_RE = re.compile(
    r"^(manifest\.json|database/(sqlite\.db|postgres\.dump)|attachments/[0-9a-f]{2}/[0-9a-f]{62})$"
)
_CHUNK = 1 << 20


class FileEntry(TypedDict):
    """Digest and size of one archive member."""

    sha256: str
    size: int


class Manifest(TypedDict):
    """``manifest.json``."""

    format: int
    created_at: str
    engine: str
    schema_revision: str | None
    tables: dict[str, int]
    files: dict[str, FileEntry]


def archive_name(now: datetime) -> str:
    """``cc-backup-YYYYMMDDTHHMMSSZ.tar.gz`` for this moment (UTC; ``now`` must be aware)."""
    if now.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC time")
    return f"cc-backup-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}.tar.gz"


def file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 hex digest and size of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def fsync_dir(path: Path) -> None:
    """Make a rename or new file in ``path`` survive a power loss."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_copy(src: Path, dest: Path) -> None:
    """Copy ``src`` to ``dest`` through a temporary file, fsync, rename (never half a file)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
            while chunk := inp.read(_CHUNK):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(dest.parent)


def _info(name: str, size: int, now: datetime) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(now.timestamp())
    info.mode = 0o600
    return info


def write_archive(path: Path, members: dict[str, Path], manifest: Manifest, now: datetime) -> None:
    """Write ``members`` (archive name → file) plus the manifest (filled in here) to ``path``.

    The file is created 0600 (it holds customer data and password hashes) and fsynced.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as raw:
        with tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name, src in members.items():
                digest, size = file_digest(src)
                if name.startswith("attachments/") and digest != name[12:].replace("/", ""):
                    raise BackupError(f"attachment file {src} does not match its hash (corrupt)")
                manifest["files"][name] = {"sha256": digest, "size": size}
                with src.open("rb") as fh:
                    tar.addfile(_info(name, size, now), fh)
            body = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False).encode()
            tar.addfile(_info(MANIFEST, len(body), now), io.BytesIO(body))
        raw.flush()
        os.fsync(raw.fileno())


def _check_member(member: tarfile.TarInfo, seen: dict[str, FileEntry]) -> None:
    name = member.name
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", name):
        raise BackupError(f"refusing archive member {name!r}: path traversal")
    if not member.isreg():
        kind = "link" if member.issym() or member.islnk() else "directory or device"
        raise BackupError(f"refusing archive member {name!r}: a {kind}, not a regular file")
    if not _MEMBER_RE.match(name):
        raise BackupError(f"refusing unexpected archive member {name!r}")
    if name in seen:
        raise BackupError(f"refusing duplicate archive member {name!r}")


def _read_manifest(staging: Path, seen: dict[str, FileEntry]) -> Manifest:
    if MANIFEST not in seen:
        raise BackupError("manifest.json is missing: not a complete contact-center backup")
    try:
        data: Any = json.loads((staging / MANIFEST).read_text("utf-8"))
        if not isinstance(data, dict) or set(Manifest.__annotations__) - set(data):
            raise BackupError("manifest.json is malformed (missing keys)")
        if data["format"] != FORMAT_VERSION:
            raise BackupError(f"unsupported backup format {data['format']!r}")
        entries = data["files"].values()
        ok = (
            data["engine"] in DB_MEMBER
            and all(isinstance(e["sha256"], str) and isinstance(e["size"], int) for e in entries)
            and all(isinstance(v, int) for v in data["tables"].values())
        )
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise BackupError(f"manifest.json is malformed ({err!r})") from None
    if not ok:
        raise BackupError("manifest.json is malformed (engine, files or row counts)")
    return cast(Manifest, data)


def extract_verified(archive: Path, staging: Path) -> Manifest:
    """Stream ``archive`` into ``staging`` and return its manifest once everything matches."""
    if not archive.is_file():
        raise BackupError(f"{archive}: no such file")
    seen: dict[str, FileEntry] = {}
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for member in tar:
                _check_member(member, seen)
                src = tar.extractfile(member)
                if src is None:  # pragma: no cover - regular files always have data
                    raise BackupError(f"unreadable archive member {member.name!r}")
                target = staging / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                digest, size = hashlib.sha256(), 0
                with src, target.open("wb") as out:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                seen[member.name] = {"sha256": digest.hexdigest(), "size": size}
            while tar.fileobj.read(_CHUNK):
                pass  # read to the end, so gzip checks its CRC over the whole archive
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise BackupError(f"{archive.name} is not a readable archive: {err}") from None
    except OSError as err:  # e.g. no space left for the staging copy
        raise BackupError(f"reading {archive.name} failed: {err}") from None
    manifest = _read_manifest(staging, seen)
    listed = set(manifest["files"])
    if DB_MEMBER[manifest["engine"]] not in listed:
        raise BackupError("the archive holds no database file")
    if extra := sorted(set(seen) - listed - {MANIFEST}):
        raise BackupError(f"archive members not in the manifest: {', '.join(extra[:5])}")
    if missing := sorted(listed - set(seen)):
        raise BackupError(f"archive members missing: {', '.join(missing[:5])}")
    for name, entry in manifest["files"].items():
        got = seen[name]
        if (got["sha256"], got["size"]) != (entry["sha256"], entry["size"]):
            raise BackupError(f"{name} does not match the manifest (size or sha256): corrupt")
        if name.startswith("attachments/") and got["sha256"] != name[12:].replace("/", ""):
            raise BackupError(f"{name} does not match its content hash: corrupt")
    return manifest
