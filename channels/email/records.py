"""The email channel's own writes and lookups inside a unit of work.

Bounce notes, undeliverable addresses, acknowledgement messages and the participant check
that gates threading. Each write emits its event and audit row in the caller's transaction,
as actions do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from channels.base import OutboundMessage
from channels.email.ack_template import render_ack
from channels.email.loops import Dsn
from channels.email.threading import References, ThreadKeys
from contact_center.db import Actor, UnitOfWork
from tickets.actions._common import CUSTOMER, HANDLE, MESSAGE, TICKET, message_summary
from tickets.actions.messages import SEND_LEASE
from tickets.domain import DeliveryStatus, Direction
from tickets.models import EmailAutoReply, EmailReceipt, UTCDateTime

__all__ = [
    "ACTOR",
    "AUTOREPLY",
    "RECEIPT",
    "Thread",
    "add_bounce_note",
    "create_ack",
    "resolve_thread",
]

ACTOR = Actor("channel:email")
RECEIPT = cast(sa.Table, EmailReceipt.__table__)  # type: ignore[attr-defined]
AUTOREPLY = cast(sa.Table, EmailAutoReply.__table__)  # type: ignore[attr-defined]


# Statements built once (hundreds of acknowledgements a second: construction cost counts).
_ACK_LOOKUP = (
    sa.select(TICKET.c.subject, CUSTOMER.c.language, HANDLE.c.undeliverable)
    .join(CUSTOMER, CUSTOMER.c.id == TICKET.c.customer_id)
    .join(HANDLE, HANDLE.c.customer_id == CUSTOMER.c.id)
    .where(
        TICKET.c.id == sa.bindparam("b_ticket"),
        HANDLE.c.kind == "email",
        HANDLE.c.value == sa.bindparam("b_address"),
    )
)
_ACK_INSERT = sa.insert(MESSAGE).returning(MESSAGE.c.id)
_SET_EXTERNAL_ID = (
    sa.update(MESSAGE)
    .where(MESSAGE.c.id == sa.bindparam("b_id"))
    .values(external_id=sa.bindparam("b_external_id"))
)


def _claim_statement(dialect: Any) -> Any:
    """INSERT the address, or move its time if the last one is older than the cutoff."""
    insert = dialect.insert(AUTOREPLY)
    return insert.on_conflict_do_update(
        index_elements=[AUTOREPLY.c.address],
        set_={"last_sent_at": insert.excluded.last_sent_at},
        where=AUTOREPLY.c.last_sent_at <= sa.bindparam("b_cutoff", type_=UTCDateTime()),
    ).returning(AUTOREPLY.c.address)


_ACK_CLAIM = {False: _claim_statement(sqlite), True: _claim_statement(postgresql)}


@dataclass(frozen=True, slots=True)
class Thread:
    """The verified ticket to append to (or None), and what an operator should know."""

    ticket_id: int | None
    note: str | None = None


def _participant(uow: UnitOfWork, ticket_id: int, address: str) -> bool:
    row = uow.session.execute(
        sa.select(HANDLE.c.id)
        .join(TICKET, TICKET.c.customer_id == HANDLE.c.customer_id)
        .where(TICKET.c.id == ticket_id, HANDLE.c.kind == "email", HANDLE.c.value == address)
        .limit(1)
    ).first()
    return row is not None


def resolve_thread(uow: UnitOfWork, refs: References, sender: str) -> Thread:
    """The first referenced ticket the sender takes part in: references, then ``[#N]``.

    A reference or tag pointing at someone else's ticket is ignored (a spoofed reply opens a
    new ticket instead of appending, and never acts as an agent).
    """
    candidates = list(refs.verified)
    if refs.foreign:
        rows = uow.session.execute(
            sa.select(MESSAGE.c.external_id, MESSAGE.c.ticket_id).where(
                MESSAGE.c.channel == "email", MESSAGE.c.external_id.in_(refs.foreign)
            )
        ).all()
        found = {r.external_id: r.ticket_id for r in rows}
        candidates.extend(found[ref] for ref in refs.foreign if ref in found)
    if refs.subject_ticket is not None:
        candidates.append(refs.subject_ticket)
    seen: list[int] = []
    for ticket_id in candidates:
        if ticket_id in seen:
            continue
        seen.append(ticket_id)
        if _participant(uow, ticket_id, sender):
            return Thread(ticket_id)
    notes = []
    if refs.forged:
        notes.append(f"forged reference {refs.forged[0][:80]} ignored")
    if seen:
        notes.append(f"sender is not a participant of ticket {seen[0]}; not threaded")
    return Thread(None, "; ".join(notes) or None)


def _note(uow: UnitOfWork, ticket_id: int, body: str) -> int:
    values: dict[str, Any] = {
        "ticket_id": ticket_id,
        "direction": Direction.NOTE.value,
        "channel": "email",
        "author_user_id": None,
        "author_customer_id": None,
        "body_text": body,
        "body_html": None,
        "external_id": None,
        "delivery_status": DeliveryStatus.RECEIVED.value,
        "created_at": uow.now,
    }
    message_id = int(
        uow.session.execute(
            sa.insert(MESSAGE).values(**values).returning(MESSAGE.c.id)
        ).scalar_one()
    )
    uow.emit(
        "message.created", message_summary(SimpleNamespace(id=message_id, **values)), ticket_id
    )
    return message_id


def add_bounce_note(uow: UnitOfWork, keys: ThreadKeys, dsn: Dsn) -> tuple[int, int] | None:
    """Note a bounce on the ticket of the returned mail and flag hard-bounced addresses.

    Only a report about one of *our* messages (its Message-ID verifies) counts, so a forged
    report cannot mark a customer's address undeliverable. Returns (ticket, note) or None.
    """
    original = dsn.original_message_id
    ticket_id = keys.verify(original) if original else None
    if ticket_id is None:
        return None
    customer_id = uow.session.execute(
        sa.select(TICKET.c.customer_id).where(TICKET.c.id == ticket_id)
    ).scalar()
    if customer_id is None:
        return None
    note_id = _note(uow, ticket_id, dsn.summary())
    hard = sorted({r.address for r in dsn.recipients if r.hard and r.address})
    if hard:
        uow.session.execute(
            sa.update(HANDLE)
            .where(
                HANDLE.c.customer_id == customer_id,
                HANDLE.c.kind == "email",
                HANDLE.c.value.in_(hard),
            )
            .values(undeliverable=True)
        )
        uow.emit(
            "customer.handle_undeliverable",
            {"customer_id": customer_id, "kind": "email", "values": hard},
            ticket_id,
        )
    uow.audit(ACTOR, "email.bounce", "ticket", ticket_id, {"note_id": note_id, "hard": hard})
    return ticket_id, note_id


def create_ack(
    uow: UnitOfWork,
    keys: ThreadKeys,
    *,
    ticket_id: int,
    address: str,
    name: str,
    inbound_id: str,
    language: str | None,
    window: timedelta,
) -> OutboundMessage | None:
    """Store an acknowledgement, taken for delivery, unless ``address`` had one in ``window``.

    The message is created in ``sending`` with a lease, as ``begin_delivery`` would leave it,
    because the poller sends it right after the commit (the outbox sweeper re-queues it if
    that never happens). It carries its Message-ID from the start (an ``a`` kind id): that is
    how the sender knows to mark it ``Auto-Submitted: auto-replied``.
    """
    row = uow.session.execute(_ACK_LOOKUP, {"b_ticket": ticket_id, "b_address": address}).first()
    if row is None or row.undeliverable:
        return None
    claim = _ACK_CLAIM[uow.dialect == "postgresql"]
    cutoff = uow.now - window
    if (
        uow.session.execute(
            claim, {"address": address, "last_sent_at": uow.now, "b_cutoff": cutoff}
        ).first()
        is None
    ):
        return None  # one acknowledgement per address per window
    body = render_ack(row.language or language, ticket_id=ticket_id, name=name, subject=row.subject)
    values: dict[str, Any] = {
        "ticket_id": ticket_id,
        "direction": Direction.OUT.value,
        "channel": "email",
        "author_user_id": None,
        "author_customer_id": None,
        "body_text": body,
        "body_html": None,
        "external_id": None,
        "delivery_status": DeliveryStatus.SENDING.value,
        "delivery_error": None,
        "delivery_lease_until": uow.now + SEND_LEASE,
        "created_at": uow.now,
    }
    message_id = int(uow.session.execute(_ACK_INSERT, values).scalar_one())
    external_id = keys.message_id(ticket_id, message_id, auto=True)
    uow.session.execute(_SET_EXTERNAL_ID, {"b_id": message_id, "b_external_id": external_id})
    values["external_id"] = external_id
    summary = message_summary(SimpleNamespace(id=message_id, **values))
    uow.emit("message.created", summary, ticket_id)
    uow.audit(ACTOR, "email.auto_ack", "ticket", ticket_id, {"message_id": message_id})
    return OutboundMessage(
        message_id=message_id,
        ticket_id=ticket_id,
        channel="email",
        to_handle=address,
        body_text=body,
        subject=row.subject,
        in_reply_to=(inbound_id, external_id),
    )
