"""``sla.breached`` reaches webhook subscribers through the outbox like any event."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from tests.sla_service._helpers import contact, settle, sla_of
from tests.webhooks.conftest import Receiver


@pytest.fixture
async def receiver(aiohttp_server) -> Receiver:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    rec.url = f"http://127.0.0.1:{server.port}/hook"
    return rec


async def test_breach_is_delivered_to_a_webhook(client, world, clock, receiver):
    resp = await client.post("/api/v1/webhooks", headers=world.auth("admin"),
                             json={"url": receiver.url, "event_types": ["sla.breached"],
                                   "allow_private": True})  # fmt: skip
    assert resp.status == 201, await resp.text()
    t = await contact(client, world, "hook", channel="chat")
    await settle(world.svc)
    clock.advance(seconds=20)
    await sla_of(world.svc).tick()
    await receiver.wait_for(1)
    body = json.loads(receiver.got[0].body)
    assert body["type"] == "sla.breached"
    assert body["data"]["ticket_id"] == t["ticket_id"]
    assert body["data"]["metric"] == "answer"
    assert body["data"]["team_id"] == world.teams["red"]
