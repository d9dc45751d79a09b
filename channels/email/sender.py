"""Outbound email: the ``OutboundSender`` the ``deliver_message`` job calls.

Messages are built with ``email.message.EmailMessage`` and ``policy.SMTP``, never by string
concatenation, and any header value that came from data (subject, recipient, references,
attachment names) is refused when it holds CR, LF or NUL. Each outbound message gets its own
Message-ID carrying the ticket's HMAC token; ``In-Reply-To`` is the newest message of the
ticket and ``References`` the chain (first plus the last 19, as RFC 5322 suggests trimming).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine
from datetime import datetime
from email import policy
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from channels.base import OutboundMessage, SendResult
from channels.email.client import smtp_send
from channels.email.config import EmailConfig, SmtpConfig
from channels.email.loops import AUTO_REPLY_HEADERS
from channels.email.threading import ThreadKeys
from contact_center.errors import ChannelError
from tickets.models import utcnow

__all__ = ["POLICY", "EmailSender", "build_message", "reply_subject"]

SendFn = Callable[[EmailMessage, SmtpConfig, str, list[str]], Coroutine[Any, Any, None]]
_UNSAFE = re.compile(r"[\r\n\x00]")
_ADDR = re.compile(r"^[^@\s<>()\[\],;:\"\\]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z0-9-]{2,63}$")
_MSGID = re.compile(r"^<[\x21-\x3b\x3d\x3f-\x7e]{1,250}@[\x21-\x3b\x3d\x3f-\x7e]{1,250}>$")
_RE = re.compile(r"^\s*(re|aw|sv|回复|答复)\s*[:：]\s*", re.IGNORECASE)


class _Headers(HeaderRegistry):
    """The stdlib registry builds a new header class on every lookup; build each once."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


# policy.SMTP (CRLF, 78-column folding, header checks) with the class cache: half the cost.
POLICY = policy.SMTP.clone(header_factory=_Headers())


def _safe(value: str, what: str) -> str:
    if _UNSAFE.search(value):
        raise ChannelError(f"refusing to send: {what} contains CR, LF or NUL")
    return value


def reply_subject(subject: str, ticket_id: int) -> str:
    """``Re: [#N] subject`` (the tag is added once; existing ``Re:`` prefixes are kept)."""
    base = _safe(subject, "subject").strip() or f"Ticket {ticket_id}"
    tag = f"[#{ticket_id}]"
    if tag not in base:
        stripped = _RE.sub("", base)
        base = f"{tag} {stripped}"
    return base if _RE.match(base) else f"Re: {base}"


def build_message(
    out: OutboundMessage,
    *,
    keys: ThreadKeys,
    from_addr: str,
    from_name: str = "",
    now: datetime | None = None,
) -> tuple[EmailMessage, str]:
    """The MIME message for an outbound message and its Message-ID."""
    to = _safe(out.to_handle, "recipient").strip().lower()
    if not _ADDR.match(to):
        raise ChannelError("refusing to send: recipient is not a valid email address")
    auto_id = keys.message_id(out.ticket_id, out.message_id, auto=True)
    auto = auto_id in out.in_reply_to
    own = auto_id if auto else keys.message_id(out.ticket_id, out.message_id)
    refs = [r for r in out.in_reply_to if r != own and _MSGID.match(_safe(r, "reference"))]
    if len(refs) > 20:
        refs = [refs[0], *refs[-19:]]
    msg = EmailMessage(policy=POLICY)
    msg["From"] = Address(display_name=_safe(from_name, "sender name"), addr_spec=from_addr)
    msg["To"] = Address(addr_spec=to)
    msg["Reply-To"] = Address(addr_spec=from_addr)
    msg["Subject"] = reply_subject(out.subject, out.ticket_id)
    msg["Date"] = format_datetime(now or utcnow())
    msg["Message-ID"] = own
    if refs:
        msg["In-Reply-To"] = refs[-1]
        msg["References"] = " ".join(refs)
    if auto:
        for name, value in AUTO_REPLY_HEADERS.items():
            msg[name] = value
        msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(out.body_text or "")
    if out.body_html:
        msg.add_alternative(out.body_html, subtype="html")
    for filename, content_type, data in out.attachments:
        maintype, _, subtype = content_type.partition("/")
        msg.add_attachment(
            data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=_safe(filename, "attachment name")[:200],
        )
    return msg, own


async def _default_send(
    message: EmailMessage, config: SmtpConfig, sender: str, recipients: list[str]
) -> None:
    await smtp_send(message, config, sender=sender, recipients=recipients)


class EmailSender:
    """Sends replies and acknowledgements over SMTP (synchronously: job threads, RQ workers)."""

    def __init__(
        self,
        config: EmailConfig,
        keys: ThreadKeys,
        *,
        send: SendFn = _default_send,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if config.smtp is None or not config.from_addr:
            raise ValueError("the email sender needs CC_SMTP_HOST and a From address")
        self.config = config
        self.smtp = config.smtp
        self.keys = keys
        self._send = send
        self._clock = clock

    def build(self, out: OutboundMessage) -> tuple[EmailMessage, str]:
        """The message that :meth:`send` would send."""
        return build_message(
            out,
            keys=self.keys,
            from_addr=self.config.from_addr,
            from_name=self.config.from_name,
            now=self._clock(),
        )

    def send(self, message: OutboundMessage) -> SendResult:
        """Build and send; the Message-ID is the external id (the same on every retry)."""
        mime, message_id = self.build(message)
        to = str(mime["To"].addresses[0].addr_spec)
        asyncio.run(self._send(mime, self.smtp, self.config.from_addr, [to]))
        return SendResult(external_id=message_id, status="sent")
