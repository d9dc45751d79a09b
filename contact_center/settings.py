"""Typed settings from ``CC_*`` environment variables (read when asked, never at import)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

__all__ = ["EVENT_LOOPS", "WEBHOOK_TIMEOUT_MAX_SECONDS", "Secret", "Settings"]

EVENT_LOOPS = ("uvloop", "asyncio")

# A webhook attempt (DNS, connect, send, answer) ends within CC_WEBHOOK_TIMEOUT_SECONDS; its
# lease is that plus a margin, and stays below the job's own 120 s timeout.
WEBHOOK_TIMEOUT_MAX_SECONDS = 60


class Secret(str):
    """A string whose repr and str never show the value (keeps secrets out of logs)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('**********')" if self else "Secret('')"

    def reveal(self) -> str:
        """Return the real value, for the one place that needs it."""
        return str.__str__(self)

    def __str__(self) -> str:
        return "**********" if self else ""


_EMPTY = Secret("")


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable. Build from the environment with :meth:`from_env`."""

    database_url: str = "sqlite:///var/contact_center.db"
    redis_url: str = ""
    secret_key: Secret = field(default_factory=lambda: Secret(secrets.token_urlsafe(32)))
    public_base_url: str = "http://127.0.0.1:8080"
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("var")
    log_level: str = "INFO"
    log_json: bool = True
    token_ttl_seconds: int = 12 * 3600
    reopen_window_seconds: int = 7 * 24 * 3600
    attachment_max_bytes: int = 10 * 1024 * 1024
    request_max_bytes: int = 25 * 1024 * 1024
    db_pool_size: int = 8
    event_loop: str = "uvloop"  # serve and lead: "uvloop" (libuv, less CPU) or "asyncio"
    rq_queue: str = "contact-center"
    events_channel: str = "cc-events"
    metrics_token: Secret = _EMPTY  # static bearer token for Prometheus scrapes of /metrics
    webhook_timeout_seconds: int = 10  # the whole attempt, 1-60 s; the claim's lease is +30 s
    webhook_sweep_seconds: int = 5
    webhook_allow_cidrs: str = ""  # private webhook targets the operator allows (CIDRs, hosts)
    socket_origins: str = ""  # extra browser origins allowed to open sockets (chat widget sites)
    chat_queue: str = "chat"  # queue of web chats (and offline messages); missing: "general"
    chat_identity_secret: Secret = _EMPTY  # HMAC key for verified visitor identity; empty: off
    chat_attachment_max_bytes: int = 2 * 1024 * 1024  # one file a visitor sends
    chat_abandon_seconds: int = 30  # a waiting visitor gone this long has abandoned the chat
    chat_messages_per_minute: int = 30  # per visitor (and files); more are refused
    chat_unlimited_addresses: str = ""  # clients exempt from per-address chat limits (load tests)
    trusted_proxies: str = ""  # our load balancers: their X-Forwarded-For names the client
    job_modules: str = ""  # extra modules (comma-separated) that register jobs, for extensions
    backup_dir: str = ""  # where archives go; empty: <data_dir>/backups
    backup_daily: bool = False  # from_env (serve) defaults it on; Settings() in code/tests: off
    backup_hour_utc: int = 2  # the daily backup runs at or after this hour (UTC)
    backup_retention_days: int = 14  # older archives are deleted (the newest is always kept)
    routing_enabled: bool = True  # run the router here (scale-out: one leader, issue 9)
    routing_offer_timeout_live_seconds: int = 15  # chat and voice offers
    routing_offer_timeout_async_seconds: int = 120  # email, SMS, WhatsApp and API offers
    routing_away_on_expire: bool = True  # an agent who lets an offer expire goes away
    routing_preference_seconds: int = 5  # the known agent's head start on a returning customer
    routing_resync_seconds: int = 15  # the router compares itself with the database this often
    leader_ttl_ms: int = 3000  # with Redis: the router leader's lock; a standby leads after this
    twilio_account_sid: str = ""
    twilio_auth_token: Secret = _EMPTY
    twilio_api_base_url: str = "https://api.twilio.com"  # a local stub in tests and demos
    twilio_sms_from: str = ""  # our SMS number (E.164) or a Messaging Service SID (MG...)
    twilio_whatsapp_from: str = ""  # our WhatsApp sender, e.g. whatsapp:+14155238886
    twilio_sms_queue: str = ""  # queue of SMS, WhatsApp and voicemail tickets; "": the default
    twilio_voice_queue: str = ""  # queue of call tickets; "": the default queue
    twilio_voicemail_after_seconds: int = 120  # callers may leave a voicemail after this; 0: never
    twilio_hold_music_url: str = (  # played between the wait announcements; "": silence
        "http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3"
    )
    twilio_sms_keyword_replies: bool = False  # answer STOP/START/HELP ourselves (Twilio's off)
    twilio_sms_help_text: str = (  # the HELP answer, when we answer keywords
        "Reply to this number to reach our support team. Reply STOP to opt out."
    )
    imap_host: str = ""
    imap_port: int = 993
    imap_user: str = ""
    imap_password: Secret = _EMPTY
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: Secret = _EMPTY
    smtp_tls: str = "starttls"  # starttls | tls (implicit, port 465) | none (loopback relays only)
    smtp_ca_file: str = ""  # PEM file of CAs trusted for the relay (besides the system's)
    smtp_tls_verify: bool = True  # false: any certificate passes (a trusted network only)
    email_mailboxes: Secret = _EMPTY  # JSON list of IMAP mailboxes (channels/email/README.md)
    email_from: str = ""  # From of outbound mail, "Name <addr>"; default: first mailbox address
    email_own_addresses: str = ""  # more addresses of ours (comma-separated); their mail is ignored
    email_auto_ack: bool = False  # acknowledge new email tickets (English/Chinese template)
    email_auto_ack_window_seconds: int = 24 * 3600  # at most one acknowledgement per sender
    email_max_bytes: int = 25 * 1024 * 1024  # larger mail is quarantined unread (RFC822.SIZE check)

    def __post_init__(self) -> None:
        """Refuse values that cannot work, with the variable's name in the message."""
        from contact_center.clientaddr import Networks
        from contact_center.webhooks.ssrf import AllowList

        if not 1 <= self.webhook_timeout_seconds <= WEBHOOK_TIMEOUT_MAX_SECONDS:
            raise ValueError(
                f"CC_WEBHOOK_TIMEOUT_SECONDS must be 1-{WEBHOOK_TIMEOUT_MAX_SECONDS} seconds, "
                f"not {self.webhook_timeout_seconds} (a receiver should answer fast and "
                "queue its own work)"
            )
        try:
            AllowList.parse(self.webhook_allow_cidrs)
        except ValueError as err:
            raise ValueError(f"CC_WEBHOOK_ALLOW_CIDRS: {err}") from None
        if self.event_loop not in EVENT_LOOPS:
            raise ValueError(
                f"CC_EVENT_LOOP must be one of {', '.join(EVENT_LOOPS)}, not {self.event_loop!r}"
            )
        for name in ("chat_unlimited_addresses", "trusted_proxies"):
            try:
                Networks.parse(getattr(self, name))
            except ValueError as err:
                raise ValueError(f"CC_{name.upper()}: {err}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``CC_<FIELD>`` for every field; unknown ``CC_`` variables are an error."""
        env = os.environ if environ is None else environ
        known = {f"CC_{f.name.upper()}": f for f in fields(cls)}
        unknown = sorted(k for k in env if k.startswith("CC_") and k not in known)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(unknown)}")
        values: dict[str, object] = {}
        for name, f in known.items():
            if name not in env:
                continue
            raw = env[name]
            kind = f.type
            try:
                if kind == "int":
                    values[f.name] = int(raw)
                elif kind == "bool":
                    values[f.name] = _bool(raw)
                elif kind == "Path":
                    values[f.name] = Path(raw)
                elif kind == "Secret":
                    values[f.name] = Secret(raw)
                else:
                    values[f.name] = raw
            except ValueError as err:
                raise ValueError(f"{name}: {err}") from None
        settings = cls(**values)  # type: ignore[arg-type]
        if "CC_DATABASE_URL" not in env:
            settings = replace(
                settings, database_url=f"sqlite:///{settings.data_dir / 'contact_center.db'}"
            )
        if "CC_BACKUP_DAILY" not in env:  # operators get daily backups unless they opt out
            settings = replace(settings, backup_daily=True)
        return settings

    def secret_values(self) -> list[str]:
        """Every non-empty secret setting's value, for the log filter that masks them."""
        found = (getattr(self, f.name) for f in fields(self))
        return [v.reveal() for v in found if isinstance(v, Secret) and v]

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite database."""
        return self.database_url.startswith("sqlite")
