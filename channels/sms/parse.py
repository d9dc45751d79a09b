"""Pure parsing of Twilio Messaging webhooks and status callbacks (no I/O, no vendor library).

Twilio posts form fields (``MessageSid``, ``From``, ``To``, ``Body``, ``NumMedia``,
``MediaUrl0``…). A ``From`` of ``whatsapp:+…`` is a WhatsApp message, anything else an SMS/MMS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from contact_center.errors import ValidationError
from tickets.contact import InboundContact
from tickets.domain import Channel, DeliveryStatus

__all__ = [
    "KEYWORD_REPLIES",
    "InboundSms",
    "Keyword",
    "Media",
    "StatusReport",
    "delivery_status",
    "keyword_of",
    "parse_message_status",
    "parse_sms",
    "signed_url",
]

_SID = re.compile(r"^[A-Z]{2}[0-9a-f]{32}$")
_MAX_MEDIA = 10  # Twilio delivers at most ten media per message


def signed_url(public_base_url: str, raw_path: str) -> str:
    """The URL Twilio signed: our configured public base + the raw path and query we got.

    Never built from ``Host`` or ``X-Forwarded-*`` headers: whoever reaches us can set those.
    """
    return public_base_url.rstrip("/") + raw_path


class Keyword(StrEnum):
    """The carrier keywords: opt out, opt back in, ask for help."""

    STOP = "stop"
    START = "start"
    HELP = "help"


# The words US/CA carriers and Twilio's opt-out management treat as keywords (whole message,
# any case, surrounding whitespace and punctuation ignored).
_KEYWORDS = {
    **dict.fromkeys(
        ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"),
        Keyword.STOP,
    ),
    **dict.fromkeys(("START", "YES", "UNSTOP"), Keyword.START),
    **dict.fromkeys(("HELP", "INFO"), Keyword.HELP),
}


KEYWORD_REPLIES = {
    Keyword.STOP: "You are unsubscribed and will get no more messages from us. "
    "Reply START to subscribe again.",
    Keyword.START: "You are subscribed again. Reply STOP to unsubscribe, HELP for help.",
}
"""Our answers when we answer keywords ourselves (HELP's is ``CC_TWILIO_SMS_HELP_TEXT``)."""


def keyword_of(body: str) -> Keyword | None:
    """The keyword a message consists of, if it is one (``" Stop. "`` is STOP)."""
    word = body.strip().strip(".!?").strip().upper()
    return _KEYWORDS.get(word)


@dataclass(frozen=True, slots=True)
class Media:
    """A file of an MMS/WhatsApp message, still at Twilio."""

    url: str
    content_type: str


@dataclass(frozen=True, slots=True)
class InboundSms:
    """An inbound message: the contact for ingest, its media to fetch, its keyword if any."""

    contact: InboundContact
    media: tuple[Media, ...] = ()
    keyword: Keyword | None = None
    to: str = ""


def _required(params: Mapping[str, str], name: str) -> str:
    value = (params.get(name) or "").strip()
    if not value:
        raise ValidationError(f"{name} is missing", fields={name: "required"})
    return value


def _sid(params: Mapping[str, str], name: str) -> str:
    value = _required(params, name)
    if not _SID.match(value):
        raise ValidationError(f"{name} is not a Twilio SID", fields={name: "invalid"})
    return value


def parse_sms(params: Mapping[str, str], *, queue: str | None = None) -> InboundSms:
    """The contact of a Messaging webhook (SMS, MMS or WhatsApp)."""
    sid = _sid(params, "MessageSid")
    sender = _required(params, "From")
    whatsapp = sender.lower().startswith("whatsapp:")
    channel = Channel.WHATSAPP if whatsapp else Channel.SMS
    body = params.get("Body") or ""
    media = []
    try:
        count = min(int(params.get("NumMedia") or 0), _MAX_MEDIA)
    except ValueError:
        raise ValidationError("NumMedia is not a number", fields={"NumMedia": "invalid"}) from None
    for i in range(count):
        url = (params.get(f"MediaUrl{i}") or "").strip()
        if url:
            kind = (params.get(f"MediaContentType{i}") or "application/octet-stream").strip()
            media.append(Media(url, kind[:200]))
    contact = InboundContact(
        channel=channel,
        external_id=sid,
        handle=sender,
        body_text=body,
        customer_name=(params.get("ProfileName") or "").strip()[:200],
        queue=queue,
    )
    word = None if whatsapp or media else keyword_of(body)
    return InboundSms(contact, tuple(media), word, params.get("To", ""))


# Twilio message status -> ours. Twilio: accepted, scheduled, queued, sending, sent, receiving,
# received, delivered, undelivered, failed, read, canceled, partially_delivered.
_STATUS = {
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.SENDING,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "partially_delivered": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}


def delivery_status(twilio_status: str) -> DeliveryStatus | None:
    """Our delivery status for a Twilio message status (None: not about an outbound one)."""
    return _STATUS.get(twilio_status.strip().lower())


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A message status callback."""

    message_sid: str
    status: DeliveryStatus
    error: str | None = None


def parse_message_status(params: Mapping[str, str]) -> StatusReport | None:
    """The report of a status callback, or None when it says nothing we track."""
    sid = _sid(params, "MessageSid")
    status = delivery_status(params.get("MessageStatus") or params.get("SmsStatus") or "")
    if status is None:
        return None
    code = (params.get("ErrorCode") or "").strip()
    error = None
    if code or status is DeliveryStatus.FAILED:
        text = (params.get("ErrorMessage") or "").strip()
        error = f"Twilio {params.get('MessageStatus') or 'failed'}"
        if code:
            error += f", error {code}"
        if text:
            error += f": {text[:200]}"
    return StatusReport(sid, status, error)
