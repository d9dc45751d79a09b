"""The one shape every channel adapter produces, and handle normalisation (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import phonenumbers

from contact_center.errors import ValidationError
from tickets.domain import Channel, HandleKind

__all__ = [
    "InboundAttachment",
    "InboundContact",
    "handle_kind_for",
    "normalise_handle",
]

_EMAIL_RE = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\"]+$")
_CHAT_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_EXTERNAL_RE = re.compile(r"^[\x21-\x7e]{1,200}$")
_PHONE_RE = re.compile(r"^\+[0-9 ()-]{6,20}$")


@dataclass(frozen=True, slots=True)
class InboundAttachment:
    """A file that came with a contact."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class InboundContact:
    """A normalised inbound contact from any channel.

    ``external_id`` is the channel's own id for the message (Message-ID, MessageSid, CallSid,
    chat message id); the pair (channel, external_id) makes ingest idempotent.
    """

    channel: Channel
    external_id: str
    handle: str
    body_text: str = ""
    body_html: str | None = None
    subject: str = ""
    customer_name: str = ""
    language: str | None = None
    queue: str | None = None
    priority: int | None = None
    required_skills: dict[str, int] = field(default_factory=dict)
    attachments: tuple[InboundAttachment, ...] = ()
    handle_kind: HandleKind | None = None
    ticket_hint: int | None = None
    new_ticket: bool = False
    """Never thread into an open ticket: one ticket per contact (a phone call is one)."""
    received_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def handle_kind_for(channel: Channel, handle: str = "") -> HandleKind:
    """Default handle kind of a channel; the API channel guesses email and E.164 handles."""
    if channel is Channel.API:
        value = handle.strip()
        if _EMAIL_RE.match(value.lower()):
            return HandleKind.EMAIL
        if _PHONE_RE.match(value):
            return HandleKind.PHONE
        return HandleKind.EXTERNAL
    return {
        Channel.EMAIL: HandleKind.EMAIL,
        Channel.SMS: HandleKind.PHONE,
        Channel.VOICE: HandleKind.PHONE,
        Channel.WHATSAPP: HandleKind.WHATSAPP,
        Channel.CHAT: HandleKind.CHAT,
        Channel.API: HandleKind.EXTERNAL,
    }[channel]


def _phone(value: str, region: str | None) -> str:
    raw = value.strip()
    for prefix in ("whatsapp:", "tel:", "sms:"):
        if raw.lower().startswith(prefix):
            raw = raw[len(prefix) :]
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise ValidationError(
            "not a phone number", fields={"handle": "expected E.164, e.g. +4930123456"}
        ) from None
    if not phonenumbers.is_possible_number(number):
        raise ValidationError("not a phone number", fields={"handle": "impossible number"})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_handle(kind: HandleKind, value: str, *, region: str | None = None) -> str:
    """Canonical form of a handle: lower-cased email, E.164 phone, checked chat/external id."""
    value = value.strip()
    if not value:
        raise ValidationError("empty handle", fields={"handle": "required"})
    if kind is HandleKind.EMAIL:
        lowered = value.lower()
        if len(lowered) > 320 or not _EMAIL_RE.match(lowered):
            raise ValidationError("not an email address", fields={"handle": "invalid email"})
        return lowered
    if kind in (HandleKind.PHONE, HandleKind.WHATSAPP):
        return _phone(value, region)
    if kind is HandleKind.CHAT and not _CHAT_RE.match(value):
        raise ValidationError(
            "invalid visitor id", fields={"handle": "1-128 of A-Z a-z 0-9 _ . : -"}
        )
    if not _EXTERNAL_RE.match(value):
        raise ValidationError(
            "invalid identifier", fields={"handle": "1-200 printable ASCII, no spaces"}
        )
    return value
