"""The Messaging webhooks: inbound messages and status callbacks (messages and calls)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiohttp import web

from channels.sms.client import message_twiml
from channels.sms.config import TwilioConfig
from channels.sms.parse import (
    KEYWORD_REPLIES,
    InboundSms,
    Keyword,
    Media,
    parse_message_status,
    parse_sms,
)
from channels.sms.store import set_opt_out
from channels.sms.webhook import CALL_STATUS, TWILIO, query_int, twiml, verified
from contact_center.api.common import services
from contact_center.keys import Services
from contact_center.web import Registry
from tickets.actions import ingest
from tickets.actions.messages import advance_delivery

__all__ = ["enqueue_media", "routes"]

log = logging.getLogger("channels.twilio")
routes = Registry()


async def enqueue_media(
    svc: Services, message_id: int, media: Sequence[Media], stem: str = "media"
) -> None:
    """Leave the downloads to the ``fetch_twilio_media`` job (the message is stored already)."""
    items = [[m.url, m.content_type] for m in media]
    try:
        await svc.jobs.enqueue("fetch_twilio_media", message_id, items, stem)
    except Exception:  # the message is safe; its files are what a queue outage costs
        log.exception("media of message %d not queued for download", message_id)


async def _keyword(svc: Services, config: TwilioConfig, inbound: InboundSms) -> str | None:
    """STOP / START change whether we may text the number; the answer, if we give it."""
    word = inbound.keyword
    if word is None:
        return None
    if word is not Keyword.HELP:
        stop = word is Keyword.STOP
        region = svc.ingest_policy.phone_region
        await svc.db.write(set_opt_out, inbound.contact.handle, stop, region)
    if not config.keyword_replies:
        return None
    return config.help_text if word is Keyword.HELP else KEYWORD_REPLIES[word]


@routes.route("POST", "/webhooks/twilio/sms", roles=None, auth="twilio-signature",
              summary="Twilio Messaging webhook: an inbound SMS, MMS or WhatsApp message",
              tag="twilio")  # fmt: skip
async def sms_webhook(request: web.Request) -> web.StreamResponse:
    """Store the message (idempotent by MessageSid) and answer with empty TwiML at once."""
    params = await verified(request)
    tw = request.app[TWILIO]
    inbound = parse_sms(params, queue=tw.config.sms_queue)
    svc = services(request)
    if inbound.keyword is not None:
        return twiml(message_twiml(await _keyword(svc, tw.config, inbound)))
    result = await svc.db.write(ingest, inbound.contact, svc.ingest_policy)
    channel = inbound.contact.channel.value
    svc.metrics.contacts.labels(channel, "duplicate" if result.duplicate else "stored").inc()
    if inbound.media and not result.duplicate:
        await enqueue_media(svc, result.message_id, inbound.media)
    return twiml(message_twiml())


@routes.route("POST", "/webhooks/twilio/status", roles=None, auth="twilio-signature",
              summary="Twilio status callback of an outbound message or of a call",
              tag="twilio")  # fmt: skip
async def status_webhook(request: web.Request) -> web.StreamResponse:
    """Move a message's delivery status forward (never back), or pass a call's on."""
    params = await verified(request)
    svc = services(request)
    if params.get("CallStatus") and not params.get("MessageSid"):
        handler = request.app.get(CALL_STATUS)
        if handler is not None:
            await handler(request, params)
    elif params.get("MessageSid"):
        report = parse_message_status(params)
        if report is not None:
            await svc.db.write(advance_delivery, query_int(request, "m"), report.status.value,
                               report.error, external_id=report.message_sid)  # fmt: skip
    return web.Response(status=204)
