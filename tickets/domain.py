"""Plain domain vocabulary shared by every package (no I/O)."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ASYNC_CHANNELS",
    "DEFAULT_CAPACITY",
    "LIVE_CHANNELS",
    "READ_FROM_DESK",
    "Channel",
    "DeliveryStatus",
    "Direction",
    "HandleKind",
    "OfferOutcome",
    "Presence",
    "Role",
    "TicketStatus",
]


class Channel(StrEnum):
    """Where a contact came from (and where replies go)."""

    EMAIL = "email"
    CHAT = "chat"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    VOICE = "voice"
    API = "api"


LIVE_CHANNELS = frozenset({Channel.CHAT, Channel.VOICE})
ASYNC_CHANNELS = frozenset({Channel.EMAIL, Channel.SMS, Channel.WHATSAPP, Channel.API})
# the customer's client reads replies from the desk itself (API polling, the chat socket):
# a reply there is delivered once it is stored, with no job and no sender
READ_FROM_DESK = frozenset({Channel.API, Channel.CHAT})

DEFAULT_CAPACITY: dict[str, int] = {
    Channel.VOICE: 1,
    Channel.CHAT: 3,
    Channel.SMS: 5,
    Channel.WHATSAPP: 5,
    Channel.EMAIL: 10,
    Channel.API: 10,
}


class TicketStatus(StrEnum):
    """Ticket life cycle."""

    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    SOLVED = "solved"
    CLOSED = "closed"


class Direction(StrEnum):
    """A message's direction; notes are internal and never leave the desk."""

    IN = "in"
    OUT = "out"
    NOTE = "note"


class DeliveryStatus(StrEnum):
    """Delivery of an outbound message (inbound ones are ``received``)."""

    RECEIVED = "received"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


class HandleKind(StrEnum):
    """How a customer is reached on a channel."""

    EMAIL = "email"
    PHONE = "phone"
    CHAT = "chat"
    WHATSAPP = "whatsapp"
    EXTERNAL = "external"


class Role(StrEnum):
    """User roles, in increasing power."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class Presence(StrEnum):
    """Agent presence for routing."""

    AVAILABLE = "available"
    BUSY = "busy"
    AWAY = "away"
    OFFLINE = "offline"
    WRAP_UP = "wrap_up"


class OfferOutcome(StrEnum):
    """How an offer (reservation) ended."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
