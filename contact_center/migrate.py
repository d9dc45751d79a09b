"""Schema migrations with Alembic (scripts in ``tickets/migrations``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from contact_center.db import Database

__all__ = ["alembic_config", "migrate"]

SCRIPTS = Path(__file__).resolve().parent.parent / "tickets" / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our scripts and this database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(db: Database, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (idempotent)."""
    cfg = alembic_config(db.url)
    with db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()
