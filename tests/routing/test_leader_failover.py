"""Two app processes' worth of services on one database and one Redis: exactly one routes, and
when it stops the other takes over from the database without losing or doubling a ticket."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from contact_center.app import build_services, create_app
from tests.conftest import FAST_HASHING, REDIS_URL, count, inbound, sql, until

pytestmark = pytest.mark.redis


@pytest.fixture
async def two(aiohttp_client, settings, world, clock):
    """Two app processes' worth of services and apps on one database and one Redis."""
    shared = replace(settings, redis_url=REDIS_URL, leader_ttl_ms=600)
    first = build_services(shared, password_hashing=FAST_HASHING, clock=clock)
    second = build_services(shared, password_hashing=FAST_HASHING, clock=clock)
    a = await aiohttp_client(create_app(shared, services=first))
    b = await aiohttp_client(create_app(shared, services=second))
    try:
        yield first, second, a, b
    finally:
        await a.close()
        await b.close()
        first.db.close()
        second.db.close()


async def test_one_router_among_two_and_failover(two, world):
    first, second, a, b = two
    await until(lambda: first.routing.running or second.routing.running)
    await asyncio.sleep(0.3)  # a standby keeps trying; the lock keeps it out
    assert [first.routing.running, second.routing.running].count(True) == 1
    leader, standby = (a, b) if first.routing.running else (b, a)
    led = first if leader is a else second
    resp = await standby.put("/api/v1/me/presence", json={"presence": "available"},
                             headers=world.auth("agent"))  # fmt: skip
    assert resp.status == 200
    resp = await standby.post("/api/v1/inbound", headers=world.auth("admin"),
                              json=inbound("lf-1", queue="billing"))  # fmt: skip
    tid = (await resp.json())["ticket_id"]
    await until(lambda: count(led.db, "offer", "ticket_id = :t", t=tid) == 1)

    await leader.close()  # the leading process stops; its lock is released
    other = second if led is first else first
    waited = await until(lambda: other.routing.running)
    assert waited < 2
    resp = await standby.post("/api/v1/inbound", headers=world.auth("admin"),
                              json=inbound("lf-2", handle="two@example.com",
                                           queue="billing"))  # fmt: skip
    tid2 = (await resp.json())["ticket_id"]
    await until(lambda: count(other.db, "offer", "ticket_id = :t", t=tid2) == 1)
    # the first offer was resumed from the database, not made again
    assert count(other.db, "offer", "ticket_id = :t", t=tid) == 1
    assert sql(other.db, "SELECT count(*) FROM offer WHERE outcome IS NULL")[0][0] == 2


def _armed(service, tid: int) -> bool:
    return any(key[0] == tid for key in service.sla.timers.due)


def _breaches(db, tid: int) -> int:
    return count(db, "event", "type = 'sla.breached' AND ticket_id = :t", t=tid)


async def test_only_the_leader_fires_sla_timers_and_a_new_leader_fires_what_is_due(
    two, world, clock
):
    first, second, a, b = two
    await until(lambda: first.routing.running or second.routing.running)
    led, other = (first, second) if first.routing.running else (second, first)
    leader = a if led is first else b
    assert led.sla.announcing and not other.sla.announcing
    # nobody is available: a chat waits past its 20-second answer target
    resp = await leader.post("/api/v1/inbound", headers=world.auth("admin"),
                             json=inbound("sl-1", channel="chat", handle="v-sl-1"))  # fmt: skip
    tid = (await resp.json())["ticket_id"]
    await until(lambda: _armed(led, tid))
    await other.sla.wait_for_event(led.sla.last_event_id)
    assert not _armed(other, tid)  # a standby keeps the board, not the timers
    assert tid in other.sla.board.waiting.line(world.queues["general"], "chat")
    clock.advance(seconds=21)
    await until(lambda: _breaches(led.db, tid) == 1)

    # once the standby leads, it rebuilds the timers and fires what fell due meanwhile
    resp = await leader.post("/api/v1/inbound", headers=world.auth("admin"),
                             json=inbound("sl-2", channel="chat", handle="v-sl-2"))  # fmt: skip
    tid2 = (await resp.json())["ticket_id"]
    await until(lambda: _armed(led, tid2))
    await leader.close()
    await until(lambda: _armed(other, tid2))
    await until(lambda: other.sla.announcing)
    clock.advance(seconds=21)
    await until(lambda: _breaches(other.db, tid2) == 1)
    await asyncio.sleep(0.3)  # (a second announcement would come from the same loop)
    assert _breaches(other.db, tid) == 1 and _breaches(other.db, tid2) == 1
