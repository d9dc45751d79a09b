"""The SLA service: the pure timer engine fed from the database and the event bus.

At start it rebuilds timers from every open ticket (past-due ones fire at once) and today's
counters from the tickets table, then follows committed events: ``ticket.created`` arms,
``ticket.first_response`` disarms answer/first response, ``ticket.solved``/``closed`` disarm
everything, status changes pause and resume, queue/priority changes re-match the policy.
A task sleeps until the engine's next timer (at most 1 s, at least 100 ms), pops what is due
and announces it through ``tickets.actions.sla``; a sweep every 60 s re-reads overdue
unflagged tickets as a backstop. Tests drive time with :meth:`SlaService.tick`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from contact_center.db import Database, EventRecord
from contact_center.keys import SERVICES
from contact_center.progress import HandledEvents
from contact_center.sla_agents import staff_since
from contact_center.sla_data import (
    breaches_since,
    first_resume,
    load_tickets,
    max_event_id,
    overdue,
    stream_ticket_rows,
)
from contact_center.sla_events import apply_event
from contact_center.sla_live import BoardConfig, LiveBoard, epoch
from contact_center.sla_timers import TicketTimers
from contact_center.sla_wait import QueueWait, queue_line, queue_wait
from tickets.actions.sla import SlaTimer, record_sla_timers

__all__ = ["Change", "Listener", "QueueWait", "SlaService", "SlaServiceConfig", "install_sla"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SlaServiceConfig:
    """Timer resolution (100 ms floor, 1 s cap), sweep and push intervals, board settings."""

    min_sleep: float = 0.1
    max_sleep: float = 1.0
    sweep_seconds: float = 60.0
    push_seconds: float = 0.25
    batch: int = 200
    board: BoardConfig = field(default_factory=BoardConfig)


@dataclass(frozen=True, slots=True)
class Change:
    """What changed since the last push: teams whose figures moved, and SLA alerts."""

    teams: frozenset[int | None]
    last_event_id: int
    alerts: tuple[dict[str, Any], ...] = ()


Listener = Callable[[Change], Awaitable[None]]


class SlaService:
    """Timers, live counters and change notifications for one process."""

    def __init__(
        self,
        db: Database,
        config: SlaServiceConfig | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.config = config or SlaServiceConfig()
        self.timers = TicketTimers(db, on_armed=self._armed)
        self.board = LiveBoard(self.config.board)
        self.last_event_id = 0
        self.loaded_through = 0
        self._monotonic = monotonic
        self._inbox: asyncio.Queue[EventRecord | None] | None = None  # None: take over timers
        self._tasks: list[asyncio.Task[None]] = []
        self._tick_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        # Whether this process announces timers. Alone it always does; scaled out (Redis) only
        # the leader does (``routing.service.install_routing`` calls :meth:`lead`). The others
        # keep their board current (web processes serve it), and a new leader rebuilds the
        # timers and fires what is due at once; a lead process's standby keeps nothing.
        self.announcing = True
        self._leading = True
        # A dormant standby (a lead process not leading) keeps nothing: no board, no timers,
        # no events (its bus does not listen); it loads everything when it takes the lead.
        self.dormant = False
        self._sweep_soon = False
        self._sleep_until = float("inf")
        self._listeners: list[Listener] = []
        self._dirty: set[int | None] = set()
        self._alerts: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self.handled = HandledEvents()  # ids can commit out of order (PostgreSQL)

    def now(self) -> datetime:
        """The injected clock (``Database.clock``)."""
        return self.db.clock()

    def listen(self, listener: Listener) -> None:
        """Call ``listener`` with coalesced changes (every ``push_seconds`` at most)."""
        self._listeners.append(listener)

    def snapshot(self, team_id: int | None, everything: bool = False) -> dict[str, Any]:
        """The wallboard of a team (or everything), with the last event id it includes."""
        return self.board.snapshot(
            epoch(self.now()), team_id, everything, last_event_id=self.last_event_id
        )

    def queue_wait(
        self, queue_id: int, *, ticket_id: int | None = None, channel: str | None = None
    ) -> QueueWait:
        """How many wait in a queue on a channel, a ticket's place in line and the expected
        wait (``contact_center.sla_wait``; no database read, safe to call per request)."""
        now = epoch(self.now())
        return queue_wait(self.board, now, queue_id, ticket_id=ticket_id, channel=channel)

    def queue_line(
        self, queue_id: int, channel: str, only: Callable[[int], bool] | None = None
    ) -> list[QueueWait]:
        """:meth:`queue_wait` for every contact in the line at once (one pass over it);
        ``only``: for the tickets it accepts (:func:`contact_center.sla_wait.queue_line`)."""
        return queue_line(self.board, epoch(self.now()), queue_id, channel, only)

    # -- life cycle ---------------------------------------------------------------------------

    async def on_event(self, ev: EventRecord) -> None:
        """Bus subscriber: queue the event for the service's own worker (never blocks the bus)."""
        if self._inbox is not None:
            self._inbox.put_nowait(ev)

    async def start(self, *, sweep: bool = False) -> None:
        """Rebuild from the database, then follow events and run the timer loop (``sweep``:
        sweep for overdue tickets at once, as a leader taking over does)."""
        self._inbox = asyncio.Queue()
        await self.load()
        self.dormant = False  # (a standby taking over answers its wallboard from here on)
        self._sweep_soon = sweep
        self._tasks = [
            asyncio.create_task(self._work(), name="sla-events"),
            asyncio.create_task(self._run(), name="sla-timers"),
            asyncio.create_task(self._push(), name="sla-push"),
        ]

    async def stop(self) -> None:
        """Stop the tasks (events still queued are dropped; a restart rebuilds from the DB)."""
        self._inbox = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def rest(self) -> None:
        """Stand by dormant: stop and forget the board (:meth:`start` rebuilds it all)."""
        self.lead(False)
        await self.stop()
        self.board = LiveBoard(self.config.board)
        self.dormant = True

    async def load(self) -> None:
        """Catalog, open tickets (timers), today's counters, agents and breaches."""
        now = self.now()
        since = min(self._midnight(now), now - timedelta(hours=1))
        self.loaded_through = await self.db.read(max_event_id)
        catalog = await self.timers.refresh_catalog()
        self.timers.active = self.announcing = self._leading
        if self._leading:  # a standby keeps no timers (it rebuilds them when it takes over)
            await self._rebuild_timers(now)
        board = LiveBoard(self.config.board, catalog)  # not shared yet: filled on the thread
        await self.db.stream(lambda s: board.replay(stream_ticket_rows(s, since), epoch(since)))
        board.staff = await self.db.stream(staff_since, since)
        for p in await self.db.read(breaches_since, since):
            board.breached(epoch(p["_at"]), p.get("queue_id"), p.get("team_id"))
        self.board = board
        self.last_event_id = max(self.last_event_id, self.loaded_through)
        self.handled.loaded(self.loaded_through)

    async def refresh_catalog(self) -> None:
        """Re-read queues and policies into the timers and the board."""
        self.board.catalog = await self.timers.refresh_catalog()

    def _midnight(self, now: datetime) -> datetime:
        from zoneinfo import ZoneInfo

        local = now.astimezone(ZoneInfo(self.config.board.timezone))
        return local.replace(hour=0, minute=0, second=0, microsecond=0)

    # -- timers -------------------------------------------------------------------------------

    def lead(self, leading: bool) -> None:
        """Lead (True) or stand by. Standing by, the service keeps the board but no timers;
        taking over, it rebuilds them from the database in order with the events, then fires
        what fell due and sweeps."""
        if leading == self._leading:
            return
        self._leading = leading
        if not leading:
            self.announcing = False
            self.timers.active = False
            self._wake.set()
        elif self._inbox is not None:
            self._inbox.put_nowait(None)  # _work rebuilds the timers, then announces
        # (not started yet: start() loads the timers and announces)

    async def _take_over(self) -> None:
        self.timers.active = True
        await self._rebuild_timers(self.now())
        self.announcing = True
        self._sweep_soon = True
        self._wake.set()

    async def _rebuild_timers(self, now: datetime) -> None:
        """Every open ticket's timers from the database (pauses left open while away closed)."""
        states = await self.db.read(load_tickets, None)
        stale = {s.id: s.pauses[-1].start for s in states if s.paused and s.status != "pending"}
        resumed = await self.db.read(first_resume, stale)
        for s in states:
            if s.id in stale:
                await self.timers.resume(s, resumed.get(s.id, now))
        await self.timers.rebuild(states, now)

    def _armed(self) -> None:
        nxt = self.timers.engine.next_fire_at()
        if nxt is not None and nxt < self._sleep_until:
            self._wake.set()

    async def tick(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Announce every timer due at ``now`` (default: the clock); the announcements made."""
        async with self._tick_lock:
            when = now or self.now()
            fired = self.timers.engine.pop_due(when)
            pending = [
                t
                for f in fired
                if (t := self.timers.pending_timer(int(f.ticket_id), f.metric, f.kind.value))
            ]
            return await self._announce(pending, when)

    async def sweep(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Backstop: announce breaches of overdue tickets that carry no breach flag yet."""
        when = now or self.now()
        await self.refresh_catalog()
        rows = await self.db.read(overdue, when)
        return await self._announce([SlaTimer(t, m, "breach", due) for t, m, due in rows], when)

    async def _announce(self, timers: Sequence[SlaTimer], when: datetime) -> list[dict[str, Any]]:
        done: list[dict[str, Any]] = []
        size = self.config.batch
        for start in range(0, len(timers), size):
            try:
                done += await self.db.write(record_sla_timers, timers[start : start + size], when)
            except Exception:
                log.exception("announcing %d SLA timers failed (the sweep retries breaches)",
                              len(timers[start : start + size]))  # fmt: skip
        return done

    async def _run(self) -> None:
        cfg = self.config
        next_sweep = self._monotonic() + cfg.sweep_seconds
        while True:
            try:
                if self.announcing:
                    await self.tick()
                    if self._sweep_soon or self._monotonic() >= next_sweep:
                        self._sweep_soon = False
                        next_sweep = self._monotonic() + cfg.sweep_seconds
                        await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("SLA timer loop failed; retrying")
            nxt = self.timers.engine.next_fire_at() if self.announcing else None
            now = epoch(self.now())
            delay = cfg.max_sleep if nxt is None else min(max(nxt - now, cfg.min_sleep),
                                                          cfg.max_sleep)  # fmt: skip
            self._wake.clear()
            self._sleep_until = now + delay
            with contextlib.suppress(TimeoutError):  # (not wait_for: on 3.11 it can swallow
                async with asyncio.timeout(delay):  # the cancellation that stops this task)
                    await self._wake.wait()
            self._sleep_until = float("inf")

    # -- events -------------------------------------------------------------------------------

    async def wait_for_event(self, event_id: int) -> None:
        """Return once event ``event_id`` has been handled (wrap in a timeout)."""
        await self.handled.wait((event_id,))

    async def _work(self) -> None:
        assert self._inbox is not None
        inbox = self._inbox
        while True:
            ev = await inbox.get()
            if ev is None:  # this process now leads
                try:
                    await self._take_over()
                except asyncio.CancelledError:
                    raise
                except Exception:  # announce anyway: the sweep is the backstop for breaches
                    log.exception("SLA timers not rebuilt on taking over")
                    self.announcing = True
                continue
            try:
                if ev.id > self.loaded_through:  # older ones are in what load() read
                    await self.handle(ev)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("SLA service failed on event", extra={"event_type": ev.type})
            self.last_event_id = max(self.last_event_id, ev.id)
            self.handled.add((ev.id,))

    def touch(self, teams: set[int | None], alert: dict[str, Any] | None = None) -> None:
        """Mark teams' figures changed (and queue an alert) for the next push."""
        if not teams and alert is None:
            return
        self._dirty |= teams
        if alert is not None:
            self._alerts.append(alert)
        self._changed.set()

    async def handle(self, ev: EventRecord) -> None:
        """Apply one committed event to the timers and the board."""
        await apply_event(self, ev)

    async def _push(self) -> None:
        while True:
            await self._changed.wait()
            await asyncio.sleep(self.config.push_seconds)
            self._changed.clear()
            change = Change(frozenset(self._dirty), self.last_event_id, tuple(self._alerts))
            self._dirty, self._alerts = set(), []
            for listener in self._listeners:
                try:
                    await listener(change)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("wallboard listener failed")


def install_sla(
    app: web.Application, config: SlaServiceConfig | None = None, *, dormant_standby: bool = False
) -> SlaService:
    """Create the app's SLA service (unless one is set) and start/stop it with the app.

    ``dormant_standby`` (a lead process, scaled out): the service starts only when the
    process takes the lead (``routing.service.install_routing`` starts it) and rests while it
    stands by."""
    svc = app[SERVICES]
    if svc.sla is None:
        from contact_center.sla_metrics import SlaCollector

        svc.sla = SlaService(svc.db, config)
        svc.registry.register(SlaCollector(svc.sla))  # gauges computed at each /metrics scrape
    service: SlaService = svc.sla

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        svc.bus.subscribe(service.on_event)
        # scaled out, only the leader announces (it calls service.lead when it wins the lock)
        service.lead(not svc.settings.redis_url)
        if dormant_standby and svc.settings.redis_url:
            service.dormant = True
        else:
            await service.start()
        try:
            yield
        finally:
            await service.stop()

    app.cleanup_ctx.append(lifecycle)
    return service
