"""Webhooks end to end: signed delivery, retries to dead letter, replay, rotation, crash safety."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import replace
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

from contact_center.app import build_services, create_app
from contact_center.keys import SERVICES
from contact_center.webhooks.outbox import RETRY_SCHEDULE
from contact_center.webhooks.signing import verify
from contact_center.webhooks.wiring import sweep_once
from tests.conftest import FAST_HASHING, REDIS_URL, build_world, inbound, sql
from tests.workers import kill_worker, start_worker, worker_env
from tickets.models import utcnow


async def _subscribe(client, world, url, types=("ticket.*", "message.created"), allow_private=True):
    resp = await client.post("/api/v1/webhooks", headers=world.auth("admin"),
                             json={"url": url, "event_types": list(types),
                                   "allow_private": allow_private})  # fmt: skip
    return resp.status, await resp.json()


def _check_signed(secret: str, got) -> dict:
    ts = int(got.headers["webhook-timestamp"])
    assert verify(secret, got.headers["webhook-id"], ts, got.body,
                  got.headers["webhook-signature"], now=ts)  # fmt: skip
    return json.loads(got.body)


async def _drain(client) -> None:
    await client.app[SERVICES].jobs.drain()


async def test_private_target_refused_unless_allowed(client, world, receiver):
    status, body = await _subscribe(client, world, receiver.url, allow_private=False)
    assert status == 400
    assert body["error"]["fields"]["url"] == "private address"
    status, _ = await _subscribe(client, world, "http://169.254.169.254/latest", allow_private=True)
    assert status == 400


async def test_events_arrive_signed_once_each(client, world, receiver):
    status, sub = await _subscribe(client, world, receiver.url)
    assert status == 201
    assert sub["secret"].startswith("whsec_")
    r = await client.post("/api/v1/inbound", json=inbound("w1"), headers=world.auth("agent"))
    assert r.status == 201
    await receiver.wait_for(2)
    await _drain(client)
    bodies = [_check_signed(sub["secret"], g) for g in receiver.got]
    assert sorted(b["type"] for b in bodies) == ["message.created", "ticket.created"]
    msg = next(b for b in bodies if b["type"] == "message.created")
    assert msg["data"]["external_id"] == "w1"
    assert len({g.headers["webhook-id"] for g in receiver.got}) == 2
    log = await (await client.get(f"/api/v1/webhooks/{sub['id']}/deliveries",
                                  headers=world.auth("admin"))).json()  # fmt: skip
    assert [d["status"] for d in log["items"]] == ["delivered", "delivered"]
    assert "secret" not in json.dumps(log)


async def test_failures_retry_with_backoff_then_dead_letter_then_replay(client, world, receiver,
                                                                         clock):  # fmt: skip
    receiver.status, receiver.reply = 500, "x" * 5000
    _, sub = await _subscribe(client, world, receiver.url, types=["message.created"])
    await client.post("/api/v1/inbound", json=inbound("w1"), headers=world.auth("agent"))
    await receiver.wait_for(1)
    await _drain(client)
    svc = client.app[SERVICES]
    (row,) = sql(svc.db, "select status, attempts, last_status_code, length(last_response), "
                         "next_attempt_at from webhookdelivery")  # fmt: skip
    assert row[:4] == ("retrying", 1, 500, 2000)

    async def enqueue(i: int) -> None:
        await svc.jobs.enqueue("deliver_webhook", i)

    assert await sweep_once(svc.db, enqueue) == 0  # not due yet
    for _ in RETRY_SCHEDULE:
        clock.advance(hours=13)  # longest step 10 h + 20 % jitter
        assert await sweep_once(svc.db, enqueue) == 1
        await _drain(client)
    (row,) = sql(svc.db, "select status, attempts from webhookdelivery")
    assert row == ("dead", len(RETRY_SCHEDULE) + 1)
    assert len(receiver.got) == len(RETRY_SCHEDULE) + 1
    clock.advance(days=3)
    assert await sweep_once(svc.db, enqueue) == 0  # the dead stay dead
    receiver.status = 204
    r = await client.post(f"/api/v1/webhooks/{sub['id']}/replay", headers=world.auth("admin"))
    assert len((await r.json())["replayed"]) == 1
    await _drain(client)
    assert sql(svc.db, "select status from webhookdelivery") == [("delivered",)]
    ids = {g.headers["webhook-id"] for g in receiver.got}
    assert len(ids) == 1  # every attempt and the replay carry the same id: receivers dedupe


async def test_rotation_signs_with_both_secrets(client, world, receiver):
    _, sub = await _subscribe(client, world, receiver.url, types=["message.created"])
    r = await client.post(
        f"/api/v1/webhooks/{sub['id']}/rotate-secret", headers=world.auth("admin")
    )
    new = (await r.json())["secret"]
    await client.post("/api/v1/inbound", json=inbound("w1"), headers=world.auth("agent"))
    await receiver.wait_for(1)
    await _drain(client)
    _check_signed(sub["secret"], receiver.got[0])
    _check_signed(new, receiver.got[0])
    assert len(receiver.got[0].headers["webhook-signature"].split()) == 2


async def test_a_hanging_receiver_times_out(aiohttp_client, settings, receiver):
    quick = replace(settings, webhook_timeout_seconds=1)
    services = build_services(quick, password_hashing=FAST_HASHING)
    world = build_world(services)
    client = await aiohttp_client(create_app(quick, services=services))
    receiver.hang = asyncio.Event()
    await _subscribe(client, world, receiver.url, types=["message.created"])
    await client.post("/api/v1/inbound", json=inbound("w1"), headers=world.auth("agent"))
    await receiver.wait_for(1)
    await _drain(client)
    receiver.hang.set()
    (row,) = sql(services.db, "select status, last_error from webhookdelivery")
    assert row[0] == "retrying"
    assert "timed out" in row[1].lower() or "timeout" in row[1].lower()


async def test_only_admins_manage_webhooks(client, world, receiver):
    for who in ("agent", "supervisor"):
        r = await client.post("/api/v1/webhooks", headers=world.auth(who),
                              json={"url": receiver.url, "event_types": ["*"]})  # fmt: skip
        assert r.status == 403
    r = await client.post("/api/v1/webhooks", headers=world.auth("admin"),
                          json={"url": receiver.url, "event_types": ["bad type!"]})  # fmt: skip
    assert r.status == 400


# -- crash safety with a real RQ worker and real Redis ---------------------------------------


@pytest.fixture
async def rq_app(settings, receiver):
    rq_settings = replace(settings, redis_url=REDIS_URL)
    svc = build_services(rq_settings, password_hashing=FAST_HASHING)
    world = build_world(svc)
    async with TestClient(TestServer(create_app(rq_settings, services=svc))) as client:
        yield rq_settings, svc, world, client
    svc.jobs.queue.empty()


@pytest.mark.redis
async def test_worker_killed_mid_delivery_delivers_after_restart(rq_app, receiver):
    settings, svc, world, client = rq_app
    receiver.hang = asyncio.Event()
    await _subscribe(client, world, receiver.url, types=["message.created"])
    await client.post("/api/v1/inbound", json=inbound("w1"), headers=world.auth("agent"))
    worker = await start_worker(settings)
    await receiver.wait_for(1, timeout=30)
    await kill_worker(worker)  # SIGKILL in the middle of the delivery
    receiver.hang.set()
    receiver.hang = None
    assert sql(svc.db, "select status from webhookdelivery") == [("delivering",)]

    async def enqueue(i: int) -> None:
        await svc.jobs.enqueue("deliver_webhook", i)

    svc.db.clock = lambda: utcnow() + timedelta(minutes=5)  # the sweeper's view: lease expired
    assert await sweep_once(svc.db, enqueue) == 1
    svc.db.clock = utcnow
    again = await start_worker(settings, "--burst")
    assert await asyncio.wait_for(again.wait(), 60) == 0
    assert sql(svc.db, "select status from webhookdelivery") == [("delivered",)]
    assert len(receiver.got) == 2
    assert receiver.got[0].headers["webhook-id"] == receiver.got[1].headers["webhook-id"]


@pytest.mark.redis
async def test_lost_redis_queue_loses_no_delivery(rq_app, receiver):
    settings, svc, world, client = rq_app
    await _subscribe(client, world, receiver.url, types=["message.created"])
    await client.post("/api/v1/inbound", json=inbound("w1"), headers=world.auth("agent"))
    await asyncio.sleep(0)  # let the commit hook's enqueue run
    for _ in range(50):
        if svc.jobs.queue.count:
            break
        await asyncio.sleep(0.02)
    assert svc.jobs.queue.count == 1
    svc.jobs.queue.empty()  # as if Redis restarted without persistence

    async def enqueue(i: int) -> None:
        await svc.jobs.enqueue("deliver_webhook", i)

    svc.db.clock = lambda: utcnow() + timedelta(minutes=2)
    assert await sweep_once(svc.db, enqueue) == 1
    svc.db.clock = utcnow
    w = await start_worker(settings, "--burst")
    assert await asyncio.wait_for(w.wait(), 60) == 0
    assert sql(svc.db, "select status from webhookdelivery") == [("delivered",)]
    assert len(receiver.got) == 1


async def test_cli_replays_dead_deliveries(client, world, receiver, clock, settings):
    import subprocess

    receiver.status = 500
    _, sub = await _subscribe(client, world, receiver.url, types=["message.created"])
    await client.post("/api/v1/inbound", json=inbound("w1"), headers=world.auth("agent"))
    await receiver.wait_for(1)
    await _drain(client)
    svc = client.app[SERVICES]
    with svc.db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE webhookdelivery SET status = 'dead'")
    env = worker_env(settings)
    args = [sys.executable, "-m", "contact_center.cli", "webhooks", "replay"]

    def cli(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*args, *extra], env=env, capture_output=True, text=True,
                              check=False)  # fmt: skip

    out = await asyncio.to_thread(cli, "--subscription", str(sub["id"]))
    assert out.returncode == 0, out.stderr
    assert "re-queued 1" in out.stdout
    assert sql(svc.db, "select status, attempts from webhookdelivery") == [("pending", 0)]
    receiver.status = 200
    clock.now = utcnow()  # the CLI wrote with the real clock: the row is due at once

    async def enqueue(i: int) -> None:
        await svc.jobs.enqueue("deliver_webhook", i)

    assert await sweep_once(svc.db, enqueue) == 1  # the next sweep sends it, no minute's wait
    await _drain(client)
    assert sql(svc.db, "select status from webhookdelivery") == [("delivered",)]
    for bad, says in ((["--delivery", "999"], "no such delivery"),
                      (["--subscription", "999"], "no such webhook")):  # fmt: skip
        missing = await asyncio.to_thread(cli, *bad)
        assert missing.returncode == 1
        assert says in missing.stderr
