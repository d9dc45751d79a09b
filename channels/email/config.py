"""Email channel configuration, read from :class:`contact_center.settings.Settings` (pure).

Mailboxes come from ``CC_EMAIL_MAILBOXES``, a JSON list (see ``channels/email/README.md``);
when it is empty, ``CC_IMAP_HOST``/``PORT``/``USER``/``PASSWORD`` describe a single mailbox.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr
from typing import Any

from contact_center.settings import Secret, Settings

__all__ = ["PROCESSED_KEYWORD", "EmailConfig", "MailboxConfig", "SmtpConfig"]

_MAILBOX_KEYS = frozenset(
    {"name", "host", "port", "user", "password", "folder", "queue", "address", "tls",
     "processed_action", "move_to", "idle", "poll_seconds", "idle_seconds", "timeout_seconds",
     "batch_size"}
)  # fmt: skip
_NUMBERS: dict[str, type[int] | type[float]] = {
    "port": int,
    "batch_size": int,
    "poll_seconds": float,
    "idle_seconds": float,
    "timeout_seconds": float,
}
_NO_PASSWORD = Secret("")
PROCESSED_KEYWORD = "$CcProcessed"
"""The IMAP keyword set (with ``\\Seen``) on mail the desk has stored."""


def _fail(message: str) -> ValueError:
    return ValueError(f"CC_EMAIL_MAILBOXES: {message}")


@dataclass(frozen=True, slots=True)
class MailboxConfig:
    """One IMAP folder tied to a queue."""

    name: str
    host: str
    user: str
    password: Secret
    address: str
    port: int = 993
    folder: str = "INBOX"
    queue: str | None = None
    tls: str = "ssl"  # ssl (implicit TLS) | none (plaintext: loopback or a trusted network)
    processed_action: str = "flag"  # flag: \Seen + $CcProcessed | move: to ``move_to``
    move_to: str | None = None
    idle: bool = True  # use IDLE when the server offers it; else poll every poll_seconds
    poll_seconds: float = 60.0
    idle_seconds: float = 300.0  # re-issue IDLE this often (RFC 2177: before 29 minutes)
    timeout_seconds: float = 30.0  # every IMAP command
    batch_size: int = 100

    @classmethod
    def from_json(cls, raw: dict[str, Any], index: int) -> MailboxConfig:
        """Validate one JSON object of ``CC_EMAIL_MAILBOXES``."""
        if not isinstance(raw, dict):
            raise _fail(f"item {index} is not an object")
        unknown = sorted(set(raw) - _MAILBOX_KEYS)
        if unknown:
            raise _fail(f"item {index}: unknown keys {', '.join(unknown)}")
        for key in ("host", "user", "password"):
            if not isinstance(raw.get(key), str) or not raw[key]:
                raise _fail(f"item {index}: {key!r} is required")
        values = dict(raw)
        for key, kind in _NUMBERS.items():
            if key in values:
                try:
                    values[key] = kind(values[key])
                except (TypeError, ValueError):
                    raise _fail(f"item {index}: {key!r} must be a number") from None
        if not isinstance(values.get("idle", True), bool):
            raise _fail(f"item {index}: 'idle' must be true or false")
        values["password"] = Secret(raw["password"])
        values.setdefault("address", raw["user"] if "@" in raw["user"] else "")
        values["address"] = str(values["address"]).strip().lower()
        values.setdefault("name", f"{raw['user']}@{raw['host']}/{raw.get('folder', 'INBOX')}")
        box = cls(**values)
        if box.tls not in ("ssl", "none"):
            raise _fail(f"item {index}: tls must be 'ssl' or 'none' (IMAP STARTTLS unsupported)")
        if box.processed_action not in ("flag", "move"):
            raise _fail(f"item {index}: processed_action must be 'flag' or 'move'")
        if box.processed_action == "move" and not box.move_to:
            raise _fail(f"item {index}: processed_action 'move' needs 'move_to'")
        if not 1 <= box.batch_size <= 1000 or len(box.name) > 200:
            raise _fail(f"item {index}: batch_size 1-1000, name at most 200 characters")
        return box


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Where outbound mail goes."""

    host: str
    port: int = 587
    user: str = ""
    password: Secret = _NO_PASSWORD
    tls: str = "starttls"  # starttls (required, never a plaintext fallback) | tls | none
    timeout_seconds: float = 30.0
    ca_file: str = ""  # PEM CAs trusted besides the system store (a private or test relay CA)
    verify: bool = True  # check the relay's certificate and host name; off only on a trusted net


@dataclass(frozen=True, slots=True)
class EmailConfig:
    """Everything the email channel needs, derived once from the settings."""

    mailboxes: tuple[MailboxConfig, ...]
    smtp: SmtpConfig | None
    from_addr: str
    from_name: str
    own_addresses: frozenset[str]
    secret: Secret
    auto_ack: bool = False
    auto_ack_window: timedelta = timedelta(days=1)
    max_bytes: int = 25 * 1024 * 1024
    attachment_max_bytes: int = 10 * 1024 * 1024

    @property
    def domain(self) -> str:
        """The right-hand side of our Message-IDs."""
        return self.from_addr.rpartition("@")[2] or "localhost"

    @classmethod
    def from_settings(cls, settings: Settings) -> EmailConfig:
        """Read and validate; raises ValueError with the offending setting named."""
        mailboxes = _mailboxes(settings)
        smtp = None
        if settings.smtp_host:
            if settings.smtp_tls not in ("starttls", "tls", "none"):
                raise ValueError("CC_SMTP_TLS must be starttls, tls or none")
            smtp = SmtpConfig(
                host=settings.smtp_host,
                port=settings.smtp_port,
                user=settings.smtp_user,
                password=settings.smtp_password,
                tls=settings.smtp_tls,
                ca_file=settings.smtp_ca_file,
                verify=settings.smtp_tls_verify,
            )
        name, addr = parseaddr(settings.email_from)
        if not addr:
            addr = next((m.address for m in mailboxes if m.address), settings.smtp_user)
        addr = addr.strip().lower()
        own = {m.address for m in mailboxes} | {addr}
        own |= {a.strip().lower() for a in settings.email_own_addresses.split(",")}
        return cls(
            mailboxes=mailboxes,
            smtp=smtp,
            from_addr=addr if "@" in addr else "",
            from_name=name.strip(),
            own_addresses=frozenset(a for a in own if "@" in a),
            secret=settings.secret_key,
            auto_ack=settings.email_auto_ack,
            auto_ack_window=timedelta(seconds=settings.email_auto_ack_window_seconds),
            max_bytes=settings.email_max_bytes,
            attachment_max_bytes=settings.attachment_max_bytes,
        )


def _mailboxes(settings: Settings) -> tuple[MailboxConfig, ...]:
    raw = settings.email_mailboxes.reveal().strip()
    if raw:
        try:
            items = json.loads(raw)
        except json.JSONDecodeError as err:
            raise _fail(f"not JSON ({err.msg} at {err.pos})") from None
        if not isinstance(items, list):
            raise _fail("must be a JSON list")
        boxes = tuple(MailboxConfig.from_json(item, i) for i, item in enumerate(items))
        names = [b.name for b in boxes]
        if len(set(names)) != len(names):
            raise _fail("mailbox names must be unique")
        return boxes
    if settings.imap_host:
        legacy = {
            "host": settings.imap_host,
            "port": settings.imap_port,
            "user": settings.imap_user,
            "password": settings.imap_password.reveal(),
        }
        return (MailboxConfig.from_json(legacy, 0),)
    return ()
