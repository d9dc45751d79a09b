"""A real Redis restart (memory only) loses no webhook delivery: the outbox lives in the database.

The Redis is a throwaway ``redis-server`` of this test (never the shared one on 6379). Jobs are
enqueued, the server is stopped with ``SHUTDOWN NOSAVE`` and started again empty; an event
that happens while it is down still commits. The sweeper re-enqueues every row, a real RQ
worker delivers them, and the receiver gets each webhook-id exactly once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from dataclasses import replace

import pytest
from aiohttp.test_utils import TestClient, TestServer

from contact_center.app import build_services, create_app
from contact_center.db import Actor
from contact_center.jobs import RqJobs
from contact_center.webhooks.outbox import REWAKE, SubscriptionCache, create_subscription
from contact_center.webhooks.wiring import install_outbox, sweep_once
from tests.channels.email.dovecot import free_port
from tests.conftest import FAST_HASHING, Clock, build_world, inbound, sql
from tests.webhooks.test_delivery import _subscribe
from tests.workers import RedisServer, start_worker
from tickets.actions import ingest
from tickets.contact import InboundContact
from tickets.domain import Channel
from tickets.models import utcnow

pytestmark = pytest.mark.redis


class QueuePushes:
    """Counts pushes onto one RQ queue through Redis keyspace notifications (no polling)."""

    def __init__(self, server: RedisServer, queue: str) -> None:
        self._conn = server.client()
        self._conn.config_set("notify-keyspace-events", "Kl")
        self._sub = self._conn.pubsub()
        self._sub.subscribe(f"__keyspace@0__:rq:queue:{queue}")
        self._sub.get_message(timeout=5)  # the subscribe confirmation

    def wait(self, n: int, timeout: float = 20) -> None:
        seen = 0
        while seen < n:
            msg = self._sub.get_message(timeout=timeout)
            assert msg is not None, f"only {seen} of {n} jobs were enqueued"
            seen += msg["type"] == "message" and msg["data"] in (b"rpush", b"lpush")

    def close(self) -> None:
        self._sub.close()
        self._conn.close()


async def test_a_redis_restart_loses_no_delivery(settings, receiver, own_redis, tmp_path,
                                                 caplog):  # fmt: skip
    s = replace(settings, redis_url=own_redis.url, webhook_sweep_seconds=3600)
    clock = Clock(utcnow())
    svc = build_services(s, password_hashing=FAST_HASHING, clock=clock)
    world = build_world(svc)
    async with TestClient(TestServer(create_app(s, services=svc))) as client:
        status, _ = await _subscribe(client, world, receiver.url, types=["message.created"])
        assert status == 201
        pushes = QueuePushes(own_redis, s.rq_queue)
        try:
            for n in range(3):
                r = await client.post("/api/v1/inbound", json=inbound(f"rr{n}"),
                                      headers=world.auth("agent"))  # fmt: skip
                assert r.status == 201
            await asyncio.to_thread(pushes.wait, 3)
        finally:
            pushes.close()
        assert await asyncio.to_thread(lambda: svc.jobs.queue.count) == 3

        await asyncio.to_thread(own_redis.shutdown_nosave)  # the three jobs are gone
        with caplog.at_level(logging.WARNING, logger="contact_center.webhooks"):
            r = await client.post("/api/v1/inbound", json=inbound("rr-down"),
                                  headers=world.auth("agent"))  # fmt: skip
            assert r.status == 201  # Redis is down, the event still commits
            await asyncio.to_thread(own_redis.start)  # again, and empty
            assert await asyncio.to_thread(lambda: svc.jobs.queue.count) == 0
        assert "not enqueued" in caplog.text
        rows = sql(svc.db, "select status from webhookdelivery")
        assert [st for (st,) in rows] == ["pending"] * 4

        async def enqueue(delivery_id: int) -> None:
            await svc.jobs.enqueue("deliver_webhook", delivery_id)

        clock.advance(seconds=REWAKE.total_seconds() + 1)
        assert await sweep_once(svc.db, enqueue) == 4
        worker = await start_worker(s, "--burst", log=tmp_path / "worker.log")
        assert await asyncio.wait_for(worker.wait(), 60) == 0, (tmp_path / "worker.log").read_text()
        assert await sweep_once(svc.db, enqueue) == 0  # nothing left to wake

    rows = sql(svc.db, "select status from webhookdelivery")
    assert [st for (st,) in rows] == ["delivered"] * 4
    ids = Counter(got.headers["webhook-id"] for got in receiver.got)
    assert len(ids) == 4 and set(ids.values()) == {1}  # each webhook-id exactly once
    bodies = sorted(json.loads(got.body)["data"]["external_id"] for got in receiver.got)
    assert bodies == ["rr-down", "rr0", "rr1", "rr2"]


def test_an_action_in_a_worker_commits_while_redis_is_down(services, world, caplog):
    # a worker's own wiring (jobs.worker_context): enqueue synchronously after commit
    down = RqJobs(f"redis://127.0.0.1:{free_port()}/0", "cc-test-down")
    install_outbox(services.db, SubscriptionCache(),
                   lambda ids: [down.enqueue_sync("deliver_webhook", i) for i in ids])  # fmt: skip
    services.db.write_sync(create_subscription, Actor("cli"),
                           {"url": "http://127.0.0.1:9/hook", "event_types": ["*"],
                            "allow_private": True, "description": ""})  # fmt: skip
    contact = InboundContact(channel=Channel.API, external_id="down-1", handle="crm-1",
                             body_text="hello")  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="contact_center.webhooks"):
        result = services.db.write_sync(ingest, contact, services.ingest_policy, Actor("test"))
    assert result.ticket_id
    assert "not enqueued" in caplog.text
    assert {st for (st,) in sql(services.db, "select status from webhookdelivery")} == {"pending"}
