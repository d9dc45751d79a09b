"""How the SLA service reacts to each committed event (timers, counters, agents).

| event | timers | board |
|---|---|---|
| ``ticket.created`` | arm (policy of the queue; deadlines from the pure core) | arrived, waiting |
| ``ticket.answered`` (router accept, live) | disarm answer | answered (wait) |
| ``ticket.first_response`` | disarm answer and first response | answered (wait) |
| ``ticket.solved`` / ``closed`` | disarm everything | abandon (live, unanswered) or handle time |
| ``ticket.reopened`` | re-read and re-arm | |
| ``ticket.awaiting_reply`` (customer wrote after an agent reply) | re-read, arm next response | |
| ``ticket.updated`` (status, queue, priority) | pause, resume, re-match, re-arm (*) | queue moves |
| ``message.created`` (inbound, paused ticket) | resume (ingest reopened it) | |
| ``message.created`` (outbound: an agent reply) | disarm next response | |
| ``sla.breached`` / ``sla.warning`` | | breaches today; an alert for the wallboard |
| ``agent.presence``, ``user.*`` | | agents by presence, occupancy, queues served |
| ``ticket.updated`` / ``assigned`` / ``solved`` / ``closed`` | | who handles a live one |
| ``offer.*`` | | open offers |

(*) Solved or closed: disarm, nothing to read; new <-> open on a ticket with timers: nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from contact_center.db import EventRecord
from contact_center.sla_data import TicketState
from contact_center.sla_live import epoch
from contact_center.sla_timers import ENDED, PENDING
from contact_center.sla_waiting import Contact
from sla.policy import Metric

if TYPE_CHECKING:
    from contact_center.sla_service import SlaService

__all__ = ["apply_event", "created_state"]


async def apply_event(svc: SlaService, ev: EventRecord) -> None:
    """Apply one committed event to the service's timers and board."""
    p, tid, at, kind = ev.payload, ev.ticket_id, ev.created_at, ev.type
    if kind.startswith("ticket.") and tid is not None:
        await _ticket_event(svc, kind, tid, p, at)
    elif kind == "message.created" and tid is not None:
        if p.get("direction") == "in" and tid in svc.timers.paused:
            await svc.timers.refresh(tid, at, status="open")
        elif p.get("direction") == "out":  # the reply ends the next-response round
            svc.timers.cancel(tid, (Metric.NEXT_RESPONSE,))
    elif kind in ("sla.breached", "sla.warning"):
        if kind == "sla.breached":
            svc.board.breached(epoch(at), p.get("queue_id"), p.get("team_id"))
        svc.touch({p.get("team_id")}, {"type": kind, "event_id": ev.id, **p})
    elif kind in ("agent.presence", "user.created", "user.updated") or kind.startswith("offer."):
        svc.touch(svc.board.staff.apply(kind, p, epoch(at)))


async def _ticket_event(
    svc: SlaService, kind: str, tid: int, p: dict[str, Any], at: datetime
) -> None:
    board, timers = svc.board, svc.timers
    teams: set[int | None] = {c.team_id for c in (board.waiting.get(tid),
                                                  board.talking.get(tid)) if c}  # fmt: skip
    teams |= board.staff.apply(kind, p, epoch(at))  # who handles live contacts (occupancy)
    if kind == "ticket.created":
        state = created_state(p)
        if state.queue_id is not None and state.queue_id not in timers.catalog.queues:
            await svc.refresh_catalog()
        state.policy_id, _ = timers.catalog.match(state.queue_id, state.priority, state.channel)
        contact = Contact(
            epoch(state.created_at), state.queue_id, state.channel, state.team_id, state.priority
        )
        board.arrived(tid, epoch(state.created_at), contact)
        teams.add(state.team_id)
        await timers.arm(state)
    elif kind == "ticket.first_response":
        timers.cancel(tid, (Metric.ANSWER, Metric.FIRST_RESPONSE))
        board.answered(tid, epoch(datetime.fromisoformat(p.get("at") or at.isoformat())))
    elif kind == "ticket.answered":  # an agent accepted a live contact: the answer
        timers.cancel(tid, (Metric.ANSWER,))
        board.answered(tid, epoch(datetime.fromisoformat(p.get("at") or at.isoformat())))
    elif kind in ("ticket.solved", "ticket.closed"):
        timers.cancel(tid)
        board.ended(tid, epoch(at))
    elif kind in ("ticket.reopened", "ticket.awaiting_reply"):
        await timers.refresh(tid, at)
    elif kind == "ticket.updated":
        changed = set(p.get("changed", ()))
        if "queue_id" in changed:
            teams |= board.moved(tid, p.get("queue_id"), p.get("team_id"))
        if "priority" in changed:
            board.reprioritized(tid, int(p["priority"]))
        if changed & {"status", "queue_id", "priority"}:
            rematch = bool(changed & {"queue_id", "priority"})
            status = p.get("status")
            if status in ENDED:  # nothing to re-read: an ended ticket keeps no timers
                timers.cancel(tid)
            elif rematch or status == PENDING or tid in timers.paused or not timers.armed(tid):
                await timers.refresh(tid, at, status=status, rematch=rematch)
            # else new <-> open on a running ticket (an accept, an assignment): its deadlines
            # depend on neither, so the re-read and re-arm would change nothing
        teams.add(p.get("team_id"))
    svc.touch(teams)


def created_state(p: dict[str, Any]) -> TicketState:
    """The SLA facts of a new ticket from its ``ticket.created`` summary (no database read)."""

    def ts(key: str) -> datetime | None:
        raw = p.get(key)
        return None if raw is None else datetime.fromisoformat(raw)

    created = ts("created_at")
    if created is None:
        raise ValueError("ticket.created without created_at")
    return TicketState(
        id=int(p["id"]), status=str(p.get("status", "new")), channel=str(p["channel"]),
        priority=int(p.get("priority", 2)), queue_id=p.get("queue_id"),
        team_id=p.get("team_id"), policy_id=None, created_at=created,
        stored={Metric.ANSWER: ts("answer_due_at"),
                Metric.FIRST_RESPONSE: ts("first_response_due_at"), Metric.NEXT_RESPONSE: None,
                Metric.RESOLUTION: None},
        pauses=[],
    )  # fmt: skip
