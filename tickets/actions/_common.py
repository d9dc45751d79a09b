"""Helpers shared by the actions (table handles, summaries, deadline math)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa

from tickets.domain import LIVE_CHANNELS, Channel
from tickets.models import (
    Attachment,
    AuditLog,
    Customer,
    CustomerHandle,
    Event,
    Message,
    Offer,
    Queue,
    QueueMember,
    SlaPolicy,
    Team,
    Ticket,
    User,
)

__all__ = [
    "ATTACHMENT",
    "AUDIT",
    "CUSTOMER",
    "EVENT",
    "HANDLE",
    "MESSAGE",
    "OFFER",
    "QUEUE",
    "QUEUE_MEMBER",
    "SLA",
    "TEAM",
    "TICKET",
    "USER",
    "deadlines_for",
    "message_summary",
    "queue_policy_id",
    "ticket_summary",
]


def _t(model: type[Any]) -> sa.Table:
    return cast(sa.Table, model.__table__)


TICKET = _t(Ticket)
MESSAGE = _t(Message)
CUSTOMER = _t(Customer)
HANDLE = _t(CustomerHandle)
QUEUE = _t(Queue)
QUEUE_MEMBER = _t(QueueMember)
SLA = _t(SlaPolicy)
TEAM = _t(Team)
USER = _t(User)
ATTACHMENT = _t(Attachment)
AUDIT = _t(AuditLog)
EVENT = _t(Event)
OFFER = _t(Offer)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def ticket_summary(row: Any) -> dict[str, Any]:
    """The ticket fields events and list views carry (``row`` is a ticket row or model)."""
    return {
        "id": row.id,
        "number": row.id,
        "subject": row.subject,
        "status": row.status,
        "priority": row.priority,
        "channel": row.channel,
        "queue_id": row.queue_id,
        "team_id": row.team_id,
        "customer_id": row.customer_id,
        "assignee_id": row.assignee_id,
        "language": row.language,
        "required_skills": row.required_skills,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "answer_due_at": _iso(row.answer_due_at),
        "first_response_due_at": _iso(row.first_response_due_at),
        "awaiting_reply_since": _iso(row.awaiting_reply_since),
        "next_response_due_at": _iso(row.next_response_due_at),
    }


def message_summary(row: Any) -> dict[str, Any]:
    """The message fields events and detail views carry."""
    return {
        "id": row.id,
        "ticket_id": row.ticket_id,
        "direction": row.direction,
        "channel": row.channel,
        "author_user_id": row.author_user_id,
        "author_customer_id": row.author_customer_id,
        "body_text": row.body_text,
        "body_html": row.body_html,
        "external_id": row.external_id,
        "delivery_status": row.delivery_status,
        "created_at": _iso(row.created_at),
    }


def queue_policy_id(queue: Any | None, channel: str) -> int | None:
    """The SLA policy id of a ``channel`` ticket in ``queue`` (a queue row; None: no queue).

    Live channels (chat, voice) get the queue's ``live_sla_policy_id`` when it has one; every
    other ticket, and live ones of a queue without it, the queue's ``sla_policy_id``. Ingest and
    the SLA service both choose through here.
    """
    if queue is None:
        return None
    if Channel(channel) in LIVE_CHANNELS and queue.live_sla_policy_id is not None:
        return int(queue.live_sla_policy_id)
    return None if queue.sla_policy_id is None else int(queue.sla_policy_id)


def deadlines_for(
    policy: Any | None, channel: str, created: datetime
) -> tuple[datetime | None, datetime | None]:
    """(answer_due_at, first_response_due_at) in calendar time for a new ticket.

    Live channels (chat, voice) get the answer target, async ones the first-response target.
    Business-hours calendars are applied by the SLA engine when it schedules the ticket.
    """
    if policy is None:
        return None, None
    if Channel(channel) in LIVE_CHANNELS:
        secs = policy.answer_seconds
        return (created + timedelta(seconds=secs) if secs else None), None
    secs = policy.first_response_seconds
    return None, (created + timedelta(seconds=secs) if secs else None)
