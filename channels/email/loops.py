"""Mail loops and bounces (pure): RFC 3834 auto-reply rules and RFC 3464 DSN reading.

* No automatic reply to mail that says it is automatic (``Auto-Submitted`` other than ``no``),
  to bulk/list/junk mail (``Precedence``, ``List-Id``, ``List-Unsubscribe``), to a null return
  path (``Return-Path: <>``, which is how bounces and other MTA mail arrive), or to
  ``mailer-daemon``/``postmaster``/no-reply senders. Our own automatic mail carries
  ``Auto-Submitted: auto-replied`` so other responders leave it alone.
* A bounce is recognised by its MIME shape, a *top-level* ``multipart/report;
  report-type=delivery-status`` (a forwarded bounce inside other mail is ordinary mail).
  Status 5.x.x with action ``failed`` is hard, 4.x.x soft. Diagnostic text is cleaned of
  control characters so one poisoned report cannot break anything downstream.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser

from channels.email.headers import clean_text, decode_header_value

__all__ = [
    "AUTO_REPLY_HEADERS",
    "Dsn",
    "DsnRecipient",
    "automation_reason",
    "parse_dsn",
]

AUTO_REPLY_HEADERS: dict[str, str] = {"Auto-Submitted": "auto-replied"}
"""Headers every automatic message of ours carries (RFC 3834 §3.1.7)."""

LOOP_HEADERS = (
    "auto-submitted",
    "precedence",
    "list-id",
    "list-unsubscribe",
    "return-path",
    "x-autoreply",
    "x-autorespond",
    "x-auto-response-suppress",
)
"""The headers the rules below look at (the parser keeps these, decoded)."""

_NO_REPLY_LOCAL = re.compile(
    r"^(mailer-daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?)([+-].*)?$"
)
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_MSGID = re.compile(r"<[^<>\s]+>")
_STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")


def automation_reason(headers: Mapping[str, str], sender: str) -> str | None:
    """Why this mail must not get an automatic reply, or None when a reply is allowed.

    ``headers`` maps lower-case header names (see :data:`LOOP_HEADERS`) to decoded values.
    """
    auto = headers.get("auto-submitted")
    if auto is not None and auto.split(";", 1)[0].strip().lower() not in ("", "no"):
        return f"Auto-Submitted: {auto.strip()[:60]}"
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in ("bulk", "list", "junk", "auto_reply"):
        return f"Precedence: {precedence}"
    for name in ("list-id", "list-unsubscribe", "x-autoreply", "x-autorespond"):
        if name in headers:
            return f"{name} present"
    return_path = headers.get("return-path")
    if return_path is not None and return_path.strip() in ("<>", ""):
        return "null return path"
    local = sender.partition("@")[0].lower()
    if _NO_REPLY_LOCAL.match(local):
        return f"automated sender {local}"
    return None


@dataclass(frozen=True, slots=True)
class DsnRecipient:
    """One recipient block of a delivery status notification."""

    address: str
    action: str
    status: str
    diagnostic: str = ""

    @property
    def hard(self) -> bool:
        """A permanent failure (5.x.x): the address is undeliverable."""
        return self.status.startswith("5") and self.action in ("failed", "")


@dataclass(frozen=True, slots=True)
class Dsn:
    """What a bounce says: per-recipient results and the Message-ID of the returned mail."""

    recipients: tuple[DsnRecipient, ...]
    original_message_id: str | None

    @property
    def hard(self) -> bool:
        """True when at least one recipient failed permanently."""
        return any(r.hard for r in self.recipients)

    def summary(self) -> str:
        """A short, clean text for an internal note."""
        kind = "Hard bounce" if self.hard else "Delivery report"
        lines = [f"{kind} (delivery status notification):"]
        for r in self.recipients:
            line = f"- {r.address or 'unknown recipient'}: {r.action or '?'} {r.status or ''}"
            if r.diagnostic:
                line += f" ({r.diagnostic[:300]})"
            lines.append(line.rstrip())
        return "\n".join(lines)


def _field(block: Message, name: str) -> str:
    value = block.get(name)
    return clean_text(decode_header_value(None if value is None else str(value)))


def _recipient(block: Message) -> DsnRecipient | None:
    final = _field(block, "Final-Recipient") or _field(block, "Original-Recipient")
    if not final:
        return None
    address = final.partition(";")[2].strip() if ";" in final else final
    status_raw = _field(block, "Status")
    match = _STATUS.search(status_raw)
    return DsnRecipient(
        address=address.strip("<> ").lower()[:320],
        action=_field(block, "Action").lower()[:20],
        status=match.group(0) if match else status_raw[:20],
        diagnostic=_field(block, "Diagnostic-Code")[:500],
    )


def _status_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = payload if isinstance(payload, str) else ""
    parser = HeaderParser()
    return [parser.parsestr(chunk.strip() + "\n") for chunk in re.split(r"\r?\n\r?\n", text)]


def _original_id(part: Message) -> str | None:
    ctype = part.get_content_type()
    headers: Message | None = None
    if ctype in ("message/rfc822", "message/global"):
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            headers = payload[0]
    elif ctype in ("text/rfc822-headers", "message/global-headers"):
        raw = part.get_payload(decode=True)
        if isinstance(raw, bytes):
            headers = HeaderParser().parsestr(raw.decode("utf-8", "replace"))
    if headers is None:
        return None
    found = _MSGID.findall(str(headers.get("Message-ID") or ""))
    return found[0] if found else None


def parse_dsn(msg: Message) -> Dsn | None:
    """The DSN of a top-level ``multipart/report; report-type=delivery-status``, else None.

    A report without ``report-type`` that carries a delivery-status part counts too (some
    older MTAs omit the parameter).
    """
    if msg.get_content_type() != "multipart/report":
        return None
    report_type = str(msg.get_param("report-type") or "").lower()
    parts = msg.get_payload()
    children = [p for p in parts if isinstance(p, Message)] if isinstance(parts, list) else []
    has_status = any(p.get_content_type() in _STATUS_TYPES for p in children)
    if report_type != "delivery-status" and not (report_type == "" and has_status):
        return None
    recipients: list[DsnRecipient] = []
    original: str | None = None
    for part in children:
        ctype = part.get_content_type()
        if ctype in _STATUS_TYPES:
            for block in _status_blocks(part):
                found = _recipient(block)
                if found is not None:
                    recipients.append(found)
        elif original is None:
            original = _original_id(part)
    return Dsn(recipients=tuple(recipients[:50]), original_message_id=original)
