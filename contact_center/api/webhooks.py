"""Webhook subscriptions and their delivery log (admins only)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

import pydantic
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy import Connection

from contact_center.api.common import actor, path_id, services
from contact_center.errors import NotFound
from contact_center.web import ADMIN, Registry, StrictModel, json_response, parse_body, parse_query
from contact_center.webhooks import outbox
from contact_center.webhooks.ssrf import TargetGuard, check_url

__all__ = ["routes"]

routes = Registry()

EventPattern = Annotated[str, pydantic.StringConstraints(pattern=r"^(\*|[a-z_]+\.(\*|[a-z_]+))$")]


class WebhookCreate(StrictModel):
    """A new subscription."""

    url: str = pydantic.Field(min_length=8, max_length=2000)
    event_types: list[EventPattern] = pydantic.Field(min_length=1, max_length=50)
    description: str = pydantic.Field(default="", max_length=500)
    allow_private: bool = False


class WebhookChange(StrictModel):
    """Changes to a subscription."""

    url: str | None = pydantic.Field(default=None, min_length=8, max_length=2000)
    event_types: list[EventPattern] | None = pydantic.Field(default=None, min_length=1)
    description: str | None = pydantic.Field(default=None, max_length=500)
    allow_private: bool | None = None
    active: bool | None = None


class DeliveryQuery(StrictModel):
    """Delivery log filters."""

    status: str | None = pydantic.Field(default=None, pattern=r"^[a-z]+$")
    limit: int = pydantic.Field(default=100, ge=1, le=500)


async def _check_target(guard: TargetGuard, url: str, allow_private: bool) -> None:
    _, host, port = check_url(url)
    await asyncio.to_thread(guard.check, host, port, allow_private=allow_private)


def _list(session: Connection) -> list[dict[str, Any]]:
    rows = session.execute(sa.select(outbox.SUB).order_by(outbox.SUB.c.id)).all()
    return [outbox.public(r) for r in rows]


def _deliveries(session: Connection, sid: int, q: DeliveryQuery) -> list[dict[str, Any]]:
    if session.execute(sa.select(outbox.SUB.c.id).where(outbox.SUB.c.id == sid)).first() is None:
        raise NotFound("no such webhook")
    stmt = sa.select(outbox.DELIVERY).where(outbox.DELIVERY.c.subscription_id == sid)
    if q.status:
        stmt = stmt.where(outbox.DELIVERY.c.status == q.status)
    out = []
    for r in session.execute(stmt.order_by(outbox.DELIVERY.c.id.desc()).limit(q.limit)):
        item = dict(r._mapping)
        out.append({k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in item.items()})
    return out


@routes.route("GET", "/api/v1/webhooks", roles=ADMIN, summary="List webhook subscriptions",
              tag="webhooks")  # fmt: skip
async def list_webhooks(request: web.Request) -> web.StreamResponse:
    """Subscriptions without secrets."""
    return json_response({"items": await services(request).db.read(_list)})


@routes.route("POST", "/api/v1/webhooks", roles=ADMIN, summary="Subscribe a URL to events",
              tag="webhooks", body=WebhookCreate)  # fmt: skip
async def create_webhook(request: web.Request) -> web.StreamResponse:
    """The URL must resolve to public addresses, or with ``allow_private`` to ones the operator
    allow-listed (``CC_WEBHOOK_ALLOW_CIDRS``); the secret shows once."""
    body = await parse_body(request, WebhookCreate)
    svc = services(request)
    await _check_target(svc.webhook_guard, body.url, body.allow_private)
    created = await svc.db.write(outbox.create_subscription, actor(request), body.model_dump())
    svc.webhooks.invalidate()
    return json_response(created, status=201)


@routes.route("PATCH", "/api/v1/webhooks/{id}", roles=ADMIN, summary="Change a subscription",
              tag="webhooks", body=WebhookChange)  # fmt: skip
async def update_webhook(request: web.Request) -> web.StreamResponse:
    """URL, event types, description, active, allow_private."""
    body = await parse_body(request, WebhookChange)
    changes = body.model_dump(exclude_unset=True)
    svc = services(request)
    if "url" in changes or "allow_private" in changes:
        current = {w["id"]: w for w in await svc.db.read(_list)}.get(path_id(request))
        if current is None:
            raise NotFound("no such webhook")
        await _check_target(svc.webhook_guard, changes.get("url", current["url"]),
                            changes.get("allow_private", current["allow_private"]))  # fmt: skip
    result = await svc.db.write(
        outbox.update_subscription, actor(request), path_id(request), changes
    )
    svc.webhooks.invalidate()
    return json_response(result)


@routes.route("DELETE", "/api/v1/webhooks/{id}", roles=ADMIN, summary="Delete a subscription",
              tag="webhooks")  # fmt: skip
async def delete_webhook(request: web.Request) -> web.StreamResponse:
    """Removes the subscription and its delivery log (audited)."""
    svc = services(request)
    result = await svc.db.write(
        outbox.update_subscription, actor(request), path_id(request), {"delete": True}
    )
    svc.webhooks.invalidate()
    return json_response(result)


@routes.route("POST", "/api/v1/webhooks/{id}/rotate-secret", roles=ADMIN,
              summary="New signing secret; the old one also signs for 24 h",
              tag="webhooks")  # fmt: skip
async def rotate(request: web.Request) -> web.StreamResponse:
    """Returns the new secret once."""
    result = await services(request).db.write(
        outbox.rotate_secret, actor(request), path_id(request)
    )
    return json_response(result)


@routes.route("GET", "/api/v1/webhooks/{id}/deliveries", roles=ADMIN,
              summary="Delivery log (status, attempts, truncated response)", tag="webhooks",
              query=DeliveryQuery)  # fmt: skip
async def deliveries(request: web.Request) -> web.StreamResponse:
    """Newest first."""
    q = parse_query(request, DeliveryQuery)
    items = await services(request).db.read(_deliveries, path_id(request), q)
    return json_response({"items": items})


@routes.route("POST", "/api/v1/webhooks/{id}/replay", roles=ADMIN,
              summary="Re-queue every dead-lettered delivery of a subscription",
              tag="webhooks")  # fmt: skip
async def replay_dead(request: web.Request) -> web.StreamResponse:
    """Dead rows go back to pending and are delivered again."""
    ids = await services(request).db.write(
        outbox.replay, actor(request), subscription_id=path_id(request)
    )
    return json_response({"replayed": ids})


@routes.route("POST", "/api/v1/webhook-deliveries/{id}/replay", roles=ADMIN,
              summary="Re-queue one delivery", tag="webhooks")  # fmt: skip
async def replay_one(request: web.Request) -> web.StreamResponse:
    """Any delivery, delivered or dead, is sent again (same webhook-id: receivers dedupe)."""
    ids = await services(request).db.write(
        outbox.replay, actor(request), delivery_id=path_id(request)
    )
    return json_response({"replayed": ids})
