"""Replies, internal notes and outbound delivery state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from channels.base import OutboundMessage
from contact_center.db import Actor, UnitOfWork
from contact_center.errors import Conflict, NotFound, PayloadTooLarge, ValidationError
from tickets.actions._common import ATTACHMENT, HANDLE, MESSAGE, TICKET, message_summary
from tickets.actions._statements import MESSAGE_BY_ID, TICKET_BY_ID
from tickets.actions.ingest import IngestPolicy
from tickets.blobs import BlobStore
from tickets.contact import InboundAttachment
from tickets.domain import READ_FROM_DESK, DeliveryStatus, Direction, HandleKind, TicketStatus
from tickets.queries import Viewer, get_ticket

__all__ = [
    "PostResult",
    "advance_delivery",
    "begin_delivery",
    "due_messages",
    "post_message",
    "record_delivery",
    "waiting_messages",
]

# A queued message whose job vanished is re-sent after this; a send running longer is retaken.
STUCK_AFTER = timedelta(minutes=15)
SEND_LEASE = timedelta(minutes=5)

_FINAL = (DeliveryStatus.SENT.value, DeliveryStatus.DELIVERED.value, DeliveryStatus.FAILED.value)
_HANDLE_FOR_CHANNEL = {
    "email": HandleKind.EMAIL,
    "sms": HandleKind.PHONE,
    "voice": HandleKind.PHONE,
    "whatsapp": HandleKind.WHATSAPP,
    "chat": HandleKind.CHAT,
    "api": HandleKind.EXTERNAL,
}
# Several rows in one statement; the ids come back in the order of the rows.
_ATTACHMENTS_INSERT = sa.insert(ATTACHMENT).returning(ATTACHMENT.c.id, sort_by_parameter_order=True)
_ATTACHMENTS_OF = (
    sa.select(ATTACHMENT.c.filename, ATTACHMENT.c.content_type, ATTACHMENT.c.sha256)
    .where(ATTACHMENT.c.message_id == sa.bindparam("mid"))
    .order_by(ATTACHMENT.c.id)
)

# Built once (building costs more Python than running); an UPDATE without values() sets the
# columns named by the parameters it is run with.
_BY_CLIENT_KEY = sa.select(MESSAGE.c.id, MESSAGE.c.direction, MESSAGE.c.body_text).where(
    MESSAGE.c.ticket_id == sa.bindparam("tid"), MESSAGE.c.client_key == sa.bindparam("key")
)
_MESSAGE_INSERT = sa.insert(MESSAGE).returning(MESSAGE.c.id)
_TICKET_UPDATE = sa.update(TICKET).where(TICKET.c.id == sa.bindparam("tid"))
_MESSAGE_UPDATE = sa.update(MESSAGE).where(MESSAGE.c.id == sa.bindparam("mid"))
# a delivery job's reads, and taking the message to send it
_DELIVERY_OF = sa.select(MESSAGE.c.delivery_status, MESSAGE.c.ticket_id).where(
    MESSAGE.c.id == sa.bindparam("mid")
)
_HANDLE = (
    sa.select(HANDLE.c.value, HANDLE.c.undeliverable)
    .where(HANDLE.c.customer_id == sa.bindparam("cid"), HANDLE.c.kind == sa.bindparam("kind"))
    .order_by(HANDLE.c.id)
    .limit(1)
)
_REFS = (
    sa.select(MESSAGE.c.external_id)
    .where(MESSAGE.c.ticket_id == sa.bindparam("tid"), MESSAGE.c.external_id.is_not(None))
    .order_by(MESSAGE.c.id)
)


def _take(lease: Any) -> Any:
    """Taking a message to send it, if it is still as read: a second job for it (a sweep
    re-woke it meanwhile) that read the same row waits here for the first one's commit, then
    finds it changed and sends nothing (PostgreSQL re-checks the row after the lock). It
    returns the id, as the driver path gives no row count."""
    return (
        sa.update(MESSAGE)
        .where(
            MESSAGE.c.id == sa.bindparam("mid"),
            MESSAGE.c.delivery_status == sa.bindparam("was"),
            lease,
        )
        .values(
            delivery_status=DeliveryStatus.SENDING.value,
            delivery_lease_until=sa.bindparam("until"),
        )
        .returning(MESSAGE.c.id)
    )


_TAKE = _take(MESSAGE.c.delivery_lease_until.is_(None))
_TAKE_LEASED = _take(MESSAGE.c.delivery_lease_until == sa.bindparam("lease"))


@dataclass(frozen=True, slots=True)
class PostResult:
    """The stored message, and whether it must be delivered by a job."""

    message_id: int
    ticket_id: int
    needs_delivery: bool
    attachment_ids: tuple[int, ...] = ()
    replayed: bool = False  # an earlier post with the same client key: nothing was written


def _check_files(files: Sequence[InboundAttachment], policy: IngestPolicy | None) -> BlobStore:
    """The store for ``files`` once their count and sizes are within the policy's limits."""
    if policy is None:
        raise ValueError("files need the policy with the blob store and the limits")
    if len(files) > policy.max_attachments:
        raise ValidationError(
            "too many attachments", fields={"attachments": f"at most {policy.max_attachments}"}
        )
    for i, f in enumerate(files):
        if len(f.data) > policy.attachment_max_bytes:
            raise PayloadTooLarge(
                f"attachment {f.filename!r} is larger than {policy.attachment_max_bytes} bytes",
                fields={f"attachments.{i}": "too large"},
            )
    return policy.blobs


def _store_files(
    uow: UnitOfWork, message_id: int, files: Sequence[InboundAttachment], blobs: BlobStore
) -> tuple[int, ...]:
    """Each file into the content-addressed store, and one Attachment row per file."""
    rows = [
        {"message_id": message_id, "filename": f.filename[:255],
         "content_type": f.content_type[:200], "size": len(f.data), "sha256": blobs.put(f.data)}
        for f in files
    ]  # fmt: skip
    return tuple(uow.session.execute(_ATTACHMENTS_INSERT, rows).scalars())


def post_message(
    uow: UnitOfWork,
    viewer: Viewer,
    ticket_id: int,
    body: str,
    *,
    internal: bool = False,
    files: Sequence[InboundAttachment] = (),
    policy: IngestPolicy | None = None,
    client_key: str | None = None,
) -> PostResult:
    """An agent's public reply (goes out on the ticket's channel) or internal note.

    ``client_key`` (a REST caller's ``Idempotency-Key``, the console's own id for a chat
    reply) is stored with the message, unique per ticket: sending the same message with it
    again answers with the stored one (``replayed``) and writes nothing; a different message
    (body, or reply against note) with a known key is a :class:`Conflict`.

    ``files`` become the message's attachments (a reply sends them along), stored in
    ``policy.blobs`` after their count and sizes are checked against ``policy``'s limits
    (``CC_ATTACHMENT_MAX_BYTES``, 20 files), before anything is written.
    """
    if not body.strip():
        raise ValidationError("empty message", fields={"body": "required"})
    store = _check_files(files, policy) if files else None
    ticket = get_ticket(uow.session, viewer, ticket_id, lock=uow.dialect == "postgresql")
    direction = Direction.NOTE if internal else Direction.OUT
    if client_key is not None:
        found = uow.fetch(_BY_CLIENT_KEY, {"tid": ticket_id, "key": client_key})
        if found:
            known = found[0]
            if known.direction != direction.value or known.body_text != body:
                raise Conflict(
                    "this key was used for a different message on this ticket",
                    fields={"client_key": f"message {known.id} has it"},
                )
            return PostResult(message_id=int(known.id), ticket_id=ticket_id,
                              needs_delivery=False, replayed=True)  # fmt: skip
    if ticket.status == TicketStatus.CLOSED:
        raise ValidationError("ticket is closed", fields={"ticket": "closed tickets are read-only"})
    at_desk = not internal and ticket.channel in READ_FROM_DESK  # delivered as it is stored
    values = {
        "ticket_id": ticket_id,
        "direction": direction.value,
        "channel": ticket.channel,
        "author_user_id": viewer.user_id,
        "author_customer_id": None,
        "body_text": body,
        "body_html": None,
        "external_id": None,
        "client_key": client_key,
        "delivery_status": (
            DeliveryStatus.RECEIVED.value
            if internal
            else DeliveryStatus.SENT.value
            if at_desk
            else DeliveryStatus.QUEUED.value
        ),
        "created_at": uow.now,
        "delivery_lease_until": None if internal or at_desk else uow.now + STUCK_AFTER,
    }
    message_id = int(uow.fetch(_MESSAGE_INSERT, values)[0][0])
    attachment_ids = _store_files(uow, message_id, files, store) if store else ()
    changes: dict[str, object] = {"updated_at": uow.now}
    if not internal:
        if ticket.first_response_at is None:
            changes["first_response_at"] = uow.now
        if ticket.awaiting_reply_since is not None:  # this reply ends the next-response round
            changes["awaiting_reply_since"] = None
            changes["next_response_due_at"] = None
        if ticket.status in (TicketStatus.NEW, TicketStatus.SOLVED):
            changes["status"] = TicketStatus.OPEN.value
            changes["solved_at"] = None
    uow.session.execute(_TICKET_UPDATE, {"tid": ticket_id, **changes})  # SET: changes' keys
    payload = message_summary(SimpleNamespace(id=message_id, **values))
    payload["attachment_ids"] = list(attachment_ids)
    uow.emit("message.created", payload, ticket_id=ticket_id)
    if "first_response_at" in changes:
        uow.emit("ticket.first_response", {"id": ticket_id, "at": uow.now.isoformat()}, ticket_id)
    uow.audit(
        Actor("user", viewer.user_id),
        "message.note" if internal else "message.reply",
        "ticket",
        ticket_id,
        {"message_id": message_id, "attachment_ids": list(attachment_ids)},
    )
    if at_desk:  # what the delivery job would have recorded, in the same transaction
        _delivered(uow, message_id, ticket_id, DeliveryStatus.SENT.value, None)
    return PostResult(
        message_id=message_id,
        ticket_id=ticket_id,
        needs_delivery=not internal and not at_desk,
        attachment_ids=attachment_ids,
    )


def begin_delivery(
    uow: UnitOfWork, message_id: int, blobs: BlobStore | None = None
) -> OutboundMessage | None:
    """Mark an outbound message as sending and describe it, files included; None if final.

    The files are read from ``blobs``. One missing from the store can never be sent: the
    message is marked ``failed`` with the file named, and None is returned.
    """
    found = uow.fetch(MESSAGE_BY_ID, {"mid": message_id})
    if not found:
        raise NotFound(f"message {message_id} not found")
    msg = found[0]
    if msg.direction != Direction.OUT or msg.delivery_status in _FINAL:
        return None
    lease = msg.delivery_lease_until
    if msg.delivery_status == DeliveryStatus.SENDING and lease is not None and lease > uow.now:
        return None  # another worker is sending it right now
    (ticket,) = uow.fetch(TICKET_BY_ID, {"tid": msg.ticket_id})
    kind = _HANDLE_FOR_CHANNEL.get(msg.channel, HandleKind.EXTERNAL)
    handles = uow.fetch(_HANDLE, {"cid": ticket.customer_id, "kind": kind.value})
    to = handles[0] if handles else None
    handle = None if to is None else to.value
    if to is not None and to.undeliverable and kind is HandleKind.PHONE:
        why = "the customer opted out of messages (STOP); they can send START to opt back in"
        record_delivery(uow, message_id, None, DeliveryStatus.FAILED.value, why)
        return None
    refs = [r[0] for r in uow.fetch(_REFS, {"tid": ticket.id})]
    files: list[tuple[str, str, bytes]] = []
    for name, content_type, digest in uow.session.execute(_ATTACHMENTS_OF, {"mid": message_id}):
        if blobs is None:
            raise ValueError(f"message {message_id} has attachments: begin_delivery needs blobs")
        try:
            files.append((name, content_type, blobs.get(digest)))
        except FileNotFoundError:
            why = f"attachment {name!r} ({digest[:12]}) is missing from the attachment store"
            record_delivery(uow, message_id, None, DeliveryStatus.FAILED.value, why)
            return None
    params = {"mid": message_id, "was": msg.delivery_status, "until": uow.now + SEND_LEASE}
    if lease is not None:
        params["lease"] = lease
    if not uow.fetch(_TAKE_LEASED if lease is not None else _TAKE, params):
        return None
    return OutboundMessage(
        message_id=message_id,
        ticket_id=ticket.id,
        channel=msg.channel,
        to_handle=handle or "",
        body_text=msg.body_text,
        body_html=msg.body_html,
        subject=ticket.subject,
        in_reply_to=tuple(r for r in refs if r),
        attachments=tuple(files),
    )


def record_delivery(
    uow: UnitOfWork,
    message_id: int,
    external_id: str | None,
    status: str,
    error: str | None = None,
) -> None:
    """Store what the channel said about an outbound message (never leaves a final state)."""
    found = uow.fetch(_DELIVERY_OF, {"mid": message_id})
    if not found:
        raise NotFound(f"message {message_id} not found")
    msg = found[0]
    if msg.delivery_status in _FINAL and status not in (DeliveryStatus.DELIVERED.value,):
        return
    values: dict[str, object] = {"delivery_status": status, "delivery_error": error}
    values["delivery_lease_until"] = (
        uow.now + STUCK_AFTER if status == DeliveryStatus.QUEUED.value else None
    )
    if external_id is not None:
        values["external_id"] = external_id
    uow.session.execute(_MESSAGE_UPDATE, {"mid": message_id, **values})  # SET: values' keys
    _delivered(uow, message_id, msg.ticket_id, status, error)


def _delivered(uow: UnitOfWork, message_id: int, ticket_id: int, status: str,
               error: str | None) -> None:  # fmt: skip
    uow.emit("message.delivery", {"id": message_id, "status": status, "error": error},
             ticket_id=ticket_id)  # fmt: skip
    uow.audit(Actor("system"), "message.delivery", "message", message_id, {"status": status})


# Forward order of delivery reports; the last two are final and never left.
_RANK = {DeliveryStatus.QUEUED.value: 1, DeliveryStatus.SENDING.value: 2,
         DeliveryStatus.SENT.value: 3, DeliveryStatus.DELIVERED.value: 4,
         DeliveryStatus.FAILED.value: 4}  # fmt: skip
_OUTBOUND_BY_EXTERNAL = sa.select(MESSAGE.c.id).where(
    MESSAGE.c.external_id == sa.bindparam("external_id"),
    MESSAGE.c.channel.in_(sa.bindparam("channels", expanding=True)),
    MESSAGE.c.direction == Direction.OUT.value,
)


def advance_delivery(
    uow: UnitOfWork,
    message_id: int | None,
    status: str,
    error: str | None = None,
    *,
    external_id: str | None = None,
    channels: Sequence[str] = ("sms", "whatsapp", "voice"),
) -> bool:
    """A channel's report on an outbound message (a status callback): forward moves only.

    queued < sending < sent < delivered | failed. Delivered and failed are never left, and a
    report behind what is stored changes nothing, so callbacks may arrive in any order and
    any number of times. ``message_id`` None: the message is found by ``external_id`` among
    ``channels``; a known message without its channel id yet gets ``external_id``. True if
    the status moved.
    """
    if message_id is None:
        if external_id is None:
            return False
        message_id = uow.session.execute(
            _OUTBOUND_BY_EXTERNAL, {"external_id": external_id, "channels": list(channels)}
        ).scalar()
        if message_id is None:
            return False
    columns = (MESSAGE.c.delivery_status, MESSAGE.c.ticket_id, MESSAGE.c.external_id,
               MESSAGE.c.direction)  # fmt: skip
    msg = uow.session.execute(sa.select(*columns).where(MESSAGE.c.id == message_id)).first()
    if msg is None or msg.direction != Direction.OUT:
        return False
    current = msg.delivery_status
    moved = _RANK.get(current, 0) < 4 and _RANK.get(status, 0) > _RANK.get(current, 0)
    values: dict[str, object] = {}
    if external_id is not None and msg.external_id is None:
        values["external_id"] = external_id
    if moved:
        values.update(delivery_status=status, delivery_error=error, delivery_lease_until=None)
    if values:
        uow.session.execute(sa.update(MESSAGE).where(MESSAGE.c.id == message_id).values(**values))
    if moved:
        uow.emit("message.delivery", {"id": message_id, "status": status, "error": error},
                 ticket_id=msg.ticket_id)  # fmt: skip
        uow.audit(Actor("system"), "message.delivery", "message", message_id,
                  {"status": status, "reported": True})  # fmt: skip
    return moved


def due_messages(uow: UnitOfWork, limit: int = 500) -> list[int]:
    """Outbound messages whose job vanished (worker killed, queue lost): wake them again.

    A send that outlived its lease is put back to ``queued`` so the new job may take it.
    """
    pending = sa.and_(
        MESSAGE.c.delivery_status.in_((DeliveryStatus.QUEUED.value, DeliveryStatus.SENDING.value)),
        MESSAGE.c.delivery_lease_until < uow.now,
    )
    return _requeue(uow, pending, limit)


def waiting_messages(uow: UnitOfWork) -> list[int]:
    """Every outbound message whose job may be gone with a job queue that came back empty:
    all ``queued`` ones, and ``sending`` ones whose lease ran out (one mid-send keeps it)."""
    pending = sa.or_(
        MESSAGE.c.delivery_status == DeliveryStatus.QUEUED.value,
        sa.and_(
            MESSAGE.c.delivery_status == DeliveryStatus.SENDING.value,
            MESSAGE.c.delivery_lease_until < uow.now,
        ),
    )
    return _requeue(uow, pending, None)


def _requeue(uow: UnitOfWork, pending: Any, limit: int | None) -> list[int]:
    """The ids of the messages ``pending`` selects (the first ``limit``, or all), put back to
    ``queued`` with a new stuck window."""
    q = sa.select(MESSAGE.c.id).where(pending).order_by(MESSAGE.c.id)
    ids = list(uow.session.execute(q if limit is None else q.limit(limit)).scalars())
    if ids:
        # all of them: by the same condition (a long id list would overflow SQLite's
        # parameters); the first ``limit``: by id
        which = pending if limit is None else MESSAGE.c.id.in_(ids)
        uow.session.execute(
            sa.update(MESSAGE)
            .where(which)
            .values(
                delivery_status=DeliveryStatus.QUEUED.value,
                delivery_lease_until=uow.now + STUCK_AFTER,
            )
        )
    return ids
