"""An agent's own key for a message they post, so that sending it twice stores it once.

``message.client_key`` holds the ``Idempotency-Key`` of a REST reply or note and the console's
id of a chat reply, unique per ticket (NULL for everything else). It used to be the chat
reply's ``external_id``; those rows move over, and ``external_id`` stays the channel's own id
(an SMS's Twilio SID, an email's Message-ID).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 22:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("client_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
        )
        batch_op.create_index(
            "uq_message_ticket_client_key", ["ticket_id", "client_key"], unique=True
        )
    op.execute(
        "UPDATE message SET client_key = external_id, external_id = NULL"
        " WHERE direction = 'out' AND channel = 'chat' AND author_user_id IS NOT NULL"
        " AND external_id LIKE 'agent-%'"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE message SET external_id = client_key"
        " WHERE direction = 'out' AND channel = 'chat' AND client_key LIKE 'agent-%'"
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("uq_message_ticket_client_key")
        batch_op.drop_column("client_key")
