"""Redis comes back empty (restarted without persistence) with a reply's job in it: the next
sweep sees the queue's marker gone and enqueues every waiting message again at once, instead
of after the 15-minute stuck window; the reply goes out exactly once."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from contact_center.app import build_services
from contact_center.db import Actor
from contact_center.jobs import InProcessJobs, JobContext
from contact_center.webhooks.wiring import sweep_once
from tests.channels.email.conftest import running_sink
from tests.conftest import FAST_HASHING, Clock, build_world, sql
from tests.workers import start_worker
from tickets.actions import ingest
from tickets.actions.messages import (
    SEND_LEASE,
    begin_delivery,
    post_message,
    record_delivery,
    waiting_messages,
)
from tickets.blobs import BlobStore
from tickets.contact import InboundContact
from tickets.domain import Channel, Role
from tickets.models import utcnow
from tickets.queries import Viewer


async def test_a_reply_whose_job_redis_lost_goes_out_once(settings, own_redis, tmp_path):
    with running_sink() as sink:
        rq = replace(settings, redis_url=own_redis.url, smtp_host="127.0.0.1",
                     smtp_port=sink.port, smtp_tls="none",
                     email_from="Desk <support@example.test>")  # fmt: skip
        svc = build_services(rq, password_hashing=FAST_HASHING, clock=Clock(utcnow()))
        enqueued: list[int] = []

        async def enqueue_message(message_id: int) -> None:
            enqueued.append(message_id)
            await svc.jobs.enqueue("deliver_message", message_id)

        async def no_webhooks(_: int) -> None:
            raise AssertionError("no webhook is due")

        try:
            admin = build_world(svc).users["admin"]["id"]
            assert await svc.jobs.lost() is True  # a new Redis: nothing it could have kept
            assert await svc.jobs.lost() is False  # ...once
            contact = InboundContact(channel=Channel.EMAIL, external_id="<lost-1@example.com>",
                                     handle="ann@example.com", body_text="Where is my order?",
                                     subject="Order")  # fmt: skip
            ticket = svc.db.write_sync(ingest, contact, svc.ingest_policy, Actor("test")).ticket_id
            viewer = Viewer(user_id=admin, role=Role.ADMIN)
            reply = svc.db.write_sync(post_message, viewer, ticket, "On its way.").message_id
            await svc.jobs.enqueue("deliver_message", reply)
            assert await sweep_once(svc.db, no_webhooks, enqueue_message, svc.jobs.lost) == 0

            own_redis.stop()  # memory only: the job goes with it
            own_redis.start()
            assert await sweep_once(svc.db, no_webhooks, enqueue_message, svc.jobs.lost) == 1
            assert enqueued == [reply]  # at once, not after the stuck window
            assert await sweep_once(svc.db, no_webhooks, enqueue_message, svc.jobs.lost) == 0

            worker = await start_worker(rq, "--burst", log=tmp_path / "worker.log")
            assert await asyncio.wait_for(worker.wait(), 60) == 0, (
                tmp_path / "worker.log"
            ).read_text()
            row = "select delivery_status, external_id from message where id=:i"
            ((status, external_id),) = sql(svc.db, row, i=reply)
            assert status == "sent"
            assert len(sink.received) == 1 and external_id in sink.received[0][2].decode()
        finally:
            svc.jobs.queue.empty()  # type: ignore[attr-defined]
            svc.db.close()


def test_waiting_messages_are_the_queued_and_the_stale_sends(services, world, clock):
    db = services.db
    viewer = Viewer(user_id=world.users["admin"]["id"], role=Role.ADMIN)
    ids = []
    for n in range(4):
        contact = InboundContact(channel=Channel.EMAIL, external_id=f"w{n}",
                                 handle=f"c{n}@example.com", body_text="hi")  # fmt: skip
        ticket = db.write_sync(ingest, contact, services.ingest_policy, Actor("test")).ticket_id
        ids.append(db.write_sync(post_message, viewer, ticket, "answer").message_id)
    queued, early, sent, late = ids
    db.write_sync(begin_delivery, early)  # two sends under way, and one done
    db.write_sync(begin_delivery, sent)
    db.write_sync(record_delivery, sent, "<x@y>", "sent")
    clock.advance(seconds=1)
    db.write_sync(begin_delivery, late)
    clock.advance(seconds=SEND_LEASE.total_seconds() - 0.5)  # early's lease ran out, not late's
    assert db.write_sync(waiting_messages) == [queued, early]
    clock.advance(seconds=1)
    assert db.write_sync(waiting_messages) == [queued, early, late]
    assert sql(db, "select count(*) from message where delivery_status = 'queued'") == [(3,)]


async def test_the_in_process_queue_is_lost_once_per_process(settings, services):
    jobs = InProcessJobs(JobContext(services.db, settings, BlobStore(settings.data_dir / "blobs")))
    assert [await jobs.lost(), await jobs.lost()] == [True, False]
