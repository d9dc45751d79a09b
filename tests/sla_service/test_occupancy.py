"""Occupancy on the wallboard, from presence events and live handling, hand-computed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from contact_center import sla_agents
from contact_center.sla_service import SlaService
from tests.conftest import World
from tests.sla_service._helpers import contact, patch, settle


async def presence(client: Any, world: World, who: str, value: str) -> None:
    """The user's own presence change (PUT /api/v1/me/presence)."""
    resp = await client.put("/api/v1/me/presence", json={"presence": value},
                            headers=world.auth(who))  # fmt: skip
    assert resp.status == 200, await resp.text()


async def _at(clock: Any, world: World, minutes: float) -> None:
    clock.now = clock.start + timedelta(minutes=minutes)
    await settle(world.svc)


async def _shift(client, world, clock) -> int:
    """Team red, 09:00-09:12 (minutes after 09:00):

    agent   available 0; chat A assigned 3; A solved and wrap-up 8; available 9
    agent2  available 5; away 9
    At 12: agent occupied 3-9 (300 s on A + 60 s wrap-up) = 360 s, idle 0-3 and 9-12 = 360 s;
    agent2 idle 5-9 = 240 s. Occupancy = 360 / (360 + 600) = 0.375.
    """
    clock.start = clock.now
    await presence(client, world, "agent", "available")
    await _at(clock, world, 2)
    a = (await contact(client, world, "occ-a"))["ticket_id"]
    await _at(clock, world, 3)
    await patch(client, world, a, "supervisor", assignee_id=world.users["agent"]["id"])
    await _at(clock, world, 5)
    await presence(client, world, "agent2", "available")
    await _at(clock, world, 8)
    await patch(client, world, a, "supervisor", status="solved")
    await presence(client, world, "agent", "wrap_up")
    await _at(clock, world, 9)
    await presence(client, world, "agent", "available")
    await presence(client, world, "agent2", "away")
    await _at(clock, world, 12)
    return int(a)


RED = {
    "by_presence": {"available": 1, "away": 1},
    "occupancy": {"today": 0.375, "last_15m": 0.375, "last_60m": 0.375},
    "occupied_seconds_today": 360.0,
    "idle_seconds_today": 600.0,
    "open_offers": 0,
}


async def test_occupancy_from_presence_and_handling(client, world, clock, monkeypatch):
    await _shift(client, world, clock)
    resp = await client.get("/api/v1/wallboard", headers=world.auth("supervisor"))
    assert resp.status == 200
    assert (await resp.json())["agents"] == RED

    resp = await client.get("/api/v1/wallboard", headers=world.auth("blue_supervisor"))
    blue = (await resp.json())["agents"]
    assert blue["by_presence"] == {"offline": 1}
    assert blue["occupancy"] == {"today": None, "last_15m": None, "last_60m": None}
    assert blue["occupied_seconds_today"] == 0.0

    resp = await client.get("/api/v1/wallboard", headers=world.auth("admin"))
    everyone = (await resp.json())["agents"]
    assert everyone["occupancy"] == RED["occupancy"]  # the blue agent was never staffed

    # a restarted service replays the day's events to the same figures
    again = SlaService(world.svc.db)
    await again.load()
    assert again.snapshot(world.teams["red"])["agents"] == RED
    # ...streaming the ticket events a page at a time (here one row per fetch)
    monkeypatch.setattr(sla_agents, "_STREAM", 1)
    paged = SlaService(world.svc.db)
    await paged.load()
    assert paged.snapshot(world.teams["red"])["agents"] == RED

    # at 09:20 the last 15 minutes start in the minute of 09:05: agent occupied 5-9 (A until
    # 8, then wrap-up) = 240 s, idle 9-20 = 660 s; agent2 idle 5-9 = 240 s
    clock.now = clock.start + timedelta(minutes=20)
    figures = again.snapshot(world.teams["red"])["agents"]["occupancy"]
    assert figures["last_15m"] == round(240 / (240 + 900), 4)
    assert figures["today"] == round(360 / (360 + 600 + 480), 4)
