"""SMTP over TLS against a real aiosmtpd: STARTTLS and implicit TLS, certificate checks.

The relay's certificate is self-signed, made per session with ``openssl req``; the sender
trusts it through ``CC_SMTP_CA_FILE``. Verification is on unless switched off.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from email import message_from_bytes, policy

import pytest
from aiosmtpd.smtp import SMTP

from channels.base import OutboundMessage
from channels.email import email_sender
from channels.email.config import EmailConfig
from channels.email.sender import EmailSender
from contact_center.errors import ChannelError
from contact_center.jobs import JobContext
from contact_center.settings import Settings
from contact_center.tasks import deliver_message
from tests.channels.email.conftest import SmtpSink, TlsCert, mail, running_sink
from tests.smtp_server import resource_warnings
from tickets.actions.messages import post_message
from tickets.domain import Role
from tickets.queries import Viewer

REPLY = OutboundMessage(message_id=9, ticket_id=42, channel="email", to_handle="ann@example.com",
                        body_text="Over TLS", subject="Printer broken")  # fmt: skip


def _sender(settings: Settings, sink: SmtpSink, **kw: object) -> EmailSender:
    sender = email_sender(replace(settings, smtp_port=sink.port, **kw))
    assert sender is not None
    return sender


async def _send(sender: EmailSender) -> str | None:
    result = await asyncio.to_thread(sender.send, REPLY)
    return result.external_id


@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_mail_is_delivered_over_tls(settings, tls_cert: TlsCert, mode):
    context = tls_cert.server_context()
    server = (
        {"tls_context": context, "require_starttls": True}  # MAIL before STARTTLS: refused
        if mode == "starttls"
        else {"ssl_context": context}
    )
    with running_sink(**server) as sink:
        sender = _sender(settings, sink, smtp_tls=mode, smtp_ca_file=str(tls_cert.cert))
        assert sender.smtp.verify and sender.smtp.tls == mode
        message_id = await _send(sender)
    assert sink.handler.over_tls == [True]
    ((mail_from, rcpts, raw),) = sink.received
    assert (mail_from, rcpts) == ("support@example.test", ["ann@example.com"])
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Message-ID"] == message_id
    assert "Over TLS" in parsed.get_content()


class _QuitWithoutHangingUp(SMTP):
    """A relay that answers QUIT, then neither reads nor closes: the sender's TLS close gets no
    answer, so the sender must end the connection itself."""

    async def smtp_QUIT(self, arg: str) -> None:
        await self.push("221 Bye")
        assert self.transport is not None
        self.transport.pause_reading()


@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_the_sender_closes_its_socket_even_if_the_relay_keeps_the_connection(
    settings, tls_cert: TlsCert, mode
):
    """Over TLS a close waits for the relay's TLS close; the sender's event loop (one per send)
    must not end with the socket still open (it did: a rare unclosed-transport warning)."""
    context = tls_cert.server_context()
    server = {"tls_context": context} if mode == "starttls" else {"ssl_context": context}
    with running_sink(smtp_class=_QuitWithoutHangingUp, **server) as sink:
        sender = _sender(settings, sink, smtp_tls=mode, smtp_ca_file=str(tls_cert.cert))
        with resource_warnings() as left:
            await _send(sender)
        assert left == []
        assert len(sink.received) == 1


@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_an_untrusted_certificate_is_refused_unless_verification_is_off(
    settings, tls_cert: TlsCert, mode
):
    context = tls_cert.server_context()
    server = {"tls_context": context} if mode == "starttls" else {"ssl_context": context}
    with running_sink(**server) as sink:
        with pytest.raises(ChannelError) as err:  # verification is on by default
            await _send(_sender(settings, sink, smtp_tls=mode))
        assert "certificate not trusted" in err.value.message
        assert "CC_SMTP_CA_FILE" in err.value.message
        assert not err.value.retryable  # a setting to fix: retrying would not help
        assert sink.received == []
        await _send(_sender(settings, sink, smtp_tls=mode, smtp_tls_verify=False))
    assert sink.handler.over_tls == [True]


async def test_a_relay_without_starttls_is_refused_when_it_is_required(settings, smtp_sink):
    sender = _sender(settings, smtp_sink, smtp_tls="starttls")
    with pytest.raises(ChannelError) as err:
        await _send(sender)
    assert "does not offer STARTTLS" in err.value.message
    assert "plaintext" in err.value.message
    assert not err.value.retryable
    assert smtp_sink.received == []  # nothing went out in the clear


async def test_the_reply_job_records_the_refusal_without_retrying(desk, settings):
    await desk.append(mail(frm="ann@example.com"))
    await desk.drain()
    (ticket,) = desk.tickets()
    viewer = Viewer(user_id=desk.world.users["admin"]["id"], role=Role.ADMIN)
    posted = await desk.svc.db.write(post_message, viewer, ticket, "Hello")
    starttls = replace(settings, smtp_tls="starttls")
    ctx = JobContext(db=desk.svc.db, settings=starttls, blobs=desk.svc.ingest_policy.blobs,
                     senders={"email": email_sender(starttls)}, final_attempt=False)  # fmt: skip
    assert await asyncio.to_thread(deliver_message, ctx, posted.message_id) == "failed"
    ((status, error),) = desk.rows(
        "SELECT delivery_status, delivery_error FROM message WHERE id = :i", i=posted.message_id
    )
    assert status == "failed" and "does not offer STARTTLS" in error
    assert desk.sink.received == []


def test_tls_settings_from_the_environment():
    env = {"CC_SMTP_HOST": "smtp.example.com", "CC_EMAIL_FROM": "help@example.com"}
    smtp = EmailConfig.from_settings(Settings.from_env(env)).smtp
    assert smtp is not None
    assert (smtp.tls, smtp.verify, smtp.ca_file) == ("starttls", True, "")  # safe defaults
    env |= {"CC_SMTP_TLS": "tls", "CC_SMTP_CA_FILE": "/etc/ssl/relay-ca.pem",
            "CC_SMTP_TLS_VERIFY": "false"}  # fmt: skip
    smtp = EmailConfig.from_settings(Settings.from_env(env)).smtp
    assert smtp is not None
    assert (smtp.tls, smtp.verify, smtp.ca_file) == ("tls", False, "/etc/ssl/relay-ca.pem")
