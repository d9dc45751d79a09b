"""SLA actions: announce warnings and breaches, pause and resume clocks, store deadlines.

Called by the SLA service (``contact_center.sla_service``) with the instants the pure core
computed. Each action re-reads the ticket under its row lock (PostgreSQL) or the single writer
(SQLite) and re-checks that the announcement is still true, so a timer that went stale, a
second process firing the same timer, or the backstop sweep never announce anything twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from contact_center.db import SYSTEM, UnitOfWork
from tickets.actions._common import EVENT, TICKET, ticket_summary
from tickets.domain import TicketStatus

__all__ = [
    "BREACH_COLUMNS",
    "DUE_COLUMNS",
    "MAX_PRIORITY",
    "SlaTimer",
    "pause_clock",
    "record_sla_timers",
    "resume_clock",
    "store_deadlines",
]

MAX_PRIORITY = 4
DUE_COLUMNS = {
    "answer": "answer_due_at",
    "first_response": "first_response_due_at",
    "next_response": "next_response_due_at",
    "resolution": "resolution_due_at",
}
BREACH_COLUMNS = {
    "answer": "answer_breached",
    "first_response": "first_response_breached",
    "next_response": "next_response_breached",
    "resolution": "resolution_breached",
}
_STORABLE = frozenset({*DUE_COLUMNS.values(), "sla_policy_id"})
_ENDED = (TicketStatus.SOLVED.value, TicketStatus.CLOSED.value)
_SAME = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class SlaTimer:
    """A timer that came due: ``kind`` is ``warning`` or ``breach``; ``due`` the deadline."""

    ticket_id: int
    metric: str
    kind: str
    due: datetime


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _locked(uow: UnitOfWork, ticket_id: int) -> Any:
    q = sa.select(TICKET).where(TICKET.c.id == ticket_id)
    if uow.dialect == "postgresql":
        q = q.with_for_update()
    return uow.session.execute(q).first()


def _completed(row: Any, metric: str) -> bool:
    if metric == "answer":
        return row.first_answer_at is not None or row.first_response_at is not None
    if metric == "first_response":
        return row.first_response_at is not None
    if metric == "next_response":  # an agent reply ends the round (and clears the start)
        return row.awaiting_reply_since is None
    return row.solved_at is not None


def _already_warned(uow: UnitOfWork, ticket_id: int, metric: str, due: datetime) -> bool:
    payloads = uow.session.execute(
        sa.select(EVENT.c.payload).where(
            EVENT.c.ticket_id == ticket_id, EVENT.c.type == "sla.warning"
        )
    ).scalars()
    want = due.isoformat()
    return any(p.get("metric") == metric and p.get("due") == want for p in payloads)


def _announcement(row: Any, timer: SlaTimer, due: datetime, now: datetime) -> dict[str, Any]:
    return {
        "id": row.id,
        "ticket_id": row.id,
        "metric": timer.metric,
        "due": due.isoformat(),
        "at": now.isoformat(),
        "team_id": row.team_id,
        "queue_id": row.queue_id,
        "channel": row.channel,
        "priority": row.priority,
    }


def _record(uow: UnitOfWork, timer: SlaTimer, now: datetime) -> dict[str, Any] | None:
    if timer.metric not in DUE_COLUMNS or timer.kind not in ("warning", "breach"):
        raise ValueError(f"unknown SLA timer {timer.metric}/{timer.kind}")
    row = _locked(uow, timer.ticket_id)
    if row is None or row.status in _ENDED or _completed(row, timer.metric):
        return None
    if getattr(row, BREACH_COLUMNS[timer.metric]):
        return None
    due: datetime | None = getattr(row, DUE_COLUMNS[timer.metric])
    if due is None:  # paused, or no longer tracked
        return None
    if timer.kind == "warning":
        if due <= now or abs(due - timer.due) > _SAME:  # breach is next, or the timer is stale
            return None
        if _already_warned(uow, row.id, timer.metric, due):
            return None
        payload = _announcement(row, timer, due, now)
        payload["remaining_seconds"] = round((due - now).total_seconds(), 3)
        uow.emit("sla.warning", payload, row.id)
        uow.audit(SYSTEM, "sla.warning", "ticket", row.id, {"metric": timer.metric,
                                                            "due": due.isoformat()})  # fmt: skip
        return payload
    if due > now:  # the deadline moved later (pause, queue change): a stale timer
        return None
    priority = min(row.priority + 1, MAX_PRIORITY) if row.priority < MAX_PRIORITY else row.priority
    values = {BREACH_COLUMNS[timer.metric]: True, "priority": priority, "updated_at": uow.now}
    new = uow.session.execute(
        sa.update(TICKET).where(TICKET.c.id == row.id).values(**values).returning(TICKET)
    ).one()
    payload = _announcement(new, timer, due, now)
    payload["previous_priority"] = row.priority
    uow.emit("sla.breached", payload, row.id)
    uow.emit("ticket.updated", {**ticket_summary(new), "changed": sorted(values)}, row.id)
    detail = {"metric": timer.metric, "due": due.isoformat(), "priority": [row.priority, priority]}
    uow.audit(SYSTEM, "sla.breach", "ticket", row.id, detail)
    return payload


def record_sla_timers(
    uow: UnitOfWork, timers: Iterable[SlaTimer], now: datetime
) -> list[dict[str, Any]]:
    """Announce every timer that is still true at ``now``; the payloads of those announced.

    A breach sets the metric's ``*_breached`` flag, raises the priority by one (at most
    :data:`MAX_PRIORITY`), emits ``sla.breached`` and ``ticket.updated`` and writes an audit
    row. A warning emits ``sla.warning`` (once per metric and deadline) and an audit row.
    """
    out: list[dict[str, Any]] = []
    for timer in timers:
        payload = _record(uow, timer, now)
        if payload is not None:
            out.append(payload)
    return out


def _checked(columns: Mapping[str, Any]) -> dict[str, Any]:
    bad = sorted(set(columns) - _STORABLE)
    if bad:
        raise ValueError(f"not SLA columns: {bad}")
    return dict(columns)


def pause_clock(uow: UnitOfWork, ticket_id: int, at: datetime, metrics: Sequence[str]) -> None:
    """The ticket went pending at ``at``: clear the paused deadlines, emit ``sla.paused``."""
    cols = _checked({DUE_COLUMNS[m]: None for m in metrics})
    if cols:
        uow.session.execute(sa.update(TICKET).where(TICKET.c.id == ticket_id).values(**cols))
    uow.emit("sla.paused", {"id": ticket_id, "at": at.isoformat(), "metrics": list(metrics)},
             ticket_id)  # fmt: skip
    uow.audit(SYSTEM, "sla.pause", "ticket", ticket_id, {"at": at.isoformat(),
                                                         "metrics": list(metrics)})  # fmt: skip


def resume_clock(
    uow: UnitOfWork, ticket_id: int, at: datetime, columns: Mapping[str, datetime | None]
) -> None:
    """The ticket left pending at ``at``: store the new deadlines, emit ``sla.resumed``."""
    cols = _checked(columns)
    if cols:
        uow.session.execute(sa.update(TICKET).where(TICKET.c.id == ticket_id).values(**cols))
    due = {k: _iso(v) for k, v in cols.items()}
    uow.emit("sla.resumed", {"id": ticket_id, "at": at.isoformat(), **due}, ticket_id)
    uow.audit(SYSTEM, "sla.resume", "ticket", ticket_id, {"at": at.isoformat(), "due": due})


def store_deadlines(uow: UnitOfWork, changes: Iterable[tuple[int, Mapping[str, Any]]]) -> int:
    """Store recomputed deadlines (and a re-matched ``sla_policy_id``); emit ``sla.deadlines``.

    No audit row: this is bookkeeping the SLA service redoes from the facts (a restart
    recomputes every deadline); the ``sla.deadlines`` event records each change.
    """
    n = 0
    for ticket_id, columns in changes:
        cols = _checked(columns)
        if not cols:
            continue
        uow.session.execute(sa.update(TICKET).where(TICKET.c.id == ticket_id).values(**cols))
        payload = {k: (_iso(v) if isinstance(v, datetime) or v is None else v)
                   for k, v in cols.items()}  # fmt: skip
        uow.emit("sla.deadlines", {"id": ticket_id, **payload}, ticket_id)
        n += 1
    return n
