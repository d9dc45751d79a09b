"""Routing actions: offers made, accepted, rejected, expired or cancelled; assignment on accept.

The router service (``routing/service.py``) decides in memory and calls these to make the
decisions true. The database is the arbiter: every transition of an offer is a compare-and-set
on ``outcome IS NULL`` (and a partial unique index allows one open offer per ticket), so an
accept racing an expiry, two agents racing, or a second router can never put one ticket with
two agents. Whatever the database says happened is what the router applies.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from contact_center.db import SYSTEM, Actor, UnitOfWork
from contact_center.errors import Conflict
from tickets.actions._common import OFFER, TICKET, USER, ticket_summary
from tickets.actions._statements import TICKET_BY_ID
from tickets.domain import LIVE_CHANNELS, Channel, OfferOutcome, Presence, TicketStatus

__all__ = [
    "ROUTABLE",
    "NewOffer",
    "OfferGone",
    "accept_offer",
    "announce_offers",
    "cancel_open_offers",
    "create_offers",
    "end_offers",
    "reject_offer",
]

ROUTABLE = (TicketStatus.NEW.value, TicketStatus.OPEN.value)
"""Statuses in which an unassigned ticket waits for an agent."""


class OfferGone(Conflict):
    """The offer is no longer open (accepted, rejected, expired, cancelled or never made)."""

    code = "offer_not_open"


class OfferExpired(Conflict):
    """The offer's time ran out before the agent accepted."""

    code = "offer_expired"


@dataclass(frozen=True, slots=True)
class NewOffer:
    """An offer the router made: ``ticket_id`` to ``agent_id`` from ``created_at`` on."""

    ticket_id: int
    agent_id: int
    created_at: datetime
    expires_at: datetime


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _offer_event(row: Any, **extra: Any) -> dict[str, Any]:
    return {
        "offer_id": row.id,
        "ticket_id": row.ticket_id,
        "agent_id": row.agent_id,
        "created_at": _iso(row.created_at),
        "expires_at": _iso(row.expires_at),
        **extra,
    }


# Built once (see tickets/actions/_statements.py): every offer and accept runs these.
_b = sa.bindparam
# at most one open offer per ticket (uq_offer_open_ticket): a second is skipped by the insert
# itself, which returns no row, rather than by a savepoint around an IntegrityError (two more
# statements per offer). On PostgreSQL a racing insert waits for the other transaction first.
_OFFER_INSERT = {
    name: dialect.insert(OFFER)
    .on_conflict_do_nothing(index_elements=["ticket_id"], index_where=OFFER.c.outcome.is_(None))
    .returning(OFFER)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_OPEN_OFFER = sa.select(OFFER).where(
    OFFER.c.ticket_id == _b("tid"), OFFER.c.agent_id == _b("aid"), OFFER.c.outcome.is_(None)
)
_DECIDE = (
    sa.update(OFFER)
    .where(OFFER.c.id == _b("oid"), OFFER.c.outcome.is_(None))
    .values(outcome=_b("outcome"), decided_at=_b("now"))
    .returning(OFFER)
)
_CANCEL = (  # a ticket's open offer, when someone else assigned, solved or moved it
    sa.update(OFFER)
    .where(OFFER.c.ticket_id == _b("tid"), OFFER.c.outcome.is_(None))
    .values(outcome=OfferOutcome.CANCELLED.value, decided_at=_b("now"))
    .returning(OFFER)
)
# the ticket's row lock on PostgreSQL (SQLite renders no FOR UPDATE: its one writer serialises)
_TICKET_LOCKED = sa.select(TICKET).where(TICKET.c.id == _b("tid")).with_for_update()


@functools.cache
def _assign(opens: bool, answers: bool) -> sa.Update:
    """The accept's ticket update: assignee and time, and the status and first answer if due."""
    values: dict[str, Any] = {"assignee_id": _b("aid"), "updated_at": _b("now")}
    if opens:
        values["status"] = TicketStatus.OPEN.value
    if answers:
        values["first_answer_at"] = _b("now")
    return sa.update(TICKET).where(TICKET.c.id == _b("tid")).values(**values).returning(TICKET)


def _first(rows: Sequence[Any]) -> Any:
    return rows[0] if rows else None


def create_offers(uow: UnitOfWork, offers: Sequence[NewOffer]) -> list[int | None]:
    """Store the offers; per offer its id, or None where the ticket is no longer waiting
    (assigned, solved or already offered meanwhile): the router then forgets it."""
    if not offers:
        return []
    ids = sorted({o.ticket_id for o in offers})
    found = (
        uow.fetch(TICKET_BY_ID, {"tid": ids[0]})  # the usual case: one prebuilt statement
        if len(ids) == 1
        else uow.session.execute(sa.select(TICKET).where(TICKET.c.id.in_(ids))).all()
    )
    tickets = {r.id: r for r in found}
    out: list[int | None] = []
    for o in offers:
        t = tickets.get(o.ticket_id)
        if t is None or t.assignee_id is not None or t.status not in ROUTABLE:
            out.append(None)
            continue
        values = {
            "ticket_id": o.ticket_id,
            "agent_id": o.agent_id,
            "created_at": o.created_at,
            "expires_at": o.expires_at,
        }
        rows = uow.fetch(_OFFER_INSERT[uow.dialect], values)
        if not rows:  # another open offer for this ticket: never a second one
            out.append(None)
            continue
        (row,) = rows
        out.append(int(row.id))
        uow.emit("offer.created", _offer_event(row, ticket=ticket_summary(t)), o.ticket_id)
        uow.audit(SYSTEM, "offer.create", "ticket", o.ticket_id,
                  {"offer_id": row.id, "agent_id": o.agent_id})  # fmt: skip
    return out


def _open_offer(uow: UnitOfWork, ticket_id: int, agent_id: int) -> Any:
    return _first(uow.fetch(_OPEN_OFFER, {"tid": ticket_id, "aid": agent_id}))


def _decide(uow: UnitOfWork, offer_id: int, outcome: OfferOutcome) -> Any:
    """Compare-and-set: close the offer if still open; the closed row, or None."""
    params = {"oid": offer_id, "outcome": outcome.value, "now": uow.now}
    return _first(uow.fetch(_DECIDE, params))


def accept_offer(uow: UnitOfWork, ticket_id: int, agent_id: int) -> dict[str, Any]:
    """The agent takes the ticket: the offer is accepted and the ticket assigned to them.

    Raises :class:`OfferGone` when there is no open offer of this ticket to this agent (another
    agent won, it was rescinded) and :class:`OfferExpired` when its time ran out.
    """
    ticket = _first(uow.fetch(_TICKET_LOCKED, {"tid": ticket_id}))
    offer = _open_offer(uow, ticket_id, agent_id) if ticket is not None else None
    if ticket is None or offer is None:
        raise OfferGone("this offer is no longer open")
    if offer.expires_at <= uow.now:
        raise OfferExpired("this offer expired")
    if ticket.assignee_id is not None or ticket.status not in ROUTABLE:
        # whoever changed the ticket closed its offers in the same transaction; this is a
        # leftover of a router that has not caught up yet
        raise OfferGone("the ticket was taken or closed meanwhile")
    row = _decide(uow, offer.id, OfferOutcome.ACCEPTED)
    if row is None:  # pragma: no cover - the ticket row lock / single writer serialises this
        raise OfferGone("this offer is no longer open")
    values = ["assignee_id", "updated_at"]
    if opens := ticket.status == TicketStatus.NEW:
        values.append("status")
    live = Channel(ticket.channel) in LIVE_CHANNELS
    if answers := live and ticket.first_answer_at is None:
        values.append("first_answer_at")
    params = {"tid": ticket_id, "aid": agent_id, "now": uow.now}
    (new,) = uow.fetch(_assign(opens, answers), params)
    summary = ticket_summary(new)
    uow.emit("offer.accepted", _offer_event(row, at=uow.now.isoformat()), ticket_id)
    uow.emit("ticket.updated", {**summary, "changed": sorted(values)}, ticket_id)
    uow.emit("ticket.assigned", {**summary, "previous_assignee_id": None}, ticket_id)
    if answers:
        payload = {"id": ticket_id, "at": uow.now.isoformat(), "agent_id": agent_id,
                   "queue_id": new.queue_id, "team_id": new.team_id}  # fmt: skip
        uow.emit("ticket.answered", payload, ticket_id)
    uow.audit(Actor("user", agent_id), "offer.accept", "ticket", ticket_id,
              {"offer_id": row.id})  # fmt: skip
    return summary


def reject_offer(uow: UnitOfWork, ticket_id: int, agent_id: int) -> None:
    """The agent declines; the router offers the ticket to the next agent (never this one)."""
    offer = _open_offer(uow, ticket_id, agent_id)
    row = None if offer is None else _decide(uow, offer.id, OfferOutcome.REJECTED)
    if row is None:
        raise OfferGone("this offer is no longer open")
    uow.emit("offer.rejected", _offer_event(row, at=uow.now.isoformat()), ticket_id)
    uow.audit(Actor("user", agent_id), "offer.reject", "ticket", ticket_id,
              {"offer_id": row.id})  # fmt: skip


def end_offers(
    uow: UnitOfWork, offer_ids: Iterable[int], outcome: OfferOutcome, *, away: bool = False
) -> dict[int, str]:
    """Close offers the router ended (``expired`` or ``cancelled``) if they are still open.

    Returns every given offer's outcome as stored afterwards, so the router learns of an accept
    or reject that won the race. With ``away``, an agent whose offer expired and who is still
    ``available`` goes ``away`` (one ``agent.presence`` event per agent).
    """
    ids = sorted(set(offer_ids))
    if not ids:
        return {}
    result: dict[int, str] = {}
    moved_away: set[int] = set()
    for offer_id in ids:
        row = _decide(uow, offer_id, outcome)
        if row is None:
            continue
        result[offer_id] = outcome.value
        uow.emit(f"offer.{outcome.value}", _offer_event(row), row.ticket_id)
        uow.audit(SYSTEM, f"offer.{outcome.value}", "ticket", row.ticket_id,
                  {"offer_id": row.id, "agent_id": row.agent_id})  # fmt: skip
        if away and outcome is OfferOutcome.EXPIRED:
            moved_away.add(int(row.agent_id))
    rest = [i for i in ids if i not in result]
    if rest:
        for r in uow.session.execute(
            sa.select(OFFER.c.id, OFFER.c.outcome).where(OFFER.c.id.in_(rest))
        ).all():
            result[int(r.id)] = r.outcome
    for agent_id in sorted(moved_away):
        changed = uow.session.execute(
            sa.update(USER)
            .where(USER.c.id == agent_id, USER.c.presence != Presence.AWAY.value)
            .values(presence=Presence.AWAY.value)
            .returning(USER.c.team_id)
        ).first()
        if changed is not None:
            uow.emit("agent.presence", {"id": agent_id, "presence": Presence.AWAY.value,
                                        "team_id": changed.team_id,
                                        "reason": "offer_expired"})  # fmt: skip
            uow.audit(SYSTEM, "user.presence", "user", agent_id,
                      {"presence": Presence.AWAY.value, "reason": "offer_expired"})  # fmt: skip
    return result


def announce_offers(uow: UnitOfWork, offer_ids: Sequence[int]) -> int:
    """Publish ``offer.created`` again for offers still open (a router taking over does: the
    first announcement may have died with the old leader between commit and publish). Agents'
    consoles know an offer by its id, so hearing it twice changes nothing. How many."""
    if not offer_ids:
        return 0
    rows = uow.session.execute(
        sa.select(OFFER).where(OFFER.c.id.in_(sorted(set(offer_ids))), OFFER.c.outcome.is_(None))
    ).all()
    tickets = {
        r.id: r
        for r in uow.session.execute(
            sa.select(TICKET).where(TICKET.c.id.in_(sorted({o.ticket_id for o in rows})))
        ).all()
    } if rows else {}  # fmt: skip
    for row in rows:
        ticket = tickets[row.ticket_id]
        uow.emit("offer.created", _offer_event(row, ticket=ticket_summary(ticket),
                                               announced_again=True), row.ticket_id)  # fmt: skip
    if rows:
        uow.audit(SYSTEM, "offer.announce", "offer", None, {"offer_ids": [r.id for r in rows]})
    return len(rows)


def cancel_open_offers(uow: UnitOfWork, ticket_id: int, reason: str) -> None:
    """Close the ticket's open offer, if any (it was assigned, solved or moved by someone)."""
    for row in uow.fetch(_CANCEL, {"tid": ticket_id, "now": uow.now}):
        uow.emit("offer.cancelled", _offer_event(row, reason=reason), ticket_id)
