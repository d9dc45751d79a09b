"""Tickets: list, detail, replies, notes, changes."""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Literal
from urllib.parse import quote

import pydantic
from aiohttp import web

from contact_center.api.common import current_user, path_id, services
from contact_center.errors import NotFound, PayloadTooLarge, ValidationError
from contact_center.web import (
    ALL_STAFF,
    Registry,
    StrictModel,
    json_response,
    parse_body,
    parse_query,
)
from tickets import queries
from tickets.actions import messages as msg_actions
from tickets.actions import tickets as ticket_actions
from tickets.contact import InboundAttachment

__all__ = ["routes"]

routes = Registry()

Status = Literal["new", "open", "pending", "solved", "closed"]


class TicketQuery(StrictModel):
    """List filters and paging."""

    status: Status | list[Status] | None = None
    queue_id: int | None = None
    channel: Literal["email", "chat", "sms", "whatsapp", "voice", "api"] | None = None
    assignee_id: int | None = None
    unassigned: bool = False
    customer_id: int | None = None
    limit: int = pydantic.Field(default=50, ge=1, le=200)
    cursor: str | None = pydantic.Field(default=None, max_length=100)


class ReplyAttachment(StrictModel):
    """A file, base64-encoded (RFC 4648 standard alphabet with padding, no line breaks).

    Decoded, each file may have at most ``CC_ATTACHMENT_MAX_BYTES`` (10 MiB by default; 413
    above it); the whole request is capped by ``CC_REQUEST_MAX_BYTES``.
    """

    filename: str = pydantic.Field(
        min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f/\\]+$"
    )  # a name, not a path; no control characters (they could not go into a mail header)
    content_type: str = pydantic.Field(
        default="application/octet-stream",
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$",
    )
    data_b64: str


class ReplyBody(StrictModel):
    """A public reply or an internal note, with files (a reply sends them along)."""

    body: str = pydantic.Field(min_length=1, max_length=100_000)
    attachments: list[ReplyAttachment] = pydantic.Field(default=[], max_length=20)


class TicketChange(StrictModel):
    """Allowed changes; assignee_id null releases the ticket."""

    status: Status | None = None
    priority: int | None = pydantic.Field(default=None, ge=0, le=4)
    assignee_id: int | None = None
    queue_id: int | None = None


@routes.route("GET", "/api/v1/tickets", roles=ALL_STAFF, summary="List tickets in scope",
              tag="tickets", query=TicketQuery)  # fmt: skip
async def list_tickets(request: web.Request) -> web.StreamResponse:
    """Newest first; ``next_cursor`` continues."""
    q = parse_query(request, TicketQuery)
    status = (q.status,) if isinstance(q.status, str) else tuple(q.status or ())
    flt = queries.TicketFilter(
        status=status,
        queue_id=q.queue_id,
        channel=q.channel,
        assignee_id=q.assignee_id,
        unassigned=q.unassigned,
        customer_id=q.customer_id,
    )
    before = queries.decode_cursor(q.cursor) if q.cursor else None
    viewer = current_user(request).viewer
    items, last = await services(request).db.read(
        queries.list_tickets, viewer, flt, limit=q.limit, before=before
    )
    return json_response(
        {"items": items, "next_cursor": queries.encode_cursor(last) if last else None}
    )


@routes.route("GET", "/api/v1/tickets/{id}", roles=ALL_STAFF, summary="Ticket with messages",
              tag="tickets")  # fmt: skip
async def get_ticket(request: web.Request) -> web.StreamResponse:
    """One ticket in scope, with its messages and customer."""
    detail = await services(request).db.read(
        queries.ticket_detail, current_user(request).viewer, path_id(request)
    )
    return json_response(detail)


def _decode_files(items: list[ReplyAttachment], max_bytes: int) -> list[InboundAttachment]:
    """The decoded files; the size is checked before decoding (a base64 string's length tells)."""
    files = []
    for i, item in enumerate(items):
        field, text = f"attachments.{i}.data_b64", item.data_b64
        not_base64 = ValidationError("attachment is not base64", fields={field: "not base64"})
        if len(text) % 4:
            raise not_base64
        if len(text) // 4 * 3 - text[-2:].count("=") > max_bytes:
            raise PayloadTooLarge(
                f"attachment {item.filename!r} is larger than {max_bytes} bytes",
                fields={field: f"at most {max_bytes} bytes decoded"},
            )
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise not_base64 from None
        files.append(InboundAttachment(item.filename, item.content_type.lower(), data))
    return files


IDEMPOTENCY = {
    "Idempotency-Key": "1-128 printable ASCII characters: the same reply posted again with the "
    "same key (a retry after a lost answer) is stored once and answered with the stored "
    "message (`Idempotent-Replayed: true`); a different message with a key already used on "
    "the ticket is 409. Keys are the caller's own (per user and ticket)."
}


def _idempotency_key(request: web.Request) -> str | None:
    """The caller's ``Idempotency-Key``, namespaced by its user; None without one."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 128 or not all("!" <= c <= "~" for c in key):
        raise ValidationError(
            "Idempotency-Key must be 1-128 printable ASCII characters",
            fields={"Idempotency-Key": "invalid"},
        )
    return f"api-{current_user(request).id}:{key}"


async def _post(request: web.Request, *, internal: bool) -> web.StreamResponse:
    body = await parse_body(request, ReplyBody)
    client_key = _idempotency_key(request)
    svc = services(request)
    policy = svc.ingest_policy
    files = (
        await asyncio.to_thread(_decode_files, body.attachments, policy.attachment_max_bytes)
        if body.attachments
        else []
    )
    result = await svc.db.write(
        msg_actions.post_message,
        current_user(request).viewer,
        path_id(request),
        body.body,
        internal=internal,
        files=files,
        policy=policy,
        client_key=client_key,
    )
    if result.needs_delivery:
        await svc.jobs.enqueue("deliver_message", result.message_id)
    response = json_response(
        {"message_id": result.message_id, "ticket_id": result.ticket_id,
         "attachment_ids": list(result.attachment_ids)},
        status=201,
    )  # fmt: skip
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@routes.route("POST", "/api/v1/tickets/{id}/replies", roles=ALL_STAFF,
              summary="Reply to the customer on the ticket's channel", tag="tickets",
              body=ReplyBody, headers=IDEMPOTENCY)  # fmt: skip
async def reply(request: web.Request) -> web.StreamResponse:
    """Stores the reply (and its files) and queues its delivery job."""
    return await _post(request, internal=False)


@routes.route("POST", "/api/v1/tickets/{id}/notes", roles=ALL_STAFF,
              summary="Add an internal note (never sent)", tag="tickets",
              body=ReplyBody, headers=IDEMPOTENCY)  # fmt: skip
async def note(request: web.Request) -> web.StreamResponse:
    """Stores an internal note."""
    return await _post(request, internal=True)


@routes.route("PATCH", "/api/v1/tickets/{id}", roles=ALL_STAFF,
              summary="Change status, priority, assignee or queue", tag="tickets",
              body=TicketChange)  # fmt: skip
async def update(request: web.Request) -> web.StreamResponse:
    """Only the fields sent are changed."""
    body = await parse_body(request, TicketChange)
    changes = body.model_dump(exclude_unset=True)
    result = await services(request).db.write(
        ticket_actions.update_ticket, current_user(request).viewer, path_id(request), changes
    )
    return json_response(result)


@routes.route("GET", "/api/v1/tickets/{id}/attachments/{attachment_id}", roles=ALL_STAFF,
              summary="Download a file of a ticket's message", tag="tickets")  # fmt: skip
async def attachment(request: web.Request) -> web.StreamResponse:
    """Always a download (``Content-Disposition: attachment``, ``nosniff``): a customer's file
    never renders as a page of ours."""
    svc = services(request)
    found = await svc.db.read(queries.ticket_attachment, current_user(request).viewer,
                              path_id(request), path_id(request, "attachment_id"))  # fmt: skip
    try:
        data = await asyncio.to_thread(svc.ingest_policy.blobs.get, found["sha256"])
    except FileNotFoundError:
        raise NotFound("the file is missing from the attachment store") from None
    name = found["filename"]
    plain = "".join(c if (c.isascii() and c.isalnum()) or c in "._-" else "_" for c in name)
    plain = plain[:120] or "file"
    disposition = f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name)}"
    headers = {"Content-Type": "application/octet-stream", "Content-Disposition": disposition,
               "Cache-Control": "private, no-store"}  # fmt: skip
    return web.Response(body=data, headers=headers)
