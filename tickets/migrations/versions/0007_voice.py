"""Voice channel: one row per Twilio call (its ticket and state), agents' phone numbers.

``voicecall.state`` (``queued``, ``connecting``, ``connected``, ``completed``, ``abandoned``,
``voicemail``) is changed only by compare-and-set, so two processes connect a call once and
late callbacks never revive an ended call. ``user.phone`` is where an agent's calls are put
through (NULL: their Twilio Client identity ``agent-<id>``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import tickets.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "voicecall",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_sid", _S(length=64), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("state", _S(length=20), nullable=False),
        sa.Column("caller", _S(length=64), nullable=False),
        sa.Column("language", _S(length=16), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("twilio_status", _S(length=20), nullable=True),
        sa.Column("created_at", tickets.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("connected_at", tickets.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", tickets.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["user.id"]),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("call_sid"),
    )
    op.create_index(op.f("ix_voicecall_ticket_id"), "voicecall", ["ticket_id"], unique=False)
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone", _S(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_column("phone")
    op.drop_index(op.f("ix_voicecall_ticket_id"), table_name="voicecall")
    op.drop_table("voicecall")
