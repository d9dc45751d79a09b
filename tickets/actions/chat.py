"""Web chat actions: a visitor leaving (abandon), read marks, pre-chat details, transcripts.

Messages themselves arrive through :func:`tickets.actions.ingest.ingest` like every channel's.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from contact_center.db import Actor, UnitOfWork
from contact_center.errors import NotFound, RateLimited, ValidationError
from tickets.actions._common import EVENT, MESSAGE, TICKET, message_summary, ticket_summary
from tickets.actions.routing import cancel_open_offers
from tickets.domain import Channel, DeliveryStatus, Direction, TicketStatus
from tickets.queries import Viewer, get_ticket

__all__ = ["MAX_TRANSCRIPTS", "customer_left", "mark_read", "record_prechat", "record_transcript"]

CHAT = Actor("channel:chat")
MAX_TRANSCRIPTS = 3
"""Transcripts one chat ticket may send (a visitor cannot turn us into a mail cannon)."""


def _own_chat_ticket(uow: UnitOfWork, ticket_id: int, customer_id: int) -> Any:
    q = sa.select(TICKET).where(
        TICKET.c.id == ticket_id,
        TICKET.c.customer_id == customer_id,
        TICKET.c.channel == Channel.CHAT.value,
    )
    if uow.dialect == "postgresql":
        q = q.with_for_update()
    row = uow.session.execute(q).first()
    if row is None:
        raise NotFound("no such conversation")
    return row


def customer_left(
    uow: UnitOfWork, ticket_id: int, customer_id: int, *, only_if_waiting: bool = False
) -> str:
    """The visitor ended the chat (or vanished for good): ``abandoned``, ``left`` or ``ended``.

    Unanswered and unassigned, the ticket is closed: its offer is cancelled, the router forgets
    it and the SLA board counts a live ticket closed unanswered as an abandon. Answered, the
    agent is told (``chat.left``) and the ticket stays theirs to solve. ``only_if_waiting``
    (a disconnect that outlived the grace period) does nothing to an answered chat.
    """
    t = _own_chat_ticket(uow, ticket_id, customer_id)
    if t.status not in (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING):
        return "ended"
    waiting = t.assignee_id is None and t.first_answer_at is None and t.status == TicketStatus.NEW
    if not waiting:
        if only_if_waiting:
            return "ignored"
        uow.emit("chat.left", {"ticket_id": ticket_id, "abandoned": False}, ticket_id)
        uow.audit(CHAT, "chat.left", "ticket", ticket_id, {})
        return "left"
    cancel_open_offers(uow, ticket_id, "customer_left")
    values = {"status": TicketStatus.CLOSED.value, "closed_at": uow.now, "updated_at": uow.now}
    row = uow.session.execute(
        sa.update(TICKET).where(TICKET.c.id == ticket_id).values(**values).returning(TICKET)
    ).one()
    uow.emit("ticket.updated", {**ticket_summary(row), "changed": sorted(values)}, ticket_id)
    uow.emit("ticket.closed", {"id": ticket_id}, ticket_id)
    uow.emit("chat.left", {"ticket_id": ticket_id, "abandoned": True}, ticket_id)
    waited = (uow.now - t.created_at).total_seconds()
    uow.audit(CHAT, "chat.abandoned", "ticket", ticket_id, {"waited_seconds": round(waited, 3)})
    return "abandoned"


def _last_mark(uow: UnitOfWork, ticket_id: int, by: str) -> int:
    for (payload,) in uow.session.execute(
        sa.select(EVENT.c.payload)
        .where(EVENT.c.ticket_id == ticket_id, EVENT.c.type == "chat.read")
        .order_by(EVENT.c.id.desc())
        .limit(50)
    ):
        if payload.get("by") == by:
            return int(payload.get("message_id", 0))
    return 0


def mark_read(
    uow: UnitOfWork,
    ticket_id: int,
    message_id: int,
    *,
    customer_id: int | None = None,
    viewer: Viewer | None = None,
) -> bool:
    """One side has read up to ``message_id`` (the visitor by ``customer_id``, staff by
    ``viewer`` in scope); ``chat.read`` is emitted when the mark moves forward."""
    if (customer_id is None) == (viewer is None):
        raise ValueError("exactly one of customer_id and viewer")
    if viewer is not None:
        ticket = get_ticket(uow.session, viewer, ticket_id)
        by, actor = "agent", Actor("user", viewer.user_id)
    else:
        assert customer_id is not None
        ticket = _own_chat_ticket(uow, ticket_id, customer_id)
        by, actor = "customer", CHAT
    seen = uow.session.execute(
        sa.select(MESSAGE.c.id).where(MESSAGE.c.id == message_id, MESSAGE.c.ticket_id == ticket.id)
    ).first()
    if seen is None:
        raise ValidationError("no such message here", fields={"message_id": "unknown"})
    if message_id <= _last_mark(uow, ticket_id, by):
        return False
    uow.emit("chat.read", {"ticket_id": ticket_id, "message_id": message_id, "by": by}, ticket_id)
    uow.audit(actor, "chat.read", "ticket", ticket_id, {"message_id": message_id, "by": by})
    return True


def record_prechat(
    uow: UnitOfWork, ticket_id: int, customer_id: int, name: str, email: str | None
) -> int:
    """What the pre-chat form said, as an internal note for the agent (the email address is
    the visitor's claim, unverified, so it is not made a handle of the customer)."""
    _own_chat_ticket(uow, ticket_id, customer_id)
    lines = [f"Pre-chat form: name {name!r}"]
    if email:
        lines.append(f"email {email} (given by the visitor, not verified)")
    values = {
        "ticket_id": ticket_id,
        "direction": Direction.NOTE.value,
        "channel": Channel.CHAT.value,
        "author_user_id": None,
        "author_customer_id": None,
        "body_text": "; ".join(lines),
        "body_html": None,
        "external_id": None,
        "delivery_status": DeliveryStatus.RECEIVED.value,
        "created_at": uow.now,
    }
    mid = uow.session.execute(
        sa.insert(MESSAGE).values(**values).returning(MESSAGE.c.id)
    ).scalar_one()
    payload = message_summary(SimpleNamespace(id=mid, **values))
    payload["attachment_ids"] = []
    uow.emit("message.created", payload, ticket_id)
    uow.audit(CHAT, "chat.prechat", "ticket", ticket_id, {"message_id": mid})
    return int(mid)


def record_transcript(
    uow: UnitOfWork, ticket_id: int, customer_id: int, email: str, language: str
) -> int:
    """Note a transcript request (``chat.transcript``); its number (1..``MAX_TRANSCRIPTS``).

    The ``send_chat_transcript`` job sends it; more than ``MAX_TRANSCRIPTS`` per ticket are
    refused.
    """
    _own_chat_ticket(uow, ticket_id, customer_id)
    done = uow.session.execute(
        sa.select(sa.func.count()).where(
            EVENT.c.ticket_id == ticket_id, EVENT.c.type == "chat.transcript"
        )
    ).scalar_one()
    if done >= MAX_TRANSCRIPTS:
        raise RateLimited(f"at most {MAX_TRANSCRIPTS} transcripts per conversation")
    number = int(done) + 1
    uow.emit(
        "chat.transcript",
        {"ticket_id": ticket_id, "to": email, "language": language, "number": number},
        ticket_id,
    )
    uow.audit(CHAT, "chat.transcript", "ticket", ticket_id, {"to": email, "number": number})
    return number
