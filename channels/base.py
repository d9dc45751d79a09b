"""What every channel adapter shares: the outbound message and the sender interface."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["LocalSender", "OutboundMessage", "OutboundSender", "SendResult"]


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A reply or notification leaving through a channel."""

    message_id: int
    ticket_id: int
    channel: str
    to_handle: str
    body_text: str
    body_html: str | None = None
    subject: str = ""
    in_reply_to: tuple[str, ...] = ()
    attachments: tuple[tuple[str, str, bytes], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the channel said: its id for the message and the status reached."""

    external_id: str | None
    status: str = "sent"


class OutboundSender(Protocol):
    """Sends one message; raises :class:`contact_center.errors.ChannelError` subclasses."""

    def send(self, message: OutboundMessage) -> SendResult:
        """Deliver (synchronously: runs in a job thread or an RQ worker)."""


class LocalSender:
    """For channels whose replies are read from the desk itself (API polling, chat sockets)."""

    def send(self, message: OutboundMessage) -> SendResult:
        """Nothing leaves the process: the message is visible to the customer's client already."""
        return SendResult(external_id=None, status="sent")
