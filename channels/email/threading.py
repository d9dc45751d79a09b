"""Threading replies into tickets (pure): our Message-IDs and what an inbound mail refers to.

Every Message-ID we send carries an unguessable token, HMAC-SHA256(CC_SECRET_KEY, ticket id),
so a reference to a ticket cannot be forged by guessing (FreeScout CVE-2026-47123 and iTop's
``In-Reply-To: <iTop_Ticket_5_x@…>`` were forgeable). A verified reference is still only used
when the sender is a participant of that ticket; the store checks that against the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from channels.email.parse import ParsedEmail

__all__ = ["References", "ThreadKeys", "references_of", "subject_ticket"]

_OURS = re.compile(r"^<cc\.([ar])(\d{1,18})\.t(\d{1,18})\.([a-z2-7]{24})@[^<>\s]+>$")
_SUBJECT_TAG = re.compile(r"\[#(\d{1,12})\]")


class ThreadKeys:
    """Makes and verifies our Message-IDs: ``<cc.r{message}.t{ticket}.{token}@{domain}>``.

    ``r`` marks an agent reply, ``a`` an automatic message (acknowledgement); the token only
    depends on the ticket, so any of our Message-IDs of a ticket verifies it.
    """

    def __init__(self, secret: str, domain: str) -> None:
        if not secret:
            raise ValueError("a secret key is needed to sign Message-IDs")
        self._key = secret.encode()
        self.domain = domain

    def token(self, ticket_id: int) -> str:
        """24 base32 characters (120 bits) of HMAC-SHA256 over the ticket id."""
        mac = hmac.new(self._key, f"cc-email-thread:{ticket_id}".encode(), hashlib.sha256)
        return base64.b32encode(mac.digest()[:15]).decode().lower()

    def message_id(self, ticket_id: int, message_id: int, *, auto: bool = False) -> str:
        """Our Message-ID for an outbound message of a ticket."""
        kind = "a" if auto else "r"
        return f"<cc.{kind}{message_id}.t{ticket_id}.{self.token(ticket_id)}@{self.domain}>"

    def verify(self, msgid: str) -> int | None:
        """The ticket id of one of our Message-IDs whose token checks out, else None."""
        match = _OURS.match(msgid.strip())
        if match is None:
            return None
        ticket_id = int(match.group(3))
        return ticket_id if hmac.compare_digest(match.group(4), self.token(ticket_id)) else None

    @staticmethod
    def looks_ours(msgid: str) -> bool:
        """True when a Message-ID has our shape (whether or not its token is right)."""
        return _OURS.match(msgid.strip()) is not None

    def is_auto(self, msgid: str) -> bool:
        """True for a verified Message-ID of one of our automatic messages."""
        match = _OURS.match(msgid.strip())
        return match is not None and match.group(1) == "a" and self.verify(msgid) is not None


@dataclass(frozen=True, slots=True)
class References:
    """What an inbound mail points at, most specific first."""

    verified: tuple[int, ...] = ()  # ticket ids from our Message-IDs (tokens checked)
    forged: tuple[str, ...] = ()  # our shape, wrong token: someone is guessing
    foreign: tuple[str, ...] = ()  # other Message-IDs (the store looks them up)
    subject_ticket: int | None = None


def subject_ticket(subject: str) -> int | None:
    """The ticket number of a ``[#1234]`` tag in a subject, if any."""
    match = _SUBJECT_TAG.search(subject)
    return int(match.group(1)) if match else None


def references_of(mail: ParsedEmail, keys: ThreadKeys) -> References:
    """In-Reply-To first, then References from the newest, then the subject tag."""
    ordered: list[str] = []
    for ref in (*mail.in_reply_to, *reversed(mail.references)):
        if ref not in ordered:
            ordered.append(ref)
    verified: list[int] = []
    forged: list[str] = []
    foreign: list[str] = []
    for ref in ordered:
        ticket = keys.verify(ref)
        if ticket is not None:
            if ticket not in verified:
                verified.append(ticket)
        elif keys.looks_ours(ref):
            forged.append(ref)
        else:
            foreign.append(ref)
    return References(
        verified=tuple(verified),
        forged=tuple(forged),
        foreign=tuple(foreign[:20]),
        subject_ticket=subject_ticket(mail.subject),
    )
