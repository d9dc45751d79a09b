"""GET /metrics carries the board's gauges, computed at scrape time (the hand-computed morning)."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from tests.sla_service._helpers import contact, settle
from tests.sla_service.test_board import _morning
from tickets.actions.routing import NewOffer, create_offers


async def _scrape(client, world) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = await client.get("/metrics", headers=world.auth("admin"))
    assert resp.status == 200
    out = {}
    for family in text_string_to_metric_families(await resp.text()):
        for s in family.samples:
            if s.name.startswith(("cc_queue_", "cc_agent", "cc_offers")):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_sla_and_routing_gauges(client, world, clock):
    await _morning(client, world, clock)  # 09:10; see tests/sla_service/test_board.py
    svc = world.svc
    # an open offer of a new chat to the agent (the router is off here: stored by the action)
    tid = (await contact(client, world, "offered"))["ticket_id"]
    offer = NewOffer(tid, world.users["agent"]["id"], clock.now, clock.now + timedelta(seconds=15))
    assert (await svc.db.write(create_offers, [offer]))[0] is not None
    await settle(svc)

    got = await _scrape(client, world)
    q = (("queue", "general"),)
    assert got[("cc_queue_waiting", q)] == 2  # E, and the offered chat
    assert got[("cc_queue_longest_wait_seconds", q)] == 360.0
    assert got[("cc_queue_service_level_today", q)] == 0.3333  # 1 / (2 + 2 - 1)
    assert got[("cc_queue_sla_breaches_today", q)] == 2
    assert got[("cc_queue_waiting", (("queue", "tech"),))] == 0
    assert ("cc_queue_service_level_today", (("queue", "tech"),)) not in got  # no data yet
    assert got[("cc_agents", (("presence", "available"), ("team", "red")))] == 1
    assert got[("cc_agents", (("presence", "offline"), ("team", "red")))] == 1
    assert got[("cc_agents", (("presence", "offline"), ("team", "blue")))] == 1
    assert got[("cc_agent_occupancy_today", (("team", "red"),))] == 0.0  # idle 290 s
    assert ("cc_agent_occupancy_today", (("team", "blue"),)) not in got  # never staffed
    assert got[("cc_offers_open", (("team", "red"),))] == 1

    clock.advance(seconds=40)  # computed at scrape time: the waits grow with the clock
    got = await _scrape(client, world)
    assert got[("cc_queue_longest_wait_seconds", q)] == 400.0
