"""What the SLA service reads from the database, turned into the pure core's types.

Synchronous functions of a connection (run through ``Database.read``): the policy catalog
(queues, SLA policies with their business calendars), open tickets with their pause history
(from the ``sla.paused`` / ``sla.resumed`` events), overdue tickets for the backstop sweep,
and the rows that rebuild today's counters.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import Connection

from sla.calendar import BusinessCalendar as Calendar
from sla.clock import Pause
from sla.policy import Metric, SlaPolicy, TicketFacts
from tickets.actions._common import EVENT, QUEUE, SLA, TEAM, TICKET, queue_policy_id
from tickets.actions.sla import BREACH_COLUMNS, DUE_COLUMNS
from tickets.domain import LIVE_CHANNELS, TicketStatus
from tickets.models import BusinessCalendar

__all__ = [
    "OPEN_STATUSES",
    "TRACKED",
    "Catalog",
    "QueueInfo",
    "TicketState",
    "breaches_since",
    "first_resume",
    "load_catalog",
    "load_tickets",
    "max_event_id",
    "overdue",
    "stream_ticket_rows",
    "ticket_rows",
    "to_policy",
]

CALENDAR = cast(sa.Table, BusinessCalendar.__table__)  # type: ignore[attr-defined]
OPEN_STATUSES = (TicketStatus.NEW.value, TicketStatus.OPEN.value, TicketStatus.PENDING.value)
TRACKED = (Metric.ANSWER, Metric.FIRST_RESPONSE, Metric.NEXT_RESPONSE, Metric.RESOLUTION)
"""Metrics with a stored deadline and breach flag (``tickets.actions.sla.DUE_COLUMNS``)."""


def _positive(value: int | None) -> float | None:
    return float(value) if value is not None and value > 0 else None


def to_policy(row: Any, calendar: Any | None) -> SlaPolicy:
    """A pure :class:`SlaPolicy` from an ``slapolicy`` row and its ``businesscalendar`` row."""
    hours = None
    if calendar is not None:
        hours = Calendar.from_config(calendar.timezone, calendar.weekly_hours, calendar.holidays)
    warn = row.warn_percent if row.warn_percent and 0 < row.warn_percent <= 100 else None
    return SlaPolicy(
        answer_seconds=_positive(row.answer_seconds),
        first_response_seconds=_positive(row.first_response_seconds),
        next_response_seconds=_positive(row.next_response_seconds),
        resolution_seconds=_positive(row.resolution_seconds),
        business_hours=hours,
        warn_at_percent=warn,
        pause_while_pending=bool(row.pause_while_pending),
        name=row.name,
    )


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue as the wallboard and the policy match need it."""

    id: int
    name: str
    team_id: int | None
    sla_policy_id: int | None
    live_sla_policy_id: int | None = None


@dataclass(frozen=True, slots=True)
class Catalog:
    """Queues, teams and pure policies by id."""

    queues: dict[int, QueueInfo] = field(default_factory=dict)
    policies: dict[int, SlaPolicy] = field(default_factory=dict)
    teams: dict[int, str] = field(default_factory=dict)

    def match(
        self, queue_id: int | None, priority: int, channel: str
    ) -> tuple[int | None, SlaPolicy | None]:
        """The policy of a ticket: its queue's, for the channel's kind (``queue_policy_id``)."""
        queue = self.queues.get(queue_id) if queue_id is not None else None
        policy_id = queue_policy_id(queue, channel)
        if policy_id is None:
            return None, None
        return policy_id, self.policies.get(policy_id)


def load_catalog(session: Connection) -> Catalog:
    """Every queue, team and SLA policy (with its calendar)."""
    calendars = {r.id: r for r in session.execute(sa.select(CALENDAR))}
    policies = {
        r.id: to_policy(r, calendars.get(r.calendar_id)) for r in session.execute(sa.select(SLA))
    }
    q = QUEUE.c
    queues = {
        r.id: QueueInfo(r.id, r.name, r.team_id, r.sla_policy_id, r.live_sla_policy_id)
        for r in session.execute(
            sa.select(q.id, q.name, q.team_id, q.sla_policy_id, q.live_sla_policy_id)
        )
    }
    teams = {int(r.id): str(r.name) for r in session.execute(sa.select(TEAM.c.id, TEAM.c.name))}
    return Catalog(queues, policies, teams)


@dataclass(slots=True)
class TicketState:
    """One ticket's SLA-relevant facts."""

    id: int
    status: str
    channel: str
    priority: int
    queue_id: int | None
    team_id: int | None
    policy_id: int | None
    created_at: datetime
    answered_at: datetime | None = None
    first_response_at: datetime | None = None
    awaiting_reply_since: datetime | None = None
    solved_at: datetime | None = None
    breached: set[Metric] = field(default_factory=set)
    stored: dict[Metric, datetime | None] = field(default_factory=dict)
    pauses: list[Pause] = field(default_factory=list)

    @property
    def paused(self) -> bool:
        """Whether a pause is open (the clock is stopped now)."""
        return bool(self.pauses) and self.pauses[-1].end is None

    def facts(self) -> TicketFacts:
        """The pure core's view of this ticket."""
        return TicketFacts(
            created_at=self.created_at,
            channel=self.channel,
            pauses=tuple(self.pauses),
            answered_at=self.answered_at,
            first_response_at=self.first_response_at,
            awaiting_reply_since=self.awaiting_reply_since,
            resolved_at=self.solved_at,
        )


def _state(row: Any) -> TicketState:
    live = row.channel in LIVE_CHANNELS
    return TicketState(
        id=row.id,
        status=row.status,
        channel=row.channel,
        priority=row.priority,
        queue_id=row.queue_id,
        team_id=row.team_id,
        policy_id=row.sla_policy_id,
        created_at=row.created_at,
        answered_at=(row.first_answer_at or row.first_response_at) if live else None,
        first_response_at=row.first_response_at,
        awaiting_reply_since=row.awaiting_reply_since,
        solved_at=row.solved_at,
        breached={m for m in TRACKED if getattr(row, BREACH_COLUMNS[m.value])},
        stored={m: getattr(row, DUE_COLUMNS[m.value]) for m in TRACKED},
    )


def _pauses(rows: Sequence[Any]) -> dict[int, list[Pause]]:
    out: dict[int, list[Pause]] = {}
    for ticket_id, kind, payload in rows:
        at = datetime.fromisoformat(payload["at"])
        pauses = out.setdefault(ticket_id, [])
        if kind == "sla.paused" and not (pauses and pauses[-1].end is None):
            pauses.append(Pause(at))
        elif kind == "sla.resumed" and pauses and pauses[-1].end is None:
            pauses[-1] = Pause(pauses[-1].start, max(at, pauses[-1].start))
    return out


def load_tickets(session: Connection, ids: Sequence[int] | None = None) -> list[TicketState]:
    """The given tickets, or every open one, with their pauses."""
    q = sa.select(TICKET)
    ev = (
        sa.select(EVENT.c.ticket_id, EVENT.c.type, EVENT.c.payload)
        .where(EVENT.c.type.in_(("sla.paused", "sla.resumed")))
        .order_by(EVENT.c.id)
    )
    if ids is None:
        q = q.where(TICKET.c.status.in_(OPEN_STATUSES))
        ev = ev.join(TICKET, TICKET.c.id == EVENT.c.ticket_id).where(
            TICKET.c.status.in_(OPEN_STATUSES)
        )
    else:
        q = q.where(TICKET.c.id.in_(list(ids)))
        ev = ev.where(EVENT.c.ticket_id.in_(list(ids)))
    states = [_state(r) for r in session.execute(q)]
    pauses = _pauses(session.execute(ev).all())
    for s in states:
        s.pauses = pauses.get(s.id, [])
    return states


def overdue(session: Connection, now: datetime, limit: int = 1000) -> list[tuple[int, str, Any]]:
    """(ticket, metric, due) of open tickets past a stored deadline and not flagged (sweep)."""
    t = TICKET.c
    unanswered = sa.and_(t.first_answer_at.is_(None), t.first_response_at.is_(None))
    checks = {
        "answer": (t.answer_due_at, t.answer_breached, unanswered),
        "first_response": (t.first_response_due_at, t.first_response_breached,
                           t.first_response_at.is_(None)),
        "next_response": (t.next_response_due_at, t.next_response_breached,
                          t.awaiting_reply_since.is_not(None)),
        "resolution": (t.resolution_due_at, t.resolution_breached, t.solved_at.is_(None)),
    }  # fmt: skip
    out: list[tuple[int, str, Any]] = []
    for metric, (due, flag, running) in checks.items():
        q = (
            sa.select(t.id, due)
            .where(t.status.in_(OPEN_STATUSES), due.is_not(None), due <= now)
            .where(flag.is_(False), running)
            .order_by(due)
            .limit(limit)
        )
        out += [(int(r[0]), metric, r[1]) for r in session.execute(q)]
    return out


def _ticket_rows(
    since: datetime,
    until: datetime | None,
    *,
    include_open: bool,
    team_id: int | None,
    queue_id: int | None,
) -> sa.Select[Any]:
    t = TICKET.c
    stamps = (t.created_at, t.first_answer_at, t.first_response_at, t.solved_at, t.closed_at)
    if until is None:
        inside = [c >= since for c in stamps]
    else:
        inside = [sa.and_(c >= since, c < until) for c in stamps]
    if include_open:
        inside.append(t.status.in_(OPEN_STATUSES))
    q = sa.select(
        t.id, t.channel, t.status, t.priority, t.queue_id, t.team_id, t.created_at,
        t.first_answer_at, t.first_response_at, t.solved_at, t.closed_at,
    ).where(sa.or_(*inside))  # fmt: skip
    if team_id is not None:
        q = q.where(t.team_id == team_id)
    if queue_id is not None:
        q = q.where(t.queue_id == queue_id)
    return q


def ticket_rows(
    session: Connection,
    since: datetime,
    until: datetime | None = None,
    *,
    include_open: bool = True,
    team_id: int | None = None,
    queue_id: int | None = None,
) -> list[Any]:
    """Tickets with anything countable in ``[since, until)`` (and every open one if asked)."""
    q = _ticket_rows(since, until, include_open=include_open, team_id=team_id, queue_id=queue_id)
    return list(session.execute(q).all())


def stream_ticket_rows(session: Connection, since: datetime) -> Iterator[Any]:
    """:func:`ticket_rows` from ``since`` on with the open ones, fetched a few thousand at a
    time (a day's tickets are never all in memory at once); consume it inside the read."""
    q = _ticket_rows(since, None, include_open=True, team_id=None, queue_id=None)
    yield from session.execute(q.execution_options(yield_per=5_000))


def max_event_id(session: Connection) -> int:
    """The highest event id (0 when none)."""
    return int(
        session.execute(sa.select(sa.func.coalesce(sa.func.max(EVENT.c.id), 0))).scalar_one()
    )


def breaches_since(session: Connection, since: datetime) -> list[dict[str, Any]]:
    """Payloads of the ``sla.breached`` events since ``since`` (for today's breach counts)."""
    q = sa.select(EVENT.c.payload, EVENT.c.created_at).where(
        EVENT.c.type == "sla.breached", EVENT.c.created_at >= since
    )
    return [{**dict(p), "_at": at} for p, at in session.execute(q)]


def first_resume(session: Connection, open_pauses: dict[int, datetime]) -> dict[int, datetime]:
    """When tickets paused at the given instants left pending (for pauses nobody closed)."""
    if not open_pauses:
        return {}
    kinds = ("ticket.updated", "message.created", "ticket.solved", "ticket.closed")
    q = (
        sa.select(EVENT.c.ticket_id, EVENT.c.type, EVENT.c.payload, EVENT.c.created_at)
        .where(EVENT.c.ticket_id.in_(list(open_pauses)), EVENT.c.type.in_(kinds))
        .order_by(EVENT.c.id)
    )
    out: dict[int, datetime] = {}
    for tid, kind, payload, at in session.execute(q):
        if tid in out or at <= open_pauses[tid]:
            continue
        if kind == "ticket.updated" and (
            "status" not in payload.get("changed", ()) or payload.get("status") == "pending"
        ):
            continue
        if kind == "message.created" and payload.get("direction") != "in":
            continue
        out[tid] = at
    return out
