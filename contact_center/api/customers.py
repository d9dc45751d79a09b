"""Customers: the 360 view and merging."""

from __future__ import annotations

from aiohttp import web

from contact_center.api.common import actor, current_user, path_id, services
from contact_center.errors import NotFound
from contact_center.web import (
    ALL_STAFF,
    SUPERVISORS,
    Registry,
    StrictModel,
    json_response,
    parse_body,
)
from tickets import queries
from tickets.actions import customers as customer_actions

__all__ = ["routes"]

routes = Registry()


class MergeBody(StrictModel):
    """The duplicate record to fold into the one in the path."""

    merge_id: int


@routes.route("GET", "/api/v1/customers/{id}", roles=ALL_STAFF,
              summary="Customer 360: handles and every visible ticket across channels",
              tag="customers")  # fmt: skip
async def customer(request: web.Request) -> web.StreamResponse:
    """One customer with all their tickets and messages the caller may see."""
    view = await services(request).db.read(
        queries.customer_view, current_user(request).viewer, path_id(request)
    )
    return json_response(view)


@routes.route("POST", "/api/v1/customers/{id}/merge", roles=SUPERVISORS,
              summary="Merge another customer record into this one", tag="customers",
              body=MergeBody)  # fmt: skip
async def merge(request: web.Request) -> web.StreamResponse:
    """Moves handles, tickets and messages; both must be visible to the caller."""
    body = await parse_body(request, MergeBody)
    svc = services(request)
    viewer = current_user(request).viewer
    keep = path_id(request)
    for cid in (keep, body.merge_id):  # both records must be in the caller's scope
        try:
            await svc.db.read(queries.customer_view, viewer, cid)
        except NotFound:
            raise NotFound("no such customer") from None
    await svc.db.write(customer_actions.merge_customers, actor(request), keep, body.merge_id)
    view = await svc.db.read(queries.customer_view, viewer, keep)
    return json_response(view)
