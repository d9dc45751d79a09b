"""Engine specifics of backup and restore: SQLite online backup, ``pg_dump``/``pg_restore``.

PostgreSQL tools get a libpq URL *without* the password (argv shows in ``ps``); the password
travels in ``PGPASSWORD``. The dump reads the snapshot exported by the transaction that counts
the rows, so counts and dump agree while the app keeps writing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from contact_center.backup_archive import atomic_copy
from contact_center.db import normalise_url
from contact_center.errors import BackupError

__all__ = [
    "BLOB_REFERENCES",
    "Facts",
    "engine_name",
    "facts_of",
    "restore_database",
    "snapshot",
    "target_rows",
]

_TABLES_SQL = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'",
    "postgresql": "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
}
# Columns that name a file in the blob store: each named file must be in the backup.
BLOB_REFERENCES = {"attachment": "sha256", "emailreceipt": "raw_sha256"}
Query = Callable[[str], Sequence[Sequence[Any]]]


@dataclass(frozen=True, slots=True)
class Facts:
    """Row counts per table, the Alembic revision and the blob hashes the rows refer to."""

    tables: dict[str, int]
    revision: str | None
    blobs: list[str]


def engine_name(url: str) -> str:
    """``sqlite`` or ``postgresql``."""
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _facts(engine: str, query: Query) -> Facts:
    names = sorted(str(row[0]) for row in query(_TABLES_SQL[engine]))
    tables = {n: int(query(f"SELECT count(*) FROM {_quote(n)}")[0][0]) for n in names}
    revision = None
    if "alembic_version" in tables:
        rows = query("SELECT version_num FROM alembic_version")
        revision = str(rows[0][0]) if rows else None
    blobs: set[str] = set()
    for table, column in BLOB_REFERENCES.items():
        if table in tables:
            sql = f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL"
            blobs.update(str(r[0]) for r in query(sql))
    return Facts(tables, revision, sorted(blobs))


def facts_of(url: str) -> Facts:
    """Facts of the database at ``url`` (one connection, closed afterwards)."""
    engine = sa.create_engine(normalise_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return _facts(engine_name(url), lambda q: conn.exec_driver_sql(q).all())
    finally:
        engine.dispose()


def _sqlite_path(url: str) -> Path:
    database = sa.engine.make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    parsed = sa.engine.make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    dsn = parsed.set(drivername="postgresql", password=None)
    return dsn.render_as_string(hide_password=False), env


def _run(tool: str, args: list[str], env: dict[str, str]) -> None:
    exe = shutil.which(tool)
    if exe is None:
        raise BackupError(f"{tool} not found: install the PostgreSQL client of the server version")
    out = subprocess.run(  # noqa: S603 - fixed executable, arguments we built, no shell
        [exe, *args], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise BackupError(f"{tool} failed (exit {out.returncode}): {out.stderr.strip()[-2000:]}")


def _snapshot_sqlite(url: str, out: Path) -> Facts:
    path = _sqlite_path(url)
    if not path.is_file():
        raise BackupError(f"database file {path} does not exist")
    src = sqlite3.connect(str(path), timeout=30)
    dst = sqlite3.connect(str(out))
    try:
        src.backup(dst)  # one step: a consistent snapshot while writers keep writing (WAL)
        src.close()
        dst.execute("PRAGMA journal_mode=DELETE")  # a self-contained file, no -wal beside it
        check = dst.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"the database failed its integrity check: {check}")
        return _facts("sqlite", lambda q: dst.execute(q).fetchall())
    except sqlite3.Error as err:
        raise BackupError(f"reading the SQLite database failed: {err}") from None
    finally:
        src.close()
        dst.close()


def _snapshot_postgres(url: str, out: Path) -> Facts:
    dsn, env = _libpq(url)
    engine = sa.create_engine(normalise_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as raw:
            conn = raw.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                snap = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
                facts = _facts("postgresql", lambda q: conn.exec_driver_sql(q).all())
                _run("pg_dump", ["--format=custom", f"--snapshot={snap}", "--file", str(out),
                                 "--dbname", dsn], env)  # fmt: skip
        return facts
    except sa.exc.OperationalError as err:
        raise BackupError(f"cannot read the database: {err.orig}") from None
    finally:
        engine.dispose()


def snapshot(url: str, out: Path) -> Facts:
    """Write a consistent copy of the database to ``out``; return the copy's facts."""
    if engine_name(url) == "sqlite":
        return _snapshot_sqlite(url, out)
    return _snapshot_postgres(url, out)


def target_rows(url: str) -> dict[str, int] | None:
    """Row counts of the target's tables; None when there is no SQLite file yet."""
    if engine_name(url) == "postgresql":
        try:
            return facts_of(url).tables
        except sa.exc.OperationalError as err:
            msg = f"cannot connect to the target database (create it first): {err.orig}"
            raise BackupError(msg) from None
    path = _sqlite_path(url)
    if not path.exists() or path.stat().st_size == 0:
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            return _facts("sqlite", lambda q: conn.execute(q).fetchall()).tables
    except sqlite3.DatabaseError as err:
        raise BackupError(f"the target {path} is not an empty database ({err})") from None


def restore_database(staged: Path, url: str, existing: dict[str, int] | None) -> None:
    """Put the staged database in place: file swap (SQLite) or one ``pg_restore`` transaction."""
    if engine_name(url) == "sqlite":
        path = _sqlite_path(url)
        for suffix in ("-wal", "-shm", "-journal"):  # a stale WAL must never meet the new file
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        atomic_copy(staged, path)
        return
    dsn, env = _libpq(url)
    args = ["--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges"]
    if existing:  # tables exist (empty, or --force): drop and recreate the archive's objects
        args += ["--clean", "--if-exists"]
    _run("pg_restore", [*args, "--dbname", dsn, str(staged)], env)
