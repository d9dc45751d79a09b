"""GET /api/v1/wallboard for a hand-computed morning (figures from raw counts)."""

from __future__ import annotations

from datetime import timedelta

from contact_center.sla_service import SlaService
from tests.sla_service._helpers import contact, patch, reply, settle, sla_of


async def _at(clock, svc, seconds):
    """Move the clock to 09:00 + seconds and let due timers fire (as the loop would)."""
    clock.now = clock.start + timedelta(seconds=seconds)
    await settle(svc)
    await sla_of(svc).tick()
    await settle(svc)


async def _morning(client, world, clock):
    """09:00-09:10 in queue general (all times after 09:00:00):

    chat A  arrives 0 s, answered 10 s (within 20 s), solved 310 s (handle 300 s)
    chat B  arrives 60 s, answered 90 s (30 s: late; answer breached at 80 s)
    chat C  arrives 120 s, gone unanswered at 123 s (a short abandon, < 5 s)
    chat D  arrives 180 s, gone unanswered at 220 s (abandon; answer breached at 200 s)
    email E arrives 240 s, still waiting at 600 s
    """
    svc = world.svc
    clock.start = clock.now
    a = (await contact(client, world, "A"))["ticket_id"]
    await _at(clock, svc, 10)
    await reply(client, world, a)
    await _at(clock, svc, 60)
    b = (await contact(client, world, "B"))["ticket_id"]
    await _at(clock, svc, 90)
    await reply(client, world, b)
    await _at(clock, svc, 120)
    c = (await contact(client, world, "C"))["ticket_id"]
    await _at(clock, svc, 123)
    await patch(client, world, c, status="solved")
    await _at(clock, svc, 180)
    d = (await contact(client, world, "D"))["ticket_id"]
    await _at(clock, svc, 220)
    await patch(client, world, d, status="solved")
    await _at(clock, svc, 240)
    await contact(client, world, "E", channel="email")
    await _at(clock, svc, 310)
    await patch(client, world, a, status="solved")
    resp = await client.put("/api/v1/me/presence", json={"presence": "available"},
                            headers=world.auth("agent"))  # fmt: skip
    assert resp.status == 200
    await _at(clock, svc, 600)


EXPECTED_GENERAL = {
    "waiting": 1,  # E
    "longest_wait_seconds": 360.0,  # 09:10:00 - 09:04:00
    "offered_today": 5,
    "answered_today": 2,
    "abandoned_today": 2,
    "short_abandoned_today": 1,
    # V4: A_T / (A + Ab - SAb) = 1 / (2 + 2 - 1)
    "service_level": {"today": 0.3333, "last_15m": 0.3333, "last_60m": 0.3333},
    "asa_seconds": 20.0,  # (10 + 30) / 2
    "abandon_rate": 0.25,  # (Ab - SAb) / (Q - SAb) = 1 / 4
    "aht_seconds": 300.0,  # A only (B is still open)
    "breaches_today": 2,  # B and D
    # 4 live arrivals in 60 min, AHT 300 s: A = 4/3600 * 300 = 1/3 Erlang;
    # N=1: SL = 1 - (1/3) e^(-(2/3)(20/300)) = 0.681 < 0.8; N=2: C = 0.0476, SL = 0.957
    "staffing": {"live_arrivals_last_60m": 4, "aht_seconds": 300.0, "aht_source": "today",
                 "load_erlangs": 0.3333, "agents_needed": 2},
}  # fmt: skip


async def test_wallboard_numbers_for_a_hand_computed_morning(client, world, clock):
    await _morning(client, world, clock)
    resp = await client.get("/api/v1/wallboard", headers=world.auth("supervisor"))
    assert resp.status == 200
    board = await resp.json()
    assert board["scope"] == {"team_id": world.teams["red"]}
    assert board["settings"]["variant"] == "V4"
    assert board["settings"]["formula"] == "answered within T / (answered + abandoned)"
    queues = {q["name"]: q for q in board["queues"]}
    assert sorted(queues) == ["billing", "general"]  # the red team's queues only
    general = {k: v for k, v in queues["general"].items() if k not in ("queue_id", "name",
                                                                      "team_id")}  # fmt: skip
    assert general == EXPECTED_GENERAL
    assert queues["billing"]["offered_today"] == 0
    assert board["totals"]["offered_today"] == 5
    assert board["agents"]["by_presence"] == {"available": 1, "offline": 1}
    # the agent is available from 310 s on and handles nothing (replies assign no one)
    assert board["agents"]["occupancy"]["today"] == 0.0
    assert board["agents"]["idle_seconds_today"] == 290.0
    assert board["last_event_id"] > 0

    resp = await client.get("/api/v1/wallboard", headers=world.auth("blue_supervisor"))
    blue = await resp.json()
    assert [q["name"] for q in blue["queues"]] == ["tech"]
    assert blue["totals"]["offered_today"] == 0
    assert blue["agents"]["by_presence"] == {"offline": 1}

    resp = await client.get("/api/v1/wallboard", headers=world.auth("admin"))
    everything = await resp.json()
    assert [q["name"] for q in everything["queues"]] == ["billing", "general", "tech"]
    assert everything["totals"]["breaches_today"] == 2

    resp = await client.get("/api/v1/wallboard", headers=world.auth("agent"))
    assert resp.status == 403


async def test_counters_are_rebuilt_from_the_database(client, world, clock):
    await _morning(client, world, clock)
    live = sla_of(world.svc).snapshot(world.teams["red"])
    fresh = SlaService(world.svc.db)
    await fresh.load()
    rebuilt = fresh.snapshot(world.teams["red"])
    for key in ("queues", "totals", "agents"):
        assert rebuilt[key] == live[key], key
