"""What the ``/customer`` namespace reads: a visitor's conversation, the line, who is free.

Plain functions of a connection (run through ``Database.read``). Visitors only ever see their
own customer's chat tickets, public messages (never notes) and the first name of the agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from contact_center.db import fetch
from tickets.actions._common import (
    ATTACHMENT,
    EVENT,
    HANDLE,
    MESSAGE,
    QUEUE,
    QUEUE_MEMBER,
    TICKET,
    USER,
)
from tickets.actions._statements import MESSAGE_BY_ID
from tickets.domain import Channel, Direction, HandleKind, Presence, TicketStatus

__all__ = [
    "Availability",
    "TicketFacts",
    "agent_first_name",
    "availability",
    "conversation",
    "customer_of",
    "read_marks",
    "ticket_facts",
    "visitor_message",
    "visitor_message_of",
]

OPEN = (TicketStatus.NEW.value, TicketStatus.OPEN.value, TicketStatus.PENDING.value)
_PUBLIC = (Direction.IN.value, Direction.OUT.value)
HISTORY_LIMIT = 200


@dataclass(frozen=True, slots=True)
class TicketFacts:
    """A chat ticket as the namespace routes its events."""

    id: int
    customer_id: int
    assignee_id: int | None
    channel: str
    status: str
    queue_id: int | None
    answered: bool

    @property
    def waiting(self) -> bool:
        """Unanswered and unassigned: in the line (leaving now is an abandon)."""
        return self.status == TicketStatus.NEW.value and self.assignee_id is None


@dataclass(frozen=True, slots=True)
class Availability:
    """The chat queue and whether anyone can take a chat in this language now."""

    queue_id: int | None
    queue_name: str | None
    available_agents: int


def customer_of(session: Connection, handle: str) -> int | None:
    """The customer owning a chat handle (None: the visitor has not written yet)."""
    cid = session.execute(
        sa.select(HANDLE.c.customer_id).where(
            HANDLE.c.kind == HandleKind.CHAT.value, HANDLE.c.value == handle
        )
    ).scalar()
    return None if cid is None else int(cid)


def agent_first_name(session: Connection, user_id: int) -> str:
    """What a visitor is told of an agent: the first name only."""
    name = session.execute(sa.select(USER.c.name).where(USER.c.id == user_id)).scalar()
    return str(name or "").strip().split(" ", 1)[0] or "Agent"


def ticket_facts(session: Connection, ticket_id: int) -> TicketFacts | None:
    """One ticket's routing facts."""
    t = TICKET.c
    row = session.execute(
        sa.select(
            t.id, t.customer_id, t.assignee_id, t.channel, t.status, t.queue_id, t.first_answer_at
        ).where(t.id == ticket_id)
    ).first()
    if row is None:
        return None
    return TicketFacts(
        row.id,
        row.customer_id,
        row.assignee_id,
        row.channel,
        row.status,
        row.queue_id,
        row.first_answer_at is not None,
    )


def _client_id(external_id: str | None) -> str | None:
    if not external_id or ":" not in external_id:
        return None
    return external_id.rsplit(":", 1)[1]


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def visitor_message(
    row: Any, names: dict[int, str], files: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A message as the widget shows it (no staff ids, no HTML, no notes)."""
    mine = row.direction == Direction.IN.value
    return {
        "id": row.id,
        "ticket_id": row.ticket_id,
        "from": "me" if mine else "agent",
        "author": None if mine else names.get(row.author_user_id or 0, "Agent"),
        "body": row.body_text,
        "created_at": row.created_at if isinstance(row.created_at, str) else _iso(row.created_at),
        "client_id": _client_id(row.external_id) if mine else None,
        "attachments": files or [],
    }


# Built once: every chat line pushed to a visitor reads these.
_FILES = (
    sa.select(ATTACHMENT.c.message_id, ATTACHMENT.c.filename, ATTACHMENT.c.content_type,
              ATTACHMENT.c.size)
    .where(ATTACHMENT.c.message_id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(ATTACHMENT.c.id)
)  # fmt: skip
_NAMES = sa.select(USER.c.id, USER.c.name).where(USER.c.id.in_(sa.bindparam("ids", expanding=True)))


def _files(session: Connection, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    if ids:
        for r in session.execute(_FILES, {"ids": ids}):
            out.setdefault(r.message_id, []).append(
                {"filename": r.filename, "content_type": r.content_type, "size": r.size}
            )
    return out


def _names(session: Connection, user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    rows = session.execute(_NAMES, {"ids": sorted(user_ids)})
    return {int(r.id): (str(r.name).strip().split(" ", 1)[0] or "Agent") for r in rows}


def visitor_message_of(session: Connection, message_id: int) -> dict[str, Any] | None:
    """One stored public chat message in the widget's shape."""
    found = fetch(session, MESSAGE_BY_ID, {"mid": message_id})
    m = found[0] if found else None
    if m is None or m.direction not in _PUBLIC:
        return None
    names = _names(session, {m.author_user_id} if m.author_user_id else set())
    return visitor_message(m, names, _files(session, [m.id]).get(m.id))


def read_marks(session: Connection, ticket_id: int) -> dict[str, int]:
    """The newest message each side has read (``agent``, ``customer``) on a ticket."""
    marks: dict[str, int] = {}
    for (payload,) in session.execute(
        sa.select(EVENT.c.payload)
        .where(EVENT.c.ticket_id == ticket_id, EVENT.c.type == "chat.read")
        .order_by(EVENT.c.id.desc())
        .limit(50)
    ):
        by = str(payload.get("by"))
        marks.setdefault(by, int(payload.get("message_id", 0)))
    return marks


def conversation(
    session: Connection,
    customer_id: int | None,
    after_message_id: int = 0,
    *,
    with_messages: bool = True,
) -> dict[str, Any]:
    """A visitor's state: the current (open) chat ticket, messages after ``after_message_id``
    of their recent chat tickets (the last 200), and the read marks of the current ticket."""
    empty: dict[str, Any] = {"ticket": None, "messages": [], "read": {}, "last_message_id": 0}
    if customer_id is None:
        return empty
    t = TICKET.c
    tickets = session.execute(
        sa.select(t.id, t.status, t.assignee_id, t.queue_id, t.first_answer_at)
        .where(t.customer_id == customer_id, t.channel == Channel.CHAT.value)
        .order_by(t.id.desc())
        .limit(5)
    ).all()
    if not tickets:
        return empty
    ids = [r.id for r in tickets]
    m = MESSAGE.c
    rows = (
        []
        if not with_messages
        else session.execute(
            sa.select(MESSAGE)
            .where(
                m.ticket_id.in_(ids),
                m.direction.in_(_PUBLIC),
                m.channel == Channel.CHAT.value,
                m.id > after_message_id,
            )
            .order_by(m.id.desc())
            .limit(HISTORY_LIMIT)
        ).all()[::-1]
    )
    current = next((r for r in tickets if r.status in OPEN), None)
    names = _names(
        session,
        {r.author_user_id for r in rows if r.author_user_id}
        | ({current.assignee_id} if current and current.assignee_id else set()),
    )
    files = _files(session, [r.id for r in rows])
    last = session.execute(
        sa.select(sa.func.coalesce(sa.func.max(m.id), 0)).where(
            m.ticket_id.in_(ids), m.direction.in_(_PUBLIC)
        )
    ).scalar_one()
    ticket = None
    if current is not None:
        ticket = {
            "id": current.id,
            "status": current.status,
            "waiting": current.status == TicketStatus.NEW.value and current.assignee_id is None,
            "agent": names.get(current.assignee_id) if current.assignee_id else None,
            "queue_id": current.queue_id,
        }
    return {
        "ticket": ticket,
        "messages": [visitor_message(r, names, files.get(r.id)) for r in rows],
        "read": read_marks(session, current.id) if current is not None else {},
        "last_message_id": int(last),
    }


def availability(
    session: Connection, queue_name: str, fallback: str, language: str | None
) -> Availability:
    """The chat queue (``queue_name``, else ``fallback``) and its members free for a chat in
    this language: active, ``available``, with the language skill (``lang:zh`` for ``zh-CN``)."""
    q = session.execute(
        sa.select(QUEUE.c.id, QUEUE.c.name)
        .where(QUEUE.c.name.in_([queue_name, fallback]))
        .order_by(sa.case((QUEUE.c.name == queue_name, 0), else_=1))
        .limit(1)
    ).first()
    if q is None:
        return Availability(None, None, 0)
    rows = session.execute(
        sa.select(USER.c.skills)
        .join(QUEUE_MEMBER, QUEUE_MEMBER.c.user_id == USER.c.id)
        .where(
            QUEUE_MEMBER.c.queue_id == q.id,
            USER.c.active.is_(True),
            USER.c.presence == Presence.AVAILABLE.value,
        )
    ).all()
    skill = f"lang:{language.split('-', 1)[0].lower()}" if language else None
    agents = sum(1 for r in rows if skill is None or int((r.skills or {}).get(skill, 0)) >= 1)
    return Availability(int(q.id), str(q.name), agents)
