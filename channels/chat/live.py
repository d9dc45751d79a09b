"""Live state of the chat namespace: rooms, ticket facts, who is free, the line, and the
translation of committed events into what each visitor's sockets are told.

:class:`ChatLive` is the base of :class:`channels.chat.namespace.CustomerNamespace`; it emits
only to this process's own sockets (``ignore_queue``): every process hears the same events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import socketio
from aiohttp import web

from channels.chat import store
from channels.chat.limits import ChatLimits
from channels.chat.tokens import VisitorTokens
from contact_center.clientaddr import Networks
from contact_center.db import EventRecord
from contact_center.errors import ServiceDeskError
from contact_center.keys import Services
from contact_center.realtime import has_local
from contact_center.sla_wait import QueueWait

__all__ = ["LANGS", "ChatLive", "customer_room", "visitor_room"]

log = logging.getLogger(__name__)
LANGS = ("en", "zh-CN")


def visitor_room(handle: str) -> str:
    """Every socket (tab, device) of one visitor."""
    return f"visitor:{handle}"


def customer_room(customer_id: int) -> str:
    """Every socket of one customer (a verified customer may chat from several devices)."""
    return f"customer:{customer_id}"


class _Lru(OrderedDict[int, Any]):
    def __init__(self, size: int = 20_000) -> None:
        super().__init__()
        self.size = size

    def put(self, key: int, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class ChatLive(socketio.AsyncNamespace):  # type: ignore[misc]
    """Caches, the event worker and the line pusher of the ``/customer`` namespace."""

    def __init__(self, services: Services, namespace: str = "/customer") -> None:
        super().__init__(namespace)
        self.services = services
        s = services.settings
        self.tokens = VisitorTokens(s.secret_key.reveal())
        self.limits = ChatLimits.create(s.chat_messages_per_minute)
        self.proxies = Networks.parse(s.trusted_proxies)  # their X-Forwarded-For names the client
        self.unlimited = Networks.parse(s.chat_unlimited_addresses)  # no per-address limits
        self.facts: _Lru = _Lru()  # ticket id -> store.TicketFacts
        self.names: _Lru = _Lru(2_000)  # user id -> first name
        self._abandon: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[int] = set()  # queues whose line moved
        self._presence_dirty = False
        self._seen_event = 0  # the newest event this namespace's worker took
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._inbox: asyncio.Queue[EventRecord] | None = None
        self._availability: dict[str | None, tuple[float, store.Availability]] = {}
        services.bus.subscribe(self.on_bus_event)

    # -- life cycle (one cleanup_ctx, added by channels.chat.setup) ------------------------------

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """Run the event worker and the line/status pusher with the app; cancel pending
        abandon timers at the end."""
        self._inbox = asyncio.Queue()
        self._tasks = [
            asyncio.create_task(self._work(self._inbox), name="chat-events"),
            asyncio.create_task(self._pusher(), name="chat-line"),
        ]
        try:
            yield
        finally:
            self._inbox = None
            tasks = [*self._tasks, *self._abandon.values()]
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._abandon.clear()

    # -- helpers ---------------------------------------------------------------------------------

    def _local(self, room: str) -> bool:
        return has_local(self.server, self.namespace, room)

    @staticmethod
    def _now() -> float:
        return time.monotonic()

    async def _facts(self, ticket_id: int, fresh: bool = False) -> store.TicketFacts | None:
        hit = None if fresh else self.facts.get(ticket_id)
        if hit is None:
            hit = await self.services.db.read(store.ticket_facts, ticket_id)
            if hit is not None:
                self.facts.put(ticket_id, hit)
        return hit

    def _learn(self, p: dict[str, Any]) -> store.TicketFacts:
        """Ticket facts from an event's ticket summary."""
        old = self.facts.get(int(p["id"]))
        facts = store.TicketFacts(
            int(p["id"]),
            int(p["customer_id"]),
            p.get("assignee_id"),
            str(p["channel"]),
            str(p["status"]),
            p.get("queue_id"),
            bool(old and old.answered) or p.get("assignee_id") is not None,
        )
        self.facts.put(facts.id, facts)
        return facts

    async def _name(self, user_id: int) -> str:
        name = self.names.get(user_id)
        if name is None:
            name = await self.services.db.read(store.agent_first_name, user_id)
            self.names.put(user_id, name)
        return str(name)

    async def availability(self, language: str | None) -> store.Availability:
        """The chat queue's free agents for a language (read at most every 2 s)."""
        hit = self._availability.get(language)
        if hit is not None and hit[0] > self._now():
            return hit[1]
        s = self.services.settings
        value = await self.services.db.read(
            store.availability, s.chat_queue, self.services.ingest_policy.default_queue, language
        )
        self._availability[language] = (self._now() + 2.0, value)
        return value

    async def status(self, language: str) -> dict[str, Any]:
        """``{"online", "reason"}``: offline when nobody is free or the queue's hours are over."""
        av = await self.availability(language)
        sla = self.services.sla
        if sla is not None and av.queue_id is not None:
            _, policy = sla.timers.catalog.match(av.queue_id, 2, "chat")
            hours = policy.business_hours if policy is not None else None
            if hours is not None and not hours.is_open(sla.now()):
                return {"online": False, "reason": "closed"}
        if av.available_agents == 0:
            return {"online": False, "reason": "no_agents"}
        return {"online": True, "reason": None}

    def line_entry(self, queue_id: int, ticket_id: int) -> dict[str, Any] | None:
        """What a waiting visitor sees (``SlaService.queue_wait``, from the live board): place,
        how many wait, the expected wait, and ``connecting`` while an agent holds the offer."""
        sla = self.services.sla
        if sla is None:
            return None
        try:
            w = sla.queue_wait(queue_id, ticket_id=ticket_id)
        except ServiceDeskError:  # not (or no longer) waiting there
            return None
        return self._entry(w)

    def _entry(self, w: QueueWait) -> dict[str, Any]:
        assert w.ticket_id is not None
        routing = self.services.routing
        state = routing.router.state_of(w.ticket_id) if routing is not None else None
        return {
            "ticket_id": w.ticket_id,
            "position": w.position,
            "waiting": w.waiting,
            "state": "connecting" if state is not None and state.value == "offered" else "waiting",
            "expected_wait_seconds": w.expected_wait_seconds,
        }

    async def _visitor_line(self, facts: store.TicketFacts | None) -> dict[str, Any] | None:
        if facts is None or not facts.waiting or facts.queue_id is None:
            return None
        return self.line_entry(facts.queue_id, facts.id)

    # -- committed events -> this process's visitor sockets -------------------------------------

    async def _to_customer(self, cid: int, name: str, data: dict[str, Any]) -> None:
        room = customer_room(cid)
        if self._local(room):
            await self.emit(name, data, room=room, ignore_queue=True)

    def _mark(self, queue_id: int | None) -> None:
        if queue_id is not None:
            self._dirty.add(int(queue_id))
            self._changed.set()

    async def on_bus_event(self, ev: EventRecord) -> None:
        """Bus subscriber: queue the event for this namespace's worker (never blocks the bus)."""
        if self._inbox is not None:
            self._inbox.put_nowait(ev)

    async def _work(self, inbox: asyncio.Queue[EventRecord]) -> None:
        while True:
            ev = await inbox.get()
            self._seen_event = max(self._seen_event, ev.id)
            try:
                await self._event(ev)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("chat event failed", extra={"event_type": ev.type})

    async def _event(self, ev: EventRecord) -> None:
        p, kind = ev.payload, ev.type
        if kind == "message.created" and p.get("channel") == "chat":
            await self._message(ev)
        elif kind in ("ticket.created", "ticket.updated", "ticket.assigned"):
            if p.get("channel") != "chat":
                return
            old = self.facts.get(int(p["id"]))
            facts = self._learn(p)
            if old is not None and old.queue_id != facts.queue_id:
                self._mark(old.queue_id)
            self._mark(facts.queue_id)
            if kind == "ticket.assigned" and facts.assignee_id is not None:
                name = await self._name(int(facts.assignee_id))
                await self._to_customer(
                    facts.customer_id,
                    "agent",
                    {"event_id": ev.id, "ticket_id": facts.id, "name": name},
                )
            changed = set(p.get("changed", ()))
            if (
                kind == "ticket.updated"
                and "status" in changed
                and facts.status in ("solved", "closed")
            ):
                await self._to_customer(
                    facts.customer_id,
                    "ended",
                    {"event_id": ev.id, "ticket_id": facts.id, "status": facts.status},
                )
        elif kind == "offer.created":
            self._mark((p.get("ticket") or {}).get("queue_id"))
        elif kind.startswith("offer."):
            known = self.facts.get(int(p.get("ticket_id", 0)))
            if known is not None:
                self._mark(known.queue_id)
        elif kind == "chat.read" and p.get("by") == "agent":
            read = await self._facts(int(p["ticket_id"]))
            if read is not None:
                await self._to_customer(
                    read.customer_id,
                    "read",
                    {"event_id": ev.id, "ticket_id": read.id, "message_id": p["message_id"]},
                )
        elif kind in ("agent.presence", "user.updated", "user.created"):
            # read again soon, not at once: with hundreds of agents presence changes arrive
            # many times a second, and the push that tells visitors waits 300 ms anyway
            soon = self._now() + 0.25
            for language, (until, value) in list(self._availability.items()):
                self._availability[language] = (min(until, soon), value)
            self._presence_dirty = True
            self._changed.set()

    async def _message(self, ev: EventRecord) -> None:
        p = ev.payload
        if p.get("direction") not in ("in", "out") or ev.ticket_id is None:
            return
        facts = await self._facts(int(ev.ticket_id))
        if facts is None or not self._local(customer_room(facts.customer_id)):
            return
        if p.get("attachment_ids") or p.get("direction") == "out":
            message = await self.services.db.read(store.visitor_message_of, int(p["id"]))
        else:
            message = store.visitor_message(SimpleRow(p), {})
        if message is not None:
            await self._to_customer(
                facts.customer_id, "message", {"event_id": ev.id, "message": message}
            )

    # -- the line and the online status, pushed at most every 300 ms ----------------------------

    async def _pusher(self) -> None:
        while True:
            await self._changed.wait()
            await asyncio.sleep(0.3)  # coalesce a burst of changes into one push
            self._changed.clear()
            queues, self._dirty = self._dirty, set()
            presence, self._presence_dirty = self._presence_dirty, False
            try:
                if presence:
                    for lang in LANGS:
                        if self._local(f"lang:{lang}"):
                            await self.emit(
                                "status",
                                await self.status(lang),
                                room=f"lang:{lang}",
                                ignore_queue=True,
                            )
                for queue_id in sorted(queues):
                    await self._push_line(queue_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("chat line push failed")

    async def _push_line(self, queue_id: int) -> None:
        sla = self.services.sla
        if sla is None:
            return
        with contextlib.suppress(TimeoutError):  # the board first takes in what we have seen
            async with asyncio.timeout(2):
                await sla.wait_for_event(self._seen_event)

        def here(ticket_id: int) -> bool:  # the visitor's socket is in this process
            facts = self.facts.get(ticket_id)
            return facts is not None and self._local(customer_room(facts.customer_id))

        try:
            line = sla.queue_line(queue_id, "chat", only=here)  # the line in one pass
        except ServiceDeskError:  # a queue deleted meanwhile
            return
        for w in line:
            facts = self.facts.get(w.ticket_id) if w.ticket_id is not None else None
            if facts is None:  # forgotten while an earlier visitor's push was sent
                continue
            await self.emit("queue", self._entry(w), room=customer_room(facts.customer_id),
                            ignore_queue=True)  # fmt: skip


class SimpleRow:
    """An event's message payload with the attributes ``store.visitor_message`` reads."""

    def __init__(self, p: dict[str, Any]) -> None:
        self.id = p["id"]
        self.ticket_id = p["ticket_id"]
        self.direction = p["direction"]
        self.author_user_id = p.get("author_user_id")
        self.body_text = p.get("body_text", "")
        self.external_id = p.get("external_id")
        self.created_at: str | datetime | None = p.get("created_at")
