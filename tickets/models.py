"""SQLModel tables: persistence only, no behaviour (actions hold the logic)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

__all__ = [
    "Attachment",
    "AuditLog",
    "BusinessCalendar",
    "Customer",
    "CustomerHandle",
    "Event",
    "Message",
    "Offer",
    "Queue",
    "QueueMember",
    "SlaPolicy",
    "Team",
    "Ticket",
    "UTCDateTime",
    "User",
    "WebhookDelivery",
    "WebhookSubscription",
    "utcnow",
]


def utcnow() -> datetime:
    """The current time, tz-aware UTC (the only clock the data layer uses by default)."""
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Stores UTC; always returns tz-aware UTC datetimes, on SQLite too."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index))


def _json(default: Any) -> Any:
    return Field(default_factory=default, sa_column=sa.Column(sa.JSON(), nullable=False))


class Team(SQLModel, table=True):
    """A team of agents led by supervisors."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True)


class User(SQLModel, table=True):
    """An agent, supervisor or admin."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    name: str = Field(max_length=200)
    password_hash: str = Field(max_length=300)
    role: str = Field(default="agent", max_length=20)
    team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    skills: dict[str, int] = _json(dict)
    capacity: dict[str, int] = _json(dict)
    presence: str = Field(default="offline", max_length=20)
    language: str = Field(default="en", max_length=16)
    phone: str | None = Field(default=None, max_length=32)
    """E.164 number calls are put through to; None: the Twilio Client identity ``agent-<id>``."""
    active: bool = Field(default=True)
    token_version: int = Field(default=0)
    created_at: datetime | None = _ts(nullable=False)


class SlaPolicy(SQLModel, table=True):
    """Targets in seconds; ``None`` means the metric is not tracked."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True)
    answer_seconds: int | None = Field(default=20)
    first_response_seconds: int | None = Field(default=86400)
    next_response_seconds: int | None = Field(default=None)
    resolution_seconds: int | None = Field(default=None)
    calendar_id: int | None = Field(default=None, foreign_key="businesscalendar.id")
    warn_percent: int = Field(default=80)
    pause_while_pending: bool = Field(default=True)


class BusinessCalendar(SQLModel, table=True):
    """Weekly business hours in a time zone, with holidays."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True)
    timezone: str = Field(default="UTC", max_length=64)
    weekly_hours: dict[str, list[list[str]]] = _json(dict)
    holidays: list[str] = _json(list)


class Queue(SQLModel, table=True):
    """Where waiting work lines up; owned by a team."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True)
    team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    required_skills: dict[str, int] = _json(dict)
    default_priority: int = Field(default=2)
    sla_policy_id: int | None = Field(default=None, foreign_key="slapolicy.id")
    # chat and voice tickets of this queue use this policy; None: sla_policy_id serves them too
    live_sla_policy_id: int | None = Field(default=None, foreign_key="slapolicy.id")
    routing_strategy: str = Field(default="longest_idle", max_length=20)
    """``longest_idle`` (default) or ``best_skill``: how the router picks among eligible agents."""
    routing_score: str = Field(default="sum", max_length=10)
    """For ``best_skill``: ``sum`` or ``max`` of the agent's levels in the required skills."""
    relaxation: list[dict[str, Any]] = _json(list)
    """Relaxation steps, e.g. ``[{"after_seconds": 30, "max_level": 2}, {"after_seconds": 60,
    "drop_all": true, "keep_language": true}]`` (docs/routing.md)."""


class QueueMember(SQLModel, table=True):
    """Which agents serve which queues."""

    queue_id: int = Field(foreign_key="queue.id", primary_key=True)
    user_id: int = Field(foreign_key="user.id", primary_key=True, index=True)


class Customer(SQLModel, table=True):
    """One person across every channel."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(default="", max_length=200)
    language: str | None = Field(default=None, max_length=16)
    org: str | None = Field(default=None, max_length=200)
    tags: list[str] = _json(list)
    merged_into_id: int | None = Field(default=None, foreign_key="customer.id")
    created_at: datetime | None = _ts(nullable=False)


class CustomerHandle(SQLModel, table=True):
    """A normalised address (email, E.164 phone, chat visitor id, WhatsApp id)."""

    __table_args__ = (sa.UniqueConstraint("kind", "value", name="uq_handle_kind_value"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    kind: str = Field(max_length=20)
    value: str = Field(max_length=320)
    undeliverable: bool = Field(default=False)


class Ticket(SQLModel, table=True):
    """A conversation with a customer; its number is its id."""

    __table_args__ = (
        sa.Index("ix_ticket_customer_status", "customer_id", "status"),
        sa.Index("ix_ticket_queue_status", "queue_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(default="", max_length=500)
    status: str = Field(default="new", max_length=20)
    priority: int = Field(default=2)
    channel: str = Field(max_length=20)
    queue_id: int | None = Field(default=None, foreign_key="queue.id")
    team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    required_skills: dict[str, int] = _json(dict)
    language: str | None = Field(default=None, max_length=16)
    customer_id: int = Field(foreign_key="customer.id")
    assignee_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    sla_policy_id: int | None = Field(default=None, foreign_key="slapolicy.id")
    created_at: datetime | None = _ts(nullable=False, index=True)
    updated_at: datetime | None = _ts(nullable=False)
    last_inbound_at: datetime | None = _ts()
    first_answer_at: datetime | None = _ts()
    first_response_at: datetime | None = _ts()
    awaiting_reply_since: datetime | None = _ts()
    """First customer message after the last agent reply (the next-response clock's start)."""
    solved_at: datetime | None = _ts()
    closed_at: datetime | None = _ts()
    answer_due_at: datetime | None = _ts()
    first_response_due_at: datetime | None = _ts()
    resolution_due_at: datetime | None = _ts()
    next_response_due_at: datetime | None = _ts()
    answer_breached: bool = Field(default=False)
    first_response_breached: bool = Field(default=False)
    resolution_breached: bool = Field(default=False)
    next_response_breached: bool = Field(default=False)


class Message(SQLModel, table=True):
    """One message on a ticket; ``external_id`` is unique per channel (dedupe key), the
    author's ``client_key`` (an ``Idempotency-Key``, a console's id) unique per ticket."""

    __table_args__ = (
        sa.UniqueConstraint("channel", "external_id", name="uq_message_channel_external"),
        sa.Index("ix_message_delivery_due", "delivery_status", "delivery_lease_until"),
        sa.Index("uq_message_ticket_client_key", "ticket_id", "client_key", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    direction: str = Field(max_length=8)
    channel: str = Field(max_length=20)
    author_user_id: int | None = Field(default=None, foreign_key="user.id")
    author_customer_id: int | None = Field(default=None, foreign_key="customer.id")
    body_text: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    body_html: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))
    external_id: str | None = Field(default=None, max_length=500)
    client_key: str | None = Field(default=None, max_length=200)
    delivery_status: str = Field(default="received", max_length=20)
    delivery_error: str | None = Field(default=None, max_length=1000)
    delivery_lease_until: datetime | None = _ts()
    created_at: datetime | None = _ts(nullable=False)


class Attachment(SQLModel, table=True):
    """A file stored once by content hash under the data directory."""

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=200)
    size: int
    sha256: str = Field(max_length=64, index=True)


class Offer(SQLModel, table=True):
    """A reservation of a ticket for one agent until it expires.

    At most one open offer (``outcome IS NULL``) per ticket: a partial unique index, so even
    two routers racing cannot put one ticket in front of two agents.
    """

    __table_args__ = (
        sa.Index(
            "uq_offer_open_ticket",
            "ticket_id",
            unique=True,
            sqlite_where=sa.text("outcome IS NULL"),
            postgresql_where=sa.text("outcome IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    agent_id: int = Field(foreign_key="user.id", index=True)
    created_at: datetime | None = _ts(nullable=False)
    expires_at: datetime | None = _ts(nullable=False)
    outcome: str | None = Field(default=None, max_length=20)
    decided_at: datetime | None = _ts()


class Event(SQLModel, table=True):
    """Ordered log of state changes: feeds sockets, webhooks, audit and replay."""

    id: int | None = Field(default=None, primary_key=True)
    type: str = Field(max_length=60, index=True)
    ticket_id: int | None = Field(default=None, index=True)
    payload: dict[str, Any] = _json(dict)
    created_at: datetime | None = _ts(nullable=False)


class AuditLog(SQLModel, table=True):
    """Who did what to what; written by every action, never editable through the API."""

    id: int | None = Field(default=None, primary_key=True)
    actor_user_id: int | None = Field(default=None, index=True)
    actor: str = Field(max_length=60)
    action: str = Field(max_length=60, index=True)
    target_type: str = Field(max_length=40)
    target_id: int | None = Field(default=None)
    detail: dict[str, Any] = _json(dict)
    created_at: datetime | None = _ts(nullable=False, index=True)


class WebhookSubscription(SQLModel, table=True):
    """An outbound webhook endpoint, the event types it wants, and its signing secrets."""

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2000)
    description: str = Field(default="", max_length=500)
    event_types: list[str] = _json(list)
    secret: str = Field(max_length=200)
    previous_secret: str | None = Field(default=None, max_length=200)
    previous_secret_expires_at: datetime | None = _ts()
    allow_private: bool = Field(default=False)
    active: bool = Field(default=True)
    created_at: datetime | None = _ts(nullable=False)


class WebhookDelivery(SQLModel, table=True):
    """Outbox row: one event for one subscriber, written with the event, then delivered."""

    __table_args__ = (
        sa.UniqueConstraint("subscription_id", "event_id", name="uq_delivery"),
        sa.Index("ix_delivery_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="webhooksubscription.id", index=True)
    event_id: int = Field(foreign_key="event.id")
    status: str = Field(default="pending", max_length=20)
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = _ts()
    lease_until: datetime | None = _ts()
    last_status_code: int | None = Field(default=None)
    last_response: str | None = Field(default=None, max_length=2000)
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime | None = _ts(nullable=False)
    delivered_at: datetime | None = _ts()


# -- email channel (channels/email) ------------------------------------------------------------


def _bigint() -> Any:
    return Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))


class EmailMailboxState(SQLModel, table=True):
    """Where the IMAP poller stands in one mailbox: UIDVALIDITY and the highest UID stored.

    Written in the same transaction as the messages of a batch, so a restart resumes exactly
    after the last committed batch (RFC 3501: (mailbox, UIDVALIDITY, UID) is unique).
    """

    mailbox: str = Field(primary_key=True, max_length=200)
    uidvalidity: int = _bigint()
    last_uid: int = _bigint()
    updated_at: datetime | None = _ts(nullable=False)


class EmailReceipt(SQLModel, table=True):
    """One row per fetched mail: what became of it (ingested, duplicate, quarantined, ...).

    ``raw_sha256`` names the raw source in the blob store when it was kept (quarantined,
    ignored, bounced or damaged mail); ingested mail stays in the IMAP folder (never deleted).
    """

    __table_args__ = (
        sa.UniqueConstraint("mailbox", "uidvalidity", "uid", name="uq_emailreceipt_uid"),
        sa.Index("ix_emailreceipt_outcome", "outcome", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    mailbox: str = Field(max_length=200)
    uidvalidity: int = _bigint()
    uid: int = _bigint()
    header_message_id: str | None = Field(default=None, max_length=500, index=True)
    content_hash: str = Field(max_length=64)
    size: int = Field(default=0)
    outcome: str = Field(max_length=20)
    reason: str | None = Field(default=None, max_length=500)
    raw_sha256: str | None = Field(default=None, max_length=64)
    message_id: int | None = Field(default=None, foreign_key="message.id", index=True)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    received_at: datetime | None = _ts(nullable=False)


class EmailAutoReply(SQLModel, table=True):
    """When we last sent an automatic acknowledgement to an address (one per window)."""

    address: str = Field(primary_key=True, max_length=320)
    last_sent_at: datetime | None = _ts(nullable=False)


__all__ += ["EmailAutoReply", "EmailMailboxState", "EmailReceipt"]


# -- voice channel (channels/voice) ------------------------------------------------------------


class VoiceCall(SQLModel, table=True):
    """One phone call through Twilio, and the ticket it is (every call is its own ticket).

    ``state``: ``queued`` (waiting in Twilio's queue for an agent) → ``connecting`` (an agent
    took it; the call is being redirected to them) → ``connected`` → ``completed``; or
    ``abandoned`` (the caller hung up unanswered) or ``voicemail`` (left the queue to record a
    message). The last three are final: no callback, in whatever order, changes them.
    """

    id: int | None = Field(default=None, primary_key=True)
    call_sid: str = Field(max_length=64, unique=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    state: str = Field(default="queued", max_length=20)
    caller: str = Field(max_length=64)
    language: str | None = Field(default=None, max_length=16)
    agent_id: int | None = Field(default=None, foreign_key="user.id")
    twilio_status: str | None = Field(default=None, max_length=20)
    created_at: datetime | None = _ts(nullable=False)
    connected_at: datetime | None = _ts()
    ended_at: datetime | None = _ts()


__all__ += ["VoiceCall"]
