"""SLA clock actions write audit rows: pausing and resuming a ticket's clock is the system's
doing, recorded beside its ``sla.paused`` / ``sla.resumed`` event in the same transaction."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from contact_center.db import Database
from tests.conftest import sql
from tests.sla_service._helpers import contact, events, patch, settle, ticket, utc


def _audit(db: Database, action: str, ticket_id: int) -> list[Any]:
    query = ("SELECT actor, actor_user_id, target_type, detail FROM auditlog "
             "WHERE action = :a AND target_id = :t ORDER BY id")  # fmt: skip
    return sql(db, query, a=action, t=ticket_id)


def _detail(row: Any) -> dict[str, Any]:
    raw = row.detail
    return dict(json.loads(raw) if isinstance(raw, str) else raw)


async def test_pause_and_resume_are_audited_as_the_system(client, world, clock):
    svc = world.svc
    start = clock.now
    t = await contact(client, world, "audit-p1", channel="email")
    tid = t["ticket_id"]
    await settle(svc)
    assert _audit(svc.db, "sla.pause", tid) == []

    clock.advance(hours=1)
    await patch(client, world, tid, status="pending")
    await settle(svc)
    (paused,) = events(svc, "sla.paused", tid)
    (row,) = _audit(svc.db, "sla.pause", tid)
    assert (row.actor, row.actor_user_id, row.target_type) == ("system", None, "ticket")
    assert _detail(row) == {"at": utc(paused.created_at).isoformat(),
                            "metrics": ["first_response"]}  # fmt: skip

    clock.advance(hours=2)
    await patch(client, world, tid, status="open")
    await settle(svc)
    assert len(events(svc, "sla.resumed", tid)) == 1
    (row,) = _audit(svc.db, "sla.resume", tid)
    assert (row.actor, row.actor_user_id, row.target_type) == ("system", None, "ticket")
    due = utc(ticket(svc, tid).first_response_due_at)
    assert due == start + timedelta(days=1, hours=2)  # the paused hours do not count
    detail = _detail(row)
    assert detail["at"] == clock.now.isoformat()
    assert detail["due"] == {"first_response_due_at": due.isoformat()}
