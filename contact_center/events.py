"""The event bus: committed events fan out to subscribers, in-process or across processes.

``publish`` is thread-safe (the database writer thread calls it after commit). Subscribers are
coroutines run in order on the event loop. The Redis bus also carries events between web
processes and from RQ workers (JSON only: never pickle on a shared queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from contact_center.db import EventRecord

__all__ = ["EventBus", "InProcessBus", "RedisBus", "Subscriber", "publish_sync"]

log = logging.getLogger(__name__)

Subscriber = Callable[[EventRecord], Awaitable[None]]


class EventBus(Protocol):
    """What the app needs from a bus."""

    def publish(self, events: Sequence[EventRecord]) -> None:
        """Hand committed events over (thread-safe, never blocks)."""

    def subscribe(self, handler: Subscriber) -> None:
        """Call ``handler`` for every event, in id order per publisher."""

    async def start(self) -> None:
        """Begin dispatching."""

    async def stop(self) -> None:
        """Stop dispatching (pending events are delivered first)."""

    async def listen(self, on: bool) -> None:
        """Receive other processes' events (the default) or not: a standby leader needs none
        until it leads (its own events are dispatched either way)."""


class InProcessBus:
    """Fan-out inside one process through an asyncio queue."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._queue: asyncio.Queue[EventRecord | None] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def subscribe(self, handler: Subscriber) -> None:
        self._subscribers.append(handler)

    def publish(self, events: Sequence[EventRecord]) -> None:
        loop = self._loop
        if loop is None:
            return
        if events:  # one wake-up of the loop for the whole batch
            loop.call_soon_threadsafe(self._enqueue, list(events))

    def _enqueue(self, events: list[EventRecord]) -> None:
        for ev in events:
            self._queue.put_nowait(ev)

    async def _dispatch(self, ev: EventRecord) -> None:
        for handler in self._subscribers:
            try:
                await handler(ev)
            except Exception:
                log.exception("event subscriber failed", extra={"event_type": ev.type})

    async def _run(self) -> None:
        while True:
            ev = await self._queue.get()
            if ev is None:
                return
            await self._dispatch(ev)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="event-bus")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._queue.put_nowait(None)
        await self._task
        self._task = None

    async def listen(self, on: bool) -> None:
        """Nothing to do: one process has no other processes' events."""


# Events cross processes in batches: one pub/sub message carries every event that was ready to
# go (a transaction's three or four, or more under load), so each receiving process parses and
# awaits one message instead of one per event. At most this many events per message:
BATCH_MAX = 256


def _encode(origin: str, events: Sequence[EventRecord]) -> str:
    return json.dumps(
        {"origin": origin, "events": [ev.to_dict() for ev in events]}, separators=(",", ":")
    )


def _record(data: dict[str, Any]) -> EventRecord:
    return EventRecord(
        id=int(data["id"]),
        type=str(data["type"]),
        ticket_id=data.get("ticket_id"),
        payload=dict(data["payload"]),
        created_at=datetime.fromisoformat(data["created_at"]),
    )


def _decode(raw: str | bytes) -> tuple[str, list[EventRecord]]:
    """(origin, events) of a message: a batch, or one event (the format before batches)."""
    data: dict[str, Any] = json.loads(raw)
    batch = data.get("events")
    events = [_record(d) for d in batch] if isinstance(batch, list) else [_record(data)]
    return str(data.get("origin", "")), events


_SYNC_CLIENTS: dict[str, Any] = {}  # redis URL -> client (its pool), per process
_SYNC_LOCK = threading.Lock()


def _sync_client(redis_url: str) -> Any:
    import redis

    with _SYNC_LOCK:
        client = _SYNC_CLIENTS.get(redis_url)
        if client is None:
            if len(_SYNC_CLIENTS) >= 8:  # tests start servers of their own: stay bounded
                for old in _SYNC_CLIENTS.values():
                    old.close()
                _SYNC_CLIENTS.clear()
            client = _SYNC_CLIENTS[redis_url] = redis.Redis.from_url(redis_url)
        return client


def publish_sync(redis_url: str, channel: str, events: Sequence[EventRecord]) -> None:
    """Publish from a process without an event loop (RQ workers, the CLI).

    The client is kept per process and URL: a worker publishes after each commit, twice or
    more per job, and a new connection each time cost a connect and a handshake on both ends.
    A connection that died (Redis restarted) is dropped and the publish sent once more.
    """
    import redis

    for attempt in (1, 2):
        pipe = _sync_client(redis_url).pipeline(transaction=False)
        for start in range(0, len(events), BATCH_MAX):
            pipe.publish(channel, _encode("sync", events[start : start + BATCH_MAX]))
        try:
            pipe.execute()
            return
        except redis.ConnectionError:
            if attempt == 2:
                raise
            with _SYNC_LOCK:
                client = _SYNC_CLIENTS.pop(redis_url, None)
            if client is not None:
                client.close()


def _stream_of(conn: Any) -> asyncio.StreamReader | None:
    """The asyncio stream a redis-py connection reads from (a private attribute: None if a
    redis-py release keeps it elsewhere)."""
    stream = getattr(conn, "_reader", None)
    return stream if isinstance(stream, asyncio.StreamReader) else None


class RedisBus(InProcessBus):
    """Local fan-out at once, plus Redis pub/sub to and from other processes."""

    def __init__(self, redis_url: str, channel: str) -> None:
        super().__init__()
        self._url = redis_url
        self._channel = channel
        self._origin = uuid.uuid4().hex
        # how _encode starts this process's own messages: they are skipped undecoded
        self._own = ('{"origin":"' + self._origin + '"').encode()
        self._outbox: asyncio.Queue[EventRecord | None] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._listening = True
        self._ready = asyncio.Event()

    def publish(self, events: Sequence[EventRecord]) -> None:
        super().publish(events)
        loop = self._loop
        if loop is not None and events:
            loop.call_soon_threadsafe(self._to_outbox, list(events))

    def _to_outbox(self, events: list[EventRecord]) -> None:
        for ev in events:
            self._outbox.put_nowait(ev)

    async def _send(self) -> None:
        import redis.asyncio as aredis

        client = aredis.Redis.from_url(self._url)
        try:
            while True:
                ev = await self._outbox.get()
                if ev is None:
                    return
                batch = [ev]
                while not self._outbox.empty() and len(batch) < BATCH_MAX:
                    nxt = self._outbox.get_nowait()
                    if nxt is None:
                        self._outbox.put_nowait(None)
                        break
                    batch.append(nxt)
                try:
                    await client.publish(self._channel, _encode(self._origin, batch))
                except Exception:
                    log.exception("redis publish failed; %d events not shared", len(batch))
        finally:
            await client.aclose()

    async def _receive(self) -> None:
        import redis.asyncio as aredis

        while True:
            client = aredis.Redis.from_url(self._url)
            try:
                await self._subscribed(client)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("redis subscription lost; reconnecting")
                await asyncio.sleep(1.0)
            finally:
                await client.aclose()

    async def _subscribed(self, client: Any) -> None:
        """Read the channel's messages until the connection ends.

        redis-py's ``PubSub.listen`` runs a dozen Python layers per message (every process
        reads every message: a third of a standby leader's CPU). Here redis-py only connects
        (URL, password, TLS) and the connection's stream is read in blocks, which hiredis's
        C reader splits into replies; without that stream (another redis-py), ``listen``.
        """
        import hiredis

        conn = await client.connection_pool.get_connection()
        stream = _stream_of(conn)
        if stream is None:
            await client.connection_pool.release(conn)
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(self._channel)
                self._ready.set()
                async for msg in pubsub.listen():
                    if msg.get("type") == "message":
                        await self._message(msg["data"])
            return
        try:
            await conn.send_command("SUBSCRIBE", self._channel)
            replies = hiredis.Reader()
            while True:
                block = await stream.read(1 << 16)
                if not block:
                    raise ConnectionError("redis closed the subscription")
                replies.feed(block)
                while (reply := replies.gets()) is not False:
                    if isinstance(reply, Exception):  # an error reply (NOAUTH, ...)
                        raise reply
                    if isinstance(reply, list) and len(reply) == 3:
                        if reply[0] == b"message":
                            await self._message(reply[2])
                        elif reply[0] == b"subscribe":
                            self._ready.set()
        finally:
            await conn.disconnect()

    async def _message(self, data: bytes) -> None:
        if data.startswith(self._own):
            return
        try:
            origin, events = _decode(data)
        except (ValueError, KeyError, TypeError) as err:
            log.warning("undecodable event message skipped: %s", err)
            return
        if origin != self._origin:
            for ev in events:
                await self._dispatch(ev)

    async def start(self) -> None:
        await super().start()
        self._sender = asyncio.create_task(self._send(), name="event-bus-send")
        if self._listening:
            await self._start_receiving()

    @property
    def listening(self) -> bool:
        """Whether other processes' events are read (subscribed, or subscribing)."""
        return self._listening

    async def listen(self, on: bool) -> None:
        """Subscribe to the channel (returning once subscribed, 5 s at most) or unsubscribe.

        Every process decodes every message on the channel; a standby leader that reads none
        until it leads saves that (it rebuilds what it leads from the database, after
        subscribing, so nothing committed in between is missed)."""
        if on == self._listening:
            return
        self._listening = on
        if self._sender is None:  # not started: start() follows the setting
            return
        if on:
            await self._start_receiving()
        else:
            await self._stop_receiving()

    async def _start_receiving(self) -> None:
        self._ready.clear()
        self._receiver = asyncio.create_task(self._receive(), name="event-bus-receive")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout=5)

    async def _stop_receiving(self) -> None:
        task, self._receiver = self._receiver, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def stop(self) -> None:
        self._outbox.put_nowait(None)
        if self._sender is not None:
            await self._sender
            self._sender = None
        await self._stop_receiving()
        await super().stop()
