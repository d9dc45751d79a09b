"""The generic API channel: ``POST /api/v1/inbound`` for integrations and tests."""

from __future__ import annotations

from aiohttp import web

from channels.api.parse import InboundBody, parse_inbound
from contact_center.api.common import actor, services
from contact_center.web import ALL_STAFF, Registry, json_response, parse_body
from tickets.actions import ingest

__all__ = ["routes"]

routes = Registry()


@routes.route("POST", "/api/v1/inbound", roles=ALL_STAFF,
              summary="Ingest a contact (idempotent by channel + external_id)",
              tag="channels", body=InboundBody)  # fmt: skip
async def inbound(request: web.Request) -> web.StreamResponse:
    """201 with the new message, or 200 with the original for a duplicate."""
    body = await parse_body(request, InboundBody)
    contact = parse_inbound(body)
    svc = services(request)
    result = await svc.db.write(ingest, contact, svc.ingest_policy, actor(request))
    svc.metrics.contacts.labels(
        contact.channel.value, "duplicate" if result.duplicate else "stored"
    ).inc()
    return json_response(
        {
            "ticket_id": result.ticket_id,
            "message_id": result.message_id,
            "customer_id": result.customer_id,
            "duplicate": result.duplicate,
            "created_ticket": result.created_ticket,
            "attachment_ids": result.attachment_ids,
        },
        status=200 if result.duplicate else 201,
    )
