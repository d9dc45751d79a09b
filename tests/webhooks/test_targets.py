"""The operator's allow list reaches the local receiver, and every attempt resolves again.

The local receiver (an aiohttp app on 127.0.0.1) is reachable only when the operator lists it in
``CC_WEBHOOK_ALLOW_CIDRS`` *and* the subscription sets ``allow_private``. DNS is injected (a
resolver whose answers the test changes), so a host that resolves to the receiver when the
subscription is saved and to something else later is refused at the attempt.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit

from contact_center.app import build_services, create_app
from contact_center.db import Actor
from contact_center.keys import SERVICES
from contact_center.webhooks import outbox
from contact_center.webhooks.wiring import sweep_once
from tests.conftest import FAST_HASHING, build_world, inbound, sql
from tests.webhooks.test_delivery import _subscribe


async def _app(aiohttp_client, settings, clock, **kw):
    svc = build_services(settings, password_hashing=FAST_HASHING, clock=clock, **kw)
    world = build_world(svc)
    client = await aiohttp_client(create_app(settings, services=svc))
    return svc, world, client


async def _sweep_and_drain(svc) -> int:
    async def enqueue(i: int) -> None:
        await svc.jobs.enqueue("deliver_webhook", i)

    woken = await sweep_once(svc.db, enqueue)
    await svc.jobs.drain()
    return woken


def _last(svc) -> tuple[str, str | None]:
    return sql(svc.db, "select status, last_error from webhookdelivery order by id desc")[0]


async def test_the_local_receiver_is_refused_unless_the_operator_lists_it(
    aiohttp_client, settings, clock, receiver
):
    closed = replace(settings, webhook_allow_cidrs="")
    svc, world, client = await _app(aiohttp_client, closed, clock)
    status, body = await _subscribe(client, world, receiver.url, types=["message.created"])
    assert status == 400
    assert body["error"]["fields"]["url"] == "not allow-listed"
    assert "CC_WEBHOOK_ALLOW_CIDRS" in body["error"]["message"]
    # a subscription saved while the entry existed (the operator removed it since): the attempt
    # is refused before any connection, and the row waits for a retry
    svc.db.write_sync(outbox.create_subscription, Actor("cli"),
                      {"url": receiver.url, "event_types": ["message.created"],
                       "allow_private": True, "description": ""})  # fmt: skip
    svc.webhooks.invalidate()
    await client.post("/api/v1/inbound", json=inbound("t1"), headers=world.auth("agent"))
    await svc.jobs.drain()
    status_, error = _last(svc)
    assert (status_, receiver.got) == ("retrying", [])
    assert error.startswith("refused:") and "allow list" in error


async def test_the_local_receiver_works_when_allow_listed(client, world, receiver):
    svc = client.app[SERVICES]
    assert svc.settings.webhook_allow_cidrs == "127.0.0.1/32"
    status, body = await _subscribe(client, world, receiver.url, types=["message.created"],
                                    allow_private=False)  # fmt: skip
    assert (status, body["error"]["fields"]["url"]) == (400, "private address")
    status, _ = await _subscribe(client, world, receiver.url, types=["message.created"])
    assert status == 201
    await client.post("/api/v1/inbound", json=inbound("t1"), headers=world.auth("agent"))
    await receiver.wait_for(1)
    await svc.jobs.drain()
    assert _last(svc) == ("delivered", None)


async def test_the_target_is_resolved_and_checked_again_before_every_attempt(
    aiohttp_client, settings, clock, receiver
):
    answers = {"hooks.example.test": ["127.0.0.1"]}
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return list(answers[host])

    svc, world, client = await _app(aiohttp_client, settings, clock, resolver=resolve)
    port = urlsplit(receiver.url).port
    status, _ = await _subscribe(client, world, f"http://hooks.example.test:{port}/hook",
                                 types=["message.created"])  # fmt: skip
    assert status == 201
    await client.post("/api/v1/inbound", json=inbound("t1"), headers=world.auth("agent"))
    await svc.jobs.drain()
    assert len(receiver.got) == 1  # pinned to the checked address: the name never hit real DNS
    assert receiver.got[0].headers["Host"] == f"hooks.example.test:{port}"

    answers["hooks.example.test"] = ["10.66.0.1"]  # rebound to an internal, unlisted address
    await client.post("/api/v1/inbound", json=inbound("t2"), headers=world.auth("agent"))
    await svc.jobs.drain()
    status_, error = _last(svc)
    assert status_ == "retrying" and "not in the operator's allow list" in error

    answers["hooks.example.test"] = ["169.254.169.254"]  # cloud metadata
    clock.advance(seconds=10)
    assert await _sweep_and_drain(svc) == 1
    status_, error = _last(svc)
    assert status_ == "retrying" and "metadata" in error
    assert len(receiver.got) == 1  # neither attempt connected anywhere

    answers["hooks.example.test"] = ["127.0.0.1"]
    clock.advance(minutes=7)
    assert await _sweep_and_drain(svc) == 1
    assert _last(svc) == ("delivered", None)
    assert len(receiver.got) == 2
    assert asked.count("hooks.example.test") == 5  # at save, then once before each attempt
