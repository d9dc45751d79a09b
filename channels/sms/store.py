"""What the SMS channel writes besides ``ingest``: opt-outs and fetched media (actions)."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from channels.sms.client import FetchedMedia
from contact_center.db import Actor, UnitOfWork
from contact_center.errors import NotFound
from tickets.actions._common import ATTACHMENT, HANDLE, MESSAGE
from tickets.blobs import BlobStore
from tickets.contact import normalise_handle
from tickets.domain import HandleKind

__all__ = ["attach_media", "filename_for", "set_opt_out"]

_ACTOR = Actor("channel:sms")
_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "audio/mpeg": ".mp3",
    "audio/wav": ".wav",
    "audio/ogg": ".ogg",
    "video/mp4": ".mp4",
    "video/3gpp": ".3gp",
    "application/pdf": ".pdf",
    "text/vcard": ".vcf",
    "text/plain": ".txt",
}


def filename_for(content_type: str, index: int, stem: str = "media") -> str:
    """A file name for a media file (Twilio gives none): ``media-1.jpg``."""
    base = content_type.split(";", 1)[0].strip().lower()
    return f"{stem}-{index}{_EXTENSIONS.get(base, '.bin')}"


def set_opt_out(uow: UnitOfWork, phone: str, opted_out: bool, region: str | None = None) -> bool:
    """Record STOP (``opted_out``) or START for a phone number; True if a handle changed.

    An opted-out number gets no more messages from the desk: delivery of replies to it fails
    at once with the reason (``tickets.actions.messages.begin_delivery``).
    """
    value = normalise_handle(HandleKind.PHONE, phone, region=region)
    changed = uow.session.execute(
        sa.update(HANDLE)
        .where(
            HANDLE.c.kind == HandleKind.PHONE.value,
            HANDLE.c.value == value,
            HANDLE.c.undeliverable != opted_out,
        )
        .values(undeliverable=opted_out)
        .returning(HANDLE.c.customer_id)
    ).first()
    if changed is None:
        return False
    uow.audit(_ACTOR, "handle.opt_out" if opted_out else "handle.opt_in", "customer",
              int(changed.customer_id), {"phone": value})  # fmt: skip
    return True


def attach_media(
    uow: UnitOfWork, message_id: int, files: Sequence[FetchedMedia], blobs: BlobStore,
    stem: str = "media",
) -> list[int]:  # fmt: skip
    """Store the downloaded files of an inbound message as its attachments (once).

    Dropped files (too large, gone) are named at the end of the message text, as the email
    channel does. A second run for the same message (a retried job) changes nothing.
    """
    msg = uow.session.execute(
        sa.select(MESSAGE.c.ticket_id, MESSAGE.c.body_text).where(MESSAGE.c.id == message_id)
    ).first()
    if msg is None:
        raise NotFound(f"message {message_id} not found")
    has = uow.session.execute(
        sa.select(ATTACHMENT.c.id).where(ATTACHMENT.c.message_id == message_id).limit(1)
    ).first()
    if has is not None:
        return []
    ids: list[int] = []
    notes: list[str] = []
    for i, f in enumerate(files, 1):
        name = filename_for(f.content_type, i, stem)
        if f.data is None:
            notes.append(f"[{name} ({f.content_type}) not stored: {f.dropped}]")
            continue
        row = {"message_id": message_id, "filename": name, "content_type": f.content_type,
               "size": len(f.data), "sha256": blobs.put(f.data)}  # fmt: skip
        insert = sa.insert(ATTACHMENT).values(**row).returning(ATTACHMENT.c.id)
        ids.append(int(uow.session.execute(insert).scalar_one()))
    if notes:
        body = "\n\n".join(x for x in (msg.body_text, "\n".join(notes)) if x)
        uow.session.execute(
            sa.update(MESSAGE).where(MESSAGE.c.id == message_id).values(body_text=body)
        )
    payload = {"id": message_id, "ticket_id": msg.ticket_id, "attachment_ids": ids,
               "dropped": notes}  # fmt: skip
    uow.emit("message.attachments", payload, ticket_id=msg.ticket_id)
    uow.audit(_ACTOR, "message.attachments", "message", message_id,
              {"attachment_ids": ids, "dropped": len(notes)})  # fmt: skip
    return ids
