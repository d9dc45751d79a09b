"""Per-ticket SLA timers: arm, pause, resume and re-match tickets in the pure engine.

The database holds the truth (deadline columns, breach flags, ``sla.paused``/``sla.resumed``
events); this class keeps :class:`sla.engine.SlaEngine` in step with it and stores the
deadlines the pure core computes when they differ from what is stored (business calendars,
pauses, a queue change).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from contact_center.db import Database
from contact_center.sla_data import TRACKED, Catalog, TicketState, load_catalog, load_tickets
from sla.clock import Pause, to_epoch
from sla.engine import Kind, SlaEngine, Timer
from sla.policy import Deadlines, Metric, SlaPolicy, deadlines_for
from tickets.actions import sla as actions
from tickets.domain import TicketStatus

__all__ = ["ENDED", "PAUSABLE", "PENDING", "TicketTimers", "plan"]

log = logging.getLogger(__name__)

PAUSABLE = (Metric.FIRST_RESPONSE, Metric.NEXT_RESPONSE, Metric.RESOLUTION)
PENDING = TicketStatus.PENDING.value
ENDED = (TicketStatus.SOLVED.value, TicketStatus.CLOSED.value)


def plan(
    state: TicketState, policy: SlaPolicy | None
) -> tuple[Deadlines, dict[str, datetime | None]]:
    """Deadlines of the running metrics, and the stored columns that must change."""
    deadlines = Deadlines() if policy is None else deadlines_for(policy, state.facts())
    changes: dict[str, datetime | None] = {}
    facts = state.facts()
    for metric in TRACKED:
        if facts.completed(metric) is not None or state.solved_at is not None:
            continue  # a finished metric keeps the deadline it had
        due = deadlines.due(metric)
        if state.stored.get(metric) != due:
            changes[actions.DUE_COLUMNS[metric.value]] = due
    return deadlines, changes


def _timers(state: TicketState, deadlines: Deadlines) -> list[Timer]:
    out: list[Timer] = []
    for metric, warn, due in deadlines.items():
        if metric not in TRACKED or metric in state.breached:
            continue
        if warn is not None:
            out.append(Timer(metric, Kind.WARNING, to_epoch(warn)))
        if due is not None:
            out.append(Timer(metric, Kind.BREACH, to_epoch(due)))
    return out


class TicketTimers:
    """The engine plus what it needs to turn a fired timer into an announcement."""

    def __init__(self, db: Database, on_armed: Callable[[], None] = lambda: None) -> None:
        self.db = db
        self.engine = SlaEngine()
        self.catalog = Catalog()
        self.due: dict[tuple[int, Metric], datetime] = {}
        self.paused: set[int] = set()
        self._on_armed = on_armed
        # False in a process that does not lead (scaled out): it keeps no timers, reads and
        # writes nothing for them; the one that takes over rebuilds them from the database.
        self.active = True

    async def refresh_catalog(self) -> Catalog:
        """Re-read queues and policies (they change rarely; the sweep calls this)."""
        self.catalog = await self.db.read(load_catalog)
        return self.catalog

    def policy(self, state: TicketState) -> SlaPolicy | None:
        """The policy the ticket is under."""
        return None if state.policy_id is None else self.catalog.policies.get(state.policy_id)

    # -- arming -----------------------------------------------------------------------------

    def _remember(self, state: TicketState, deadlines: Deadlines) -> list[Timer]:
        for metric in TRACKED:
            due = deadlines.due(metric)
            if due is None or metric in state.breached:
                self.due.pop((state.id, metric), None)
            else:
                self.due[(state.id, metric)] = due
        if state.paused:
            self.paused.add(state.id)
        else:
            self.paused.discard(state.id)
        return _timers(state, deadlines)

    async def arm(self, state: TicketState, extra: dict[str, object] | None = None) -> None:
        """Compute the ticket's deadlines, store changed ones, and (re)schedule its timers."""
        if not self.active:
            return
        deadlines, changes = plan(state, self.policy(state))
        cols: dict[str, object] = {**changes, **(extra or {})}
        if cols:
            await self.db.write(actions.store_deadlines, [(state.id, cols)])
            for metric in TRACKED:
                col = actions.DUE_COLUMNS[metric.value]
                if col in changes:
                    state.stored[metric] = changes[col]
        self.engine.schedule(state.id, self._remember(state, deadlines))
        self._on_armed()

    async def rebuild(self, states: Iterable[TicketState], now: datetime) -> int:
        """Start over from the open tickets; returns how many stored deadlines were corrected."""
        items: list[tuple[int, list[Timer]]] = []
        changes: list[tuple[int, dict[str, object]]] = []
        self.due.clear()
        self.paused.clear()
        for state in states:
            policy = self.policy(state)
            if state.status == PENDING and not state.paused:
                await self.pause(state, now)  # went pending while no service was listening
            deadlines, cols = plan(state, policy)
            if cols:
                changes.append((state.id, dict(cols)))
            items.append((state.id, self._remember(state, deadlines)))
        for start in range(0, len(changes), 500):
            await self.db.write(actions.store_deadlines, changes[start : start + 500])
        self.engine.rebuild(items)
        self._on_armed()
        return len(changes)

    def armed(self, ticket_id: int) -> bool:
        """Whether any of the ticket's metrics has a deadline here."""
        return any((ticket_id, metric) in self.due for metric in TRACKED)

    def cancel(self, ticket_id: int, metrics: Iterable[Metric] | None = None) -> None:
        """Disarm (some of) a ticket's timers."""
        if not self.active:
            return
        if metrics is None:
            self.engine.cancel(ticket_id)
            self.paused.discard(ticket_id)
            metrics = TRACKED
        else:
            for metric in metrics:
                self.engine.cancel(ticket_id, metric)
        for metric in metrics:
            self.due.pop((ticket_id, metric), None)

    # -- pauses -----------------------------------------------------------------------------

    async def pause(self, state: TicketState, at: datetime) -> bool:
        """Stop the pausable clocks at ``at`` if the policy pauses while pending."""
        if not self.active:
            return False
        policy = self.policy(state)
        if policy is None or not policy.pause_while_pending or state.paused:
            return False
        facts = state.facts()
        running = [
            m for m in PAUSABLE
            if policy.applies(m, state.channel) and facts.start(m) is not None
            and facts.completed(m) is None and state.solved_at is None
        ]  # fmt: skip
        if not running:
            return False
        await self.db.write(actions.pause_clock, state.id, at, [m.value for m in running])
        state.pauses.append(Pause(at))
        for m in running:
            state.stored[m] = None
        self.paused.add(state.id)
        return True

    async def resume(self, state: TicketState, at: datetime) -> bool:
        """Restart the clocks at ``at``: store the deadlines moved by the pause."""
        if not self.active:
            return False
        if not state.paused:
            return False
        start = state.pauses[-1].start
        state.pauses[-1] = Pause(start, max(at, start))
        _, changes = plan(state, self.policy(state))
        await self.db.write(actions.resume_clock, state.id, at, changes)
        for metric in TRACKED:
            col = actions.DUE_COLUMNS[metric.value]
            if col in changes:
                state.stored[metric] = changes[col]
        self.paused.discard(state.id)
        return True

    # -- events -----------------------------------------------------------------------------

    async def refresh(
        self,
        ticket_id: int,
        at: datetime,
        *,
        status: str | None = None,
        rematch: bool = False,
    ) -> TicketState | None:
        """Re-read a ticket after a change and re-arm it.

        ``status`` is the status the triggering event reports (pauses follow the event
        stream, so a quick pending → open is still a pause); ``rematch`` re-chooses the
        policy (queue or priority changed).
        """
        if not self.active:
            return None
        found = await self.db.read(load_tickets, [ticket_id])
        if not found:
            self.cancel(ticket_id)
            return None
        state = found[0]
        if state.status in ENDED:
            self.cancel(ticket_id)
            return state
        extra: dict[str, object] = {}
        if rematch:
            if state.queue_id is not None and state.queue_id not in self.catalog.queues:
                await self.refresh_catalog()
            pid, _ = self.catalog.match(state.queue_id, state.priority, state.channel)
            if pid != state.policy_id:
                state.policy_id = pid
                extra["sla_policy_id"] = pid
        effective = status or state.status
        if effective == PENDING:
            await self.pause(state, at)
        elif state.paused:
            await self.resume(state, at)
        await self.arm(state, extra)
        return state

    def pending_timer(self, ticket_id: int, metric: Metric, kind: str) -> actions.SlaTimer | None:
        """The announcement for a fired timer (None if the metric was disarmed meanwhile)."""
        due = self.due.get((ticket_id, metric))
        if due is None:
            return None
        return actions.SlaTimer(ticket_id, metric.value, kind, due)
