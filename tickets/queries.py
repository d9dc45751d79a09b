"""Read paths, all scoped by role in one place (:func:`ticket_scope`).

* admin: every ticket;
* supervisor: tickets of their team, plus any assigned to them;
* agent: tickets assigned to them, plus unassigned tickets of the queues they serve.

A customer is visible when at least one of their tickets is. Anything outside the scope is
reported as absent (404), never as forbidden, so ids leak nothing.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from contact_center.db import fetch
from contact_center.errors import NotFound, ValidationError
from tickets.actions._common import (
    ATTACHMENT,
    CUSTOMER,
    HANDLE,
    MESSAGE,
    TICKET,
    message_summary,
    ticket_summary,
)
from tickets.domain import Role

__all__ = [
    "TicketFilter",
    "Viewer",
    "customer_scope",
    "customer_view",
    "decode_cursor",
    "encode_cursor",
    "get_ticket",
    "list_tickets",
    "ticket_detail",
    "ticket_scope",
]


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: enough to scope every query."""

    user_id: int
    role: Role
    team_id: int | None = None
    queue_ids: frozenset[int] = field(default_factory=frozenset)


# The four shapes a viewer's scope takes; the rules live here once. ticket_scope fills in the
# viewer's values, get_ticket runs statements built once per shape with them as parameters.
_b = sa.bindparam
_SHAPES = ("all", "mine", "team", "queues")


def _shape_clause(shape: str, user: Any, team: Any, queues: Any) -> sa.ColumnElement[bool]:
    if shape == "all":
        return sa.true()
    mine: sa.ColumnElement[bool] = TICKET.c.assignee_id == user
    if shape == "mine":
        return mine
    if shape == "team":
        return sa.or_(mine, TICKET.c.team_id == team)
    return sa.or_(mine, sa.and_(TICKET.c.assignee_id.is_(None), TICKET.c.queue_id.in_(queues)))


_SCOPES = {
    shape: _shape_clause(
        shape, _b("scope_user"), _b("scope_team"), _b("scope_queues", expanding=True)
    )
    for shape in _SHAPES
}
_IN_SCOPE = {shape: sa.select(TICKET).where(TICKET.c.id == _b("tid"), clause)
             for shape, clause in _SCOPES.items()}  # fmt: skip
_TICKET_IN_SCOPE = {
    (shape, lock): q.with_for_update() if lock else q
    for shape, q in _IN_SCOPE.items()
    for lock in (False, True)
}


def _scope_shape(viewer: Viewer) -> tuple[str, dict[str, Any]]:
    """Which of ``_SCOPES`` is :func:`ticket_scope` for ``viewer``, and its parameters."""
    if viewer.role is Role.ADMIN:
        return "all", {}
    mine = {"scope_user": viewer.user_id}
    if viewer.role is Role.SUPERVISOR:
        if viewer.team_id is None:
            return "mine", mine
        return "team", {**mine, "scope_team": viewer.team_id}
    if not viewer.queue_ids:
        return "mine", mine
    return "queues", {**mine, "scope_queues": sorted(viewer.queue_ids)}


def ticket_scope(viewer: Viewer) -> sa.ColumnElement[bool]:
    """The WHERE clause of tickets this viewer may see (its shape with the viewer's values)."""
    shape, p = _scope_shape(viewer)
    return _shape_clause(shape, p.get("scope_user"), p.get("scope_team"), p.get("scope_queues"))


def customer_scope(viewer: Viewer) -> sa.ColumnElement[bool]:
    """The WHERE clause of customers this viewer may see."""
    if viewer.role is Role.ADMIN:
        return sa.true()
    return sa.exists(
        sa.select(TICKET.c.id).where(TICKET.c.customer_id == CUSTOMER.c.id, ticket_scope(viewer))
    )


@dataclass(frozen=True, slots=True)
class TicketFilter:
    """List filters (all optional)."""

    status: tuple[str, ...] = ()
    queue_id: int | None = None
    channel: str | None = None
    assignee_id: int | None = None
    unassigned: bool = False
    customer_id: int | None = None


def encode_cursor(last_id: int) -> str:
    """Opaque cursor for the next page."""
    return base64.urlsafe_b64encode(f"t:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Inverse of :func:`encode_cursor`; a bad cursor is a validation error."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "t":
            raise ValueError(kind)
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("bad cursor", fields={"cursor": "not a cursor we issued"}) from None


def list_tickets(
    session: Connection,
    viewer: Viewer,
    flt: TicketFilter,
    *,
    limit: int = 50,
    before: int | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of tickets, newest first, and the id to continue before (or None)."""
    q = sa.select(TICKET).where(ticket_scope(viewer))
    if flt.status:
        q = q.where(TICKET.c.status.in_(flt.status))
    if flt.queue_id is not None:
        q = q.where(TICKET.c.queue_id == flt.queue_id)
    if flt.channel is not None:
        q = q.where(TICKET.c.channel == flt.channel)
    if flt.assignee_id is not None:
        q = q.where(TICKET.c.assignee_id == flt.assignee_id)
    if flt.unassigned:
        q = q.where(TICKET.c.assignee_id.is_(None))
    if flt.customer_id is not None:
        q = q.where(TICKET.c.customer_id == flt.customer_id)
    if before is not None:
        q = q.where(TICKET.c.id < before)
    rows = session.execute(q.order_by(TICKET.c.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return [ticket_summary(r) for r in rows], (rows[-1].id if more and rows else None)


def get_ticket(session: Connection, viewer: Viewer, ticket_id: int, *, lock: bool = False) -> Any:
    """The ticket row if the viewer may see it, else :class:`NotFound`.

    The statement is built once per scope shape (a statement costs more Python to build than
    to run); its rows are the same as ``select(TICKET).where(id, ticket_scope(viewer))``'s.
    """
    shape, params = _scope_shape(viewer)
    statement = _TICKET_IN_SCOPE[shape, lock]
    if shape == "queues":  # an expanding IN list: through execute(), which knows them
        row = session.execute(statement, {"tid": ticket_id, **params}).first()
    else:
        rows = fetch(session, statement, {"tid": ticket_id, **params})
        row = rows[0] if rows else None
    if row is None:
        raise NotFound("no such ticket")
    return row


def _attachments(session: Connection, message_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    if not message_ids:
        return out
    rows = session.execute(
        sa.select(ATTACHMENT).where(ATTACHMENT.c.message_id.in_(message_ids))
    ).all()
    for r in rows:
        out.setdefault(r.message_id, []).append(
            {"id": r.id, "filename": r.filename, "content_type": r.content_type, "size": r.size}
        )
    return out


def ticket_detail(session: Connection, viewer: Viewer, ticket_id: int) -> dict[str, Any]:
    """Ticket with its messages (notes included: only staff ever read this) and attachments."""
    ticket = get_ticket(session, viewer, ticket_id)
    msgs = session.execute(
        sa.select(MESSAGE).where(MESSAGE.c.ticket_id == ticket_id).order_by(MESSAGE.c.id)
    ).all()
    atts = _attachments(session, [m.id for m in msgs])
    out = ticket_summary(ticket)
    out["messages"] = [{**message_summary(m), "attachments": atts.get(m.id, [])} for m in msgs]
    out["customer"] = _customer_row(session, ticket.customer_id)
    return out


def _customer_row(session: Connection, customer_id: int) -> dict[str, Any]:
    c = session.execute(sa.select(CUSTOMER).where(CUSTOMER.c.id == customer_id)).one()
    handles = session.execute(
        sa.select(HANDLE.c.kind, HANDLE.c.value, HANDLE.c.undeliverable)
        .where(HANDLE.c.customer_id == customer_id)
        .order_by(HANDLE.c.id)
    ).all()
    return {
        "id": c.id,
        "name": c.name,
        "language": c.language,
        "org": c.org,
        "tags": c.tags,
        "handles": [
            {"kind": h.kind, "value": h.value, "undeliverable": h.undeliverable} for h in handles
        ],
    }


def customer_view(session: Connection, viewer: Viewer, customer_id: int) -> dict[str, Any]:
    """The 360 view: the customer, every handle, and every visible ticket with its messages."""
    seen = session.execute(
        sa.select(CUSTOMER.c.id).where(CUSTOMER.c.id == customer_id, customer_scope(viewer))
    ).first()
    if seen is None:
        raise NotFound("no such customer")
    out = _customer_row(session, customer_id)
    tickets = session.execute(
        sa.select(TICKET)
        .where(TICKET.c.customer_id == customer_id, ticket_scope(viewer))
        .order_by(TICKET.c.created_at.desc(), TICKET.c.id.desc())
    ).all()
    ids = [t.id for t in tickets]
    msgs = (
        session.execute(
            sa.select(MESSAGE).where(MESSAGE.c.ticket_id.in_(ids)).order_by(MESSAGE.c.id)
        ).all()
        if ids
        else []
    )
    by_ticket: dict[int, list[dict[str, Any]]] = {}
    for m in msgs:
        by_ticket.setdefault(m.ticket_id, []).append(message_summary(m))
    out["tickets"] = [{**ticket_summary(t), "messages": by_ticket.get(t.id, [])} for t in tickets]
    out["channels"] = sorted({t.channel for t in tickets})
    return out


def ticket_attachment(
    session: Connection, viewer: Viewer, ticket_id: int, attachment_id: int
) -> dict[str, Any]:
    """One attachment of a ticket in scope (looked up by ticket *and* attachment id), else 404."""
    get_ticket(session, viewer, ticket_id)
    row = session.execute(
        sa.select(ATTACHMENT.c.filename, ATTACHMENT.c.content_type, ATTACHMENT.c.sha256)
        .join(MESSAGE, MESSAGE.c.id == ATTACHMENT.c.message_id)
        .where(ATTACHMENT.c.id == attachment_id, MESSAGE.c.ticket_id == ticket_id)
    ).first()
    if row is None:
        raise NotFound("no such attachment")
    return {"filename": row.filename, "content_type": row.content_type, "sha256": row.sha256}


__all__ += ["ticket_attachment"]
