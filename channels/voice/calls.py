"""What the voice channel writes: calls, and what becomes of their tickets (actions).

The call row is the arbiter between processes and between Twilio's callbacks: every change
is a compare-and-set on its ``state``, so two web processes hearing the same assignment
connect the call once, and a callback that arrives late (a ``ringing`` after ``completed``)
changes nothing. Answer time is the router's accept (``tickets.actions.routing.accept_offer``
stores ``first_answer_at``); a call that ends before that is an abandon: its ticket is closed
unanswered, which is what the SLA board counts as one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from channels.voice.client import AgentLine
from channels.voice.parse import IncomingCall, call_contact
from contact_center.db import Actor, UnitOfWork, insert_ignore
from tickets.actions._common import CUSTOMER, HANDLE, MESSAGE, TICKET, USER, ticket_summary
from tickets.actions.ingest import IngestPolicy, ingest
from tickets.actions.routing import ROUTABLE, cancel_open_offers
from tickets.domain import HandleKind, TicketStatus
from tickets.models import VoiceCall

__all__ = [
    "FINAL_STATES",
    "VOICECALL",
    "CallView",
    "call_by_sid",
    "claim_connect",
    "end_call",
    "mark_connected",
    "open_call",
    "requeue_call",
    "ticket_of_message",
]

VOICECALL = cast(sa.Table, cast(Any, VoiceCall).__table__)
FINAL_STATES = ("completed", "abandoned", "voicemail")
_ACTOR = Actor("channel:voice")
_OPEN = (TicketStatus.NEW.value, TicketStatus.OPEN.value, TicketStatus.PENDING.value)


@dataclass(frozen=True, slots=True)
class CallView:
    """A call as the handlers need it."""

    call_sid: str
    ticket_id: int
    state: str
    language: str | None
    agent_id: int | None
    created_at: datetime

    @property
    def final(self) -> bool:
        """The call is over for the desk."""
        return self.state in FINAL_STATES


def _view(row: Any) -> CallView:
    return CallView(row.call_sid, int(row.ticket_id), row.state, row.language, row.agent_id,
                    row.created_at)  # fmt: skip


def _by_sid(uow: UnitOfWork, call_sid: str, lock: bool = False) -> Any:
    q = sa.select(VOICECALL).where(VOICECALL.c.call_sid == call_sid)
    if lock and uow.dialect == "postgresql":
        q = q.with_for_update()
    return uow.session.execute(q).first()


def call_by_sid(conn: sa.Connection, call_sid: str) -> CallView | None:
    """Read a call (handlers)."""
    row = conn.execute(sa.select(VOICECALL).where(VOICECALL.c.call_sid == call_sid)).first()
    return None if row is None else _view(row)


def ticket_of_message(conn: sa.Connection, channel: str, external_id: str) -> int | None:
    """The ticket of a stored message (a voicemail's, for its transcription)."""
    return conn.execute(
        sa.select(MESSAGE.c.ticket_id).where(
            MESSAGE.c.channel == channel, MESSAGE.c.external_id == external_id
        )
    ).scalar()


def caller_language(uow: UnitOfWork, phone: str) -> str | None:
    """The stored language of the customer with this number, if any."""
    language = uow.session.execute(
        sa.select(CUSTOMER.c.language)
        .join(HANDLE, HANDLE.c.customer_id == CUSTOMER.c.id)
        .where(HANDLE.c.kind == HandleKind.PHONE.value, HANDLE.c.value == phone)
    ).scalar()
    return None if language is None else str(language)


def open_call(
    uow: UnitOfWork, call: IncomingCall, policy: IngestPolicy, queue: str | None
) -> CallView:
    """The call's ticket (a new one per call) and its row, ``queued``; once per CallSid."""
    known = _by_sid(uow, call.call_sid)
    if known is not None:  # Twilio retried the webhook
        return _view(known)
    language = (caller_language(uow, call.caller) if call.caller else None) or call.language
    result = ingest(uow, call_contact(call, language, queue), policy, _ACTOR)
    insert_ignore(uow, VOICECALL, {
        "call_sid": call.call_sid, "ticket_id": result.ticket_id, "state": "queued",
        "caller": call.caller or "anonymous", "language": language, "created_at": uow.now,
    })  # fmt: skip
    return _view(_by_sid(uow, call.call_sid))


def claim_connect(
    uow: UnitOfWork, ticket_id: int, agent_id: int
) -> tuple[CallView, AgentLine] | None:
    """Take a queued call of the ticket for its agent (``connecting``); None if there is none
    (the call ended, another process connects it, or it is no call)."""
    row = uow.session.execute(
        sa.update(VOICECALL)
        .where(VOICECALL.c.ticket_id == ticket_id, VOICECALL.c.state == "queued")
        .values(state="connecting", agent_id=agent_id)
        .returning(VOICECALL)
    ).first()
    if row is None:
        return None
    phone = uow.session.execute(sa.select(USER.c.phone).where(USER.c.id == agent_id)).scalar()
    uow.audit(_ACTOR, "call.connect", "ticket", ticket_id,
              {"call_sid": row.call_sid, "agent_id": agent_id})  # fmt: skip
    return _view(row), AgentLine(agent_id, phone)


def mark_connected(uow: UnitOfWork, call_sid: str) -> bool:
    """Twilio took the redirect: the call is on its way to the agent."""
    row = uow.session.execute(
        sa.update(VOICECALL)
        .where(VOICECALL.c.call_sid == call_sid, VOICECALL.c.state == "connecting")
        .values(state="connected", connected_at=uow.now)
        .returning(VOICECALL.c.ticket_id)
    ).first()
    return row is not None


def requeue_call(uow: UnitOfWork, call_sid: str, reason: str) -> CallView | None:
    """The agent could not be reached: the call waits again and its ticket goes back to the
    queue (the router offers it to the next agent). None if the call is not with an agent."""
    row = uow.session.execute(
        sa.update(VOICECALL)
        .where(VOICECALL.c.call_sid == call_sid,
               VOICECALL.c.state.in_(("connecting", "connected")))
        .values(state="queued", agent_id=None, connected_at=None)
        .returning(VOICECALL)
    ).first()  # fmt: skip
    if row is None:
        return None
    ticket = uow.session.execute(sa.select(TICKET).where(TICKET.c.id == row.ticket_id)).one()
    if ticket.status in ROUTABLE and ticket.assignee_id is not None:
        cancel_open_offers(uow, ticket.id, "ticket_changed")
        values = {"assignee_id": None, "status": TicketStatus.OPEN.value, "updated_at": uow.now}
        new = uow.session.execute(
            sa.update(TICKET).where(TICKET.c.id == ticket.id).values(**values).returning(TICKET)
        ).one()
        summary = ticket_summary(new)
        uow.emit("ticket.updated", {**summary, "changed": sorted(values)}, ticket.id)
        uow.emit("ticket.assigned", {**summary, "previous_assignee_id": ticket.assignee_id},
                 ticket.id)  # fmt: skip
    uow.audit(_ACTOR, "call.requeue", "ticket", int(row.ticket_id),
              {"call_sid": call_sid, "reason": reason[:300]})  # fmt: skip
    return _view(row)


def end_call(
    uow: UnitOfWork, call_sid: str, voicemail: bool = False, twilio_status: str | None = None
) -> CallView | None:
    """The call is over for the desk (hung up, finished, or gone to voicemail).

    Answered (the router's accept stored ``first_answer_at``): ``completed``, its ticket
    solved (handle time runs from the answer to here). Not answered: ``abandoned`` (or
    ``voicemail``), its ticket closed, any open offer cancelled. A final call stays as it is.
    """
    row = _by_sid(uow, call_sid, lock=True)
    if row is None:
        return None
    if row.state in FINAL_STATES:
        return _view(row)
    q = sa.select(TICKET).where(TICKET.c.id == row.ticket_id)
    ticket = uow.session.execute(q.with_for_update() if uow.dialect == "postgresql" else q).one()
    answered = ticket.first_answer_at is not None
    state = "voicemail" if voicemail else ("completed" if answered else "abandoned")
    new_row = uow.session.execute(
        sa.update(VOICECALL)
        .where(VOICECALL.c.id == row.id)
        .values(state=state, ended_at=uow.now, twilio_status=twilio_status or row.twilio_status)
        .returning(VOICECALL)
    ).one()
    if ticket.status in _OPEN:
        _finish(uow, ticket, solved=answered)
    uow.audit(_ACTOR, "call.ended", "ticket", int(row.ticket_id),
              {"call_sid": call_sid, "state": state})  # fmt: skip
    return _view(new_row)


def _finish(uow: UnitOfWork, ticket: Any, *, solved: bool) -> None:
    """Solve (answered) or close (abandoned) the call's ticket, as a status change would."""
    status = TicketStatus.SOLVED if solved else TicketStatus.CLOSED
    stamp = "solved_at" if solved else "closed_at"
    values = {"status": status.value, stamp: uow.now, "updated_at": uow.now}
    cancel_open_offers(uow, ticket.id, "ticket_changed")
    new = uow.session.execute(
        sa.update(TICKET).where(TICKET.c.id == ticket.id).values(**values).returning(TICKET)
    ).one()
    uow.emit("ticket.updated", {**ticket_summary(new), "changed": sorted(values)}, ticket.id)
    uow.emit(f"ticket.{status.value}", {"id": ticket.id}, ticket.id)
