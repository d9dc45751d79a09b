"""Ticket changes by staff: status, priority, assignee, queue."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from contact_center.db import Actor, UnitOfWork
from contact_center.errors import Forbidden, ValidationError
from tickets.actions._common import QUEUE, QUEUE_MEMBER, TICKET, USER, ticket_summary
from tickets.actions.routing import ROUTABLE, cancel_open_offers
from tickets.domain import Role, TicketStatus
from tickets.queries import Viewer, get_ticket

__all__ = ["update_ticket"]

_ALLOWED = {
    TicketStatus.NEW: {TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.SOLVED},
    TicketStatus.OPEN: {TicketStatus.PENDING, TicketStatus.SOLVED},
    TicketStatus.PENDING: {TicketStatus.OPEN, TicketStatus.SOLVED},
    TicketStatus.SOLVED: {TicketStatus.OPEN, TicketStatus.CLOSED},
    TicketStatus.CLOSED: set(),
}
# Built once; an UPDATE without values() sets the columns named by the parameters it runs with.
_UPDATE = sa.update(TICKET).where(TICKET.c.id == sa.bindparam("tid")).returning(TICKET)
_USER = sa.select(USER.c.id, USER.c.active, USER.c.team_id).where(USER.c.id == sa.bindparam("uid"))


def _check_assignee(
    uow: UnitOfWork, viewer: Viewer, assignee_id: int, queue_id: int | None
) -> None:
    found = uow.fetch(_USER, {"uid": assignee_id})
    user = found[0] if found else None
    if user is None or not user.active:
        raise ValidationError("no such active user", fields={"assignee_id": "unknown"})
    if viewer.role is Role.AGENT and assignee_id != viewer.user_id:
        raise Forbidden("agents may only take tickets themselves; ask a supervisor to transfer")
    if viewer.role is Role.SUPERVISOR and user.team_id != viewer.team_id:
        raise Forbidden("supervisors assign within their own team")
    if viewer.role is Role.AGENT and queue_id is not None and queue_id not in viewer.queue_ids:
        raise Forbidden("not a member of this ticket's queue")


def update_ticket(
    uow: UnitOfWork, viewer: Viewer, ticket_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    """Apply allowed changes (status, priority, assignee_id, queue_id) and report the new state."""
    for key in ("status", "priority"):  # only assignee_id (release) and queue_id may be null
        if key in changes and changes[key] is None:
            raise ValidationError(f"{key} cannot be null", fields={key: "may not be null"})
    ticket = get_ticket(uow.session, viewer, ticket_id, lock=uow.dialect == "postgresql")
    values: dict[str, Any] = {}
    events: list[tuple[str, dict[str, Any]]] = []
    if "status" in changes and changes["status"] != ticket.status:
        new = TicketStatus(changes["status"])
        if new not in _ALLOWED[TicketStatus(ticket.status)]:
            raise ValidationError(
                f"cannot go from {ticket.status} to {new.value}",
                fields={"status": "transition not allowed"},
            )
        values["status"] = new.value
        if new is TicketStatus.SOLVED:
            values["solved_at"] = uow.now
            events.append(("ticket.solved", {"id": ticket_id}))
        elif new is TicketStatus.CLOSED:
            values["closed_at"] = uow.now
            events.append(("ticket.closed", {"id": ticket_id}))
        elif ticket.status == TicketStatus.SOLVED:
            values["solved_at"] = None
            events.append(("ticket.reopened", {"id": ticket_id}))
    if "priority" in changes and changes["priority"] != ticket.priority:
        values["priority"] = int(changes["priority"])
    if "queue_id" in changes and changes["queue_id"] != ticket.queue_id:
        if viewer.role is Role.AGENT:
            raise Forbidden("agents cannot move tickets between queues")
        queue = uow.session.execute(
            sa.select(QUEUE.c.id, QUEUE.c.team_id).where(QUEUE.c.id == changes["queue_id"])
        ).first()
        if queue is None:
            raise ValidationError("no such queue", fields={"queue_id": "unknown"})
        values.update(queue_id=queue.id, team_id=queue.team_id)
    if "assignee_id" in changes and changes["assignee_id"] != ticket.assignee_id:
        assignee = changes["assignee_id"]
        if assignee is not None:
            _check_assignee(uow, viewer, int(assignee), values.get("queue_id", ticket.queue_id))
            if ticket.status == TicketStatus.NEW and "status" not in values:
                values["status"] = TicketStatus.OPEN.value
        elif viewer.role is Role.AGENT and ticket.assignee_id != viewer.user_id:
            raise Forbidden("agents may only release their own tickets")
        values["assignee_id"] = assignee
        events.append(
            (
                "ticket.assigned",
                {"assignee_id": assignee, "previous_assignee_id": ticket.assignee_id},
            )
        )
    if not values:
        return dict(ticket_summary(ticket))
    if (
        "assignee_id" in values
        or "queue_id" in values
        or values.get("status") not in (None, *ROUTABLE)
    ):
        cancel_open_offers(uow, ticket_id, "ticket_changed")  # the router re-offers if needed
    values["updated_at"] = uow.now
    row = uow.session.execute(_UPDATE, {"tid": ticket_id, **values}).one()  # SET: values' keys
    summary = ticket_summary(row)
    uow.emit("ticket.updated", {**summary, "changed": sorted(values)}, ticket_id)
    for name, payload in events:
        uow.emit(name, {**summary, **payload} if name == "ticket.assigned" else payload, ticket_id)
    detail = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in values.items()}
    uow.audit(Actor("user", viewer.user_id), "ticket.update", "ticket", ticket_id, detail)
    return summary


def queue_ids_of(uow_session: Any, user_id: int) -> frozenset[int]:
    """Queues a user serves."""
    return frozenset(
        uow_session.execute(
            sa.select(QUEUE_MEMBER.c.queue_id).where(QUEUE_MEMBER.c.user_id == user_id)
        ).scalars()
    )
