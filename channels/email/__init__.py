"""The email channel: IMAP mailboxes in (one poller task each), SMTP out (the job's sender).

``setup(app, settings)`` adds the pollers as one ``cleanup_ctx`` when mailboxes are configured;
``email_sender(settings)`` gives ``channels.build_senders`` the SMTP sender when SMTP is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from channels.email.acks import AckCourier
from channels.email.config import EmailConfig
from channels.email.poller import MailboxPoller
from channels.email.sender import EmailSender
from channels.email.store import MailStore
from channels.email.threading import ThreadKeys
from contact_center.keys import SERVICES
from contact_center.settings import Settings

__all__ = ["EMAIL_POLLERS", "email_sender", "setup"]

EMAIL_POLLERS: web.AppKey[list[MailboxPoller]] = web.AppKey("email_pollers")
"""The running pollers (their ``status`` is what a health check reports)."""


def _keys(config: EmailConfig) -> ThreadKeys:
    return ThreadKeys(config.secret.reveal(), config.domain)


def email_sender(settings: Settings) -> EmailSender | None:
    """The SMTP sender, or None when ``CC_SMTP_HOST`` (or a From address) is missing."""
    config = EmailConfig.from_settings(settings)
    if config.smtp is None or not config.from_addr:
        return None
    return EmailSender(config, _keys(config))


def _pollers(config: EmailConfig) -> Callable[[web.Application], AsyncIterator[None]]:
    async def pollers(app: web.Application) -> AsyncIterator[None]:
        svc = app[SERVICES]
        keys = _keys(config)
        store = MailStore(config, keys, svc.ingest_policy)
        sender = EmailSender(config, keys) if config.smtp and config.from_addr else None

        async def enqueue(message_id: int) -> None:
            await svc.jobs.enqueue("deliver_message", message_id)

        couriers = [AckCourier(svc.db, sender, enqueue) for _ in config.mailboxes]
        running = [
            MailboxPoller(box, store, svc.db, acks=courier)
            for box, courier in zip(config.mailboxes, couriers, strict=True)
        ]
        tasks = [asyncio.create_task(p.run(), name=f"email:{p.box.name}") for p in running]
        app[EMAIL_POLLERS] = running
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for courier in couriers:
                await courier.close()

    return pollers


def setup(app: web.Application, settings: Settings) -> None:
    """Start one IMAP poller per configured mailbox with the app (nothing when none are)."""
    config = EmailConfig.from_settings(settings)
    if config.mailboxes:
        app.cleanup_ctx.append(_pollers(config))
