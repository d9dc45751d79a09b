"""Pure, synchronous skills-based router: waiting work → offers → assignments.

Feed it agents and work items, call :meth:`Router.route` with an explicit ``now`` and it returns
the offers to make; report what agents do (accept, reject, complete, presence) and call
:meth:`Router.expire` (or :meth:`Router.tick` for both) when :meth:`Router.next_deadline`
comes. It never reads the clock and imports nothing but the standard library; the service layer
(``routing/service.py``) wires it to events, sockets and the database.

Semantics (see ``docs/routing.md``): waiting order is priority (higher first), then
``enqueued_at``; an offer goes to an *eligible* agent — ``available``, free capacity on the
channel, member of the item's queue, every (relaxed) required skill at the minimum level, not
excluded for the ticket — the longest idle by default or the best skilled
(``Strategy.BEST_SKILL``). Relaxation steps per queue lower or drop requirements as the item
ages. A preferred (known) agent gets the item first; while the preference window is open the
item waits for them unless they are offline, outside the queue, excluded, or unqualified.
Invariants: never over capacity on a channel, never two agents on one ticket, never an
ineligible agent, and a ticket is exactly one of waiting / offered / assigned.

Cost per decision: O(log n) heap operations in the common case, with no scan of all agents or
all items (details and worst cases in ``docs/routing.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from heapq import heappop

from routing.engine import Engine
from routing.errors import (
    DuplicateError,
    OfferExpiredError,
    RouterError,
    UnknownAgentError,
    UnknownOfferError,
    UnknownTicketError,
)
from routing.indexes import iter_sorted
from routing.model import (
    DEFAULT_CAPACITY,
    DEFAULT_OFFER_TIMEOUT,
    LIVE_CHANNELS,
    MAX_LEVEL,
    AgentSpec,
    AgentView,
    Assignment,
    Channel,
    Offer,
    Presence,
    QueueConfig,
    RelaxStep,
    RouterConfig,
    SkillScore,
    Strategy,
    TicketState,
    WorkItem,
    language_skill,
)
from routing.records import AgentRec, ItemRec
from routing.views import RouterSnapshot, Tick, WaitingView

__all__ = [
    "DEFAULT_CAPACITY",
    "DEFAULT_OFFER_TIMEOUT",
    "LIVE_CHANNELS",
    "MAX_LEVEL",
    "AgentSpec",
    "AgentView",
    "Assignment",
    "Channel",
    "DuplicateError",
    "Offer",
    "OfferExpiredError",
    "Presence",
    "QueueConfig",
    "RelaxStep",
    "Router",
    "RouterConfig",
    "RouterError",
    "RouterSnapshot",
    "SkillScore",
    "Strategy",
    "Tick",
    "TicketState",
    "UnknownAgentError",
    "UnknownOfferError",
    "UnknownTicketError",
    "WaitingView",
    "WorkItem",
    "language_skill",
]


class Router(Engine):
    """The skills router. Not thread-safe: one owner calls it (the service's router loop)."""

    # -- configuration ---------------------------------------------------------------------

    def configure_queue(self, config: QueueConfig, now: float) -> None:
        """Set a queue's strategy and relaxation steps; re-files its items (O(items))."""
        self._queues[config.queue] = config
        self._req_cache = {k: v for k, v in self._req_cache.items() if k[0] != config.queue}
        for rec in [r for r in self._items.values() if r.queue == config.queue]:
            rec.stage = config.stage_at(rec.item.enqueued_at, now)
            self._schedule_relax(rec)
            self._replace(rec)

    def queue_config(self, queue: int) -> QueueConfig:
        """The policy of ``queue`` (the default policy if it was never configured)."""
        return self._cfg(queue)

    # -- agents ----------------------------------------------------------------------------

    def add_agent(self, spec: AgentSpec) -> None:
        """Add an agent (``DuplicateError`` if the id is known)."""
        if spec.id in self._agents:
            raise DuplicateError(f"agent {spec.id} is already known")
        a = self._agents[spec.id] = AgentRec(spec)
        self._refresh(a)
        self._touch(a)
        self._repin(a.id)

    def remove_agent(self, agent_id: int) -> list[Offer]:
        """Remove an agent. Its open offers are rescinded (returned; the items wait again,
        not excluding it) and its assignments are forgotten by the router."""
        a = self._agent(agent_id)
        rescinded = [self._withdraw(self._items[t], exclude=False) for t in sorted(a.offers)]
        for c in list(a.tokens):
            self._aidx.remove(a, c)
        for t in a.assigned:
            self._assigned.pop(t, None)
        del self._agents[agent_id]
        self._dirty_agents.discard(agent_id)
        self._repin(agent_id)
        return rescinded

    def update_agent(
        self,
        agent_id: int,
        *,
        skills: Mapping[str, int] | None = None,
        queues: frozenset[int] | set[int] | None = None,
        capacity: Mapping[str, int] | None = None,
    ) -> list[Offer]:
        """Change skills, queues and/or capacity overrides (``None`` keeps the current value).

        Open offers the agent no longer qualifies for (queue, skills) are rescinded and
        returned. Lowering capacity below the current load keeps existing work; the agent just
        gets no new offers on that channel until the load drops below the new capacity.
        """
        a = self._agent(agent_id)
        spec = AgentSpec(
            agent_id,
            a.skills if skills is None else skills,
            a.queues if queues is None else frozenset(queues),
            {**{str(c): n for c, n in a.cap.items()}, **(capacity or {})},
        )
        for c in list(a.tokens):  # leave the buckets of the old queues and skills
            self._aidx.remove(a, c)
        a.buckets.clear()
        a.set_skills(spec.skills)
        a.queues = spec.queues
        a.cap = {c: spec.capacity_for(c) for c in Channel}
        rescinded = [
            self._withdraw(rec, exclude=False)
            for rec in (self._items[t] for t in sorted(a.offers))
            if rec.queue not in a.queues or not rec.atoms <= a.atoms
        ]
        self._refresh(a)
        self._touch(a)
        self._repin(agent_id)
        return rescinded

    def set_presence(self, agent_id: int, presence: str, now: float) -> list[Offer]:
        """Change presence. Becoming ``available`` sets ``idle_since = now``. Going
        ``offline`` rescinds the agent's open offers (returned; the items wait again, not
        excluding the agent); other presences keep open offers, which may still be accepted."""
        a = self._agent(agent_id)
        new, old = Presence(presence), a.presence
        if new is old:
            return []
        a.presence = new
        rescinded: list[Offer] = []
        if new is Presence.OFFLINE:
            rescinded = [self._withdraw(self._items[t], exclude=False) for t in sorted(a.offers)]
        if new is Presence.AVAILABLE:
            a.idle_since = now
        self._refresh(a)
        self._touch(a)
        if Presence.OFFLINE in (new, old):
            self._repin(agent_id)
        return rescinded

    # -- work ------------------------------------------------------------------------------

    def enqueue(self, item: WorkItem) -> None:
        """Add a waiting item (``DuplicateError`` if the ticket is waiting, offered or
        assigned). Matching happens in the next ``route()``."""
        if item.ticket in self._items or item.ticket in self._assigned:
            raise DuplicateError(f"ticket {item.ticket} is already in the router")
        rec = ItemRec(item)
        self._track(rec)
        self._place(rec)

    def cancel(self, ticket: int) -> Offer | None:
        """The customer abandoned (or the ticket was closed elsewhere): forget the ticket,
        freeing capacity it held. Returns its open offer, if any (to withdraw it from the
        agent's screen). Unknown tickets are ignored (idempotent)."""
        rec = self._items.get(ticket)
        if rec is not None:
            offer = rec.offer
            if offer is not None:
                self._release(self._agents[offer.agent], rec.channel)
                self._agents[offer.agent].offers.discard(ticket)
            self._forget(rec)
            return offer
        assignment = self._assigned.pop(ticket, None)
        if assignment is not None and (a := self._agents.get(assignment.agent)) is not None:
            a.assigned.discard(ticket)
            self._release(a, assignment.channel)
        return None

    def _release(self, a: AgentRec, c: Channel) -> None:
        a.load[c] -= 1
        self._refresh(a, (c,))
        self._touch(a)

    def route(self, now: float) -> list[Offer]:
        """Apply due relaxation steps and preference-window ends, then make every offer that
        can be made (work-conserving). Each offer holds one unit of the agent's capacity."""
        self._advance(now)
        return self._match(now)

    def accept(self, ticket: int, agent_id: int, now: float) -> Assignment:
        """The agent accepted: the offer becomes an assignment (same capacity unit)."""
        rec = self._open_offer(ticket, agent_id)
        assert rec.offer is not None
        if now >= rec.offer.expires_at:
            raise OfferExpiredError(f"offer of ticket {ticket} expired at {rec.offer.expires_at}")
        a = self._agents[agent_id]
        a.offers.discard(ticket)
        a.assigned.add(ticket)
        self._forget(rec)
        assignment = Assignment(ticket, agent_id, rec.channel, rec.queue, now)
        self._assigned[ticket] = assignment
        return assignment

    def reject(self, ticket: int, agent_id: int, now: float) -> Offer:
        """The agent declined: the agent is excluded for this ticket, which waits again with
        its original ``enqueued_at``; the next ``route()`` offers it to the next agent."""
        del now  # part of the uniform signature; a rejection needs no time
        return self._withdraw(self._open_offer(ticket, agent_id), exclude=True)

    def expire(self, now: float) -> list[Offer]:
        """End every open offer with ``expires_at <= now``: the agent is excluded for the
        ticket and, if ``RouterConfig.away_on_expire`` (default), set ``away``; the ticket
        waits again. Returns the expired offers."""
        out: list[Offer] = []
        while (at := self._next_expiry()) is not None and at <= now:
            _, _, offer = heappop(self._expiry)
            rec = self._items[offer.ticket]
            a = self._agents[offer.agent]
            if self.config.away_on_expire and a.presence is not Presence.AWAY:
                a.presence = Presence.AWAY
                self._refresh(a)
            self._withdraw(rec, exclude=True)
            out.append(offer)
        return out

    def due_offers(self, now: float) -> list[Offer]:
        """The open offers ``expire(now)`` would end, earliest first (nothing changes)."""
        out: list[Offer] = []
        for at, _, offer in iter_sorted(self._expiry):
            if at > now:
                break
            rec = self._items.get(offer.ticket)
            if rec is not None and rec.offer is offer:
                out.append(offer)
        return out

    def tick(self, now: float) -> Tick:
        """``expire(now)`` then ``route(now)``: what a driver calls at ``next_deadline()``."""
        expired = self.expire(now)
        return Tick(tuple(expired), tuple(self.route(now)))

    def complete(self, ticket: int, now: float) -> Assignment:
        """The agent finished the ticket: free its capacity unit, ``idle_since = now``."""
        assignment = self._assigned.pop(ticket, None)
        if assignment is None:
            raise UnknownTicketError(f"ticket {ticket} is not assigned")
        a = self._agents.get(assignment.agent)
        if a is not None:
            a.assigned.discard(ticket)
            a.idle_since = now
            a.load[assignment.channel] -= 1
            self._refresh(a)
            self._touch(a)
        return assignment

    def _open_offer(self, ticket: int, agent_id: int) -> ItemRec:
        rec = self._items.get(ticket)
        if rec is None or rec.offer is None or rec.offer.agent != agent_id:
            raise UnknownOfferError(f"no open offer of ticket {ticket} to agent {agent_id}")
        return rec

    # -- timers ----------------------------------------------------------------------------

    def next_relaxation_at(self) -> float | None:
        """Earliest instant a relaxation step or a preference window end is due (or None)."""
        return self._next_timer()

    def next_offer_expiry(self) -> float | None:
        """Earliest ``expires_at`` of an open offer (or None)."""
        return self._next_expiry()

    def next_deadline(self) -> float | None:
        """When the caller should wake up and call ``tick()`` (or None: nothing is timed)."""
        times = [t for t in (self._next_expiry(), self._next_timer()) if t is not None]
        return min(times) if times else None

    # -- rebuild after a restart -----------------------------------------------------------

    def restore_offer(
        self, item: WorkItem, agent_id: int, expires_at: float, created_at: float | None = None
    ) -> Offer:
        """Re-create an open offer from storage (no eligibility check: storage is the truth).
        Add agents first; an expired one is ended by the next ``expire()``."""
        if item.ticket in self._items or item.ticket in self._assigned:
            raise DuplicateError(f"ticket {item.ticket} is already in the router")
        self._agent(agent_id)
        rec = ItemRec(item)
        start = expires_at - self._timeout[rec.channel] if created_at is None else created_at
        rec.stage = self._cfg(rec.queue).stage_at(item.enqueued_at, start)  # as when offered
        rec.req, rec.atoms = self._effective(rec)
        self._track(rec)
        offer = Offer(item.ticket, agent_id, expires_at, rec.channel, item.queue, start)
        self._hold(rec, offer)
        return offer

    def restore_assignment(
        self,
        ticket: int,
        agent_id: int,
        channel: str,
        *,
        queue: int | None = None,
        since: float = 0.0,
    ) -> Assignment:
        """Re-create an accepted ticket from storage: it holds one unit of capacity."""
        if ticket in self._items or ticket in self._assigned:
            raise DuplicateError(f"ticket {ticket} is already in the router")
        a = self._agent(agent_id)
        c = Channel(channel)
        a.assigned.add(ticket)
        a.load[c] += 1
        self._refresh(a, (c,))
        assignment = Assignment(ticket, agent_id, c, queue, since)
        self._assigned[ticket] = assignment
        return assignment

    # -- inspection ------------------------------------------------------------------------

    def held(self) -> set[int]:
        """Every ticket the router holds: waiting, offered or assigned."""
        return set(self._items) | set(self._assigned)

    def knows_agent(self, agent_id: int) -> bool:
        """True if the agent was added (and not removed)."""
        return agent_id in self._agents

    def item_of(self, ticket: int) -> WorkItem | None:
        """The waiting or offered item of ``ticket`` with its current exclusions (or None)."""
        rec = self._items.get(ticket)
        return None if rec is None else self._item(rec)

    def state_of(self, ticket: int) -> TicketState | None:
        """``waiting``, ``offered``, ``assigned``, or None if the router does not hold it."""
        rec = self._items.get(ticket)
        if rec is not None:
            return TicketState.WAITING if rec.waiting else TicketState.OFFERED
        return TicketState.ASSIGNED if ticket in self._assigned else None

    def offer_for(self, ticket: int) -> Offer | None:
        """The open offer of ``ticket``, if any."""
        rec = self._items.get(ticket)
        return None if rec is None else rec.offer

    def assignment_for(self, ticket: int) -> Assignment | None:
        """The assignment of ``ticket``, if any."""
        return self._assigned.get(ticket)

    def waiting_count(self, queue: int | None = None) -> int:
        """Number of waiting tickets (in ``queue``, or in all queues)."""
        if queue is None:
            return sum(self._waiting.values())
        return self._waiting.get(queue, 0)

    def agent_view(self, agent_id: int) -> AgentView:
        """Read-only state of one agent."""
        return self._view(self._agent(agent_id))

    def _view(self, a: AgentRec) -> AgentView:
        return AgentView(
            a.id,
            dict(a.skills),
            a.queues,
            dict(a.cap),
            dict(a.load),
            a.presence,
            a.idle_since,
            tuple(sorted(a.offers)),
            tuple(sorted(a.assigned)),
        )

    @staticmethod
    def _item(rec: ItemRec) -> WorkItem:
        """The item with its current exclusions (what to store / re-enqueue)."""
        if rec.excluded == rec.item.excluded:
            return rec.item
        return replace(rec.item, excluded=frozenset(rec.excluded))

    def snapshot(self) -> RouterSnapshot:
        """The whole state (agents, waiting, offers, assignments), sorted by id."""
        recs = sorted(self._items.values(), key=lambda r: r.ticket)
        waiting = tuple(
            WaitingView(self._item(r), r.stage, dict(r.req), r.pinned_to, frozenset(r.excluded))
            for r in recs
            if r.waiting
        )
        offered = [r for r in recs if r.offer is not None]
        return RouterSnapshot(
            agents=tuple(self._view(self._agents[i]) for i in sorted(self._agents)),
            waiting=waiting,
            offers=tuple(r.offer for r in offered if r.offer is not None),
            offered_items=tuple(self._item(r) for r in offered),
            assignments=tuple(self._assigned[t] for t in sorted(self._assigned)),
        )
