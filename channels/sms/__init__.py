"""The SMS and WhatsApp channel over Twilio Messaging, and the Twilio transport voice shares.

``setup(app, settings)`` adds ``/webhooks/twilio/sms`` and ``/webhooks/twilio/status`` when
``CC_TWILIO_ACCOUNT_SID`` / ``CC_TWILIO_AUTH_TOKEN`` are set (half a setup fails at startup);
``sms_sender(settings)`` gives ``channels.build_senders`` the REST sender for SMS, WhatsApp
and replies on voice tickets.
"""

from __future__ import annotations

from aiohttp import web

from channels.sms import handlers
from channels.sms.config import TwilioConfig
from channels.sms.sender import SmsSender
from channels.sms.webhook import TWILIO, TwilioChannel, install_channel
from contact_center.settings import Settings

__all__ = ["TWILIO", "TwilioChannel", "TwilioConfig", "setup", "sms_sender"]


def sms_sender(settings: Settings) -> SmsSender | None:
    """The Twilio REST sender, or None when Twilio is not configured."""
    config = TwilioConfig.from_settings(settings)
    return None if config is None else SmsSender(config)


def setup(app: web.Application, settings: Settings) -> None:
    """Install the Messaging webhooks (nothing when Twilio is not configured: 404)."""
    install_channel(app, settings, handlers.routes)
