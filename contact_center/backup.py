"""Backups: one archive with the database, every attachment and a manifest; a verified restore.

An archive ``cc-backup-YYYYMMDDTHHMMSSZ.tar.gz`` holds exactly::

    database/sqlite.db | database/postgres.dump   consistent snapshot (online backup / pg_dump -Fc)
    attachments/ab/cdef...                        every file of the blob store (attachments,
                                                  kept raw mail); all the snapshot names must exist
    manifest.json                                 format, engine, schema revision, row counts,
                                                  sha256 + size of every other member

Row counts and attachment hashes come from the snapshot itself (SQLite: the copy; PostgreSQL:
the exported snapshot ``pg_dump`` reads), so they match the dump even while the app writes.
A restore checks the archive completely before it touches the target, then checks the target
against the manifest; any difference raises :class:`BackupError` (the CLI exits non-zero).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from contact_center.backup_archive import (
    DB_MEMBER,
    FORMAT_VERSION,
    Manifest,
    archive_name,
    atomic_copy,
    extract_verified,
    file_digest,
    fsync_dir,
    write_archive,
)
from contact_center.backup_engines import (
    Facts,
    engine_name,
    facts_of,
    restore_database,
    snapshot,
    target_rows,
)
from contact_center.db import Actor, Database, UnitOfWork, normalise_url
from contact_center.errors import BackupError
from contact_center.settings import Settings
from tickets.blobs import BlobStore

__all__ = ["RestoreReport", "backup_dir", "create_backup", "restore_backup"]

log = logging.getLogger("contact_center.backup")
CLI = Actor("cli")
_HASH = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """What a verified restore put in place."""

    archive: Path
    engine: str
    created_at: str
    schema_revision: str | None
    tables: dict[str, int]
    attachments: int
    target: str

    def summary(self) -> str:
        """Human-readable lines for the CLI."""
        rows = sum(self.tables.values())
        lines = [
            f"restored {self.archive.name} (made {self.created_at}) into {self.target}",
            f"engine {self.engine}, schema revision {self.schema_revision}, {rows} rows in "
            f"{len(self.tables)} tables, {self.attachments} attachment files",
            *(f"  {name:<24} {count:>9}" for name, count in sorted(self.tables.items())),
            "verified: row counts, schema revision and every attachment hash match the manifest",
        ]
        return "\n".join(lines)


def backup_dir(settings: Settings) -> Path:
    """Where archives go: ``CC_BACKUP_DIR``, else ``<data_dir>/backups``."""
    return Path(settings.backup_dir) if settings.backup_dir else settings.data_dir / "backups"


def _stored_blobs(root: Path) -> set[str]:
    """Hashes of the finished files in the blob store (its temporary files are skipped)."""
    if not root.is_dir():
        return set()
    names = (p.parent.name + p.name for p in root.glob("??/*") if p.is_file())
    return {n for n in names if _HASH.match(n)}


def _audit(uow: UnitOfWork, actor: Actor, action: str, detail: dict[str, Any]) -> None:
    uow.audit(actor, action, "backup", None, detail)


def create_backup(
    settings: Settings,
    db: Database,
    *,
    now: datetime,
    dest_dir: Path | None = None,
    actor: Actor = CLI,
) -> Path:
    """Write one archive of ``db`` and the attachments it references; return its path.

    The archive is written under a temporary name, fsynced and renamed into place, so a
    reader never sees half an archive. An audit row ``backup.create`` records it.
    """
    dest = dest_dir or backup_dir(settings)
    try:
        return _create(settings, db, now, dest, actor)
    except OSError as err:  # disk full, permissions: a clear message, not a traceback
        raise BackupError(f"writing the backup to {dest} failed: {err}") from None


def _create(settings: Settings, db: Database, now: datetime, dest: Path, actor: Actor) -> Path:
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    engine = "sqlite" if db.is_sqlite else "postgresql"
    blobs = BlobStore(settings.data_dir / "attachments")
    final = dest / archive_name(now)
    with tempfile.TemporaryDirectory(prefix=".staging-", dir=dest) as staging:
        db_file = Path(staging) / "database"
        facts = snapshot(db.url, db_file)
        members = {DB_MEMBER[engine]: db_file}
        stored = _stored_blobs(blobs.root)
        if missing := [d for d in facts.blobs if d not in stored]:
            raise BackupError(f"{len(missing)} attachment files are missing: {missing[:5]}")
        for digest in sorted(stored):  # referenced ones, plus any newer or unreferenced file
            members[f"attachments/{digest[:2]}/{digest[2:]}"] = blobs.path_for(digest)
        manifest: Manifest = {
            "format": FORMAT_VERSION,
            "created_at": now.astimezone(UTC).isoformat(),
            "engine": engine,
            "schema_revision": facts.revision,
            "tables": facts.tables,
            "files": {},
        }
        tmp = Path(staging) / final.name
        write_archive(tmp, members, manifest, now)
        os.replace(tmp, final)
    fsync_dir(dest)
    detail = {"file": final.name, "bytes": final.stat().st_size, "sha256": file_digest(final)[0],
              "engine": engine, "attachments": len(facts.blobs)}  # fmt: skip
    db.write_sync(_audit, actor, "backup.create", detail)
    log.info("backup written to %s", final, extra={"backup": detail})
    return final


def _verify_target(url: str, manifest: Manifest, blob_root: Path) -> Facts:
    facts = facts_of(url)
    problems = [
        f"table {name}: {facts.tables.get(name)} rows, the manifest says {count}"
        for name, count in manifest["tables"].items()
        if facts.tables.get(name) != count
    ]
    extra = sorted(set(facts.tables) - set(manifest["tables"]))
    if extra:
        problems.append(f"tables not in the backup: {', '.join(extra)}")
    if facts.revision != manifest["schema_revision"]:
        problems.append(f"schema revision {facts.revision} != {manifest['schema_revision']}")
    store = BlobStore(blob_root)
    for digest in facts.blobs:
        path = store.path_for(digest)
        if not path.is_file() or file_digest(path)[0] != digest:
            problems.append(f"attachment {digest} missing or corrupt")
    if problems:
        shown = "; ".join(problems[:10]) + (f" (+{len(problems) - 10} more)" * (len(problems) > 10))
        raise BackupError(f"restore verification failed: {shown}")
    return facts


def _stage_and_restore(archive: Path, url: str, engine: str, root: Path, force: bool) -> Manifest:
    blob_root = root / "attachments"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".restore-", dir=root) as tmp:
        staging = Path(tmp)
        manifest = extract_verified(archive, staging)
        if manifest["engine"] != engine:
            raise BackupError(f"the archive holds a {manifest['engine']} database; restoring it "
                              f"into {engine} is not supported")  # fmt: skip
        existing = target_rows(url)
        filled = {n: c for n, c in (existing or {}).items() if c and n != "alembic_version"}
        if filled and not force:
            raise BackupError(f"the target database is not empty ({', '.join(sorted(filled))} "
                              "have rows); restore into an empty one or pass --force")  # fmt: skip
        for name in manifest["files"]:
            if name.startswith("attachments/"):
                digest = name[len("attachments/") :].replace("/", "")
                dest = BlobStore(blob_root).path_for(digest)
                if not (dest.is_file() and file_digest(dest)[0] == digest):
                    atomic_copy(staging / name, dest)
        restore_database(staging / DB_MEMBER[engine], url, existing)
    return manifest


def restore_backup(
    settings: Settings,
    archive: Path,
    *,
    target_url: str | None = None,
    data_dir: Path | None = None,
    force: bool = False,
    actor: Actor = CLI,
) -> RestoreReport:
    """Verify ``archive``, restore it into an empty target, then verify the target.

    Refuses (before writing anything) a damaged or foreign archive, an engine change, and a
    target holding rows unless ``force``. Stop ``serve`` and the workers first.
    """
    url = normalise_url(target_url or settings.database_url)
    engine = engine_name(url)
    root = data_dir or settings.data_dir
    blob_root = root / "attachments"
    try:
        manifest = _stage_and_restore(archive, url, engine, root, force)
    except OSError as err:  # disk full, permissions: a clear message, not a traceback
        raise BackupError(f"restoring into {root} failed: {err}") from None
    facts = _verify_target(url, manifest, blob_root)
    shown = sa.engine.make_url(url).render_as_string(hide_password=True)
    report = RestoreReport(archive, engine, manifest["created_at"], facts.revision, facts.tables,
                           len(facts.blobs), shown)  # fmt: skip
    db = Database(url, pool_size=1)
    try:
        detail = {"file": archive.name, "created_at": report.created_at, "force": force}
        db.write_sync(_audit, actor, "backup.restore", detail)
    finally:
        db.close()
    log.info("restored %s into %s", archive.name, shown)
    return report
