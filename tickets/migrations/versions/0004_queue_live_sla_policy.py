"""A second SLA policy per queue, for its live (chat, voice) tickets.

A queue's ``sla_policy_id`` stays the policy of every ticket unless the queue also names a
``live_sla_policy_id``: then chat and voice tickets use that one, so one queue can promise a
20-second answer on live channels and a one-day first response on async ones.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_FK = "fk_queue_live_sla_policy_id_slapolicy"


def upgrade() -> None:
    with op.batch_alter_table("queue", schema=None) as batch_op:
        batch_op.add_column(sa.Column("live_sla_policy_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(_FK, "slapolicy", ["live_sla_policy_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("queue", schema=None) as batch_op:
        batch_op.drop_constraint(_FK, type_="foreignkey")
        batch_op.drop_column("live_sla_policy_id")
