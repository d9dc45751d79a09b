"""Signed Twilio webhooks on aiohttp (shared by the SMS and voice channels).

Every handler starts with :func:`verified`: the signature is checked against the URL rebuilt
from ``CC_PUBLIC_BASE_URL`` plus the raw path and query of the request (forwarded headers are
never read), over the form fields, or over the raw body for JSON (``bodySHA256``). A request
that fails gets 403 before anything is read into the database.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from channels.sms.client import SignatureCheck, TwilioRest
from channels.sms.config import TwilioConfig
from channels.sms.parse import signed_url
from contact_center.errors import Forbidden, ValidationError
from contact_center.keys import ENDPOINTS
from contact_center.settings import Settings
from contact_center.web import Registry

__all__ = [
    "CALL_STATUS",
    "TWILIO",
    "CallStatusHandler",
    "TwilioChannel",
    "install_channel",
    "query_int",
    "twiml",
    "verified",
]

log = logging.getLogger("channels.twilio")
_FORM = "application/x-www-form-urlencoded"


@dataclass
class TwilioChannel:
    """What the Twilio handlers share on the app: settings, signature check, REST client."""

    config: TwilioConfig
    check: SignatureCheck = field(init=False)
    rest: TwilioRest = field(init=False)
    rejected: int = 0

    def __post_init__(self) -> None:
        self.check = SignatureCheck(self.config.auth_token.reveal())
        self.rest = TwilioRest(self.config)


TWILIO: web.AppKey[TwilioChannel] = web.AppKey("twilio_channel", TwilioChannel)

CallStatusHandler = Callable[[web.Request, Mapping[str, str]], Awaitable[None]]
CALL_STATUS: web.AppKey[CallStatusHandler] = web.AppKey("twilio_call_status")
"""Who handles call status callbacks on ``/webhooks/twilio/status`` (the voice channel)."""


def install_channel(
    app: web.Application, settings: Settings, routes: Registry
) -> TwilioChannel | None:
    """Add a Twilio channel's webhook routes (to the app, its OpenAPI document and role
    matrix) with the state they share; None, and no routes (404), without Twilio settings."""
    config = TwilioConfig.from_settings(settings)
    if config is None:
        return None
    if TWILIO not in app:
        app[TWILIO] = TwilioChannel(config)
    routes.install(app)
    app[ENDPOINTS].extend(routes.endpoints)
    return app[TWILIO]


async def verified(request: web.Request) -> Mapping[str, str]:
    """The webhook's parameters once Twilio's signature over them checks out; else 403."""
    tw = request.app[TWILIO]
    url = signed_url(tw.config.public_base_url, request.raw_path)
    signature = request.headers.get("X-Twilio-Signature", "")
    settings_header = request.headers.get("X-Twilio-Webhooks-Signature-Settings", "")
    params: Mapping[str, str]
    if request.content_type == "application/json":
        raw = await request.text()
        ok = "bodySHA256" in request.query and tw.check.valid(url, raw, signature, settings_header)
        params = _flat_json(raw) if ok else {}
    elif request.content_type in (_FORM, ""):
        form = await request.post()
        ok = tw.check.valid(url, form, signature, settings_header)
        params = {k: v for k, v in form.items() if isinstance(v, str)}
    else:
        raise ValidationError("Twilio webhooks are form posts or JSON",
                              fields={"body": "wrong content type"})  # fmt: skip
    if not ok:
        tw.rejected += 1
        log.warning("Twilio webhook with a bad or missing signature refused",
                    extra={"path": request.path, "remote": request.remote})  # fmt: skip
        raise Forbidden("invalid Twilio signature")
    return params


def _flat_json(raw: str) -> dict[str, str]:
    try:
        data: Any = json.loads(raw or "{}")
    except ValueError:
        raise ValidationError("body is not valid JSON", fields={"body": "invalid JSON"}) from None
    if not isinstance(data, dict):
        raise ValidationError("expected a JSON object", fields={"body": "not an object"})
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}


def query_int(request: web.Request, name: str) -> int | None:
    """An integer from our own (signed) query string, or None."""
    raw = request.query.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None


def twiml(xml: str) -> web.Response:
    """A TwiML answer."""
    return web.Response(text=xml, content_type="text/xml")
