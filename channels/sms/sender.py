"""Outbound SMS and WhatsApp: the ``OutboundSender`` the ``deliver_message`` job calls.

Replies on voice tickets go out as SMS to the caller's number too. Each send asks Twilio to
report on the message at ``/webhooks/twilio/status?m=<message id>`` (signed like every
webhook), so a report finds its message even before the job has stored Twilio's SID.
"""

from __future__ import annotations

from channels.base import OutboundMessage, SendResult
from channels.sms.client import TwilioRest
from channels.sms.config import TwilioConfig
from contact_center.errors import ChannelError

__all__ = ["MAX_BODY", "SmsSender"]

MAX_BODY = 1600
"""Twilio's limit for one message body (it splits it into segments itself)."""


class SmsSender:
    """Sends replies through the Twilio REST API (synchronously: job threads, RQ workers)."""

    def __init__(self, config: TwilioConfig, rest: TwilioRest | None = None) -> None:
        self.config = config
        self.rest = rest or TwilioRest(config)

    def send(self, message: OutboundMessage) -> SendResult:
        """One message; Twilio's SID is the external id. Status ``sent`` = accepted by Twilio
        (its callbacks move it on to ``delivered`` or ``failed``)."""
        whatsapp = message.channel == "whatsapp"
        sender = self.config.whatsapp_from if whatsapp else self.config.sms_from
        if not sender:
            name = "CC_TWILIO_WHATSAPP_FROM" if whatsapp else "CC_TWILIO_SMS_FROM"
            raise ChannelError(f"no {message.channel} sender number: set {name}")
        if not message.to_handle:
            raise ChannelError("the customer has no phone number on this channel")
        body = message.body_text.strip()
        if not body:
            raise ChannelError("refusing to send an empty message")
        if len(body) > MAX_BODY:
            raise ChannelError(f"message longer than {MAX_BODY} characters (Twilio's limit)")
        to = f"whatsapp:{message.to_handle}" if whatsapp else message.to_handle
        callback = self.config.url(f"/webhooks/twilio/status?m={message.message_id}")
        sid = self.rest.send_message(to=to, sender=sender, body=body, status_callback=callback)
        return SendResult(external_id=sid, status="sent")
