"""Add a delivery lease to outbound messages (crash-safe sending).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 00:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tickets.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "delivery_lease_until", tickets.models.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.create_index(
            "ix_message_delivery_due", ["delivery_status", "delivery_lease_until"]
        )


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_delivery_due")
        batch_op.drop_column("delivery_lease_until")
