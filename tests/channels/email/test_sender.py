"""Outbound email: MIME shape, threading headers, injection refusal, SMTP errors (real aiosmtpd)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from email import message_from_bytes, policy

import pytest

from channels import build_senders
from channels.base import OutboundMessage
from channels.email import email_sender
from channels.email.config import SmtpConfig
from channels.email.sender import EmailSender, build_message, reply_subject
from channels.email.threading import ThreadKeys
from contact_center.errors import ChannelError, ChannelUnavailable
from contact_center.jobs import JobContext
from contact_center.tasks import deliver_message
from tests.channels.email.conftest import mail
from tests.channels.email.dovecot import free_port
from tickets.actions.messages import post_message
from tickets.domain import Role
from tickets.queries import Viewer

KEYS = ThreadKeys("k", "example.test")


def out(**kw):
    base = {"message_id": 9, "ticket_id": 42, "channel": "email", "to_handle": "ann@example.com",
            "body_text": "Hi", "subject": "Printer broken", "in_reply_to": ("<c1@x>",)}  # fmt: skip
    return OutboundMessage(**{**base, **kw})


def test_plain_reply_headers():
    msg, msgid = build_message(out(), keys=KEYS, from_addr="support@example.test", from_name="Desk")
    assert msgid == KEYS.message_id(42, 9) == msg["Message-ID"]
    assert msg["Subject"] == "Re: [#42] Printer broken"
    assert msg["To"] == "ann@example.com"
    assert msg["From"] == "Desk <support@example.test>"
    assert msg["Reply-To"] == "support@example.test"
    assert (msg["In-Reply-To"], msg["References"]) == ("<c1@x>", "<c1@x>")
    assert msg.get_content_type() == "text/plain" and "Auto-Submitted" not in msg


def test_html_alternative_attachments_and_long_reference_chains():
    refs = tuple(f"<r{i}@x>" for i in range(30))
    msg, _ = build_message(
        out(body_html="<p>Hello</p>", in_reply_to=refs,
            attachments=(("报告.pdf", "application/pdf", b"%PDF-1.4"),)),
        keys=KEYS, from_addr="support@example.test",
    )  # fmt: skip
    assert msg.get_content_type() == "multipart/mixed"
    body = msg.get_body(("html",))
    assert body is not None and "<p>Hello</p>" in body.get_content()
    (att,) = list(msg.iter_attachments())
    assert att.get_filename() == "报告.pdf" and att.get_content() == b"%PDF-1.4"
    chain = msg["References"].split()
    assert len(chain) == 20 and chain[0] == "<r0@x>" and chain[-1] == "<r29@x>"
    assert msg["In-Reply-To"] == "<r29@x>"
    raw = msg.as_bytes()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


def test_acknowledgement_is_recognised_by_its_preassigned_message_id():
    ack_id = KEYS.message_id(42, 9, auto=True)
    msg, msgid = build_message(out(in_reply_to=("<c1@x>", ack_id)), keys=KEYS,
                               from_addr="support@example.test")  # fmt: skip
    assert msgid == ack_id
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["In-Reply-To"] == "<c1@x>"


@pytest.mark.parametrize(
    "bad",
    [
        {"subject": "Hi\r\nBcc: attacker@evil.example"},
        {"subject": "Hi\nBcc: attacker@evil.example"},
        {"subject": "Hi\x00there"},
        {"to_handle": "ann@example.com\r\nBcc: attacker@evil.example"},
        {"to_handle": "ann@example.com, attacker@evil.example"},
        {"in_reply_to": ("<a@x>\r\nBcc: attacker@evil.example",)},
        {"attachments": (("a\r\nb.txt", "text/plain", b"x"),)},
    ],
)
def test_header_injection_is_refused(bad):
    with pytest.raises(ChannelError) as err:
        build_message(out(**bad), keys=KEYS, from_addr="support@example.test")
    assert not err.value.retryable


def test_reply_subject_rules():
    assert reply_subject("Re: [#7] x", 7) == "Re: [#7] x"
    assert reply_subject("RE: x", 7) == "Re: [#7] x"
    assert reply_subject("回复：发票", 7) == "Re: [#7] 发票"
    assert reply_subject("", 7) == "Re: [#7] Ticket 7"


def _sender(settings, **kw):
    sender = email_sender(replace(settings, **kw))
    assert sender is not None
    return sender


async def test_send_through_real_smtp(settings, smtp_sink):
    sender = _sender(settings)
    result = await asyncio.to_thread(sender.send, out())
    ((mail_from, rcpts, raw),) = smtp_sink.received
    assert (mail_from, rcpts) == ("support@example.test", ["ann@example.com"])
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Message-ID"] == result.external_id
    assert result.status == "sent"
    assert "email" in build_senders(settings)


async def test_smtp_errors_are_classified(settings, smtp_sink):
    sender = _sender(settings)
    smtp_sink.handler.refuse = "451 4.3.0 try again later"
    with pytest.raises(ChannelUnavailable):
        await asyncio.to_thread(sender.send, out())
    smtp_sink.handler.refuse = "554 5.7.1 rejected"
    with pytest.raises(ChannelError) as err:
        await asyncio.to_thread(sender.send, out())
    assert not err.value.retryable
    nobody = _sender(settings, smtp_port=free_port())
    with pytest.raises(ChannelUnavailable):
        await asyncio.to_thread(nobody.send, out())


async def test_deliver_job_retries_then_records_sent_once(desk):
    await desk.append(mail(frm="ann@example.com", msgid="<c1@example.com>"))
    await desk.drain()
    (ticket,) = desk.tickets()
    viewer = Viewer(user_id=desk.world.users["admin"]["id"], role=Role.ADMIN)
    posted = await desk.svc.db.write(post_message, viewer, ticket, "On it")
    ctx = JobContext(db=desk.svc.db, settings=desk.svc.settings, blobs=desk.svc.ingest_policy.blobs,
                     senders=build_senders(desk.svc.settings), final_attempt=False)  # fmt: skip
    desk.sink.handler.refuse = "421 4.3.2 service not available"
    with pytest.raises(ChannelUnavailable):
        await asyncio.to_thread(deliver_message, ctx, posted.message_id)
    row = desk.rows("SELECT delivery_status, delivery_error FROM message WHERE id=:i",
                    i=posted.message_id)[0]  # fmt: skip
    assert row[0] == "queued" and "421" in row[1]
    desk.sink.handler.refuse = None
    assert await asyncio.to_thread(deliver_message, ctx, posted.message_id) == "sent"
    assert await asyncio.to_thread(deliver_message, ctx, posted.message_id) == "skipped"
    assert len(desk.sink.received) == 1
    status = desk.rows("SELECT delivery_status FROM message WHERE id=:i", i=posted.message_id)
    assert status[0][0] == "sent"


def test_sender_needs_smtp_and_a_from_address(settings):
    assert email_sender(replace(settings, smtp_host="")) is None
    config = email_sender(settings).config  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        EmailSender(replace(config, smtp=None), KEYS)
    assert isinstance(config.smtp, SmtpConfig) and config.smtp.tls == "none"
