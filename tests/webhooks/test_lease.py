"""Two workers never send one delivery row at once.

A claim leases the row for the attempt's whole budget (``CC_WEBHOOK_TIMEOUT_SECONDS``, which
covers DNS, connect, send and answer) plus a margin; the budget is enforced on every socket
operation, so a receiver that trickles its answer cannot stretch an attempt past the lease.
Clocks are injected: the data layer's and the attempt's monotonic one.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest

from contact_center.db import Actor
from contact_center.jobs import REGISTRY, JobContext
from contact_center.settings import WEBHOOK_TIMEOUT_MAX_SECONDS, Settings
from contact_center.tasks import deliver_webhook
from contact_center.webhooks.delivery import post_event
from contact_center.webhooks.outbox import (
    LEASE_MARGIN,
    Claim,
    SubscriptionCache,
    claim_delivery,
    create_subscription,
    due_deliveries,
    lease_for,
    record_result,
)
from contact_center.webhooks.signing import new_secret
from contact_center.webhooks.ssrf import AllowList, TargetGuard
from contact_center.webhooks.wiring import install_outbox
from tests.conftest import sql
from tickets.actions import ingest
from tickets.contact import InboundContact
from tickets.domain import Channel

LOCAL = TargetGuard(AllowList.parse("127.0.0.1/32"))
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


def test_the_lease_outlasts_the_whole_attempt_for_every_allowed_timeout():
    job_timeout = timedelta(seconds=REGISTRY["deliver_webhook"].timeout)
    for seconds in range(1, WEBHOOK_TIMEOUT_MAX_SECONDS + 1):
        budget = timedelta(seconds=seconds)
        assert lease_for(seconds) - budget == LEASE_MARGIN >= timedelta(seconds=30)
        assert lease_for(seconds) < job_timeout  # the job queue never cuts an attempt short
    for bad in (0, WEBHOOK_TIMEOUT_MAX_SECONDS + 1):
        with pytest.raises(ValueError):
            lease_for(bad)


@pytest.mark.parametrize(("raw", "says"), [("0", "must be 1-60"), ("61", "must be 1-60"),
                                           ("ten", "invalid literal")])  # fmt: skip
def test_a_timeout_the_lease_cannot_cover_is_refused_at_start(raw, says):
    with pytest.raises(ValueError, match="CC_WEBHOOK_TIMEOUT_SECONDS") as err:
        Settings.from_env({"CC_WEBHOOK_TIMEOUT_SECONDS": raw})
    assert says in str(err.value)
    with pytest.raises(ValueError, match="CC_WEBHOOK_TIMEOUT_SECONDS"):
        Settings(webhook_timeout_seconds=int(raw) if raw.isdigit() else -1)


def _one_delivery(services, url: str) -> int:
    """A subscription and one outbox row, with no job woken for it."""
    db = services.db
    install_outbox(db, SubscriptionCache(), lambda ids: None)
    values = {"url": url, "event_types": ["*"], "allow_private": True, "description": ""}
    db.write_sync(create_subscription, Actor("cli"), values)
    contact = InboundContact(channel=Channel.API, external_id="lease-1", handle="crm-1",
                             body_text="hello")  # fmt: skip
    db.write_sync(ingest, contact, services.ingest_policy, Actor("test"))
    return int(sql(db, "select min(id) from webhookdelivery")[0][0])


def _context(services) -> JobContext:
    return JobContext(db=services.db, settings=services.settings,
                      blobs=services.ingest_policy.blobs, webhook_guard=LOCAL)  # fmt: skip


async def test_a_leased_row_is_not_sent_by_a_second_worker(services, world, clock, receiver):
    delivery = _one_delivery(services, receiver.url)
    ctx = _context(services)
    receiver.hang = asyncio.Event()
    first = asyncio.create_task(asyncio.to_thread(deliver_webhook, ctx, delivery))
    await receiver.wait_for(1)  # worker A is in the middle of its POST
    lease = lease_for(services.settings.webhook_timeout_seconds)
    clock.advance(seconds=lease.total_seconds() - 1)
    assert await asyncio.to_thread(deliver_webhook, ctx, delivery) == "skipped"  # worker B
    assert services.db.write_sync(due_deliveries) == []  # nor does the sweeper take it
    receiver.hang.set()
    assert await first == "delivered"
    clock.advance(hours=1)
    assert await asyncio.to_thread(deliver_webhook, ctx, delivery) == "skipped"
    assert len(receiver.got) == 1


def test_a_late_result_cannot_overwrite_a_newer_claim(services, world, clock):
    delivery = _one_delivery(services, "http://127.0.0.1:9/hook")
    db, lease = services.db, lease_for(10)
    a = db.write_sync(claim_delivery, delivery, lease)
    assert a is not None and db.write_sync(claim_delivery, delivery, lease) is None
    clock.advance(seconds=lease.total_seconds() + 1)  # only if worker A died (it cannot dawdle)
    b = db.write_sync(claim_delivery, delivery, lease)
    assert b is not None and b.attempt == a.attempt + 1
    assert db.write_sync(record_result, delivery, a.attempt, 500, "late", None) == "superseded"
    assert db.write_sync(record_result, delivery, b.attempt, 200, "ok", None) == "delivered"
    assert sql(db, "select status, last_response from webhookdelivery where id=:i",
               i=delivery) == [("delivered", "ok")]  # fmt: skip


class _Trickler:
    """A raw TCP receiver that sends its answer one byte per tick of the client's clock."""

    def __init__(self) -> None:
        self.ticks = threading.Semaphore(0)
        self.sent = 0
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(65536)
            for byte in ANSWER:
                while not self.ticks.acquire(timeout=0.05):
                    if self.stop.is_set():
                        return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return
                self.sent += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.listener.close()


class TickingClock:
    """A monotonic clock that moves ``step`` seconds per reading and ticks the receiver."""

    def __init__(self, step: float, on_read=lambda: None) -> None:
        self.now = 0.0
        self.step = step
        self.on_read = on_read

    def __call__(self) -> float:
        self.now += self.step
        self.on_read()
        return self.now


def _claim(url: str) -> Claim:
    return Claim(1, 1, url, True, [new_secret()], "msg_1", "ticket.created", {"id": 1},
                 datetime(2026, 3, 2, 9, 0, tzinfo=UTC))  # fmt: skip


def test_a_trickling_receiver_cannot_stretch_an_attempt_past_its_budget():
    trickler = _Trickler()
    try:
        clock = TickingClock(0.2, trickler.ticks.release)  # every byte arrives "0.2 s" later
        claim = _claim(f"http://127.0.0.1:{trickler.port}/hook")
        attempt = post_event(claim, now=datetime.now(UTC), timeout=1.0, guard=LOCAL, started=0.0,
                             clock=clock)  # fmt: skip
    finally:
        trickler.close()
    # each byte came well within any per-read timeout, but the attempt's budget ran out
    assert attempt.status_code is None
    assert "ran out of time" in (attempt.error or "")
    assert 0 < trickler.sent < len(ANSWER)
    assert clock.now <= 1.0 + 0.2  # stopped at the first reading past its budget


def test_an_answer_within_budget_is_read_to_its_end_even_with_connection_close():
    trickler = _Trickler()
    try:
        clock = TickingClock(0.0, trickler.ticks.release)
        claim = _claim(f"http://127.0.0.1:{trickler.port}/hook")
        attempt = post_event(claim, now=datetime.now(UTC), timeout=1.0, guard=LOCAL, started=0.0,
                             clock=clock)  # fmt: skip
    finally:
        trickler.close()
    assert (attempt.status_code, attempt.response, attempt.error) == (200, "ok", None)


async def test_slow_dns_eats_the_budget_and_nothing_is_sent(receiver):
    clock = TickingClock(0.0)

    def slow_dns(host: str, port: int) -> list[str]:
        clock.now += 5.0  # the lookup took longer than the whole budget
        return ["127.0.0.1"]

    guard = TargetGuard(AllowList.parse("127.0.0.1/32"), slow_dns)
    claim = _claim(receiver.url)
    attempt = await asyncio.to_thread(post_event, claim, now=datetime.now(UTC), timeout=1.0,
                                      guard=guard, started=0.0, clock=clock)  # fmt: skip
    assert attempt.status_code is None and "ran out of time" in (attempt.error or "")
    assert receiver.got == []
