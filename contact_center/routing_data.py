"""What the router service and the ``/agent`` namespace read from the database.

Plain read functions ``f(session, ...)`` run through ``Database.read``: the routing state to
rebuild the router after a restart, one ticket or agent to reconcile, the known agent of a
customer, and an agent's own snapshot for the console.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from contact_center.db import fetch
from tickets.actions._common import (
    EVENT,
    OFFER,
    QUEUE,
    QUEUE_MEMBER,
    TICKET,
    USER,
    ticket_summary,
)
from tickets.actions._statements import TICKET_BY_ID
from tickets.actions.routing import ROUTABLE
from tickets.domain import DEFAULT_CAPACITY, OfferOutcome, TicketStatus

__all__ = [
    "AgentRow",
    "OpenOffer",
    "QueueRow",
    "RoutingState",
    "agent_row",
    "agent_snapshot",
    "last_agent_for_customer",
    "load_routing_state",
    "queue_rows",
    "ticket_row",
]

_HELD = (TicketStatus.NEW.value, TicketStatus.OPEN.value)  # assigned work that holds capacity


@dataclass(frozen=True, slots=True)
class QueueRow:
    """A queue's routing policy as stored."""

    id: int
    strategy: str
    score: str
    relaxation: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class AgentRow:
    """An agent as the router needs it (``queue_ids`` empty: the agent takes no offers)."""

    id: int
    active: bool
    skills: dict[str, int]
    capacity: dict[str, int]
    presence: str
    queue_ids: frozenset[int]


@dataclass(frozen=True, slots=True)
class OpenOffer:
    """An offer without an outcome, with its ticket."""

    offer_id: int
    agent_id: int
    created_at: datetime
    expires_at: datetime
    ticket: dict[str, Any]


@dataclass(slots=True)
class RoutingState:
    """Everything needed to rebuild the router."""

    last_event_id: int
    queues: list[QueueRow] = field(default_factory=list)
    agents: list[AgentRow] = field(default_factory=list)
    assigned: list[dict[str, Any]] = field(default_factory=list)
    offers: list[OpenOffer] = field(default_factory=list)
    waiting: list[dict[str, Any]] = field(default_factory=list)
    excluded: dict[int, set[int]] = field(default_factory=dict)


def _queue(r: Any) -> QueueRow:
    return QueueRow(int(r.id), r.routing_strategy, r.routing_score, list(r.relaxation or []))


def queue_rows(session: Connection) -> list[QueueRow]:
    """Every queue's routing policy."""
    return [_queue(r) for r in session.execute(sa.select(QUEUE).order_by(QUEUE.c.id))]


def _agents(session: Connection, user_ids: list[int] | None = None) -> list[AgentRow]:
    q = sa.select(USER)
    if user_ids is not None:
        q = q.where(USER.c.id.in_(user_ids))
    members: dict[int, set[int]] = {}
    mq = sa.select(QUEUE_MEMBER.c.user_id, QUEUE_MEMBER.c.queue_id)
    if user_ids is not None:
        mq = mq.where(QUEUE_MEMBER.c.user_id.in_(user_ids))
    for uid, qid in session.execute(mq):
        members.setdefault(int(uid), set()).add(int(qid))
    return [
        AgentRow(
            int(r.id),
            bool(r.active),
            {str(k): int(v) for k, v in (r.skills or {}).items()},
            {**DEFAULT_CAPACITY, **(r.capacity or {})},
            str(r.presence),
            frozenset(members.get(int(r.id), ())),
        )
        for r in session.execute(q.order_by(USER.c.id))
    ]


def agent_row(session: Connection, user_id: int) -> AgentRow | None:
    """One user as the router sees them (None if unknown)."""
    rows = _agents(session, [user_id])
    return rows[0] if rows else None


def ticket_row(session: Connection, ticket_id: int) -> dict[str, Any] | None:
    """A ticket's summary as stored now (None if it does not exist)."""
    rows = fetch(session, TICKET_BY_ID, {"tid": ticket_id})
    return ticket_summary(rows[0]) if rows else None


def _summaries(session: Connection, ids: list[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    rows = session.execute(sa.select(TICKET).where(TICKET.c.id.in_(sorted(set(ids))))).all()
    return {int(r.id): ticket_summary(r) for r in rows}


def load_routing_state(session: Connection) -> RoutingState:
    """Queues, agents, assigned work, open offers and waiting tickets, as of now."""
    last = session.execute(sa.select(sa.func.coalesce(sa.func.max(EVENT.c.id), 0))).scalar_one()
    state = RoutingState(last_event_id=int(last))
    state.queues = queue_rows(session)
    state.agents = [a for a in _agents(session) if a.active and a.queue_ids]
    held = sa.select(TICKET).where(TICKET.c.assignee_id.is_not(None), TICKET.c.status.in_(_HELD))
    state.assigned = [ticket_summary(r) for r in session.execute(held.order_by(TICKET.c.id))]
    open_rows = session.execute(
        sa.select(OFFER).where(OFFER.c.outcome.is_(None)).order_by(OFFER.c.id)
    ).all()
    tickets = _summaries(session, [r.ticket_id for r in open_rows])
    state.offers = [
        OpenOffer(int(r.id), int(r.agent_id), r.created_at, r.expires_at, tickets[r.ticket_id])
        for r in open_rows
    ]
    offered = {o.ticket["id"] for o in state.offers}
    waiting = sa.select(TICKET).where(
        TICKET.c.assignee_id.is_(None),
        TICKET.c.status.in_(ROUTABLE),
        TICKET.c.queue_id.is_not(None),
    )
    state.waiting = [
        s for s in (ticket_summary(r) for r in session.execute(waiting.order_by(TICKET.c.id)))
        if s["id"] not in offered
    ]  # fmt: skip
    ids = [t["id"] for t in state.waiting] + sorted(offered)
    if ids:
        done = (OfferOutcome.REJECTED.value, OfferOutcome.EXPIRED.value)
        ex = sa.select(OFFER.c.ticket_id, OFFER.c.agent_id).where(
            OFFER.c.outcome.in_(done), OFFER.c.ticket_id.in_(ids)
        )
        for tid, aid in session.execute(ex):
            state.excluded.setdefault(int(tid), set()).add(int(aid))
    return state


def last_agent_for_customer(session: Connection, customer_id: int, ticket_id: int) -> int | None:
    """The agent who last served this customer on another ticket (the known agent)."""
    q = (
        sa.select(TICKET.c.assignee_id)
        .where(
            TICKET.c.customer_id == customer_id,
            TICKET.c.id != ticket_id,
            TICKET.c.assignee_id.is_not(None),
        )
        .order_by(TICKET.c.updated_at.desc(), TICKET.c.id.desc())
        .limit(1)
    )
    found = session.execute(q).scalar()
    return None if found is None else int(found)


def agent_snapshot(session: Connection, user_id: int, now: datetime) -> dict[str, Any]:
    """What an agent's console starts from: presence, capacity, load, open offers, own work.

    ``last_event_id`` is read in the same transaction: events after it are news.
    """
    last = session.execute(sa.select(sa.func.coalesce(sa.func.max(EVENT.c.id), 0))).scalar_one()
    me = agent_row(session, user_id)
    offers = session.execute(
        sa.select(OFFER)
        .where(OFFER.c.agent_id == user_id, OFFER.c.outcome.is_(None), OFFER.c.expires_at > now)
        .order_by(OFFER.c.id)
    ).all()
    tickets = _summaries(session, [r.ticket_id for r in offers])
    mine = session.execute(
        sa.select(TICKET)
        .where(
            TICKET.c.assignee_id == user_id,
            TICKET.c.status.in_([*_HELD, TicketStatus.PENDING.value]),
        )
        .order_by(TICKET.c.id)
    ).all()
    load: dict[str, int] = {}
    for t in mine:
        if t.status in _HELD:
            load[t.channel] = load.get(t.channel, 0) + 1
    out_offers = []
    for r in offers:
        ticket = tickets[r.ticket_id]
        out_offers.append(
            {
                "offer_id": r.id,
                "ticket_id": r.ticket_id,
                "created_at": r.created_at.isoformat(),
                "expires_at": r.expires_at.isoformat(),
                "ticket": ticket,
            }
        )
        load[ticket["channel"]] = load.get(ticket["channel"], 0) + 1
    return {
        "last_event_id": int(last),
        "agent": {
            "id": user_id,
            "presence": me.presence if me else "offline",
            "capacity": me.capacity if me else dict(DEFAULT_CAPACITY),
            "queue_ids": sorted(me.queue_ids) if me else [],
            "load": load,
        },
        "offers": out_offers,
        "tickets": [ticket_summary(t) for t in mine],
    }
