"""Twenty agent consoles, two hundred contacts: every one assigned once, skills and capacity kept,
also across a restart of the app in the middle of the stream."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from contact_center.app import build_services, create_app
from contact_center.db import Actor
from tests.conftest import FAST_HASHING, PASSWORD, count, inbound, sql
from tests.console._agents import AgentClient, post_inbound
from tickets.actions import admin


def _capacity(i: int) -> int:
    """Places on the api channel: a quarter of the agents take only 3 at a time."""
    return 3 if i % 4 == 1 else 30


def _skills(i: int) -> dict[str, int]:
    """Mixed skills: billing or technical at levels 1..5, everyone English, some Chinese."""
    skills = {"lang:en": 5}
    skills["billing" if i % 2 == 0 else "technical"] = 1 + i % 5
    if i % 3 == 0:
        skills["lang:zh"] = 4
    return skills


def _need(n: int) -> dict[str, Any]:
    """What contact ``n`` requires (always met by at least four agents)."""
    skill = "billing" if n % 2 == 0 else "technical"
    need: dict[str, Any] = {"skills": {skill: 1 + n % 3}}
    if n % 7 == 0:
        need["language"] = "zh"
    return need


def _seed(svc) -> list[dict[str, Any]]:
    cli = Actor("cli")
    team = svc.db.write_sync(admin.create_team, cli, "crowd")["id"]
    queue = svc.db.write_sync(admin.create_queue, cli, {"name": "crowd", "team_id": team})["id"]
    pw = FAST_HASHING.hash(PASSWORD)
    return [
        svc.db.write_sync(
            admin.create_user, cli,
            {"email": f"a{i}@crowd.example", "name": f"Agent {i}", "password_hash": pw,
             "role": "agent", "team_id": team, "skills": _skills(i),
             "capacity": {"api": _capacity(i)}},
            [queue],
        )
        for i in range(20)
    ]  # fmt: skip


class AutoAgent(AgentClient):
    """Accepts every offer it hears of, also the ones in a snapshot after a reconnect."""

    def __init__(self, name: str, token: str) -> None:
        super().__init__(name, token)
        self.on_offer = self._take
        self.client.on("snapshot", self._snapshot, namespace="/agent")

    async def _take(self, offer: dict[str, Any]) -> None:
        while "/agent" not in self.client.namespaces:  # a snapshot comes with the connect
            await asyncio.sleep(0.01)
        await self.call("accept", {"ticket_id": offer["ticket_id"]})

    async def _snapshot(self, snap: dict[str, Any]) -> None:
        self.got.append(("snapshot", snap))
        self.arrived.set()
        for offer in snap["offers"]:
            asyncio.get_running_loop().create_task(self._take(offer))


async def _consoles(port: int, svc, agents: list[dict[str, Any]]) -> list[AutoAgent]:
    out = []
    for a in agents:
        c = AutoAgent(a["email"], svc.signer.issue(a["id"], 0))
        await c.connect(port)
        await c.wait_for("snapshot")
        assert (await c.call("presence", {"presence": "available"}))["ok"]
        out.append(c)
    return out


async def _post(port: int, token: str, numbers: range, clock) -> None:
    for n in numbers:
        clock.advance(milliseconds=50)  # contacts arrive over time (the clock is ours)
        body = inbound(f"crowd-{n}", handle=f"crowd{n}@example.com", channel="api", **_need(n))
        body["queue"] = "crowd"
        await post_inbound(port, token, body)


async def _all_assigned(db, total: int, timeout: float = 30) -> None:
    async def check() -> None:
        while count(db, "ticket", "assignee_id IS NOT NULL") < total:
            await asyncio.sleep(0.05)  # polling for a state, not timing anything

    try:
        await asyncio.wait_for(check(), timeout)
    except TimeoutError:
        offers = sql(db, "SELECT outcome, count(*) FROM offer GROUP BY outcome")
        presence = sql(db, 'SELECT presence, count(*) FROM "user" GROUP BY presence')
        waiting = sql(db, "SELECT id, required_skills, language FROM ticket "
                      "WHERE assignee_id IS NULL LIMIT 5")  # fmt: skip
        raise AssertionError(
            f"not all assigned: offers {offers}, presence {presence}, waiting {waiting}"
        ) from None


def _check_assignments(db, agents: list[dict[str, Any]], total: int) -> None:
    by_id = {a["id"]: a for a in agents}
    rows = sql(db, "SELECT id, assignee_id, required_skills, language FROM ticket")
    assert len(rows) == total
    load: dict[int, int] = {}
    for tid, assignee, required, language in rows:
        assert assignee in by_id, f"ticket {tid} went to {assignee}"
        skills = by_id[assignee]["skills"]
        req = required if isinstance(required, dict) else json.loads(required)
        for skill, level in req.items():
            assert skills.get(skill, 0) >= level, (tid, assignee, req, skills)
        if language:
            assert skills.get(f"lang:{language}", 0) >= 1, (tid, assignee, language)
        load[assignee] = load.get(assignee, 0) + 1
    caps = {a["id"]: a["capacity"]["api"] for a in agents}
    assert all(n <= caps[aid] for aid, n in load.items()), (load, caps)
    assert any(load.get(aid) == 3 for aid, cap in caps.items() if cap == 3)  # capacity bit
    accepted = sql(db, "SELECT ticket_id, count(*) FROM offer WHERE outcome = 'accepted' "
                   "GROUP BY ticket_id")  # fmt: skip
    assert len(accepted) == total and all(n == 1 for _, n in accepted)
    assert count(db, "offer", "outcome IS NULL") == 0


@pytest.mark.slow
async def test_two_hundred_contacts_reach_twenty_agents(aiohttp_server, settings, services, clock):
    agents = _seed(services)
    admin_user = services.db.write_sync(
        admin.create_user, Actor("cli"),
        {"email": "boss@crowd.example", "name": "Boss", "password_hash": "x", "role": "admin"},
    )  # fmt: skip
    token = services.signer.issue(admin_user["id"], 0)
    srv = await aiohttp_server(create_app(settings, services=services))
    consoles = await _consoles(srv.port, services, agents)
    try:
        await _post(srv.port, token, range(200), clock)
        await _all_assigned(services.db, 200)
    finally:
        for c in consoles:
            await c.close()
        await srv.close()
    _check_assignments(services.db, agents, 200)


@pytest.mark.slow
async def test_restart_mid_stream_loses_nothing_and_assigns_once(
    aiohttp_server, settings, services, clock
):
    agents = _seed(services)
    boss = services.db.write_sync(
        admin.create_user, Actor("cli"),
        {"email": "boss@crowd.example", "name": "Boss", "password_hash": "x", "role": "admin"},
    )  # fmt: skip
    token = services.signer.issue(boss["id"], 0)
    srv = await aiohttp_server(create_app(settings, services=services))
    consoles = await _consoles(srv.port, services, agents)
    await _post(srv.port, token, range(100), clock)
    await srv.close()  # the process stops with offers open and contacts waiting ...
    for c in consoles:  # ... and its consoles lose their connection
        await c.close()
    before = count(services.db, "ticket")
    assert before == 100

    again = build_services(settings, password_hashing=FAST_HASHING, clock=clock)
    srv2 = await aiohttp_server(create_app(settings, services=again))
    consoles = await _consoles(srv2.port, again, agents)
    try:
        await _post(srv2.port, token, range(100, 200), clock)
        await _all_assigned(again.db, 200)
    finally:
        for c in consoles:
            await c.close()
        await srv2.close()
        again.db.close()
    _check_assignments(services.db, agents, 200)
