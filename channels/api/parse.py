"""Pure parsing of ``POST /api/v1/inbound`` bodies into ``InboundContact``."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

import pydantic

from contact_center.errors import ValidationError
from tickets.contact import InboundAttachment, InboundContact
from tickets.domain import Channel, HandleKind

__all__ = ["InboundAttachmentBody", "InboundBody", "parse_inbound"]


class InboundAttachmentBody(pydantic.BaseModel):
    """A file, base64-encoded."""

    model_config = pydantic.ConfigDict(extra="forbid")

    filename: str = pydantic.Field(min_length=1, max_length=255)
    content_type: str = pydantic.Field(default="application/octet-stream", max_length=200)
    data_base64: str


class InboundBody(pydantic.BaseModel):
    """A contact from an integration (or a test) in the generic API channel.

    ``external_id`` is the caller's idempotency key: sending the same one twice stores one
    message. ``channel`` may name another channel when an integration relays one.
    """

    model_config = pydantic.ConfigDict(extra="forbid")

    external_id: str = pydantic.Field(min_length=1, max_length=500)
    channel: Literal["api", "email", "chat", "sms", "whatsapp", "voice"] = "api"
    handle: str = pydantic.Field(min_length=1, max_length=320)
    handle_kind: Literal["email", "phone", "chat", "whatsapp", "external"] | None = None
    name: str = pydantic.Field(default="", max_length=200)
    subject: str = pydantic.Field(default="", max_length=500)
    body: str = pydantic.Field(default="", max_length=200_000)
    body_html: str | None = pydantic.Field(default=None, max_length=1_000_000)
    language: str | None = pydantic.Field(default=None, pattern=r"^[a-z]{2}(-[A-Za-z]{2,4})?$")
    queue: str | None = pydantic.Field(default=None, max_length=120)
    priority: int | None = pydantic.Field(default=None, ge=0, le=4)
    skills: dict[str, Annotated[int, pydantic.Field(ge=1, le=5)]] = {}
    attachments: list[InboundAttachmentBody] = pydantic.Field(default=[], max_length=20)


def parse_inbound(body: InboundBody) -> InboundContact:
    """Turn a validated body into the contact every channel produces."""
    atts = []
    for i, a in enumerate(body.attachments):
        try:
            data = base64.b64decode(a.data_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError(
                "attachment is not base64", fields={f"attachments.{i}.data_base64": "invalid"}
            ) from None
        atts.append(InboundAttachment(a.filename, a.content_type, data))
    if not body.body.strip() and not body.body_html and not atts:
        raise ValidationError("empty contact", fields={"body": "body, body_html or attachments"})
    return InboundContact(
        channel=Channel(body.channel),
        external_id=body.external_id,
        handle=body.handle,
        handle_kind=HandleKind(body.handle_kind) if body.handle_kind else None,
        body_text=body.body,
        body_html=body.body_html,
        subject=body.subject,
        customer_name=body.name,
        language=body.language,
        queue=body.queue,
        priority=body.priority,
        required_skills=dict(body.skills),
        attachments=tuple(atts),
    )
