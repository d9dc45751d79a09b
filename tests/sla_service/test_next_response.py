"""The next-response promise: armed by a customer message after an agent reply, disarmed by the
next reply, in business hours, with warnings, breaches, pauses, restarts and the sweep."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import sqlalchemy as sa

from contact_center.db import Actor, UnitOfWork
from contact_center.sla_service import SlaService
from sla.policy import Metric
from tests.conftest import Clock, World
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
from tickets.actions import admin
from tickets.models import BusinessCalendar

FRIDAY_1600_BERLIN = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)  # CET = UTC+1
HANDLE = "nr@example.com"


@pytest.fixture
def clock() -> Clock:
    return Clock(FRIDAY_1600_BERLIN)


def _p(event: Any) -> dict[str, Any]:
    """An event row's payload (SQLite hands back the JSON text)."""
    raw = event.payload
    return dict(json.loads(raw) if isinstance(raw, str) else raw)


def _office(uow: UnitOfWork) -> int:
    table = cast(sa.Table, cast(Any, BusinessCalendar).__table__)
    hours = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    stmt = sa.insert(table).values(name="berlin", timezone="Europe/Berlin", weekly_hours=hours,
                                   holidays=[]).returning(table.c.id)  # fmt: skip
    return int(uow.session.execute(stmt).scalar_one())


def _queue(world: World, name: str, *, business: bool, next_seconds: int = 2 * 3600) -> None:
    svc, cli = world.svc, Actor("cli")
    values: dict[str, Any] = {"name": f"{name}-policy", "first_response_seconds": 8 * 3600,
                              "next_response_seconds": next_seconds}  # fmt: skip
    if business:
        values["calendar_id"] = svc.db.write_sync(_office)
    policy = svc.db.write_sync(admin.create_sla_policy, cli, values)
    svc.db.write_sync(admin.create_queue, cli, {"name": name, "team_id": world.teams["red"],
                                                "sla_policy_id": policy["id"]})  # fmt: skip


async def _round(client, world, clock, queue: str, ext: str, reply_after: timedelta) -> int:
    """An email, an agent reply after ``reply_after``; the ticket id."""
    tid = (await contact(client, world, ext, channel="email", queue=queue, handle=HANDLE))[
        "ticket_id"
    ]
    await settle(world.svc)
    clock.advance(seconds=reply_after.total_seconds())
    await reply(client, world, tid, "admin")
    await settle(world.svc)
    return int(tid)


async def _asking(client, world, clock, ext: str) -> tuple[int, datetime]:
    """In the one-hour calendar-time queue: an email, a reply 5 min later and a customer
    message right after it; the ticket and when the customer asked."""
    _queue(world, "calendar", business=False, next_seconds=3600)
    tid = await _round(client, world, clock, "calendar", f"{ext}1", timedelta(minutes=5))
    asked = clock.now
    await contact(client, world, f"{ext}2", channel="email", queue="calendar", handle=HANDLE)
    await settle(world.svc)
    return tid, asked


async def test_customer_message_after_a_reply_is_due_in_business_hours(client, world, clock):
    svc = world.svc
    _queue(world, "office", business=True)
    tid = await _round(client, world, clock, "office", "n1", timedelta(minutes=10))
    assert ticket(svc, tid).awaiting_reply_since is None  # the first message had its own promise
    assert ticket(svc, tid).next_response_due_at is None

    clock.now = datetime(2026, 3, 6, 15, 30, tzinfo=UTC)  # Friday 16:30 local
    await contact(client, world, "n2", channel="email", queue="office", handle=HANDLE)
    clock.advance(minutes=5)  # a second message before any reply keeps the first one's time
    await contact(client, world, "n3", channel="email", queue="office", handle=HANDLE)
    await settle(svc)
    row = ticket(svc, tid)
    assert utc(row.awaiting_reply_since) == datetime(2026, 3, 6, 15, 30, tzinfo=UTC)
    assert len(events(svc, "ticket.awaiting_reply", tid)) == 1
    # 2 business hours: 30 min on Friday (until 17:00) + 90 min on Monday from 09:00 = 10:30 CET
    due = datetime(2026, 3, 9, 9, 30, tzinfo=UTC)
    assert utc(row.next_response_due_at) == due
    # warning at 80 % = 96 min: 30 min Friday + 66 min Monday = 10:06 CET
    warn = datetime(2026, 3, 9, 9, 6, tzinfo=UTC)

    sla = sla_of(svc)
    assert await sla.tick(datetime(2026, 3, 8, 20, 0, tzinfo=UTC)) == []  # the weekend
    assert await sla.tick(warn - MS) == []
    clock.now = warn
    await sla.tick(warn)
    (warning,) = events(svc, "sla.warning", tid)
    assert _p(warning)["metric"] == "next_response"
    assert _p(warning)["remaining_seconds"] == 24 * 60
    assert await sla.tick(due - MS) == []
    clock.now = due
    await sla.tick(due)
    (breach,) = events(svc, "sla.breached", tid)
    assert _p(breach)["metric"] == "next_response" and _p(breach)["due"] == due.isoformat()
    row = ticket(svc, tid)
    assert row.next_response_breached and row.priority == 3
    assert await sla.sweep(due + timedelta(minutes=1)) == []  # once

    # the agent answers: the round ends; the customer's next message starts a fresh round
    clock.advance(minutes=30)
    await reply(client, world, tid, "admin")
    await settle(svc)
    row = ticket(svc, tid)
    assert row.awaiting_reply_since is None and row.next_response_due_at is None
    assert row.next_response_breached  # the last round's outcome stays visible
    clock.advance(minutes=10)  # Monday 11:10 CET
    await contact(client, world, "n4", channel="email", queue="office", handle=HANDLE)
    await settle(svc)
    row = ticket(svc, tid)
    assert not row.next_response_breached
    assert utc(row.next_response_due_at) == datetime(2026, 3, 9, 12, 10, tzinfo=UTC)


async def test_the_next_reply_disarms_the_timers(client, world, clock):
    svc = world.svc
    tid, asked = await _asking(client, world, clock, "d")
    assert utc(ticket(svc, tid).next_response_due_at) == asked + timedelta(hours=1)
    clock.advance(minutes=40)
    await reply(client, world, tid, "admin")
    await settle(svc)
    sla = sla_of(svc)
    assert await sla.tick(asked + timedelta(hours=2)) == []
    assert await sla.sweep(asked + timedelta(hours=2)) == []
    assert not events(svc, "sla.warning", tid) and not events(svc, "sla.breached", tid)


async def test_pending_pauses_the_next_response_clock(client, world, clock):
    svc = world.svc
    tid, asked = await _asking(client, world, clock, "p")
    clock.advance(minutes=10)
    await patch(client, world, tid, status="pending")  # e.g. waiting on a third party
    await settle(svc)
    (paused,) = events(svc, "sla.paused", tid)
    assert _p(paused)["metrics"] == ["next_response"]
    assert ticket(svc, tid).next_response_due_at is None
    clock.advance(minutes=30)
    await patch(client, world, tid, status="open")
    await settle(svc)
    due = asked + timedelta(hours=1, minutes=30)  # the 30 paused minutes do not count
    assert utc(ticket(svc, tid).next_response_due_at) == due
    sla = sla_of(svc)
    assert [a for a in await sla.tick(due - MS) if "previous_priority" in a] == []
    clock.now = due
    await sla.tick(due)
    assert [_p(e)["metric"] for e in events(svc, "sla.breached", tid)] == ["next_response"]


async def test_restart_mid_round_and_a_round_started_while_down(client, world, clock):
    svc = world.svc
    tid, asked = await _asking(client, world, clock, "r")
    due = asked + timedelta(hours=1)
    await sla_of(svc).stop()  # the process dies half-way through the hour
    clock.advance(minutes=30)

    restarted = SlaService(svc.db)
    await restarted.load()
    assert restarted.timers.due[(tid, Metric.NEXT_RESPONSE)] == due
    await restarted.tick(due - MS)
    assert [_p(e)["metric"] for e in events(svc, "sla.warning", tid)] == ["next_response"]
    clock.now = due
    (breach,) = await restarted.tick(due)
    assert breach["metric"] == "next_response"

    # while no service runs: the agent replies, the customer writes again, the hour passes
    clock.advance(minutes=5)
    await reply(client, world, tid, "admin")
    clock.advance(minutes=5)
    again = clock.now
    await contact(client, world, "r3", channel="email", queue="calendar", handle=HANDLE)
    assert ticket(svc, tid).next_response_due_at is None  # only a service computes it
    clock.advance(hours=2)
    cold = SlaService(svc.db)
    await cold.load()  # stores the round's deadline, and the overdue breach fires at once
    assert utc(ticket(svc, tid).next_response_due_at) == again + timedelta(hours=1)
    fired = await cold.tick()
    assert [(a["ticket_id"], a["metric"]) for a in fired] == [(tid, "next_response")]
    assert len(events(svc, "sla.breached", tid)) == 2
