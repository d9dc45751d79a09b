"""A business-hours policy: deadlines from the pure core's calendar, stored and armed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
import sqlalchemy as sa

from contact_center.db import Actor, UnitOfWork
from tests.conftest import Clock
from tests.sla_service._helpers import MS, contact, events, settle, sla_of, ticket, utc
from tickets.actions import admin
from tickets.models import BusinessCalendar

FRIDAY_1730_BERLIN = datetime(2026, 3, 6, 16, 30, tzinfo=UTC)  # CET = UTC+1


@pytest.fixture
def clock() -> Clock:
    return Clock(FRIDAY_1730_BERLIN)


def _office(uow: UnitOfWork) -> int:
    table = cast(sa.Table, cast(Any, BusinessCalendar).__table__)
    hours = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    values = {"name": "berlin-office", "timezone": "Europe/Berlin", "weekly_hours": hours,
              "holidays": ["2026-04-03"]}  # fmt: skip
    stmt = sa.insert(table).values(**values).returning(table.c.id)
    return int(uow.session.execute(stmt).scalar_one())


async def test_email_on_friday_evening_is_due_monday_at_closing(client, world, clock):
    svc = world.svc
    cli = Actor("cli")
    calendar_id = svc.db.write_sync(_office)
    policy = svc.db.write_sync(admin.create_sla_policy, cli,
                               {"name": "one-business-day", "first_response_seconds": 8 * 3600,
                                "calendar_id": calendar_id})  # fmt: skip
    svc.db.write_sync(admin.create_queue, cli, {"name": "office", "team_id": world.teams["red"],
                                                "sla_policy_id": policy["id"]})  # fmt: skip
    t = await contact(client, world, "fri", channel="email", queue="office")
    await settle(svc)
    # closed at 17:30 Friday: the 8 business hours run Monday 09:00-17:00 (CET = UTC+1)
    due = datetime(2026, 3, 9, 16, 0, tzinfo=UTC)
    assert utc(ticket(svc, t["ticket_id"]).first_response_due_at) == due
    (stored,) = events(svc, "sla.deadlines", t["ticket_id"])  # the calendar-time guess corrected
    assert stored.ticket_id == t["ticket_id"]

    sla = sla_of(svc)
    warn = datetime(2026, 3, 9, 14, 24, tzinfo=UTC)  # 80 % = 6.4 business hours: 15:24 local
    assert await sla.tick(datetime(2026, 3, 8, 23, 0, tzinfo=UTC)) == []  # the weekend
    assert await sla.tick(warn - MS) == []
    clock.now = warn
    (warning,) = await sla.tick(warn)
    assert warning["metric"] == "first_response" and warning["due"] == due.isoformat()
    assert await sla.tick(due - MS) == []
    clock.now = due
    (breach,) = await sla.tick(due)
    assert breach["metric"] == "first_response"
    assert ticket(svc, t["ticket_id"]).first_response_breached
