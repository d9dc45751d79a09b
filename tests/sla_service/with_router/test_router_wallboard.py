"""Answer, abandon and handle times from the real router: an available agent, chats through
POST /api/v1/inbound, offers accepted through ``tickets.actions.routing.accept_offer``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from contact_center.sla_service import SlaService
from tests.conftest import World, applied, sql
from tests.sla_service._helpers import contact, events, patch, settle, sla_of, ticket, utc
from tests.sla_service.test_occupancy import presence
from tickets.actions.routing import accept_offer


async def _routed(world: World) -> None:
    """Every committed event applied by the router (the offers it made are stored) and by the
    SLA service."""
    svc = world.svc
    assert svc.routing is not None
    for _ in range(3):  # routing writes offers, whose events the SLA service applies
        await applied(svc.db, svc.routing)
        await settle(svc)


def _open_offer(world: World, ticket_id: int) -> int:
    """The agent holding the ticket's open offer."""
    rows = sql(world.svc.db, "SELECT agent_id FROM offer WHERE ticket_id = :t AND outcome IS NULL",
               t=ticket_id)  # fmt: skip
    assert rows, f"ticket {ticket_id} has no open offer"
    return int(rows[0][0])


async def _at(clock: Any, world: World, seconds: float) -> None:
    clock.now = clock.start + timedelta(seconds=seconds)
    await _routed(world)


async def _accept(world: World, ticket_id: int) -> None:
    agent = _open_offer(world, ticket_id)
    await world.svc.db.write(accept_offer, ticket_id, agent)
    await _routed(world)


async def test_asa_abandons_and_handle_time_through_the_router(client, world, clock):
    """One agent (agent2 stays offline); seconds after 09:00:

    chat A  arrives 0, offered at once, accepted 8 (wait 8 s: within 20), solved 120 (handle 112)
    chat B  arrives 10, offered, the customer leaves at 23 before any accept: an abandon (13 s)
    chat C  arrives 20, offered too, gone at 22: a short abandon (2 s, excluded)
    chat D  arrives 30 while the agent is away (25-60): answer breached at 50, offered when the
            agent is back at 60, accepted 62 (wait 32 s: late)
    """
    svc, sla = world.svc, sla_of(world.svc)
    agent_id = world.users["agent"]["id"]
    clock.start = clock.now
    await presence(client, world, "agent", "available")
    await _routed(world)
    a = (await contact(client, world, "rt-a"))["ticket_id"]
    await _routed(world)
    assert _open_offer(world, a) == agent_id
    await _at(clock, world, 8)
    await _accept(world, a)
    row = ticket(svc, a)
    assert row.assignee_id == agent_id and utc(row.first_answer_at) == clock.now
    assert len(events(svc, "ticket.answered", a)) == 1

    await _at(clock, world, 10)
    b = (await contact(client, world, "rt-b"))["ticket_id"]
    await _routed(world)
    assert _open_offer(world, b) == agent_id
    await _at(clock, world, 20)
    c = (await contact(client, world, "rt-c"))["ticket_id"]
    await _routed(world)
    assert _open_offer(world, c) == agent_id  # a second chat place of the same agent
    await _at(clock, world, 22)
    await patch(client, world, c, "supervisor", status="solved")
    await _at(clock, world, 23)
    await patch(client, world, b, "supervisor", status="solved")
    assert sql(svc.db, "SELECT count(*) FROM offer WHERE outcome IS NULL")[0][0] == 0

    await _at(clock, world, 25)
    await presence(client, world, "agent", "away")
    await _at(clock, world, 30)
    d = (await contact(client, world, "rt-d"))["ticket_id"]
    await _at(clock, world, 50)
    await sla.tick()  # the answer breach at 50 s
    await _routed(world)
    assert [e.ticket_id for e in events(svc, "sla.breached")] == [d]
    await _at(clock, world, 60)
    await presence(client, world, "agent", "available")
    await _routed(world)
    await _at(clock, world, 62)
    await _accept(world, d)
    await _at(clock, world, 120)
    await patch(client, world, a, "supervisor", status="solved")
    await _routed(world)

    resp = await client.get("/api/v1/wallboard", headers=world.auth("supervisor"))
    assert resp.status == 200
    board = await resp.json()
    general = next(q for q in board["queues"] if q["name"] == "general")
    assert {k: general[k] for k in (
        "waiting", "offered_today", "answered_today", "abandoned_today", "short_abandoned_today",
        "service_level", "asa_seconds", "abandon_rate", "aht_seconds", "breaches_today",
    )} == {
        "waiting": 0, "offered_today": 4, "answered_today": 2, "abandoned_today": 2,
        "short_abandoned_today": 1,
        # V4: A_T / (A + Ab - SAb) = 1 / (2 + 2 - 1)
        "service_level": {"today": 0.3333, "last_15m": 0.3333, "last_60m": 0.3333},
        "asa_seconds": 20.0,  # (8 + 32) / 2
        "abandon_rate": 0.3333,  # (Ab - SAb) / (Q - SAb) = 1 / 3
        "aht_seconds": 112.0,  # A: accepted 8, solved 120 (D is still open)
        "breaches_today": 1,
    }  # fmt: skip
    # the agent: idle 0-8, then on A (and from 62 on D too) until 120, away or not
    assert board["agents"]["occupancy"]["today"] == round(112 / 120, 4)
    assert board["agents"]["open_offers"] == 0

    # a restarted service rebuilds the same figures from the tickets and the day's events
    again = SlaService(svc.db)
    await again.load()
    team = world.teams["red"]
    for key in ("queues", "totals", "agents"):
        assert again.snapshot(team)[key] == sla.snapshot(team)[key], key
