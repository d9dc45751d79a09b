"""Wiring: ``create_app`` starts one poller per configured mailbox and stops it on cleanup."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from channels.email import EMAIL_POLLERS
from channels.email.config import EmailConfig
from contact_center.app import create_app
from contact_center.settings import Secret, Settings
from tests.channels.email.conftest import mail
from tests.channels.email.dovecot import PASSWORD


async def test_app_runs_the_poller_and_stops_it(aiohttp_client, settings, services, desk):
    box = desk.box
    mailboxes = [{"name": "support", "host": box.host, "port": box.port, "user": box.user,
                  "password": PASSWORD, "tls": "none", "queue": "billing",
                  "address": "support@example.test"}]  # fmt: skip
    configured = replace(settings, email_mailboxes=Secret(json.dumps(mailboxes)))
    app = create_app(configured, services=services)
    client = await aiohttp_client(app)
    (poller,) = client.app[EMAIL_POLLERS]
    await asyncio.wait_for(poller.caught_up.wait(), 10)
    poller.caught_up.clear()
    await desk.append(mail(subject="via the app"))
    await asyncio.wait_for(poller.caught_up.wait(), 10)
    (row,) = desk.rows("SELECT q.name FROM ticket t JOIN queue q ON q.id = t.queue_id")
    assert row[0] == "billing"
    await client.close()
    assert not poller.status.connected


def test_settings_from_the_environment():
    env = {
        "CC_EMAIL_MAILBOXES": json.dumps([
            {"host": "imap.example.com", "user": "help@example.com", "password": "pw",
             "queue": "general", "processed_action": "move", "move_to": "Done"},
        ]),
        "CC_SMTP_HOST": "smtp.example.com",
        "CC_SMTP_TLS": "tls",
        "CC_EMAIL_FROM": "Help <help@example.com>",
        "CC_EMAIL_AUTO_ACK": "true",
        "CC_EMAIL_AUTO_ACK_WINDOW_SECONDS": "3600",
    }  # fmt: skip
    config = EmailConfig.from_settings(Settings.from_env(env))
    (box,) = config.mailboxes
    assert (box.port, box.tls, box.folder, box.address) == (993, "ssl", "INBOX", "help@example.com")
    assert config.from_addr == "help@example.com" and config.from_name == "Help"
    assert config.domain == "example.com" and config.auto_ack
    assert "help@example.com" in config.own_addresses
    assert "pw" not in repr(Settings.from_env(env))


@pytest.mark.parametrize(
    ("mailboxes", "message"),
    [
        ("not json", "not JSON"),
        ('{"host": "x"}', "must be a JSON list"),
        ('[{"host": "x", "user": "u"}]', "'password' is required"),
        ('[{"host": "x", "user": "u", "password": "p", "tls": "starttls"}]', "STARTTLS"),
        ('[{"host": "x", "user": "u", "password": "p", "processed_action": "move"}]', "move_to"),
        ('[{"host": "x", "user": "u", "password": "p", "colour": "red"}]', "unknown keys colour"),
        ('[{"host": "x", "user": "u", "password": "p", "port": "imap"}]', "'port' must be"),
    ],
)
def test_bad_mailbox_settings_fail_at_startup(mailboxes, message):
    with pytest.raises(ValueError, match=message):
        EmailConfig.from_settings(Settings.from_env({"CC_EMAIL_MAILBOXES": mailboxes}))


def test_legacy_imap_settings_make_one_mailbox():
    env = {"CC_IMAP_HOST": "imap.example.com", "CC_IMAP_USER": "a@example.com",
           "CC_IMAP_PASSWORD": "pw"}  # fmt: skip
    (box,) = EmailConfig.from_settings(Settings.from_env(env)).mailboxes
    assert (box.host, box.user, box.address) == (
        "imap.example.com",
        "a@example.com",
        "a@example.com",
    )
