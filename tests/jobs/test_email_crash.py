"""A real RQ worker killed (SIGKILL) in the middle of an SMTP send: the mail still goes out.

The SMTP server is a real aiosmtpd in this process whose DATA handler holds the first message
until the test releases it: the worker has sent the whole message and waits for the ``250``
when it dies. The server has queued that copy (as a real relay may have), the sweeper
finds the message stuck in ``sending`` after its lease, a new worker sends it again, and the
receiver sees two copies with one Message-ID: at least once, deduplicated by Message-ID.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import replace
from email import message_from_bytes, policy
from typing import Any

import pytest

from contact_center.app import build_services
from contact_center.db import Actor
from contact_center.webhooks.wiring import sweep_once
from tests.channels.email.dovecot import free_port
from tests.conftest import FAST_HASHING, REDIS_URL, Clock, build_world, sql
from tests.smtp_server import ClosingController
from tests.workers import kill_worker, start_worker
from tickets.actions import ingest
from tickets.actions.messages import SEND_LEASE, post_message
from tickets.contact import InboundContact
from tickets.domain import Channel, Role
from tickets.models import utcnow
from tickets.queries import Viewer

pytestmark = pytest.mark.redis


class HoldingSink:
    """Queues every message it gets, but answers the first DATA only once ``release`` is set
    (a relay that took the mail and whose ``250`` never reached the dying client)."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.in_data = threading.Event()
        self.release = threading.Event()
        self._held = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope.content)  # queued for delivery before we answer
        if not self._held:
            self._held = True
            self.in_data.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 60)
        return "250 OK queued"


@pytest.fixture
def holding_sink() -> Iterator[tuple[HoldingSink, int]]:
    handler, port = HoldingSink(), free_port()
    controller = ClosingController(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    handler.release.set()
    controller.stop()


def _message_id(raw: bytes) -> str:
    return str(message_from_bytes(raw, policy=policy.default)["Message-ID"])


async def test_worker_killed_mid_smtp_send_delivers_after_restart(settings, holding_sink,
                                                                  tmp_path):  # fmt: skip
    sink, port = holding_sink
    rq_settings = replace(settings, redis_url=REDIS_URL, smtp_host="127.0.0.1", smtp_port=port,
                          smtp_tls="none", email_from="Desk <support@example.test>")  # fmt: skip
    clock = Clock(utcnow())
    svc = build_services(rq_settings, password_hashing=FAST_HASHING, clock=clock)
    try:
        world = build_world(svc)
        contact = InboundContact(channel=Channel.EMAIL, external_id="<crash-1@example.com>",
                                 handle="ann@example.com", body_text="The printer is on fire",
                                 subject="Printer")  # fmt: skip
        ticket = svc.db.write_sync(ingest, contact, svc.ingest_policy, Actor("test")).ticket_id
        admin = Viewer(user_id=world.users["admin"]["id"], role=Role.ADMIN)
        reply = svc.db.write_sync(post_message, admin, ticket, "We are on our way.").message_id
        await svc.jobs.enqueue("deliver_message", reply)

        worker = await start_worker(rq_settings, log=tmp_path / "worker.log")
        assert await asyncio.to_thread(sink.in_data.wait, 60), "the worker never sent DATA"
        await kill_worker(worker)  # SIGKILL while it waits for the server's 250
        sink.release.set()
        row = "select delivery_status, external_id from message where id=:i"
        assert sql(svc.db, row, i=reply) == [("sending", None)]

        async def enqueue_message(message_id: int) -> None:
            await svc.jobs.enqueue("deliver_message", message_id)

        async def no_webhooks(_: int) -> None:
            raise AssertionError("no webhook is due")

        assert await sweep_once(svc.db, no_webhooks, enqueue_message) == 0  # still leased
        clock.advance(seconds=SEND_LEASE.total_seconds() + 60)
        assert await sweep_once(svc.db, no_webhooks, enqueue_message) == 1
        again = await start_worker(rq_settings, "--burst", log=tmp_path / "worker.log")
        assert await asyncio.wait_for(again.wait(), 60) == 0, (tmp_path / "worker.log").read_text()

        ((status, external_id),) = sql(svc.db, row, i=reply)
        assert status == "sent"
        assert len(sink.received) == 2  # at least once: the relay got it twice...
        assert {_message_id(raw) for raw in sink.received} == {external_id}  # ...under one id
    finally:
        svc.jobs.queue.empty()  # type: ignore[attr-defined]
        svc.db.close()
