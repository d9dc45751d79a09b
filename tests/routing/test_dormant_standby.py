"""Lead processes (``contact-center lead``) stand by dormant: a standby reads no events and
keeps no SLA board; taking the lead it subscribes, then loads the router and the SLA service
from the database, and fires what fell due meanwhile."""

from __future__ import annotations

from dataclasses import replace

import pytest

from contact_center.app import build_services, create_app
from contact_center.lead import create_leader_app
from tests.conftest import FAST_HASHING, REDIS_URL, count, inbound, until

pytestmark = pytest.mark.redis


class Seen:
    """The events a process's bus dispatched."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    async def __call__(self, ev) -> None:
        self.ids.append(ev.id)


@pytest.fixture
async def deployment(aiohttp_client, settings, world, clock):
    """A web process (not routing) and two lead processes on one database and one Redis."""
    shared = replace(settings, redis_url=REDIS_URL, leader_ttl_ms=600)
    web_svc, *lead_svc = (build_services(shared, password_hashing=FAST_HASHING, clock=clock)
                          for _ in range(3))  # fmt: skip
    seen = [Seen(), Seen()]
    for svc, recorder in zip(lead_svc, seen, strict=True):
        svc.bus.subscribe(recorder)
    web = await aiohttp_client(create_app(replace(shared, routing_enabled=False),
                                          services=web_svc))  # fmt: skip
    leads = [await aiohttp_client(create_leader_app(shared, services=s)) for s in lead_svc]
    try:
        yield web, web_svc, leads, lead_svc, seen
    finally:
        for c in (*leads, web):
            await c.close()
        for svc in (web_svc, *lead_svc):
            svc.db.close()


async def test_a_standby_reads_nothing_and_loads_everything_when_it_leads(deployment, world, clock):
    web, web_svc, leads, lead_svc, seen = deployment
    await until(lambda: any(s.routing.running and not s.sla.dormant for s in lead_svc))
    i = 0 if lead_svc[0].routing.running else 1
    led, standby = lead_svc[i], lead_svc[1 - i]
    leader_client, standby_client = leads[i], leads[1 - i]
    assert standby.sla.dormant and not standby.bus.listening and not standby.routing.running
    assert led.bus.listening and not led.sla.dormant

    # nobody is available: a chat waits past its 20-second answer target
    resp = await web.post("/api/v1/inbound", headers=world.auth("admin"),
                          json=inbound("d-1", channel="chat", handle="v-d-1"))  # fmt: skip
    tid = (await resp.json())["ticket_id"]
    await until(lambda: any(k[0] == tid for k in led.sla.timers.due))
    await led.sla.wait_for_event(web_svc.sla.last_event_id)
    assert seen[i].ids and not seen[1 - i].ids  # the standby's bus dispatched nothing
    assert tid in led.sla.board.waiting.line(world.queues["general"], "chat")
    assert not standby.sla.board.waiting.line(world.queues["general"], "chat")
    resp = await standby_client.get("/api/v1/wallboard", headers=world.auth("admin"))
    assert resp.status == 503
    assert (await resp.json())["error"]["code"] == "unavailable"
    resp = await leader_client.get("/api/v1/wallboard", headers=world.auth("admin"))
    assert resp.status == 200

    # a second chat waits; then the leader goes: the standby takes over from the database
    resp = await web.post("/api/v1/inbound", headers=world.auth("admin"),
                          json=inbound("d-2", channel="chat", handle="v-d-2"))  # fmt: skip
    tid2 = (await resp.json())["ticket_id"]
    await until(lambda: any(k[0] == tid2 for k in led.sla.timers.due))
    await led.sla.wait_for_event(web_svc.sla.last_event_id)
    before = led.sla.last_event_id
    await leader_client.close()
    await until(lambda: standby.routing.running and not standby.sla.dormant)
    assert standby.bus.listening and standby.sla.announcing
    line = standby.sla.board.waiting.line(world.queues["general"], "chat")
    assert tid in line and tid2 in line  # the board, loaded on taking over
    assert {tid, tid2} <= {k[0] for k in standby.sla.timers.due}
    resp = await standby_client.get("/api/v1/wallboard", headers=world.auth("admin"))
    assert resp.status == 200
    assert (await resp.json())["last_event_id"] >= web_svc.sla.last_event_id

    # it follows events now, and fires the timers that fall due, once each
    resp = await web.post("/api/v1/inbound", headers=world.auth("admin"),
                          json=inbound("d-3", channel="chat", handle="v-d-3"))  # fmt: skip
    tid3 = (await resp.json())["ticket_id"]
    await until(lambda: any(k[0] == tid3 for k in standby.sla.timers.due))
    assert seen[1 - i].ids and min(seen[1 - i].ids) > before  # only events after it led
    clock.advance(seconds=21)
    for t in (tid, tid2, tid3):
        await until(lambda t=t: count(standby.db, "event", "type = 'sla.breached' AND "
                                       "ticket_id = :t", t=t) == 1)  # fmt: skip
