"""SLA timers: breach exactly at the deadline, warning at 80 %, cancellation, pauses, restarts."""

from __future__ import annotations

from datetime import timedelta

from contact_center.sla_service import SlaService
from tests.conftest import count, reads_of
from tests.sla_service._helpers import (
    MS,
    contact,
    events,
    patch,
    reply,
    settle,
    sla_of,
    ticket,
    utc,
)


async def test_breach_fires_exactly_at_the_deadline(client, world, clock):
    svc = world.svc
    sla = sla_of(svc)
    t = await contact(client, world, "b1", channel="chat")
    await settle(svc)
    row = ticket(svc, t["ticket_id"])
    due = utc(row.answer_due_at)
    assert due == clock.now + timedelta(seconds=20)
    assert row.priority == 2

    early = await sla.tick(due - MS)
    assert [a["metric"] for a in early] == ["answer"]  # only the 80 % warning (at 16 s)
    assert not events(svc, "sla.breached")
    assert not ticket(svc, t["ticket_id"]).answer_breached

    clock.now = due
    fired = await sla.tick(due)
    assert len(fired) == 1 and fired[0]["metric"] == "answer"
    (ev,) = events(svc, "sla.breached", t["ticket_id"])
    assert ev.ticket_id == t["ticket_id"]
    row = ticket(svc, t["ticket_id"])
    assert row.answer_breached and row.priority == 3
    assert count(svc.db, "auditlog", "action = 'sla.breach' AND target_id = :id",
                 id=t["ticket_id"]) == 1  # fmt: skip
    await settle(svc)
    assert await sla.tick(due + timedelta(seconds=5)) == []  # once
    assert await sla.sweep(due + timedelta(seconds=5)) == []


async def test_warning_at_eighty_percent_once(client, world, clock):
    svc = world.svc
    sla = sla_of(svc)
    t = await contact(client, world, "w1", channel="email")
    await settle(svc)
    due = utc(ticket(svc, t["ticket_id"]).first_response_due_at)
    assert due == clock.now + timedelta(days=1)
    warn_at = clock.now + timedelta(seconds=86_400 * 0.8)
    assert await sla.tick(warn_at - MS) == []
    clock.now = warn_at
    (warning,) = await sla.tick(warn_at)
    assert warning["metric"] == "first_response"
    assert warning["remaining_seconds"] == 17_280
    assert warning["team_id"] == world.teams["red"]
    assert len(events(svc, "sla.warning", t["ticket_id"])) == 1
    assert not events(svc, "sla.breached")
    # a restarted service does not announce it again
    again = SlaService(svc.db)
    await again.load()
    assert await again.tick(warn_at + MS) == []
    assert len(events(svc, "sla.warning", t["ticket_id"])) == 1


async def test_first_response_before_the_deadline_cancels_the_breach(client, world, clock):
    svc = world.svc
    sla = sla_of(svc)
    t = await contact(client, world, "c1", channel="email")
    await settle(svc)
    due = utc(ticket(svc, t["ticket_id"]).first_response_due_at)
    clock.advance(hours=2)
    await reply(client, world, t["ticket_id"])
    await settle(svc)
    assert await sla.tick(due + timedelta(seconds=1)) == []
    assert await sla.sweep(due + timedelta(seconds=1)) == []
    assert not events(svc, "sla.breached")
    assert not events(svc, "sla.warning")
    assert not ticket(svc, t["ticket_id"]).first_response_breached


async def test_solving_cancels_everything(client, world, clock):
    svc = world.svc
    t = await contact(client, world, "s1", channel="chat")
    await settle(svc)
    clock.advance(seconds=5)
    await patch(client, world, t["ticket_id"], status="solved")
    await settle(svc)
    assert await sla_of(svc).tick(clock.now + timedelta(minutes=5)) == []
    assert not events(svc, "sla.breached")


async def test_pending_pauses_and_a_customer_reply_resumes(client, world, clock):
    svc = world.svc
    sla = sla_of(svc)
    start = clock.now
    t = await contact(client, world, "p1", channel="email", handle="pause@example.com")
    tid = t["ticket_id"]
    await settle(svc)
    clock.advance(hours=1)
    await patch(client, world, tid, status="pending")
    await settle(svc)
    (paused,) = events(svc, "sla.paused", tid)
    assert paused.ticket_id == tid
    assert ticket(svc, tid).first_response_due_at is None
    assert await sla.tick(start + timedelta(days=2)) == []  # no timer while paused
    assert await sla.sweep(start + timedelta(days=2)) == []

    clock.advance(hours=4)  # the customer writes again: ingest moves the ticket back to open
    await contact(client, world, "p2", channel="email", handle="pause@example.com")
    await settle(svc)
    assert ticket(svc, tid).status == "open"
    assert len(events(svc, "sla.resumed", tid)) == 1
    due = utc(ticket(svc, tid).first_response_due_at)
    assert due == start + timedelta(days=1, hours=4)  # the 4 paused hours do not count
    breaches = [a for a in await sla.tick(due - MS) if a.get("previous_priority") is not None]
    assert breaches == []
    clock.now = due
    fired = await sla.tick(due)
    assert [(a["metric"], "previous_priority" in a) for a in fired] == [("first_response", True)]


async def test_pause_and_resume_by_status_change(client, world, clock):
    svc = world.svc
    start = clock.now
    t = await contact(client, world, "q1", channel="email")
    tid = t["ticket_id"]
    await settle(svc)
    clock.advance(minutes=30)
    await patch(client, world, tid, status="pending")
    clock.advance(minutes=90)
    await patch(client, world, tid, status="open")
    await settle(svc)
    assert utc(ticket(svc, tid).first_response_due_at) == start + timedelta(days=1, minutes=90)


async def test_restart_mid_countdown_fires_the_breach_once(client, world, clock):
    svc = world.svc
    t = await contact(client, world, "r1", channel="chat")
    tid = t["ticket_id"]
    await settle(svc)
    due = utc(ticket(svc, tid).answer_due_at)
    await sla_of(svc).stop()  # the process dies 10 s into the 20 s countdown
    clock.advance(seconds=10)

    restarted = SlaService(svc.db)
    await restarted.load()
    assert len(restarted.timers.engine) == 2  # warning and breach armed again
    (warning,) = await restarted.tick(due - MS)  # the 80 % warning (16 s)
    assert "previous_priority" not in warning
    clock.now = due
    (breach,) = await restarted.tick(due)
    assert breach["metric"] == "answer" and breach["previous_priority"] == 2
    assert len(events(svc, "sla.breached", tid)) == 1

    third = SlaService(svc.db)  # and after another restart: nothing fires twice
    await third.load()
    assert await third.tick(due + timedelta(minutes=1)) == []
    assert await third.sweep(due + timedelta(minutes=1)) == []
    assert len(events(svc, "sla.breached", tid)) == 1
    assert len(events(svc, "sla.warning", tid)) == 1


async def test_restart_after_the_deadline_fires_at_once(client, world, clock):
    svc = world.svc
    t = await contact(client, world, "r2", channel="chat")
    await settle(svc)
    await sla_of(svc).stop()
    clock.advance(minutes=5)  # down through the deadline
    restarted = SlaService(svc.db)
    await restarted.load()
    fired = await restarted.tick()
    assert [(a["metric"], "previous_priority" in a) for a in fired] == [("answer", True)]
    assert len(events(svc, "sla.breached", t["ticket_id"])) == 1
    assert not events(svc, "sla.warning", t["ticket_id"])  # overtaken by the breach


async def test_sweep_is_a_backstop_for_unannounced_breaches(client, world, clock):
    svc = world.svc
    t = await contact(client, world, "sw", channel="chat")
    await settle(svc)
    await sla_of(svc).stop()
    clock.advance(minutes=1)
    cold = SlaService(svc.db)  # never loaded: its engine is empty
    fired = await cold.sweep()
    assert [(a["ticket_id"], a["metric"]) for a in fired] == [(t["ticket_id"], "answer")]
    assert await cold.sweep() == []


async def test_queue_change_rematches_the_policy(client, world, clock):
    from contact_center.db import Actor
    from tickets.actions import admin

    svc = world.svc
    fast = svc.db.write_sync(admin.create_sla_policy, Actor("cli"),
                             {"name": "fast", "first_response_seconds": 3600})  # fmt: skip
    svc.db.write_sync(admin.create_queue, Actor("cli"),
                      {"name": "vip", "team_id": world.teams["red"],
                       "sla_policy_id": fast["id"]})  # fmt: skip
    t = await contact(client, world, "m1", channel="email")
    await settle(svc)
    vip = int(sql_one(svc, "SELECT id FROM queue WHERE name = 'vip'"))
    await patch(client, world, t["ticket_id"], queue_id=vip)
    await settle(svc)
    row = ticket(svc, t["ticket_id"])
    assert row.sla_policy_id == fast["id"]
    assert utc(row.first_response_due_at) == clock.now + timedelta(hours=1)


def sql_one(svc, statement):
    from tests.conftest import sql

    return sql(svc.db, statement)[0][0]


async def test_opening_or_solving_a_running_ticket_needs_no_re_read(
    client, world, clock, monkeypatch
):
    from contact_center.sla_data import load_tickets

    svc = world.svc
    sla = sla_of(svc)
    start = clock.now
    opened = (await contact(client, world, "o1", channel="email"))["ticket_id"]
    solved = (await contact(client, world, "o2", channel="email", handle="o2@example.com"))[
        "ticket_id"
    ]
    await settle(svc)
    reads = reads_of(monkeypatch, sla.timers.db, load_tickets)
    clock.advance(minutes=10)
    await patch(client, world, opened, status="open")  # new -> open: deadlines stay
    await patch(client, world, solved, status="solved")  # ended: every timer goes
    await settle(svc)
    assert reads == []
    assert not sla.timers.armed(solved)
    due = start + timedelta(days=1)
    assert utc(ticket(svc, opened).first_response_due_at) == due
    early = await sla.tick(due - MS)  # the 80 % warning only, for the opened one
    assert [(a["ticket_id"], "previous_priority" in a) for a in early] == [(opened, False)]
    clock.now = due
    fired = await sla.tick(due)
    assert [(a["ticket_id"], a["metric"], "previous_priority" in a) for a in fired] == [
        (opened, "first_response", True)
    ]
    await settle(svc)
    reads.clear()  # (the breach raised the priority: a re-match, which re-reads)
    await patch(client, world, opened, status="pending")  # a pause still re-reads
    await settle(svc)
    assert reads == [([opened],)]
