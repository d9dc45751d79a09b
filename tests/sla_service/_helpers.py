"""Helpers for the SLA service tests (not a test module)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from contact_center.keys import Services
from contact_center.sla_service import SlaService
from tests.conftest import World, applied, inbound, sql

MS = timedelta(milliseconds=1)


def sla_of(svc: Services) -> SlaService:
    """The app's SLA service."""
    assert svc.sla is not None
    return svc.sla


async def settle(svc: Services, service: SlaService | None = None) -> None:
    """Wait until the SLA service has handled every committed event (no sleeping)."""
    await applied(svc.db, service or sla_of(svc), timeout=10)


async def contact(
    client: Any, world: World, ext: str, *, channel: str = "chat", queue: str = "general",
    handle: str | None = None, **kw: Any,
) -> dict[str, Any]:  # fmt: skip
    """Ingest one contact as admin; the API's answer (ticket_id, ...)."""
    default = f"{ext}@example.com" if channel == "email" else f"visitor-{ext}"
    body = inbound(ext, handle=handle or default, channel=channel, queue=queue, **kw)
    resp = await client.post("/api/v1/inbound", json=body, headers=world.auth("admin"))
    assert resp.status == 201, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def patch(
    client: Any, world: World, ticket_id: int, who: str = "admin", **changes: Any
) -> None:
    """Change a ticket through the API (must succeed)."""
    resp = await client.patch(f"/api/v1/tickets/{ticket_id}", json=changes, headers=world.auth(who))
    assert resp.status == 200, await resp.text()


async def reply(client: Any, world: World, ticket_id: int, who: str = "agent") -> None:
    """A public reply (the first one is the first response)."""
    resp = await client.post(f"/api/v1/tickets/{ticket_id}/replies", json={"body": "hello"},
                             headers=world.auth(who))  # fmt: skip
    assert resp.status == 201, await resp.text()


def ticket(svc: Services, ticket_id: int) -> Any:
    """The ticket row."""
    return sql(svc.db, "SELECT * FROM ticket WHERE id = :id", id=ticket_id)[0]


def events(svc: Services, kind: str, ticket_id: int | None = None) -> list[Any]:
    """Event rows of a type (for one ticket)."""
    if ticket_id is None:
        return sql(svc.db, "SELECT * FROM event WHERE type = :t ORDER BY id", t=kind)
    return sql(svc.db, "SELECT * FROM event WHERE type = :t AND ticket_id = :id ORDER BY id",
               t=kind, id=ticket_id)  # fmt: skip


def utc(row_value: Any) -> datetime:
    """A timestamp column as an aware UTC datetime (SQLite returns naive strings/values)."""
    from datetime import UTC

    value = row_value if isinstance(row_value, datetime) else datetime.fromisoformat(row_value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
