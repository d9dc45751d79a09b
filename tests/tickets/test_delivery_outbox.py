"""Outbound messages survive a crashed send or a lost job (the message row is the outbox)."""

from __future__ import annotations

from contact_center.db import Actor
from tests.conftest import sql, wait_until_blocked
from tickets.actions import ingest
from tickets.actions.messages import (
    SEND_LEASE,
    STUCK_AFTER,
    begin_delivery,
    due_messages,
    post_message,
    record_delivery,
)
from tickets.contact import InboundContact
from tickets.domain import Channel, Role
from tickets.queries import Viewer

ADMIN = Viewer(user_id=1, role=Role.ADMIN)


def _reply(services):
    contact = InboundContact(channel=Channel.EMAIL, external_id="m1", handle="a@example.com",
                             body_text="hello")  # fmt: skip
    r = services.db.write_sync(ingest, contact, services.ingest_policy, Actor("test"))
    return services.db.write_sync(post_message, ADMIN, r.ticket_id, "answer").message_id


def test_a_send_that_crashed_is_retaken_after_its_lease(services, world, clock):
    mid = _reply(services)
    db = services.db
    first = db.write_sync(begin_delivery, mid)
    assert first is not None and first.to_handle == "a@example.com"
    # the worker dies here: nothing is recorded
    assert db.write_sync(begin_delivery, mid) is None  # leased: no second sender meanwhile
    assert db.write_sync(due_messages) == []
    clock.advance(seconds=SEND_LEASE.total_seconds() + 1)
    assert db.write_sync(due_messages) == [mid]
    again = db.write_sync(begin_delivery, mid)
    assert again is not None
    db.write_sync(record_delivery, mid, "<id@x>", "sent")
    assert sql(db, "select delivery_status, delivery_lease_until from message where id=:i",
               i=mid) == [("sent", None)]  # fmt: skip
    clock.advance(days=1)
    assert db.write_sync(due_messages) == []
    assert db.write_sync(begin_delivery, mid) is None  # final states are kept


def test_a_lost_job_is_woken_after_the_stuck_window(services, world, clock):
    mid = _reply(services)  # queued, but no job was ever enqueued (as if Redis lost it)
    db = services.db
    clock.advance(seconds=STUCK_AFTER.total_seconds() - 1)
    assert db.write_sync(due_messages) == []
    clock.advance(seconds=2)
    assert db.write_sync(due_messages) == [mid]
    assert db.write_sync(due_messages) == []  # woken once per window, not every sweep


def test_a_retry_waiting_in_the_queue_is_not_swept_early(services, world, clock):
    mid = _reply(services)
    db = services.db
    db.write_sync(begin_delivery, mid)
    db.write_sync(record_delivery, mid, None, "queued", "smtp down")
    clock.advance(minutes=10)  # the job queue's own retry is due within this window
    assert db.write_sync(due_messages) == []
    clock.advance(minutes=6)
    assert db.write_sync(due_messages) == [mid]


def test_two_jobs_for_one_message_send_it_once(services, world, db_url):
    """A sweep re-woke a message whose first job was only late: both jobs read it ``queued``;
    the second waits for the first one's row lock and then sends nothing."""
    import threading

    import psycopg

    mid = _reply(services)
    db = services.db
    if not db_url.startswith("postgresql"):  # one writer at a time: no such interleaving
        assert db.write_sync(begin_delivery, mid) is not None
        assert db.write_sync(begin_delivery, mid) is None
        return
    first = psycopg.connect(db_url)  # the first job, between its update and its commit
    first.execute("UPDATE message SET delivery_status = 'sending' WHERE id = %s", (mid,))
    second: list[object] = []
    job = threading.Thread(target=lambda: second.append(db.write_sync(begin_delivery, mid)))
    job.start()
    wait_until_blocked(db_url, job)  # the second job waits for the first one's row lock
    first.commit()
    first.close()
    job.join(10)
    assert second == [None]
    assert sql(db, "select delivery_status from message where id=:i", i=mid) == [("sending",)]
