"""Ingest: idempotency (also concurrent), customer resolution, threading, reopen, attachments."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import pytest

from contact_center.db import Actor
from contact_center.errors import PayloadTooLarge, ValidationError
from tests.conftest import count, inbound, sql
from tickets.actions import ingest
from tickets.actions import tickets as ticket_actions
from tickets.contact import InboundAttachment, InboundContact
from tickets.domain import Channel, Role
from tickets.queries import Viewer

API = Actor("test")
ADMIN = Viewer(user_id=1, role=Role.ADMIN)


def contact(ext: str, handle: str = "ann@example.com", channel: Channel = Channel.EMAIL, **kw):
    return InboundContact(channel=channel, external_id=ext, handle=handle,
                          body_text=kw.pop("body_text", f"body {ext}"), **kw)  # fmt: skip


def run(services, c):
    return services.db.write_sync(ingest, c, services.ingest_policy, API)


def test_new_contact_makes_customer_ticket_message_events_and_audit(services, world):
    r = run(services, contact("m1", customer_name="Ann", subject="Help"))
    assert (r.created_ticket, r.duplicate) == (True, False)
    db = services.db
    assert count(db, "customer") == 1
    assert count(db, "customerhandle", "kind='email' AND value='ann@example.com'") == 1
    assert count(db, "ticket", "status='new' AND subject='Help'") == 1
    assert count(db, "message", "external_id='m1' AND direction='in'") == 1
    types = {r[0] for r in sql(db, "select type from event")}
    assert {"customer.created", "ticket.created", "message.created"} <= types
    assert count(db, "auditlog", "action='contact.ingested'") == 1


def test_ticket_gets_queue_team_and_sla_deadline(services, world, clock):
    run(services, contact("m1", queue="billing"))
    (row,) = sql(services.db, "select queue_id, team_id, first_response_due_at from ticket")
    assert row[0] == world.queues["billing"]
    assert row[1] == world.teams["red"]
    assert row[2] is not None


def test_unknown_queue_is_a_clear_error_and_nothing_is_stored(services, world):
    with pytest.raises(ValidationError) as err:
        run(services, contact("m1", queue="nope"))
    assert "queue" in err.value.fields
    assert count(services.db, "message") == 0
    assert count(services.db, "customer") == 0


def test_duplicate_returns_the_original(services, world):
    first = run(services, contact("m1"))
    again = run(services, contact("m1", body_text="changed"))
    assert again.duplicate is True
    assert (again.ticket_id, again.message_id) == (first.ticket_id, first.message_id)
    assert count(services.db, "message") == 1
    assert count(services.db, "auditlog", "action='contact.ingested'") == 1


def test_same_external_id_on_another_channel_is_another_message(services, world):
    run(services, contact("x", handle="+4930123456", channel=Channel.SMS))
    run(services, contact("x", handle="+4930123456", channel=Channel.VOICE))
    assert count(services.db, "message") == 2


async def test_fifty_concurrent_duplicates_store_one_message(services, world):
    results = await asyncio.gather(
        *[
            services.db.write(ingest, contact("dup-1"), services.ingest_policy, API)
            for _ in range(50)
        ]
    )
    assert sum(not r.duplicate for r in results) == 1
    assert len({(r.ticket_id, r.message_id) for r in results}) == 1
    db = services.db
    assert count(db, "message") == 1
    assert count(db, "ticket") == 1
    assert count(db, "customer") == 1
    assert count(db, "event", "type='message.created'") == 1


async def test_concurrent_contacts_from_one_new_person_make_one_customer_and_ticket(
    services, world
):
    await asyncio.gather(
        *[
            services.db.write(
                ingest, contact(f"c-{i}", handle="NEW@Example.com"), services.ingest_policy, API
            )
            for i in range(30)
        ]
    )
    db = services.db
    assert count(db, "message") == 30
    assert count(db, "customer") == 1
    assert count(db, "customerhandle") == 1
    assert count(db, "ticket") == 1


async def test_fifty_concurrent_duplicates_over_http(client, world):
    body = inbound("http-dup", handle="+14155550123", channel="sms")
    resps = await asyncio.gather(
        *[client.post("/api/v1/inbound", json=body, headers=world.auth("agent")) for _ in range(50)]
    )
    statuses = sorted(r.status for r in resps)
    assert statuses == [200] * 49 + [201]
    ids = {(await r.json())["message_id"] for r in resps}
    assert len(ids) == 1
    assert count(world.svc.db, "message") == 1


def test_one_customer_across_channels_by_normalised_handle(services, world):
    a = run(services, contact("e1", handle="Ann@Example.COM"))
    b = run(services, contact("a1", handle="ann@example.com", channel=Channel.API,
                              handle_kind=None))  # fmt: skip
    c = run(services, contact("s1", handle="+1 (415) 555-0123", channel=Channel.SMS))
    d = run(services, contact("v1", handle="tel:+14155550123", channel=Channel.VOICE))
    assert a.customer_id == b.customer_id  # the API channel recognises an email handle
    assert c.customer_id == d.customer_id
    assert c.ticket_id != d.ticket_id  # each channel threads on its own
    from tickets.domain import HandleKind

    e = run(services, contact("a2", handle="ANN@example.com", channel=Channel.API,
                              handle_kind=HandleKind.EMAIL))  # fmt: skip
    assert e.customer_id == a.customer_id


def test_threads_into_the_open_ticket(services, world):
    a = run(services, contact("m1"))
    b = run(services, contact("m2"))
    assert b.ticket_id == a.ticket_id and not b.created_ticket
    assert count(services.db, "ticket") == 1


def test_reopens_a_solved_ticket_within_the_window_only(services, world, clock):
    a = run(services, contact("m1"))
    services.db.write_sync(ticket_actions.update_ticket, ADMIN, a.ticket_id, {"status": "solved"})
    clock.advance(days=2)
    b = run(services, contact("m2"))
    assert b.ticket_id == a.ticket_id and b.reopened
    assert sql(services.db, "select status from ticket") == [("open",)]
    services.db.write_sync(ticket_actions.update_ticket, ADMIN, a.ticket_id, {"status": "solved"})
    clock.advance(seconds=services.ingest_policy.reopen_window.total_seconds() + 1)
    c = run(services, contact("m3"))
    assert c.ticket_id != a.ticket_id and c.created_ticket


def test_closed_ticket_is_never_reopened_even_with_a_hint(services, world):
    a = run(services, contact("m1"))
    for status in ("solved", "closed"):
        services.db.write_sync(ticket_actions.update_ticket, ADMIN, a.ticket_id, {"status": status})
    b = run(services, contact("m2", ticket_hint=a.ticket_id))
    assert b.ticket_id != a.ticket_id


def test_ticket_hint_of_another_customer_is_ignored(services, world):
    other = run(services, contact("m1", handle="other@example.com"))
    mine = run(services, contact("m2", ticket_hint=other.ticket_id))
    assert mine.ticket_id != other.ticket_id


def test_attachments_stored_once_by_hash(services, world):
    data = b"%PDF-1.4 invoice"
    att = InboundAttachment("invoice.pdf", "application/pdf", data)
    r1 = run(services, contact("m1", attachments=(att,)))
    r2 = run(services, contact("m2", attachments=(att,)))
    digest = hashlib.sha256(data).hexdigest()
    assert services.ingest_policy.blobs.get(digest) == data
    assert count(services.db, "attachment", "sha256=:h", h=digest) == 2
    assert len(r1.attachment_ids) == len(r2.attachment_ids) == 1
    files = [p for p in services.ingest_policy.blobs.root.rglob("*") if p.is_file()]
    assert len(files) == 1


def test_oversized_attachment_refused_and_nothing_stored(services, world):
    big = InboundAttachment("big.bin", "application/octet-stream",
                            b"x" * (services.ingest_policy.attachment_max_bytes + 1))  # fmt: skip
    with pytest.raises(PayloadTooLarge):
        run(services, contact("m1", attachments=(big,)))
    assert count(services.db, "message") == 0
    assert count(services.db, "ticket") == 0


@pytest.mark.parametrize(
    ("handle", "channel"),
    [
        ("not-an-email", Channel.EMAIL),
        ("12", Channel.SMS),
        ("bad id!", Channel.CHAT),
        ("", Channel.API),
        ("has space", Channel.API),
    ],
)
def test_bad_handles_are_clear_errors(services, world, handle, channel):
    with pytest.raises(ValidationError) as err:
        run(services, contact("m1", handle=handle, channel=channel))
    assert "handle" in err.value.fields
    assert count(services.db, "message") == 0


def test_html_is_sanitised_on_the_way_in(services, world):
    run(services, contact("m1", body_html='<p onclick="x()">hi<script>alert(1)</script></p>'))
    assert sql(services.db, "select body_html from message") == [("<p>hi</p>",)]


async def test_inbound_http_attachment_and_bad_base64(client, world):
    data = base64.b64encode(b"hello").decode()
    att = {"filename": "a.txt", "content_type": "text/plain", "data_base64": data}
    good = inbound("a1", attachments=[att])
    resp = await client.post("/api/v1/inbound", json=good, headers=world.auth("agent"))
    assert resp.status == 201
    assert len((await resp.json())["attachment_ids"]) == 1
    bad = inbound("a2", attachments=[{"filename": "a.txt", "data_base64": "%%%"}])
    resp = await client.post("/api/v1/inbound", json=bad, headers=world.auth("agent"))
    assert resp.status == 400
    body = await resp.json()
    assert body["error"]["code"] == "invalid_request"
    assert "attachments.0.data_base64" in body["error"]["fields"]
    assert count(world.svc.db, "message", "external_id='a2'") == 0


def test_events_are_numbered_in_commit_order(services, world):
    for i in range(5):
        run(services, contact(f"m{i}", handle=f"p{i}@example.com"))
    ids = [
        r[0]
        for r in sql(
            services.db,
            "select id from event where ticket_id is not null or type = 'customer.created' "
            "order by created_at, id",
        )
    ]
    assert ids == sorted(ids) and len(ids) == 15
