"""Event bus: in-process fan-out, and Redis pub/sub between processes (real Redis)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from contact_center.db import EventRecord
from contact_center.events import InProcessBus, RedisBus, publish_sync
from tests.conftest import REDIS_URL


def _ev(i: int, type_: str = "ticket.created") -> EventRecord:
    return EventRecord(i, type_, i, {"n": i, "text": "中文"}, datetime(2026, 1, 1, tzinfo=UTC))


class Collector:
    def __init__(self, expect: int) -> None:
        self.items: list[EventRecord] = []
        self.expect = expect
        self.done = asyncio.Event()

    async def __call__(self, ev: EventRecord) -> None:
        self.items.append(ev)
        if len(self.items) >= self.expect:
            self.done.set()


async def test_in_process_bus_delivers_in_order_from_threads():
    bus = InProcessBus()
    got = Collector(100)
    bus.subscribe(got)
    await bus.start()
    await asyncio.gather(*[asyncio.to_thread(bus.publish, [_ev(i)]) for i in range(100)])
    await asyncio.wait_for(got.done.wait(), 5)
    await bus.stop()
    assert sorted(e.id for e in got.items) == list(range(100))


async def test_a_failing_subscriber_does_not_stop_the_others(caplog):
    bus = InProcessBus()

    async def broken(ev: EventRecord) -> None:
        raise RuntimeError("boom")

    got = Collector(3)
    bus.subscribe(broken)
    bus.subscribe(got)
    await bus.start()
    bus.publish([_ev(1), _ev(2), _ev(3)])
    await asyncio.wait_for(got.done.wait(), 5)
    await bus.stop()
    assert [e.id for e in got.items] == [1, 2, 3]
    assert "event subscriber failed" in caplog.text


@pytest.mark.redis
@pytest.mark.parametrize("path", ["stream", "pubsub"])
async def test_redis_bus_shares_events_between_processes_and_workers(monkeypatch, path):
    """Also through redis-py's ``PubSub``, the path for a redis-py without the stream."""
    from contact_center import events

    if path == "pubsub":
        monkeypatch.setattr(events, "_stream_of", lambda conn: None)
    decoded: list[str] = []
    real = events._decode
    monkeypatch.setattr(events, "_decode", lambda raw: decoded.append(raw) or real(raw))
    channel = f"cc-test-{uuid.uuid4().hex}"
    a, b = RedisBus(REDIS_URL, channel), RedisBus(REDIS_URL, channel)
    got_a, got_b = Collector(3), Collector(3)
    a.subscribe(got_a)
    b.subscribe(got_b)
    await a.start()
    await b.start()
    a.publish([_ev(1)])  # local at once on a, over Redis to b
    await asyncio.to_thread(publish_sync, REDIS_URL, channel, [_ev(2, "message.created")])
    b.publish([_ev(3)])
    await asyncio.wait_for(got_b.done.wait(), 5)
    await asyncio.wait_for(got_a.done.wait(), 5)
    await a.stop()
    await b.stop()
    assert sorted(e.id for e in got_b.items) == [1, 2, 3]
    assert sorted(e.id for e in got_a.items) == [1, 2, 3]  # own event 1 once, not echoed back
    # each bus decodes the other's message and the worker's, never its own (3 sent, 2 buses)
    assert len(decoded) == 4
    first = next(e for e in got_b.items if e.id == 1)
    assert first.payload == {"n": 1, "text": "中文"}
    assert first.created_at == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.redis
async def test_redis_bus_sends_batches_and_reads_single_events_and_skips_garbage(caplog):
    import json

    import redis.asyncio as aredis

    from contact_center.events import BATCH_MAX

    channel = f"cc-test-{uuid.uuid4().hex}"
    a, b = RedisBus(REDIS_URL, channel), RedisBus(REDIS_URL, channel)
    got = Collector(2 + 600)
    b.subscribe(got)
    raw = aredis.Redis.from_url(REDIS_URL)
    messages = []
    async with raw.pubsub() as watch:
        await watch.subscribe(channel)
        await a.start()
        await b.start()
        await raw.publish(channel, "not json")  # skipped, the subscription stays
        await raw.publish(channel, json.dumps({"origin": "x", "payload": {}}))  # no id: skipped
        single = {"origin": "old", **_ev(1).to_dict()}  # one event per message, as before
        await raw.publish(channel, json.dumps(single))
        await raw.publish(channel, json.dumps({"origin": "old", "events": [_ev(2).to_dict()]}))
        a.publish([_ev(i) for i in range(3, 603)])
        await asyncio.wait_for(got.done.wait(), 5)
        while (msg := await watch.get_message(timeout=0.2)) is not None:
            if msg["type"] == "message":
                messages.append(msg)
    await raw.aclose()
    await a.stop()
    await b.stop()
    assert [e.id for e in got.items] == list(range(1, 603))
    assert got.items[0].payload == {"n": 1, "text": "中文"}
    batches = [json.loads(m["data"]) for m in messages[4:]]
    assert [len(m["events"]) for m in batches] == [BATCH_MAX, BATCH_MAX, 600 - 2 * BATCH_MAX]
    assert caplog.text.count("undecodable event message skipped") == 2 * 2  # at a and at b


@pytest.mark.redis
async def test_a_bus_that_stops_listening_reads_nothing_until_it_listens_again():
    import redis.asyncio as aredis

    channel = f"cc-test-{uuid.uuid4().hex}"
    a, b = RedisBus(REDIS_URL, channel), RedisBus(REDIS_URL, channel)
    got, own = Collector(2), Collector(1)
    b.subscribe(got)
    b.subscribe(own)
    raw = aredis.Redis.from_url(REDIS_URL)
    await a.start()
    await b.listen(False)  # before start: b never subscribes
    await b.start()
    try:
        assert not b.listening
        assert await raw.execute_command("PUBSUB", "NUMSUB", channel) == [channel.encode(), 1]
        a.publish([_ev(1)])
        b.publish([_ev(2)])  # its own events are still dispatched in the process
        await asyncio.wait_for(own.done.wait(), 5)
        await b.listen(True)  # returns once subscribed
        assert await raw.execute_command("PUBSUB", "NUMSUB", channel) == [channel.encode(), 2]
        a.publish([_ev(3)])
        await asyncio.wait_for(got.done.wait(), 5)
        await b.listen(False)
        assert await raw.execute_command("PUBSUB", "NUMSUB", channel) == [channel.encode(), 1]
        a.publish([_ev(4)])
        await b.listen(True)
        a.publish([_ev(5)])
        await _until(lambda: len(got.items) == 3)
    finally:
        await raw.aclose()
        await a.stop()
        await b.stop()
    # 1 and 4 were published while b was not listening: never read; 2 is b's own
    assert [e.id for e in got.items] == [2, 3, 5]


@pytest.mark.redis
def test_a_worker_publishes_on_one_connection_and_through_a_redis_restart(own_redis):
    """``publish_sync`` (RQ workers publish each commit's events) keeps its client: one
    connection for many commits, not one each, and a restarted Redis costs no event."""
    import redis

    channel = f"cc-test-{uuid.uuid4().hex}"

    def published(count_from: int, n: int) -> list[int]:
        watcher = redis.Redis.from_url(own_redis.url)
        sub = watcher.pubsub(ignore_subscribe_messages=True)
        sub.subscribe(channel)
        assert sub.get_message(timeout=5) is None  # the subscription is in place
        before = int(watcher.info("stats")["total_connections_received"])
        for i in range(count_from, count_from + n):
            publish_sync(own_redis.url, channel, [_ev(i)])
        opened = int(watcher.info("stats")["total_connections_received"]) - before
        ids = []
        while len(ids) < n and (msg := sub.get_message(timeout=5)) is not None:
            ids += [int(e["id"]) for e in json.loads(msg["data"])["events"]]
        sub.close()
        watcher.close()
        assert opened <= 1, opened  # the first publish may connect; the rest reuse it
        return ids

    assert published(1, 5) == [1, 2, 3, 4, 5]
    own_redis.stop()
    own_redis.start()
    assert published(6, 3) == [6, 7, 8]  # its old connection died with the server


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.02)


@pytest.mark.redis
async def test_the_bus_resubscribes_after_a_redis_restart_and_reports_refusals(
    own_redis, caplog, monkeypatch
):
    """The subscription reads the connection's stream itself (not redis-py's ``PubSub``): a
    restarted server, or one that refuses the subscription (an error reply), is reported and
    subscribed to again."""
    import redis
    import redis.asyncio as aredis

    def no_pubsub(*a: object, **k: object) -> None:
        raise AssertionError("the bus took redis-py's PubSub path")

    monkeypatch.setattr(aredis.Redis, "pubsub", no_pubsub)

    channel = f"cc-test-{uuid.uuid4().hex}"
    bus = RedisBus(own_redis.url, channel)
    got = Collector(3)
    bus.subscribe(got)
    await bus.start()
    await asyncio.to_thread(publish_sync, own_redis.url, channel, [_ev(1)])
    await asyncio.wait_for(_until(lambda: len(got.items) == 1), 5)

    admin = redis.Redis.from_url(own_redis.url)
    bus._ready.clear()
    admin.execute_command("ACL", "SETUSER", "default", "resetchannels")  # SUBSCRIBE: NOPERM
    admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")  # the bus subscribes again
    await asyncio.wait_for(_until(lambda: "NOPERM" in caplog.text), 10)
    assert not bus._ready.is_set()
    admin.execute_command("ACL", "SETUSER", "default", "allchannels")
    await asyncio.wait_for(bus._ready.wait(), 10)  # subscribed again
    await asyncio.to_thread(publish_sync, own_redis.url, channel, [_ev(2)])
    await asyncio.wait_for(_until(lambda: len(got.items) == 2), 5)

    bus._ready.clear()
    own_redis.stop()
    own_redis.start()
    await asyncio.wait_for(bus._ready.wait(), 10)
    await asyncio.to_thread(publish_sync, own_redis.url, channel, [_ev(3)])
    await asyncio.wait_for(got.done.wait(), 5)
    admin.close()
    await bus.stop()
    assert [e.id for e in got.items] == [1, 2, 3]
    assert "redis subscription lost; reconnecting" in caplog.text
