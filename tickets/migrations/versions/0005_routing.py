"""Routing policy per queue, and at most one open offer per ticket.

``queue.routing_strategy`` (``longest_idle`` or ``best_skill``), ``routing_score`` (``sum`` or
``max``) and ``relaxation`` (JSON list of steps) feed the router's ``QueueConfig``. The partial
unique index ``uq_offer_open_ticket`` makes a second open offer for one ticket impossible.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_OPEN = sa.text("outcome IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("queue", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "routing_strategy",
                sa.String(length=20),
                nullable=False,
                server_default="longest_idle",
            )
        )
        batch_op.add_column(
            sa.Column("routing_score", sa.String(length=10), nullable=False, server_default="sum")
        )
        batch_op.add_column(sa.Column("relaxation", sa.JSON(), nullable=False, server_default="[]"))
    op.create_index(
        "uq_offer_open_ticket",
        "offer",
        ["ticket_id"],
        unique=True,
        sqlite_where=_OPEN,
        postgresql_where=_OPEN,
    )


def downgrade() -> None:
    op.drop_index("uq_offer_open_ticket", table_name="offer")
    with op.batch_alter_table("queue", schema=None) as batch_op:
        batch_op.drop_column("relaxation")
        batch_op.drop_column("routing_score")
        batch_op.drop_column("routing_strategy")
