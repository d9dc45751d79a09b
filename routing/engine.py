"""Router internals: state, placement of waiting items, index upkeep, timers and matching.

:class:`Engine` holds all mutable state; :class:`routing.core.Router` adds the public
operations on top. Nothing here reads the clock.

Work conservation. Between two ``route()`` calls every waiting item that had no eligible
offerable agent stays that way unless the item or an agent changed; every change that can
create an eligible pair marks the item ("dirty item") or agent ("dirty agent"), and time-driven
changes (relaxation steps, preference windows closing) are timers popped at the start of
``route()``. ``route()`` then runs one greedy pass in waiting order over a heap holding each dirty
item and, for each dirty agent, the best item it could take; popping an entry offers the item to
its best agent. Afterwards no dirty item has an eligible agent and no dirty agent has an
eligible item, and clean-clean pairs were already infeasible, so no eligible pair is left.
"""

from __future__ import annotations

from collections.abc import Iterable
from heapq import heapify, heappop, heappush
from itertools import count

from routing.errors import UnknownAgentError
from routing.indexes import AgentIndex, WaitingIndex
from routing.model import (
    Assignment,
    Channel,
    Offer,
    Presence,
    QueueConfig,
    RouterConfig,
)
from routing.records import AgentRec, ItemEntry, ItemKey, ItemRec, Req, req_tuple

__all__ = ["Engine"]

_RELAX = 0
_PIN_END = 1
_REQ_CACHE_MAX = 65_536


class Engine:
    """Mutable router state and the matching machinery (see the module docstring)."""

    def __init__(
        self, config: RouterConfig | None = None, queues: Iterable[QueueConfig] = ()
    ) -> None:
        self.config = config or RouterConfig()
        self._timeout = {Channel(c): t for c, t in self.config.offer_timeout.items()}
        self._queues: dict[int, QueueConfig] = {q.queue: q for q in queues}
        self._agents: dict[int, AgentRec] = {}
        self._items: dict[int, ItemRec] = {}  # waiting or offered
        self._assigned: dict[int, Assignment] = {}
        self._aidx = AgentIndex()
        self._widx = WaitingIndex()
        self._timeline: list[tuple[float, int, int, ItemRec]] = []  # (at, seq, kind, item)
        self._expiry: list[tuple[float, int, Offer]] = []
        self._pref_waiters: dict[int, set[int]] = {}  # agent id -> tickets, window open
        self._waiting: dict[int, int] = {}  # queue -> number of waiting items
        self._dirty_items: set[int] = set()
        self._dirty_agents: set[int] = set()
        self._seq = count()
        self._req_cache: dict[tuple[int, Req, int], tuple[Req, frozenset[tuple[str, int]]]] = {}

    # -- lookups ---------------------------------------------------------------------------

    def _cfg(self, queue: int) -> QueueConfig:
        cfg = self._queues.get(queue)
        if cfg is None:
            cfg = self._queues[queue] = QueueConfig(queue)
        return cfg

    def _agent(self, agent_id: int) -> AgentRec:
        a = self._agents.get(agent_id)
        if a is None:
            raise UnknownAgentError(f"agent {agent_id} is not known to the router")
        return a

    def _effective(self, rec: ItemRec) -> tuple[Req, frozenset[tuple[str, int]]]:
        key = (rec.queue, rec.base, rec.stage)
        hit = self._req_cache.get(key)
        if hit is None:
            if len(self._req_cache) >= _REQ_CACHE_MAX:  # distinct requirement sets are few;
                self._req_cache.clear()  # this only bounds memory if they are not
            req = req_tuple(self._cfg(rec.queue).requirements_at(dict(rec.base), rec.stage))
            hit = self._req_cache[key] = (req, frozenset(req))
        return hit

    # -- agent index upkeep ----------------------------------------------------------------

    def _refresh(self, a: AgentRec, channels: Iterable[Channel] | None = None) -> None:
        """Bring ``a``'s index entries in line with its state on ``channels`` (default: all)."""
        for c in self._aidx.channels if channels is None else channels:
            if c not in self._aidx.channels:
                continue
            want = a.presence is Presence.AVAILABLE and a.load[c] < a.cap[c]
            if c in a.tokens:
                if want and a.indexed_idle[c] == a.idle_since:
                    continue
                self._aidx.remove(a, c)
            if want:
                self._aidx.add(a, c)

    def _activate(self, c: Channel) -> None:
        """Start indexing agents on ``c`` (the first time an item on ``c`` shows up)."""
        if c not in self._aidx.channels:
            self._aidx.channels.add(c)
            for a in self._agents.values():
                self._refresh(a, (c,))

    def _touch(self, a: AgentRec) -> None:
        """``a`` may have become eligible for something: look at it in the next ``route()``."""
        if a.presence is Presence.AVAILABLE:
            self._dirty_agents.add(a.id)

    # -- waiting items ---------------------------------------------------------------------

    def _honoured(self, rec: ItemRec) -> AgentRec | None:
        """The preferred agent the item waits for now, if the preference holds."""
        pref = rec.item.preferred_agent
        if pref is None or not rec.pref_open:
            return None
        a = self._agents.get(pref)
        if (
            a is None
            or a.presence is Presence.OFFLINE
            or rec.queue not in a.queues
            or pref in rec.excluded
            or a.cap[rec.channel] <= 0
            or not rec.atoms <= a.atoms
        ):
            return None
        return a

    def _place(self, rec: ItemRec) -> None:
        """Make ``rec`` waiting: pinned to its preferred agent or filed in its class."""
        rec.req, rec.atoms = self._effective(rec)
        rec.offer = None
        rec.waiting = True
        self._waiting[rec.queue] = self._waiting.get(rec.queue, 0) + 1
        pa = self._honoured(rec)
        if pa is not None:
            rec.pinned_to = pa.id
            pa.pinned.add(rec.ticket)
        else:
            self._widx.add(rec)
        self._dirty_items.add(rec.ticket)

    def _unplace(self, rec: ItemRec) -> None:
        if not rec.waiting:
            return
        rec.waiting = False
        self._waiting[rec.queue] -= 1
        if rec.pinned_to is not None:
            pa = self._agents.get(rec.pinned_to)
            if pa is not None:
                pa.pinned.discard(rec.ticket)
            rec.pinned_to = None
        else:
            self._widx.remove(rec)

    def _replace(self, rec: ItemRec) -> None:
        if rec.waiting:
            self._unplace(rec)
            self._place(rec)

    def _repin(self, agent_id: int) -> None:
        """Re-evaluate the preference of items preferring ``agent_id`` (its state changed)."""
        for t in tuple(self._pref_waiters.get(agent_id, ())):
            self._replace(self._items[t])

    def _track(self, rec: ItemRec) -> None:
        """Register a new item: relaxation timer, preference window timer."""
        self._items[rec.ticket] = rec
        self._activate(rec.channel)
        self._schedule_relax(rec)
        pref = rec.item.preferred_agent
        if pref is not None and rec.pref_open:
            at = rec.item.enqueued_at + rec.item.preference_window
            heappush(self._timeline, (at, next(self._seq), _PIN_END, rec))
            self._pref_waiters.setdefault(pref, set()).add(rec.ticket)

    def _forget(self, rec: ItemRec) -> None:
        """Drop an item that left the router (assigned or cancelled)."""
        self._unplace(rec)
        del self._items[rec.ticket]
        self._drop_pref(rec)

    def _drop_pref(self, rec: ItemRec) -> None:
        pref = rec.item.preferred_agent
        if pref is not None:
            waiters = self._pref_waiters.get(pref)
            if waiters is not None:
                waiters.discard(rec.ticket)
                if not waiters:
                    del self._pref_waiters[pref]

    # -- timers ----------------------------------------------------------------------------

    def _schedule_relax(self, rec: ItemRec) -> None:
        steps = self._cfg(rec.queue).relaxation
        if rec.stage < len(steps):
            rec.relax_seq = seq = next(self._seq)
            at = rec.item.enqueued_at + steps[rec.stage].after_seconds
            heappush(self._timeline, (at, seq, _RELAX, rec))
        else:
            rec.relax_seq = -1

    def _timer_live(self, seq: int, kind: int, rec: ItemRec) -> bool:
        if self._items.get(rec.ticket) is not rec:
            return False
        return seq == rec.relax_seq if kind == _RELAX else rec.pref_open

    def _advance(self, now: float) -> None:
        """Apply relaxation steps and close preference windows due at or before ``now``."""
        tl = self._timeline
        while tl and tl[0][0] <= now:
            _, seq, kind, rec = heappop(tl)
            if not self._timer_live(seq, kind, rec):
                continue
            if kind == _RELAX:
                rec.stage = self._cfg(rec.queue).stage_at(rec.item.enqueued_at, now)
                self._schedule_relax(rec)
                if not rec.waiting:  # offered: a later rescind check uses today's requirement
                    rec.req, rec.atoms = self._effective(rec)
                elif self._effective(rec)[0] != rec.req:
                    self._replace(rec)
            else:
                rec.pref_open = False
                self._drop_pref(rec)
                if rec.pinned_to is not None:
                    self._replace(rec)

    def _next_timer(self) -> float | None:
        tl = self._timeline
        while tl and not self._timer_live(tl[0][1], tl[0][2], tl[0][3]):
            heappop(tl)
        return tl[0][0] if tl else None

    def _next_expiry(self) -> float | None:
        ex = self._expiry
        while ex:
            rec = self._items.get(ex[0][2].ticket)
            if rec is not None and rec.offer is ex[0][2]:
                return ex[0][0]
            heappop(ex)
        return None

    # -- offers ----------------------------------------------------------------------------

    def _offer(self, rec: ItemRec, a: AgentRec, now: float, out: list[Offer]) -> None:
        self._unplace(rec)
        c = rec.channel
        offer = Offer(rec.ticket, a.id, now + self._timeout[c], c, rec.queue, now)
        rec.offer = offer
        a.offers.add(rec.ticket)
        a.load[c] += 1
        a.idle_since = now  # work just arrived: to the back of the line (spreads multi-tasking)
        self._refresh(a)
        heappush(self._expiry, (offer.expires_at, next(self._seq), offer))
        out.append(offer)

    def _hold(self, rec: ItemRec, offer: Offer) -> None:
        """Record ``offer`` (restored from storage) as holding ``rec``."""
        a = self._agent(offer.agent)
        rec.offer = offer
        a.offers.add(rec.ticket)
        a.load[rec.channel] += 1
        self._refresh(a, (rec.channel,))
        heappush(self._expiry, (offer.expires_at, next(self._seq), offer))

    def _withdraw(self, rec: ItemRec, exclude: bool) -> Offer:
        """End ``rec``'s open offer and put it back to waiting (original enqueue time)."""
        offer = rec.offer
        assert offer is not None  # callers checked
        a = self._agents[offer.agent]
        a.offers.discard(rec.ticket)
        a.load[rec.channel] -= 1
        if exclude:
            rec.excluded.add(a.id)
        self._place(rec)
        self._refresh(a, (rec.channel,))
        self._touch(a)
        return offer

    # -- matching --------------------------------------------------------------------------

    def _best_agent(self, rec: ItemRec) -> AgentRec | None:
        if rec.pinned_to is not None:
            a = self._agents.get(rec.pinned_to)
            if a is None or not a.offerable(rec.channel) or rec.ticket not in a.pinned:
                return None
            return a if rec.atoms <= a.atoms and a.id not in rec.excluded else None
        cfg = self._cfg(rec.queue)
        return self._aidx.find(rec, cfg.strategy, cfg.score)

    def _best_item(self, a: AgentRec) -> ItemEntry | None:
        if a.presence is not Presence.AVAILABLE:
            return None
        best: ItemEntry | None = None
        for t in a.pinned:
            rec = self._items[t]
            if a.load[rec.channel] < a.cap[rec.channel] and rec.atoms <= a.atoms:
                e = (rec.key[0], rec.key[1], rec.key[2], rec.ver, rec)
                if best is None or e < best:
                    best = e
        return self._widx.best_for(a, best)

    def _match(self, now: float) -> list[Offer]:
        """The greedy pass over dirty items and agents (see the module docstring)."""
        out: list[Offer] = []
        heap: list[tuple[ItemKey, int, int]] = []
        for t in self._dirty_items:
            rec = self._items.get(t)
            if rec is not None and rec.waiting:
                heap.append((rec.key, 0, t))
        for aid in self._dirty_agents:
            a = self._agents.get(aid)
            if a is not None and (e := self._best_item(a)) is not None:
                heap.append((e[4].key, 1, aid))
        self._dirty_items.clear()
        self._dirty_agents.clear()
        heapify(heap)
        while heap:
            key, kind, x = heappop(heap)
            if kind == 0:
                rec = self._items[x]
                if rec.waiting and (b := self._best_agent(rec)) is not None:
                    self._offer(rec, b, now, out)
                continue
            a = self._agents[x]
            e = self._best_item(a)
            if e is None:
                continue
            rec = e[4]
            if rec.key != key:  # its best item was taken meanwhile: queue it at the new one
                heappush(heap, (rec.key, 1, x))
                continue
            b = self._best_agent(rec)  # ``a`` itself, or an agent who should go first
            if b is None:
                continue  # unreachable: ``a`` is eligible for ``rec``
            self._offer(rec, b, now, out)
            if (e := self._best_item(a)) is not None:
                heappush(heap, (e[4].key, 1, x))
        return out
