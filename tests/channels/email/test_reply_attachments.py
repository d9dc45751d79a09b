"""Files on agent replies, end to end: the REST API → blob store → delivery job → real SMTP.

A customer mail comes in through the real Dovecot; the agent answers through
``POST /api/v1/tickets/{id}/replies`` with base64 files; the job sends them to the aiosmtpd
sink. Bad files are refused with a JSON error before anything is stored.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from contact_center.app import create_app
from tests.channels.email.conftest import Desk, mail
from tickets.actions.messages import post_message
from tickets.contact import InboundAttachment
from tickets.domain import Role
from tickets.queries import Viewer

PDF = b"%PDF-1.4\n" + os.urandom(300_000) + b"\n%%EOF\n"  # binary, every byte value
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


def _file(name: str, data: bytes, content_type: str = "application/octet-stream") -> dict[str, str]:
    return {"filename": name, "content_type": content_type,
            "data_b64": base64.b64encode(data).decode()}  # fmt: skip


@pytest.fixture
async def api(aiohttp_client: Any, settings: Any, services: Any, desk: Desk) -> Any:
    """The real app on the desk's database, services and SMTP sink."""
    client = await aiohttp_client(create_app(settings, services=services))
    yield client
    await client.close()


async def _post(api: Any, desk: Desk, ticket: int, what: str, body: dict[str, Any]) -> Any:
    """POST JSON to a ticket's replies or notes as the agent; streamed, as big bodies should
    be (aiohttp warns otherwise)."""
    data = io.BytesIO(json.dumps(body).encode())
    headers = {**desk.world.auth("agent"), "Content-Type": "application/json"}
    return await api.post(f"/api/v1/tickets/{ticket}/{what}", data=data, headers=headers)


async def _email_ticket(desk: Desk) -> int:
    await desk.append(mail(frm="ann@example.com", subject="Invoice", msgid="<c1@example.com>"))
    await desk.drain()
    (ticket,) = desk.tickets()
    return ticket


def _stored_blobs(desk: Desk) -> list[Path]:
    root = desk.svc.ingest_policy.blobs.root
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_reply_with_files_reaches_the_customer_intact(api, desk):
    ticket = await _email_ticket(desk)
    files = [_file("发票 2026-03.pdf", PDF, "application/pdf"), _file("a.png", PNG, "image/png")]
    body = {"body": "The corrected invoice is attached.", "attachments": files}
    resp = await _post(api, desk, ticket, "replies", body)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert len(created["attachment_ids"]) == 2
    await desk.svc.jobs.drain()  # type: ignore[attr-defined]

    sent = desk.sent(-1)
    assert sent["To"] == "ann@example.com" and sent["In-Reply-To"] == "<c1@example.com>"
    assert "corrected invoice" in sent.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    got = [(a.get_filename(), a.get_content_type(), a.get_content())
           for a in sent.iter_attachments()]  # fmt: skip
    assert got == [("发票 2026-03.pdf", "application/pdf", PDF), ("a.png", "image/png", PNG)]

    detail = await (await api.get(f"/api/v1/tickets/{ticket}",
                                  headers=desk.world.auth("agent"))).json()  # fmt: skip
    reply = next(m for m in detail["messages"] if m["id"] == created["message_id"])
    assert reply["delivery_status"] == "sent"
    assert [(a["filename"], a["size"]) for a in reply["attachments"]] == [
        ("发票 2026-03.pdf", len(PDF)), ("a.png", len(PNG))]  # fmt: skip
    rows = desk.rows("SELECT sha256 FROM attachment WHERE message_id = :m ORDER BY id",
                     m=created["message_id"])  # fmt: skip
    assert [r[0] for r in rows] == [hashlib.sha256(d).hexdigest() for d in (PDF, PNG)]
    assert desk.svc.ingest_policy.blobs.get(rows[0][0]) == PDF


async def test_a_note_keeps_its_file_and_sends_nothing(api, desk):
    ticket = await _email_ticket(desk)
    before = len(desk.sink.received)
    body = {"body": "Original invoice", "attachments": [_file("a.pdf", PDF)]}
    resp = await _post(api, desk, ticket, "notes", body)
    assert resp.status == 201
    await desk.svc.jobs.drain()  # type: ignore[attr-defined]
    assert len(desk.sink.received) == before
    assert len((await resp.json())["attachment_ids"]) == 1


LIMIT = 10 * 1024 * 1024  # CC_ATTACHMENT_MAX_BYTES default


Files = Callable[[], list[dict[str, Any]]]
BAD: dict[str, tuple[Files, int, str, str]] = {
    "too-large": (lambda: [_file("big.bin", b"x" * (LIMIT + 1))], 413, "payload_too_large",
                  "attachments.0.data_b64"),
    "bad-base64": (lambda: [_file("ok.txt", b"ok"), {"filename": "b.bin",
                   "data_b64": "bm90 YmFzZTY0"}], 400, "invalid_request", "attachments.1.data_b64"),
    "bad-padding": (lambda: [{"filename": "b.bin", "data_b64": "abc"}], 400, "invalid_request",
                    "attachments.0.data_b64"),
    "too-many": (lambda: [_file(f"f{i}.txt", b"x") for i in range(21)], 400, "invalid_request",
                 "attachments"),
    "crlf-name": (lambda: [_file("a\r\nBcc: x@evil.example.txt", b"x")], 400, "invalid_request",
                  "attachments.0.filename"),
    "path-name": (lambda: [_file("../../etc/passwd", b"x")], 400, "invalid_request",
                  "attachments.0.filename"),
    "bad-type": (lambda: [_file("a.txt", b"x", "text/plain\r\nX: y")], 400, "invalid_request",
                 "attachments.0.content_type"),
    "unknown-field": (lambda: [{"filename": "a.txt", "data_b64": "eA==", "size": 1}], 400,
                      "invalid_request", "attachments.0.size"),
}  # fmt: skip


@pytest.mark.parametrize(("attachments", "status", "code", "field"), BAD.values(), ids=BAD.keys())
async def test_bad_files_are_refused_and_nothing_is_stored(
    api, desk, attachments, status, code, field
):
    ticket = await _email_ticket(desk)
    blobs_before = _stored_blobs(desk)
    messages_before = desk.rows("SELECT count(*) FROM message")[0][0]
    resp = await _post(
        api, desk, ticket, "replies", {"body": "See attached", "attachments": attachments()}
    )
    assert resp.status == status, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == code
    assert field in error["fields"], error
    assert desk.rows("SELECT count(*) FROM message")[0][0] == messages_before
    assert desk.rows("SELECT count(*) FROM attachment")[0][0] == 0
    assert _stored_blobs(desk) == blobs_before
    await desk.svc.jobs.drain()  # type: ignore[attr-defined]
    assert desk.sink.received == []


async def test_a_file_lost_from_the_store_fails_the_reply_clearly(desk):
    ticket = await _email_ticket(desk)
    viewer = Viewer(user_id=desk.world.users["admin"]["id"], role=Role.ADMIN)
    posted = await desk.svc.db.write(post_message, viewer, ticket, "Attached",
                                     files=[InboundAttachment("gone.pdf", "application/pdf", PDF)],
                                     policy=desk.svc.ingest_policy)  # fmt: skip
    desk.svc.ingest_policy.blobs.path_for(hashlib.sha256(PDF).hexdigest()).unlink()
    await desk.svc.jobs.enqueue("deliver_message", posted.message_id)
    await desk.svc.jobs.drain()  # type: ignore[attr-defined]
    ((status, error),) = desk.rows("SELECT delivery_status, delivery_error FROM message "
                                   "WHERE id = :i", i=posted.message_id)  # fmt: skip
    assert status == "failed" and "'gone.pdf'" in error and "missing" in error
    assert desk.sink.received == []


def _schema(doc: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = doc["components"]["schemas"][name]
    return schema


async def test_openapi_describes_reply_files(api):
    doc = await (await api.get("/api/v1/openapi.json")).json()
    body = _schema(doc, "ReplyBody")
    assert body["properties"]["attachments"]["maxItems"] == 20
    item = _schema(doc, "ReplyAttachment")
    assert set(item["properties"]) == {"filename", "content_type", "data_b64"}
    assert item["additionalProperties"] is False
