"""Alembic environment: the URL comes from the caller (``contact-center migrate``)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import tickets.models  # noqa: F401  (registers the tables)
from contact_center.db import normalise_url

config = context.config
target_metadata = SQLModel.metadata


def run() -> None:
    """Online migration with the given connection or URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    import sqlalchemy as sa

    engine = sa.create_engine(normalise_url(config.get_main_option("sqlalchemy.url") or ""))
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
