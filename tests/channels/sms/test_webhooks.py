"""The Messaging webhooks on the real app (SQLite and PostgreSQL), signed exactly as Twilio signs
them, with Twilio's REST API played by the local stub."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from channels.sms.client import TwilioRest
from channels.sms.config import TwilioConfig
from contact_center.app import create_app
from contact_center.errors import ChannelError, ChannelUnavailable
from contact_center.settings import Secret
from tests.channels.twilio_fixtures import OUR_NUMBER, PUBLIC, WHATSAPP_NUMBER, sms_params
from tests.conftest import count, sql
from tests.twilio_stub import new_sid

SMS = "/webhooks/twilio/sms"
STATUS = "/webhooks/twilio/status"


async def _reply(desk: Any, world: Any, ticket_id: int, body: str) -> int:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"http://127.0.0.1:{desk.port}/api/v1/tickets/{ticket_id}/replies",
                               json={"body": body}, headers=world.auth("admin"))  # fmt: skip
        assert resp.status == 201, await resp.text()
        return int((await resp.json())["message_id"])


def _message(db: Any, external_id: str) -> Any:
    rows = sql(db, "SELECT id, ticket_id, channel, body_text FROM message WHERE external_id = :e",
               e=external_id)  # fmt: skip
    assert len(rows) == 1, rows
    return rows[0]


def _payloads(db: Any, kind: str) -> list[dict[str, Any]]:
    rows = sql(db, "SELECT payload FROM event WHERE type = :k ORDER BY id", k=kind)
    return [json.loads(r[0]) if isinstance(r[0], str) else r[0] for r in rows]


def _delivery(db: Any, message_id: int) -> tuple[str, str | None, str | None]:
    row = sql(db, "SELECT delivery_status, delivery_error, external_id FROM message WHERE id = :m",
              m=message_id)[0]  # fmt: skip
    return row[0], row[1], row[2]


async def test_signature_matrix(hooks, services):
    """Only the genuinely signed requests get in; the others are 403 and write nothing."""
    db = services.db
    before = count(db, "message")
    ok = sms_params("valid")
    assert (await hooks.post(SMS, ok))[0] == 200
    assert count(db, "message", "external_id = :e", e=ok["MessageSid"]) == 1

    def fresh(body: str) -> dict[str, str]:
        return sms_params(body)

    rejected: list[tuple[str, int, dict[str, str]]] = []
    p = fresh("altered")
    sig = hooks.signature(PUBLIC + SMS, p)
    rejected.append(("altered parameter", (await hooks.post(SMS, {**p, "Body": "altered!"},
                                                           signature=sig))[0], p))  # fmt: skip
    p = fresh("extra")
    sig = hooks.signature(PUBLIC + SMS, p)
    rejected.append(("extra parameter", (await hooks.post(SMS, {**p, "Injected": "1"},
                                                         signature=sig))[0], p))  # fmt: skip
    p = fresh("http")
    http_url = PUBLIC.replace("https://", "http://") + SMS
    rejected.append(("http URL signed", (await hooks.post(SMS, p, sign_url=http_url))[0], p))
    p = fresh("forwarded")
    spoof = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
             "Forwarded": "host=evil.example;proto=https"}  # fmt: skip
    status = (await hooks.post(SMS, p, sign_url="https://evil.example" + SMS, headers=spoof))[0]
    rejected.append(("spoofed forwarded host", status, p))
    p = fresh("no signature")
    rejected.append(("no signature", (await hooks.post(SMS, p, signature=""))[0], p))
    p = fresh("garbage")
    rejected.append(("garbage signature", (await hooks.post(SMS, p, signature="abc="))[0], p))
    p = fresh("query")
    rejected.append(("query added after signing",
                     (await hooks.post(SMS + "?x=1", p, sign_url=PUBLIC + SMS))[0], p))  # fmt: skip
    p = fresh("json bad hash")
    status = (await hooks.post_json(SMS, p, hash_of=b"{}"))[0]
    rejected.append(("JSON with a wrong bodySHA256", status, p))
    for what, status, params in rejected:
        assert status == 403, what
        assert count(db, "message", "external_id = :e", e=params["MessageSid"]) == 0, what
    assert count(db, "message") == before + 1
    assert count(db, "event", "type = 'message.created'") == 1

    # forwarded headers change nothing for a request signed for the public URL
    p = fresh("with forwarded headers")
    assert (await hooks.post(SMS, p, headers=spoof))[0] == 200
    # a JSON body whose SHA-256 is in the signed URL
    p = fresh("json")
    assert (await hooks.post_json(SMS, p))[0] == 200
    assert _message(db, p["MessageSid"]).body_text == "json"


async def test_a_bad_signature_answers_the_error_document(hooks):
    status, text = await hooks.post(SMS, sms_params("x"), signature="bm9wZQ==")
    assert status == 403 and '"code": "forbidden"' in text


async def test_concurrent_duplicates_store_one_message(hooks, services):
    """Twilio's retries (same MessageSid, new idempotency tokens) racing each other."""
    p = sms_params("only once")
    results = await asyncio.gather(*(
        hooks.post(SMS, p, headers={"I-Twilio-Idempotency-Token": f"tok-{i}"}) for i in range(12)
    ))  # fmt: skip
    assert [s for s, _ in results] == [200] * 12
    assert count(services.db, "message", "external_id = :e", e=p["MessageSid"]) == 1
    assert count(services.db, "ticket") == 1 and count(services.db, "customer") == 1
    assert count(services.db, "event", "type = 'message.created'") == 1


async def test_the_same_number_threads_and_whatsapp_is_its_own_channel(hooks, services):
    a, b = sms_params("first"), sms_params("second")
    w = sms_params("on whatsapp", sender="whatsapp:+14155550101", ProfileName="Ann")
    for p in (a, b, w):
        status, body = await hooks.post(SMS, p)
        assert status == 200 and body.endswith("<Response />"), body
    first, second = _message(services.db, a["MessageSid"]), _message(services.db, b["MessageSid"])
    assert first.ticket_id == second.ticket_id and first.channel == "sms"
    wa = _message(services.db, w["MessageSid"])
    assert wa.channel == "whatsapp" and wa.ticket_id != first.ticket_id
    assert sql(services.db, "SELECT name FROM customer c JOIN ticket t ON t.customer_id = c.id "
                            "WHERE t.id = :t", t=wa.ticket_id)[0][0] == "Ann"  # fmt: skip


async def test_mms_media_become_attachments_within_the_size_limit(hooks, services, stub):
    photo = b"\xff\xd8\xff\xe0" + b"jpeg" * 2000
    sid = new_sid("MM")
    small = stub.add_media(photo, "image/jpeg", message_sid=sid)
    huge = stub.add_media(b"x" * (services.settings.attachment_max_bytes + 1), "video/mp4",
                          message_sid=sid)  # fmt: skip
    gone = f"https://api.twilio.com/2010-04-01/Accounts/{stub.account_sid}/Messages/{sid}/Media/ME0"
    p = sms_params("see the photo", MessageSid=sid, NumMedia="3", MediaUrl0=small,
                   MediaContentType0="image/jpeg", MediaUrl1=huge, MediaContentType1="video/mp4",
                   MediaUrl2=gone, MediaContentType2="image/png")  # fmt: skip
    assert (await hooks.post(SMS, p))[0] == 200  # answered before anything was downloaded
    await services.jobs.drain()
    msg = _message(services.db, sid)
    rows = sql(services.db, "SELECT filename, content_type, size, sha256 FROM attachment "
                            "WHERE message_id = :m", m=msg.id)  # fmt: skip
    assert [(r[0], r[1], r[2]) for r in rows] == [("media-1.jpg", "image/jpeg", len(photo))]
    assert services.ingest_policy.blobs.get(rows[0][3]) == photo
    assert "media-2.mp4 (video/mp4) not stored: larger than" in msg.body_text
    assert "media-3.png (image/png) not stored: no longer at Twilio (404)" in msg.body_text
    (event,) = _payloads(services.db, "message.attachments")
    assert len(event["attachment_ids"]) == 1
    assert len(event["dropped"]) == 2
    # the same webhook again (a retry) downloads nothing more
    assert (await hooks.post(SMS, p))[0] == 200
    await services.jobs.drain()
    assert count(services.db, "attachment") == 1


async def test_sms_conversation_round_trip_through_the_stub(hooks, services, stub, desk, world):
    p = sms_params("Where is my order 1234?")
    assert (await hooks.post(SMS, p))[0] == 200
    ticket = _message(services.db, p["MessageSid"]).ticket_id
    mid = await _reply(desk, world, ticket, "It ships today.")
    await services.jobs.drain()
    (sent,) = stub.messages
    assert (sent["to"], sent["from"], sent["body"]) == ("+14155550101", OUR_NUMBER,
                                                        "It ships today.")  # fmt: skip
    assert sent["status_callback"] == f"{PUBLIC}/webhooks/twilio/status?m={mid}"
    assert _delivery(services.db, mid) == ("sent", None, sent["sid"])
    assert await hooks.status_of(sent, "delivered") == 204
    assert _delivery(services.db, mid)[0] == "delivered"
    # the customer answers: same ticket
    again = sms_params("Thanks!")
    assert (await hooks.post(SMS, again))[0] == 200
    assert _message(services.db, again["MessageSid"]).ticket_id == ticket
    # a WhatsApp reply goes to the whatsapp: address from our WhatsApp sender
    w = sms_params("hola", sender="whatsapp:+14155550199")
    assert (await hooks.post(SMS, w))[0] == 200
    await _reply(desk, world, _message(services.db, w["MessageSid"]).ticket_id, "Hi!")
    await services.jobs.drain()
    assert (stub.messages[1]["to"], stub.messages[1]["from"]) == ("whatsapp:+14155550199",
                                                                  WHATSAPP_NUMBER)  # fmt: skip


async def test_status_callbacks_out_of_order_never_leave_a_final_state(
    hooks, services, stub, desk, world
):
    p = sms_params("hello")
    await hooks.post(SMS, p)
    ticket = _message(services.db, p["MessageSid"]).ticket_id
    mid = await _reply(desk, world, ticket, "one")
    await services.jobs.drain()
    sent = stub.messages[-1]
    for status in ("delivered", "sent", "queued", "sending", "delivered", "failed"):
        assert await hooks.status_of(sent, status) == 204
    assert _delivery(services.db, mid)[0] == "delivered"
    moves = _payloads(services.db, "message.delivery")
    assert [m["status"] for m in moves] == ["sent", "delivered"]
    # a second reply: the carrier gives up after "sent"; a late "delivered" changes nothing
    mid2 = await _reply(desk, world, ticket, "two")
    await services.jobs.drain()
    sent2 = stub.messages[-1]
    assert await hooks.status_of(sent2, "sent") == 204
    assert await hooks.status_of(sent2, "undelivered", ErrorCode="30003") == 204
    assert await hooks.status_of(sent2, "delivered") == 204
    status, error, _ = _delivery(services.db, mid2)
    assert status == "failed" and error == "Twilio undelivered, error 30003"
    # without our ?m= the message is found by its MessageSid
    mid3 = await _reply(desk, world, ticket, "three")
    await services.jobs.drain()
    sent3 = stub.messages[-1]
    params = {"MessageSid": sent3["sid"], "MessageStatus": "delivered",
              "AccountSid": sent3["account_sid"]}  # fmt: skip
    assert (await hooks.post(STATUS, params))[0] == 204
    assert _delivery(services.db, mid3)[0] == "delivered"


async def test_stop_start_and_help(hooks, services, stub, desk, world):
    first = sms_params("I need help with my bill")
    await hooks.post(SMS, first)
    ticket = _message(services.db, first["MessageSid"]).ticket_id
    status, body = await hooks.post(SMS, sms_params("Stop"))
    assert status == 200 and "You are unsubscribed" in body
    assert sql(services.db, "SELECT undeliverable FROM customerhandle WHERE value = '+14155550101'"
               )[0][0] in (True, 1)  # fmt: skip
    mid = await _reply(desk, world, ticket, "Are you still there?")
    await services.jobs.drain()
    status_, error, _ = _delivery(services.db, mid)
    assert status_ == "failed" and "opted out" in (error or "") and stub.messages == []
    status, body = await hooks.post(SMS, sms_params("HELP"))
    assert "Reply to this number to reach our support team" in body
    status, body = await hooks.post(SMS, sms_params("START"))
    assert "subscribed again" in body
    mid = await _reply(desk, world, ticket, "Welcome back")
    await services.jobs.drain()
    assert _delivery(services.db, mid)[0] == "sent" and len(stub.messages) == 1
    # keywords are not contacts: one ticket, one inbound message
    assert count(services.db, "ticket") == 1
    assert count(services.db, "message", "direction = 'in'") == 1
    assert count(services.db, "auditlog", "action IN ('handle.opt_out', 'handle.opt_in')") == 2


async def test_a_number_twilio_knows_as_opted_out_fails_at_once(hooks, services, stub, desk, world):
    p = sms_params("hi", sender="+14155550142")
    await hooks.post(SMS, p)
    stub.opted_out.add("+14155550142")
    mid = await _reply(desk, world, _message(services.db, p["MessageSid"]).ticket_id, "hello?")
    await services.jobs.drain()
    status, error, _ = _delivery(services.db, mid)
    assert status == "failed" and "21610" in (error or "") and "opted out" in (error or "")
    assert [r.status for r in stub.requests] == [400]  # final: not retried


async def test_rest_errors_become_ours(settings, stub):
    config = TwilioConfig.from_settings(settings)
    assert config is not None
    rest = TwilioRest(config)
    kwargs = {"to": "+14155550101", "sender": OUR_NUMBER, "body": "x", "status_callback": PUBLIC}
    stub.fail_next.append((503, 20503, "Service unavailable"))
    with pytest.raises(ChannelUnavailable):
        await asyncio.to_thread(lambda: rest.send_message(**kwargs))
    stub.fail_next.append((400, 21211, "Invalid 'To' Phone Number"))
    with pytest.raises(ChannelError) as err:
        await asyncio.to_thread(lambda: rest.send_message(**kwargs))
    assert not err.value.retryable and "not a valid phone number" in str(err.value)
    bad = TwilioRest(replace(config, auth_token=Secret("wrong")))
    with pytest.raises(ChannelError) as err:
        await asyncio.to_thread(lambda: bad.send_message(**kwargs))
    assert err.value.code == "channel_auth_failed"
    gone = TwilioRest(replace(config, api_base_url="http://127.0.0.1:9"))
    with pytest.raises(ChannelUnavailable):
        await asyncio.to_thread(lambda: gone.send_message(**kwargs))


async def test_unconfigured_twilio_has_no_webhooks_and_half_a_setup_fails(
    aiohttp_client, settings, services
):
    off = replace(settings, twilio_account_sid="", twilio_auth_token=Secret(""))
    client = await aiohttp_client(create_app(off, services=services))
    resp = await client.post(SMS, data=sms_params("x"))
    assert resp.status == 404
    with pytest.raises(ValueError, match="CC_TWILIO_AUTH_TOKEN"):
        create_app(replace(settings, twilio_auth_token=Secret("")), services=services)
