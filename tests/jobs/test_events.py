"""Event bus: in-process fan-out, and Redis pub/sub between processes (real Redis)."""

from __future__ import annotations

import asyncio
import uuid
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
async def test_redis_bus_shares_events_between_processes_and_workers():
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
    first = next(e for e in got_b.items if e.id == 1)
    assert first.payload == {"n": 1, "text": "中文"}
    assert first.created_at == datetime(2026, 1, 1, tzinfo=UTC)
