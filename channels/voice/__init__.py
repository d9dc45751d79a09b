"""The voice channel over Twilio Voice: a call queue that answers within the live promise.

``setup(app, settings)``, when Twilio is configured (``channels.sms`` checks the settings):
the ``/webhooks/twilio/voice*`` routes, the call-status handler of ``/webhooks/twilio/status``
and, as one ``cleanup_ctx``, the :class:`CallConnector` that puts calls through to the agents
the router assigns them to. Replies on voice tickets go out as SMS (``channels.sms``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from channels.sms.webhook import CALL_STATUS, install_channel
from channels.voice import handlers
from channels.voice.connector import CallConnector
from contact_center.keys import SERVICES
from contact_center.settings import Settings

__all__ = ["CALL_CONNECTOR", "CallConnector", "setup"]

CALL_CONNECTOR: web.AppKey[CallConnector] = web.AppKey("call_connector", CallConnector)


def setup(app: web.Application, settings: Settings) -> None:
    """Install the Voice webhooks and the call connector (nothing without Twilio)."""
    tw = install_channel(app, settings, handlers.routes)
    if tw is None:
        return
    app[CALL_STATUS] = handlers.call_status
    svc = app[SERVICES]
    connector = CallConnector(svc.db, tw.rest, tw.config)
    app[CALL_CONNECTOR] = connector

    async def connecting(app: web.Application) -> AsyncIterator[None]:
        svc.bus.subscribe(connector.on_event)
        try:
            yield
        finally:
            await connector.stop()

    app.cleanup_ctx.append(connecting)
