"""The next-response SLA: when the customer started waiting for a reply, its deadline and flag.

``ticket.awaiting_reply_since`` is the arrival of the first customer message after the last
agent reply (``NULL`` while nobody waits for an agent, and before the first response, which has
its own promise); ``next_response_due_at`` is the armed deadline and ``next_response_breached``
the flag of the current (or last) round.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tickets.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "awaiting_reply_since", tickets.models.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column(
                "next_response_due_at", tickets.models.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column(
                "next_response_breached", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_column("next_response_breached")
        batch_op.drop_column("next_response_due_at")
        batch_op.drop_column("awaiting_reply_since")
