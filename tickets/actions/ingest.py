"""``ingest``: the one way an inbound contact becomes a message on a ticket."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from contact_center.db import Actor, UnitOfWork, insert_ignore
from contact_center.errors import PayloadTooLarge, ValidationError
from tickets.actions import _statements as st
from tickets.actions._common import (
    HANDLE,
    MESSAGE,
    TICKET,
    deadlines_for,
    message_summary,
    queue_policy_id,
    ticket_summary,
)
from tickets.blobs import BlobStore
from tickets.contact import InboundContact, handle_kind_for, normalise_handle
from tickets.domain import DeliveryStatus, Direction, TicketStatus
from tickets.sanitize import sanitize_html

__all__ = ["IngestPolicy", "IngestResult", "ingest"]


class Lookups:
    """Queues and SLA policies by key, re-read after ``ttl`` seconds (they change rarely)."""

    def __init__(self, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._items: dict[tuple[str, object], tuple[float, Any]] = {}

    def _get(self, key: tuple[str, object], load: Callable[[], Any]) -> Any:
        now = self._clock()
        with self._lock:
            hit = self._items.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = load()
        with self._lock:
            self._items[key] = (now + self._ttl, value)
        return value

    def queue(self, uow: UnitOfWork, name: str) -> Any:
        """The queue row named ``name``, or None."""
        return self._get(
            ("queue", name), lambda: uow.session.execute(st.QUEUE_BY_NAME, {"name": name}).first()
        )

    def sla(self, uow: UnitOfWork, policy_id: int) -> Any:
        """The SLA policy row, or None."""
        return self._get(
            ("sla", policy_id), lambda: uow.session.execute(st.SLA_BY_ID, {"id": policy_id}).first()
        )

    def clear(self) -> None:
        """Forget everything (admin changes in this process call it)."""
        with self._lock:
            self._items.clear()


@dataclass(frozen=True, slots=True)
class IngestPolicy:
    """Operator choices that shape ingest."""

    blobs: BlobStore
    reopen_window: timedelta = timedelta(days=7)
    attachment_max_bytes: int = 10 * 1024 * 1024
    max_attachments: int = 20
    default_queue: str = "general"
    phone_region: str | None = None
    lookups: Lookups = field(default_factory=Lookups)


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What ingest did."""

    ticket_id: int
    message_id: int
    customer_id: int
    duplicate: bool = False
    created_ticket: bool = False
    reopened: bool = False
    attachment_ids: list[int] = field(default_factory=list)


class _Duplicate(Exception):
    pass


_UNKNOWN: Any = object()
_NO_OWNER = SimpleNamespace(customer_id=None, id=None, status=None)
_OPEN_TICKET = TICKET.alias("open_ticket")
# On SQLite (one writer at a time, nothing to lock) the handle's owner and their newest open
# ticket on the channel are read in one statement instead of two: the same two lookups as
# st.HANDLE_OWNER and st.OPEN_TICKET, the second as a correlated subquery.
_OWNER_AND_OPEN_TICKET = (
    sa.select(HANDLE.c.customer_id, TICKET.c.id, TICKET.c.status)
    .select_from(
        HANDLE.outerjoin(
            TICKET,
            TICKET.c.id
            == sa.select(_OPEN_TICKET.c.id)
            .where(
                _OPEN_TICKET.c.customer_id == HANDLE.c.customer_id,
                _OPEN_TICKET.c.channel == sa.bindparam("channel"),
                _OPEN_TICKET.c.status.in_(
                    [TicketStatus.NEW.value, TicketStatus.OPEN.value, TicketStatus.PENDING.value]
                ),
            )
            .order_by(_OPEN_TICKET.c.id.desc())
            .limit(1)
            .correlate(HANDLE)
            .scalar_subquery(),
        )
    )
    .where(HANDLE.c.kind == sa.bindparam("kind"), HANDLE.c.value == sa.bindparam("value"))
)


def _existing(uow: UnitOfWork, channel: str, external_id: str) -> IngestResult | None:
    rows = uow.fetch(st.EXISTING_MESSAGE, {"channel": channel, "external_id": external_id})
    if not rows:
        return None
    row = rows[0]
    return IngestResult(ticket_id=row[1], message_id=row[0], customer_id=row[2], duplicate=True)


def _customer(
    uow: UnitOfWork, contact: InboundContact, kind: str, value: str, owner: Any = _UNKNOWN
) -> tuple[int, bool]:
    """(customer id, whether this call created the customer); ``owner``: already looked up."""

    def lookup() -> int | None:
        rows = uow.fetch(st.HANDLE_OWNER, {"kind": kind, "value": value})
        return int(rows[0][0]) if rows else None

    found = lookup() if owner is _UNKNOWN else owner
    if found is not None:
        return found, False
    name = contact.customer_name.strip()[:200]
    cid = int(
        uow.fetch(
            st.CUSTOMER_INSERT,
            {"name": name, "language": contact.language, "tags": [], "created_at": uow.now},
        )[0][0]
    )
    if insert_ignore(uow, HANDLE, {"customer_id": cid, "kind": kind, "value": value}) is None:
        # Someone else created this person a moment ago: use theirs, drop ours.
        uow.fetch(st.CUSTOMER_DELETE, {"cid": cid})
        found = lookup()
        if found is None:  # pragma: no cover - the conflicting row must be visible now
            raise RuntimeError("handle conflict without a visible owner")
        return found, False
    uow.emit("customer.created", {"id": cid, "name": name, "handles": [[kind, value]]})
    return cid, True


def _open_ticket(
    uow: UnitOfWork,
    contact: InboundContact,
    customer_id: int,
    policy: IngestPolicy,
    open_checked: bool = False,
) -> tuple[Any, bool]:
    """The ticket to thread into, and whether it has to be reopened.

    ``open_checked``: the caller already knows the customer has no open ticket on the channel.
    """
    if contact.ticket_hint is not None:
        rows = uow.fetch(st.TICKET_BY_HINT, {"hint": contact.ticket_hint, "cid": customer_id})
        if rows:
            return rows[0], rows[0].status == TicketStatus.SOLVED
    params: dict[str, object] = {"cid": customer_id, "channel": contact.channel.value}
    rows = [] if open_checked else uow.fetch(st.OPEN_TICKET, params)
    if rows:
        return rows[0], False
    params["since"] = uow.now - policy.reopen_window
    rows = uow.fetch(st.SOLVED_TICKET, params)
    return (rows[0], True) if rows else (None, False)


def _new_ticket(
    uow: UnitOfWork, contact: InboundContact, customer_id: int, policy: IngestPolicy
) -> int:
    queue_name = contact.queue or policy.default_queue
    queue = policy.lookups.queue(uow, queue_name)
    if queue is None and contact.queue:
        raise ValidationError(
            "unknown queue", fields={"queue": f"no queue named {contact.queue!r}"}
        )
    sla_id = queue_policy_id(queue, contact.channel.value)
    sla = None if sla_id is None else policy.lookups.sla(uow, sla_id)
    answer_due, response_due = deadlines_for(sla, contact.channel.value, uow.now)
    skills = dict(queue.required_skills) if queue is not None else {}
    skills.update(contact.required_skills)
    subject = (contact.subject or contact.body_text.strip().split("\n", 1)[0])[:200]
    priority = (
        contact.priority
        if contact.priority is not None
        else (queue.default_priority if queue is not None else 2)
    )
    values = {
        "subject": subject,
        "status": TicketStatus.NEW.value,
        "priority": priority,
        "channel": contact.channel.value,
        "queue_id": queue.id if queue is not None else None,
        "team_id": queue.team_id if queue is not None else None,
        "required_skills": skills,
        "language": contact.language,
        "customer_id": customer_id,
        "sla_policy_id": sla.id if sla is not None else None,
        "created_at": uow.now,
        "updated_at": uow.now,
        "last_inbound_at": uow.now,
        "answer_due_at": answer_due,
        "first_response_due_at": response_due,
    }
    (row,) = uow.fetch(st.TICKET_INSERT, values)
    uow.emit("ticket.created", ticket_summary(row), ticket_id=row.id)
    return int(row.id)


def _store_message(
    uow: UnitOfWork, contact: InboundContact, ticket_id: int, customer_id: int, policy: IngestPolicy
) -> tuple[int, list[int]]:
    html = sanitize_html(contact.body_html) if contact.body_html else None
    values = {
        "ticket_id": ticket_id,
        "direction": Direction.IN.value,
        "channel": contact.channel.value,
        "author_user_id": None,
        "author_customer_id": customer_id,
        "body_text": contact.body_text,
        "body_html": html,
        "external_id": contact.external_id,
        "delivery_status": DeliveryStatus.RECEIVED.value,
        "created_at": uow.now,
    }
    message_id = insert_ignore(uow, MESSAGE, values)
    if message_id is None:
        raise _Duplicate
    ids: list[int] = []
    for att in contact.attachments:
        digest = policy.blobs.put(att.data)
        row = {
            "message_id": message_id,
            "filename": att.filename[:255],
            "content_type": att.content_type[:200],
            "size": len(att.data),
            "sha256": digest,
        }
        ids.append(uow.session.execute(st.ATTACHMENT_INSERT, row).scalar_one())
    payload = message_summary(SimpleNamespace(id=message_id, **values))
    payload["attachment_ids"] = ids
    uow.emit("message.created", payload, ticket_id=ticket_id)
    return message_id, ids


def _check(contact: InboundContact, policy: IngestPolicy) -> None:
    if not contact.external_id or len(contact.external_id) > 500:
        raise ValidationError("bad external id", fields={"external_id": "1-500 characters"})
    if len(contact.attachments) > policy.max_attachments:
        raise ValidationError(
            "too many attachments", fields={"attachments": f"at most {policy.max_attachments}"}
        )
    for att in contact.attachments:
        if len(att.data) > policy.attachment_max_bytes:
            raise PayloadTooLarge(
                f"attachment {att.filename!r} is larger than {policy.attachment_max_bytes} bytes",
                fields={"attachments": "too large"},
            )


def ingest(
    uow: UnitOfWork, contact: InboundContact, policy: IngestPolicy, actor: Actor | None = None
) -> IngestResult:
    """Store an inbound contact exactly once and thread it into the right ticket.

    Idempotent by (channel, external_id), also under concurrency: the message insert is
    ``ON CONFLICT DO NOTHING`` inside a savepoint, and a lost race rolls the savepoint back
    (customer, ticket and events included) and answers with the message that won.
    """
    _check(contact, policy)
    channel = contact.channel.value
    found = _existing(uow, channel, contact.external_id)
    if found is not None:
        return found
    kind = contact.handle_kind or handle_kind_for(contact.channel, contact.handle)
    value = normalise_handle(kind, contact.handle, region=policy.phone_region)
    mark = len(uow._events)
    savepoint = uow.session.begin_nested()
    try:
        known: Any = None
        if uow.dialect == "sqlite" and contact.ticket_hint is None:
            params = {"kind": kind.value, "value": value, "channel": channel}
            rows = uow.fetch(_OWNER_AND_OPEN_TICKET, params)
            known = rows[0] if rows else _NO_OWNER
        owner = _UNKNOWN if known is None else known.customer_id
        customer_id, new_customer = _customer(uow, contact, kind.value, value, owner)
        if new_customer or contact.new_ticket:
            # Created in this savepoint: no ticket can name it yet, and no other transaction
            # can see (let alone lock) the row, so there is nothing to look up or lock. (Or a
            # contact that is its own ticket, such as a phone call: nothing to thread into.)
            row, reopen = None, False
        elif known is not None and known.id is not None:
            row, reopen = known, False  # the newest open ticket, read with the owner
        else:
            if uow.dialect == "postgresql":  # serialise threading per customer
                uow.fetch(st.CUSTOMER_LOCK, {"cid": customer_id})
            open_checked = known is not None and known.customer_id == customer_id
            row, reopen = _open_ticket(uow, contact, customer_id, policy, open_checked)
        created = row is None
        if row is None:
            ticket_id = _new_ticket(uow, contact, customer_id, policy)
        else:
            ticket_id = row.id
            touch = (
                st.TICKET_TOUCH_REOPEN
                if reopen or row.status == TicketStatus.PENDING
                else st.TICKET_TOUCH
            )
            (touched,) = uow.fetch(touch, {"tid": ticket_id, "now": uow.now})
            if reopen:
                uow.emit("ticket.reopened", {"id": ticket_id}, ticket_id=ticket_id)
            if touched.awaiting_reply_since == uow.now:  # this message started the wait
                uow.emit("ticket.awaiting_reply", {
                    "id": ticket_id, "since": uow.now.isoformat(), "channel": touched.channel,
                    "queue_id": touched.queue_id, "team_id": touched.team_id,
                }, ticket_id=ticket_id)  # fmt: skip
        message_id, att_ids = _store_message(uow, contact, ticket_id, customer_id, policy)
    except _Duplicate:
        savepoint.rollback()
        del uow._events[mark:]
        again = _existing(uow, channel, contact.external_id)
        if again is None:  # pragma: no cover - conflict implies a committed winner
            raise RuntimeError("duplicate without a visible original") from None
        return again
    savepoint.commit()
    uow.audit(
        actor or Actor(f"channel:{channel}"),
        "contact.ingested",
        "ticket",
        ticket_id,
        {"message_id": message_id, "channel": channel, "new_ticket": created},
    )
    return IngestResult(
        ticket_id=ticket_id,
        message_id=message_id,
        customer_id=customer_id,
        created_ticket=created,
        reopened=reopen,
        attachment_ids=att_ids,
    )
