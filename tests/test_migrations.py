"""Migrations: upgrade works on both engines, is idempotent, and matches the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

from contact_center.db import Database
from contact_center.migrate import alembic_config, migrate


def test_models_and_migrations_agree(db_url):
    db = Database(db_url, pool_size=1)
    try:
        migrate(db)  # idempotent on an already migrated database
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
            conn.rollback()
    finally:
        db.close()
    assert diff == [], f"models differ from migrations; add a revision: {diff}"


def test_fresh_sqlite_file_gets_wal_and_foreign_keys(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'sub' / 'x.db'}", pool_size=1)
    try:
        migrate(db)
        with db.read_engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
            version = conn.exec_driver_sql("select version_num from alembic_version").scalar()
        assert version == ScriptDirectory.from_config(alembic_config(db.url)).get_current_head()
    finally:
        db.close()
