"""The router service: the pure router (``routing.core``) fed from the database and the bus.

At start it subscribes to the event bus, rebuilds the router from the database (queues, agents,
assigned work, open offers, waiting tickets with their exclusions), expires what ran out while
it was down and routes. Then one task applies committed events in order and a timer task wakes
at the router's next deadline. Every decision is written through ``tickets.actions.routing``
before anyone hears of it; the database is the arbiter (compare-and-set on open offers), and
the router applies what it confirmed, so a restart, an accept racing an expiry or two agents
racing never lose a ticket or give it to two agents. The ``/agent`` namespace hears of offers
and assignments from the same committed events. Tests drive time with :meth:`tick`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from contact_center.progress import HandledEvents
from routing.core import (
    AgentSpec,
    Offer,
    OfferExpiredError,
    Presence,
    QueueConfig,
    RelaxStep,
    Router,
    RouterConfig,
    RouterError,
    SkillScore,
    Strategy,
    TicketState,
    WorkItem,
)
from routing.model import LIVE_CHANNELS, Channel

if TYPE_CHECKING:
    from aiohttp import web

    from contact_center.db import Database, EventRecord
    from contact_center.leader import LeaderLock
    from contact_center.routing_data import AgentRow, QueueRow
    from contact_center.settings import Settings

__all__ = ["RouterService", "RoutingConfig", "install_routing"]

log = logging.getLogger(__name__)


def _epoch(t: datetime) -> float:
    return t.timestamp()


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _primary(language: str | None) -> str | None:
    """The routing language of a tag: ``zh-CN`` is served by agents with ``lang:zh``."""
    return language.split("-", 1)[0].lower() if language else None


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """Offer timeouts (live and async channels), away on expiry, known-agent window, loop."""

    offer_timeout_live: float = 15.0
    offer_timeout_async: float = 120.0
    away_on_expire: bool = True
    preference_seconds: float = 5.0
    min_sleep: float = 0.02
    max_sleep: float = 1.0
    resync_seconds: float = 15.0  # backstop: compare with the database (events lost with Redis)

    @classmethod
    def from_settings(cls, settings: Settings) -> RoutingConfig:
        """The ``CC_ROUTING_*`` settings."""
        return cls(
            offer_timeout_live=float(settings.routing_offer_timeout_live_seconds),
            offer_timeout_async=float(settings.routing_offer_timeout_async_seconds),
            away_on_expire=settings.routing_away_on_expire,
            preference_seconds=float(settings.routing_preference_seconds),
            resync_seconds=float(settings.routing_resync_seconds),
        )

    def router_config(self) -> RouterConfig:
        """The pure router's settings."""
        timeouts: dict[str, float] = {
            c.value: (self.offer_timeout_live if c in LIVE_CHANNELS else self.offer_timeout_async)
            for c in Channel
        }
        return RouterConfig(offer_timeout=timeouts, away_on_expire=self.away_on_expire)


def queue_config(row: QueueRow) -> QueueConfig:
    """A stored queue policy as the router's ``QueueConfig`` (bad steps are skipped, logged)."""
    steps = []
    for raw in row.relaxation:
        try:
            steps.append(
                RelaxStep(
                    float(raw["after_seconds"]),
                    raw.get("max_level"),
                    frozenset(raw.get("drop", ())),
                    bool(raw.get("drop_all", False)),
                    bool(raw.get("keep_language", False)),
                )
            )
        except (KeyError, TypeError, ValueError):
            log.warning("queue %s: ignoring a bad relaxation step %r", row.id, raw)
    try:
        return QueueConfig(row.id, Strategy(row.strategy), SkillScore(row.score), tuple(steps))
    except ValueError:
        log.warning("queue %s: bad routing strategy %r; longest idle", row.id, row.strategy)
        return QueueConfig(row.id, relaxation=tuple(steps))


class RouterService:
    """One process's router: rebuilt from the database, driven by events and its timer."""

    def __init__(self, db: Database, config: RoutingConfig | None = None) -> None:
        self.db = db
        self.config = config or RoutingConfig()
        self.router = Router(self.config.router_config())
        self.offer_ids: dict[int, int] = {}  # ticket -> open offer row id
        self.loaded_through = 0
        self.last_event_id = 0
        self._inbox: asyncio.Queue[EventRecord] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self.handled = HandledEvents()  # ids can commit out of order (PostgreSQL)
        self._new_customers: set[int] = set()  # created in this batch: no known agent yet
        self.leader: LeaderLock | None = None  # set when several processes contend (Redis)

    def now(self) -> datetime:
        """The injected clock (``Database.clock``)."""
        return self.db.clock()

    # -- life cycle ---------------------------------------------------------------------------

    async def on_event(self, ev: EventRecord) -> None:
        """Bus subscriber: queue the event for the service's worker (never blocks the bus)."""
        if self._inbox is not None:
            self._inbox.put_nowait(ev)

    @property
    def running(self) -> bool:
        """True while this process routes (always without Redis; the leader with it)."""
        return bool(self._tasks)

    async def start(self) -> None:
        """Rebuild from the database, then follow events and run the timer loop."""
        self._inbox = asyncio.Queue()  # events from now on queue up while we load
        await self.load()
        self._tasks = [
            asyncio.create_task(self._work(), name="router-events"),
            asyncio.create_task(self._run(), name="router-timers"),
        ]

    async def stop(self) -> None:
        """Stop the tasks; a restart rebuilds everything from the database."""
        self._inbox = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def load(self) -> None:
        """A fresh router from what the database holds, then expire and route at once."""
        from contact_center.routing_data import load_routing_state

        async with self._lock:
            state = await self.db.read(load_routing_state)
            router = Router(self.config.router_config(), [queue_config(q) for q in state.queues])
            now = _epoch(self.now())
            for a in state.agents:
                self._add_agent(router, a, now)
            for t in state.assigned:
                if router.knows_agent(t["assignee_id"]):
                    router.restore_assignment(t["id"], t["assignee_id"], t["channel"],
                                              queue=t["queue_id"], since=now)  # fmt: skip
            self.offer_ids = {}
            for o in state.offers:
                t = o.ticket
                if t["assignee_id"] is not None or not router.knows_agent(o.agent_id):
                    continue  # closed by the next tick's cancel of stale offers
                item = self._work_item(t, state.excluded.get(t["id"], ()), None)
                router.restore_offer(item, o.agent_id, _epoch(o.expires_at), _epoch(o.created_at))
                self.offer_ids[t["id"]] = o.offer_id
            stale = [o.offer_id for o in state.offers if o.offer_id not in self.offer_ids.values()]
            for t in state.waiting:
                self._enqueue(router, t, state.excluded.get(t["id"], ()), None)
            self.router = router
            self.loaded_through = state.last_event_id
            self.last_event_id = max(self.last_event_id, state.last_event_id)
            self.handled.loaded(state.last_event_id)
            if stale:
                await self._end(stale, "cancelled")
            if self.offer_ids:  # the old leader may have died before announcing some
                from tickets.actions.routing import announce_offers

                await self.db.write(announce_offers, sorted(self.offer_ids.values()))
            await self._tick(self.now())

    # -- the pure router's inputs -------------------------------------------------------------

    @staticmethod
    def _add_agent(router: Router, a: AgentRow, idle_since: float) -> None:
        try:
            router.add_agent(AgentSpec(a.id, a.skills, a.queue_ids, a.capacity,
                                       Presence(a.presence), idle_since))  # fmt: skip
        except ValueError as err:
            log.warning("agent %s cannot be routed to: %s", a.id, err)

    def _enqueued_at(self, t: dict[str, Any]) -> float:
        raw = t["created_at"] if t["status"] == "new" else t["updated_at"]
        return _epoch(datetime.fromisoformat(raw)) if raw else _epoch(self.now())

    def _work_item(
        self, t: dict[str, Any], excluded: Iterable[int], preferred: int | None
    ) -> WorkItem:
        window = self.config.preference_seconds if preferred is not None else 0.0
        return WorkItem(
            ticket=int(t["id"]), channel=t["channel"], queue=int(t["queue_id"]),
            priority=int(t["priority"]), required_skills=t.get("required_skills") or {},
            language=_primary(t.get("language")), enqueued_at=self._enqueued_at(t),
            preferred_agent=preferred, preference_window=window, excluded=frozenset(excluded),
        )  # fmt: skip

    def _enqueue(
        self, router: Router, t: dict[str, Any], excluded: Iterable[int], preferred: int | None
    ) -> None:
        try:
            router.enqueue(self._work_item(t, excluded, preferred))
        except (ValueError, RouterError) as err:
            log.warning("ticket %s cannot be routed: %s", t["id"], err)

    # -- decisions ----------------------------------------------------------------------------

    async def tick(self, now: datetime | None = None) -> None:
        """Expire what is due and route (what the timer task does at each deadline)."""
        async with self._lock:
            await self._tick(now or self.now())

    async def _tick(self, when: datetime) -> None:
        now = _epoch(when)
        due = self.router.due_offers(now)
        if due:
            ids = {o.ticket: self.offer_ids[o.ticket] for o in due if o.ticket in self.offer_ids}
            stored = await self._end(list(ids.values()), "expired")
            for o in due:  # an accept or reject that won the race is applied instead
                outcome = stored.get(ids.get(o.ticket, -1), "expired")
                if outcome == "accepted":
                    self.router.accept(o.ticket, o.agent, o.created_at)
                elif outcome == "rejected":
                    self.router.reject(o.ticket, o.agent, now)
                elif outcome == "cancelled":
                    self.router.cancel(o.ticket)
                if outcome != "expired":
                    self.offer_ids.pop(o.ticket, None)
            for o in self.router.expire(now):
                self.offer_ids.pop(o.ticket, None)
        await self._route(now)

    async def _route(self, now: float) -> None:
        from tickets.actions.routing import NewOffer, create_offers

        offers = self.router.route(now)
        if not offers:
            return
        new = [NewOffer(o.ticket, o.agent, _dt(o.created_at), _dt(o.expires_at)) for o in offers]
        try:
            ids = await self.db.write(create_offers, new)
        except Exception:
            log.exception("storing %d offers failed; they are withdrawn", len(offers))
            ids = [None] * len(offers)
        for o, offer_id in zip(offers, ids, strict=True):
            if offer_id is None:  # not waiting any more: the ticket's own events follow
                self.router.cancel(o.ticket)
            else:
                self.offer_ids[o.ticket] = offer_id

    async def _end(self, offer_ids: list[int], outcome: str) -> dict[int, str]:
        from tickets.actions.routing import end_offers
        from tickets.domain import OfferOutcome

        if not offer_ids:
            return {}
        away = self.config.away_on_expire
        return await self.db.write(end_offers, offer_ids, OfferOutcome(outcome), away=away)

    async def _rescinded(self, offers: list[Offer]) -> None:
        """Offers the router took back (agent offline, unqualified, removed): close them."""
        ids = [self.offer_ids.pop(o.ticket) for o in offers if o.ticket in self.offer_ids]
        await self._end(ids, "cancelled")

    # -- events -------------------------------------------------------------------------------

    async def wait_for_event(self, event_id: int) -> None:
        """Return once event ``event_id`` has been applied (wrap in a timeout)."""
        await self.handled.wait((event_id,))

    async def _work(self) -> None:
        assert self._inbox is not None
        inbox = self._inbox
        while True:
            batch = [await inbox.get()]
            while not inbox.empty():
                batch.append(inbox.get_nowait())
            async with self._lock:
                for ev in batch:
                    try:
                        await self.handle(ev)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("router failed on event", extra={"event_type": ev.type})
                self._new_customers.clear()
                try:
                    await self._route(_epoch(self.now()))
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("routing failed")
                self.last_event_id = max(self.last_event_id, *(ev.id for ev in batch))
                self.handled.add(ev.id for ev in batch)
            self._wake.set()

    async def handle(self, ev: EventRecord) -> None:
        """Apply one committed event to the router (idempotent; the caller holds the lock)."""
        from contact_center.routing_data import ticket_row

        kind, p, tid = ev.type, ev.payload, ev.ticket_id
        if ev.id <= self.loaded_through:  # maybe in what load() read: trust only the database
            if tid is not None and kind.startswith(("ticket.", "offer.", "message.")):
                await self._sync(await self.db.read(ticket_row, tid))
            elif kind in ("agent.presence", "user.created", "user.updated"):
                await self._agent_changed(int(p["id"]))
            return
        if kind == "customer.created":
            self._new_customers.add(int(p["id"]))
        elif kind in ("ticket.created", "ticket.updated"):
            await self._sync(p, created=kind == "ticket.created")
        elif kind in ("ticket.solved", "ticket.closed") and tid is not None:
            # the ticket.updated before it (same transaction) has usually let it go; a ticket
            # the router does not hold has nothing to let go, and a later change has its own
            # event: no read
            if self.router.state_of(tid) is not None:
                await self._sync(await self.db.read(ticket_row, tid))
        elif kind == "ticket.reopened" and tid is not None:
            await self._sync(await self.db.read(ticket_row, tid))
        elif kind == "message.created" and tid is not None:
            if self.router.state_of(tid) is None:  # e.g. a pending ticket the customer revived
                await self._sync(await self.db.read(ticket_row, tid))
        elif kind == "offer.accepted":
            self._accepted(int(p["ticket_id"]), int(p["agent_id"]), p.get("at"))
        elif kind == "offer.rejected":
            offer = self.router.offer_for(int(p["ticket_id"]))
            if offer is not None and offer.agent == int(p["agent_id"]):
                self.router.reject(offer.ticket, offer.agent, _epoch(self.now()))
                self.offer_ids.pop(offer.ticket, None)
        elif kind == "agent.presence":
            await self._presence(int(p["id"]), str(p["presence"]))
        elif kind in ("user.created", "user.updated"):
            await self._agent_changed(int(p["id"]))
        elif kind in ("queue.created", "queue.updated"):
            await self._queues_changed()

    def _accepted(self, ticket: int, agent: int, at: str | None) -> None:
        offer = self.router.offer_for(ticket)
        if offer is None or offer.agent != agent:
            return  # applied already (expiry race) or superseded: ticket.updated reconciles
        when = _epoch(datetime.fromisoformat(at)) if at else offer.created_at
        try:
            self.router.accept(ticket, agent, min(when, offer.expires_at - 1e-6))
        except OfferExpiredError:  # pragma: no cover - the time is clamped above
            return
        self.offer_ids.pop(ticket, None)

    async def _sync(self, t: dict[str, Any] | None, *, created: bool = False) -> None:
        """Bring the router in line with one ticket's stored state."""
        if t is None:
            return
        r, tid = self.router, int(t["id"])
        state = r.state_of(tid)
        held = t["status"] in ("new", "open")
        assignee = t.get("assignee_id")
        if not held or (assignee is None and t.get("queue_id") is None):
            if state is TicketState.ASSIGNED:
                r.complete(tid, _epoch(self.now()))
            elif state is not None:
                r.cancel(tid)
                self.offer_ids.pop(tid, None)
            return
        if assignee is not None:
            assignment = r.assignment_for(tid)
            if assignment is not None and assignment.agent == assignee:
                return
            offer = r.offer_for(tid)
            if offer is not None and offer.agent == assignee:
                self._accepted(tid, assignee, t.get("updated_at"))
                return
            if state is not None:
                r.cancel(tid)
                self.offer_ids.pop(tid, None)
            if r.knows_agent(assignee):
                r.restore_assignment(tid, assignee, t["channel"], queue=t.get("queue_id"),
                                     since=_epoch(self.now()))  # fmt: skip
            return
        if state is TicketState.OFFERED:
            return
        excluded: Iterable[int] = ()
        if state is TicketState.WAITING:
            item = r.item_of(tid)
            if item is not None and self._same_facts(item, t):
                return
            excluded = item.excluded if item is not None else ()
            r.cancel(tid)
        elif state is TicketState.ASSIGNED:
            r.cancel(tid)  # released by its agent: waits again
        preferred = None
        customer = int(t["customer_id"])
        if created and self.config.preference_seconds > 0 and customer not in self._new_customers:
            from contact_center.routing_data import last_agent_for_customer

            preferred = await self.db.read(last_agent_for_customer, customer, tid)
        self._enqueue(r, t, excluded, preferred)

    @staticmethod
    def _same_facts(item: WorkItem, t: dict[str, Any]) -> bool:
        return (
            item.queue == t.get("queue_id")
            and item.priority == t.get("priority")
            and dict(item.required_skills) == dict(t.get("required_skills") or {})
            and item.language == _primary(t.get("language"))
        )

    async def _presence(self, agent_id: int, presence: str) -> None:
        if not self.router.knows_agent(agent_id):
            await self._agent_changed(agent_id)
            return
        await self._rescinded(self.router.set_presence(agent_id, presence, _epoch(self.now())))

    async def _agent_changed(self, agent_id: int) -> None:
        from contact_center.routing_data import agent_row

        a = await self.db.read(agent_row, agent_id)
        r = self.router
        known = r.knows_agent(agent_id)
        if a is None or not a.active or not a.queue_ids:
            if known:
                await self._rescinded(r.remove_agent(agent_id))
            return
        if not known:
            self._add_agent(r, a, _epoch(self.now()))
            return
        try:
            rescinded = r.update_agent(agent_id, skills=a.skills, queues=a.queue_ids,
                                       capacity=a.capacity)  # fmt: skip
        except ValueError as err:
            log.warning("agent %s: %s", agent_id, err)
            return
        rescinded += r.set_presence(agent_id, a.presence, _epoch(self.now()))
        await self._rescinded(rescinded)

    async def _queues_changed(self) -> None:
        from contact_center.routing_data import queue_rows

        now = _epoch(self.now())
        for row in await self.db.read(queue_rows):
            self.router.configure_queue(queue_config(row), now)

    # -- backstop ----------------------------------------------------------------------------

    async def resync(self) -> int:
        """Reconcile everything the database and the router disagree on; how many things.

        Events can be lost between processes (Redis restarted, a publish failed): a ticket the
        router never heard of would wait forever, an agent's change would go unseen. Every
        ``resync_seconds`` the service reads the routing state and reconciles each ticket the
        router holds that the database does not (and the reverse) and each agent that differs.
        """
        from contact_center.routing_data import load_routing_state, ticket_row

        state = await self.db.read(load_routing_state)
        async with self._lock:
            r = self.router
            stored = {t["id"]: t for t in (*state.waiting, *state.assigned)}
            stored.update({o.ticket["id"]: o.ticket for o in state.offers})
            # the state was read before the lock: what differs may be only what the events
            # applied since then changed. Each is read again, and counted only when that
            # fresh row changed the router.
            changed = 0
            for tid in sorted(stored.keys() ^ r.held()):
                before = self._holding(tid)
                await self._sync(await self.db.read(ticket_row, tid))
                changed += self._holding(tid) != before
            agents = {a.id: a for a in state.agents}
            for view in r.snapshot().agents:
                a = agents.pop(view.id, None)
                if a is None or (
                    (view.presence.value, dict(view.skills), view.queues)
                    != (a.presence, a.skills, a.queue_ids)
                ):
                    await self._agent_changed(view.id)
                    changed += not r.knows_agent(view.id) or r.agent_view(view.id) != view
            for aid in sorted(agents):  # active agents the router does not know
                await self._agent_changed(aid)
                changed += r.knows_agent(aid)
            if changed:
                log.warning("router resync fixed %d differences with the database", changed)
                await self._route(_epoch(self.now()))
            return changed

    def _holding(self, ticket: int) -> tuple[Any, ...]:
        """What the router holds of a ticket: its state, facts and the agent of its offer or
        work."""
        r = self.router
        offer, work = r.offer_for(ticket), r.assignment_for(ticket)
        return (r.state_of(ticket), r.item_of(ticket), offer and offer.agent, work and work.agent)

    # -- timer loop ---------------------------------------------------------------------------

    async def _run(self) -> None:
        cfg = self.config
        next_resync = time.monotonic() + cfg.resync_seconds
        while True:
            try:
                await self.tick()
                if time.monotonic() >= next_resync:
                    next_resync = time.monotonic() + cfg.resync_seconds
                    await self.resync()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("router timer loop failed; retrying")
            nxt = self.router.next_deadline()
            now = _epoch(self.now())
            delay = cfg.max_sleep if nxt is None else min(max(nxt - now, cfg.min_sleep),
                                                          cfg.max_sleep)  # fmt: skip
            self._wake.clear()
            with contextlib.suppress(TimeoutError):  # (not wait_for: on 3.11 it can swallow
                async with asyncio.timeout(delay):  # the cancellation that stops this task)
                    await self._wake.wait()


def install_routing(
    app: web.Application,
    factory: Callable[[], RouterService] | None = None,
    *,
    dormant_standby: bool = False,
) -> RouterService:
    """Create the app's router service (unless one is set) and start/stop it with the app.

    ``dormant_standby`` (a lead process, whose SLA service is installed the same way): while
    it stands by the process reads no events and keeps no SLA board; taking the lead it
    subscribes first, then loads the router and the SLA service from the database."""
    from contact_center.keys import SERVICES

    svc = app[SERVICES]
    if svc.routing is None:
        svc.routing = (
            factory()
            if factory
            else RouterService(svc.db, RoutingConfig.from_settings(svc.settings))
        )
    service: RouterService = svc.routing

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        svc.bus.subscribe(service.on_event)
        if not svc.settings.redis_url:  # one process: it is the router
            await service.start()
            try:
                yield
            finally:
                await service.stop()
            return
        from contact_center.leader import LeaderLock

        # several processes share Redis: the one holding the lock routes, the others stand by
        lock = LeaderLock(svc.settings.redis_url, f"{svc.settings.events_channel}:router-leader",
                          ttl=svc.settings.leader_ttl_ms / 1000)  # fmt: skip
        service.leader = lock
        sla = svc.sla  # the SLA timers have the same leader as the router
        if dormant_standby:
            await svc.bus.listen(False)

        async def lead() -> None:
            if dormant_standby:
                await svc.bus.listen(True)  # before the loads: nothing committed is missed
                svc.users.drop()  # user.updated events went unheard
            await service.start()
            if sla is not None:
                sla.lead(True)
                if sla.dormant:
                    await sla.start(sweep=True)

        async def step_down() -> None:
            if sla is not None:
                if dormant_standby:
                    await sla.rest()
                else:
                    sla.lead(False)
            await service.stop()
            if dormant_standby:
                await svc.bus.listen(False)

        contend = asyncio.create_task(lock.run(lead, step_down), name="router-leader")
        try:
            yield
        finally:
            contend.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await contend

    app.cleanup_ctx.append(lifecycle)
    return service
