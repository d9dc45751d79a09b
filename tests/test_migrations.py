"""Migrations: upgrade works on both engines, is idempotent, and matches the models."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

from contact_center.db import Database
from contact_center.migrate import alembic_config, migrate
from tests.conftest import sql
from tests.web._helpers import new_ticket


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


async def test_0008_moves_the_chat_replies_keys_to_client_key_and_back(client, world):
    t = await new_ticket(client, world, channel="api")
    agent = world.users["agent"]["id"]
    db = world.svc.db
    downgrade_to(db, "0007")
    # a chat reply as 0007 stored it (the console's key in external_id), and a channel id
    for external_id, direction in ((f"agent-{agent}:abcdefgh12", "out"), ("SM-kept", "out")):
        sql_write(db, "INSERT INTO message (ticket_id, direction, channel, author_user_id,"
                  " body_text, external_id, delivery_status, created_at) VALUES (:t, :d,"
                  " :c, :a, 'hi', :e, 'sent', CURRENT_TIMESTAMP)", t=t["ticket_id"], d=direction,
                  c="chat" if external_id.startswith("agent-") else "sms", a=agent,
                  e=external_id)  # fmt: skip
    migrate(db)
    rows = sql(db, "SELECT channel, external_id, client_key FROM message"
               " WHERE direction = 'out' ORDER BY id")  # fmt: skip
    assert [tuple(r) for r in rows] == [
        ("chat", None, f"agent-{agent}:abcdefgh12"), ("sms", "SM-kept", None)]  # fmt: skip
    downgrade_to(db, "0007")
    rows = sql(db, "SELECT channel, external_id FROM message WHERE direction = 'out' ORDER BY id")
    assert [tuple(r) for r in rows] == [("chat", f"agent-{agent}:abcdefgh12"), ("sms", "SM-kept")]
    migrate(db)


def downgrade_to(db: Database, revision: str) -> None:
    cfg = alembic_config(db.url)
    with db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
        conn.commit()


def sql_write(db: Database, statement: str, **params: object) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.text(statement), params)
