"""One queue, two promises: its live tickets (chat, voice) follow the queue's live policy, the
rest its default policy. Ingest and the SLA service choose alike, also when a ticket moves."""

from __future__ import annotations

from datetime import timedelta

from contact_center.db import Actor
from tests.sla_service._helpers import contact, patch, settle, ticket, utc
from tickets.actions import admin
from tickets.actions._common import queue_policy_id

CLI = Actor("cli")


def _mixed_queue(world) -> tuple[int, int, int]:
    db = world.svc.db
    live = db.write_sync(
        admin.create_sla_policy,
        CLI,
        {"name": "live", "answer_seconds": 20, "first_response_seconds": None},
    )
    asyn = db.write_sync(
        admin.create_sla_policy,
        CLI,
        {"name": "async", "answer_seconds": None, "first_response_seconds": 86400},
    )
    queue = db.write_sync(admin.create_queue, CLI, {
        "name": "mixed", "team_id": world.teams["red"],
        "sla_policy_id": asyn["id"], "live_sla_policy_id": live["id"]})  # fmt: skip
    return int(queue["id"]), int(live["id"]), int(asyn["id"])


async def test_live_and_async_tickets_of_one_queue_get_their_own_policy(client, world, clock):
    svc = world.svc
    _, live, asyn = _mixed_queue(world)
    ids = {}
    for channel in ("chat", "voice", "email", "sms", "whatsapp", "api"):
        handle = {"email": f"{channel}@example.com", "chat": "visitor-mixed",
                  "sms": "+14155550100", "whatsapp": "+14155550101", "voice": "+14155550102",
                  "api": "crm-mixed"}[channel]  # fmt: skip
        t = await contact(client, world, f"mixed-{channel}", channel=channel, queue="mixed",
                          handle=handle)  # fmt: skip
        ids[channel] = t["ticket_id"]
    await settle(svc)  # the SLA service armed them all: it must agree with ingest
    for channel, tid in ids.items():
        row = ticket(svc, tid)
        created = utc(row.created_at)
        if channel in ("chat", "voice"):
            assert row.sla_policy_id == live, channel
            assert utc(row.answer_due_at) == created + timedelta(seconds=20), channel
            assert row.first_response_due_at is None, channel
        else:
            assert row.sla_policy_id == asyn, channel
            assert row.answer_due_at is None, channel
            assert utc(row.first_response_due_at) == created + timedelta(days=1), channel


async def test_moving_a_call_into_the_queue_rematches_to_its_live_policy(client, world, clock):
    svc = world.svc
    mixed, live, _ = _mixed_queue(world)
    t = await contact(client, world, "call-1", channel="voice", handle="+14155550199")
    await settle(svc)
    before = ticket(svc, t["ticket_id"])
    assert before.sla_policy_id not in (None, live)  # general's one policy for every channel
    await patch(client, world, t["ticket_id"], queue_id=mixed)
    await settle(svc)
    row = ticket(svc, t["ticket_id"])
    assert row.sla_policy_id == live
    assert utc(row.answer_due_at) == utc(row.created_at) + timedelta(seconds=20)


def test_a_queue_without_a_live_policy_uses_its_one_policy_for_every_channel():
    class Q:
        sla_policy_id = 7
        live_sla_policy_id: int | None = None

    assert [queue_policy_id(Q, c) for c in ("chat", "voice", "email")] == [7, 7, 7]
    Q.live_sla_policy_id = 9
    assert [queue_policy_id(Q, c) for c in ("chat", "voice", "email", "api")] == [9, 9, 7, 7]
    assert queue_policy_id(None, "chat") is None
