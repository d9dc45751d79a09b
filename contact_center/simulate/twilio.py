"""Twilio's side of the desk's webhooks, for the simulator's SMS and voice customers.

:class:`TwilioHooks` posts form webhooks the way Twilio does: to the public URL the desk is
configured with (``CC_PUBLIC_BASE_URL``, which is what Twilio signs), delivered to one of the
web processes, with ``X-Twilio-Signature`` computed by the twilio library's
``RequestValidator`` from the auth token, and a fresh ``I-Twilio-Idempotency-Token``. Any
answer but 2xx (a refused signature is 403) is a :class:`WebhookError`: the contact failed.
"""

from __future__ import annotations

import secrets
import urllib.parse
import uuid
from collections.abc import Mapping

import aiohttp
from twilio.request_validator import RequestValidator

__all__ = ["TwilioHooks", "WebhookError", "new_sid"]


def new_sid(prefix: str) -> str:
    """A Twilio-shaped SID: two letters and 32 hex digits (``CA…``, ``SM…``)."""
    return prefix + secrets.token_hex(16)


class WebhookError(RuntimeError):
    """The desk did not take a webhook (its answer, or no web process answered)."""


class TwilioHooks:
    """Signed form webhooks to the desk at ``urls``, for the desk's ``public_url``."""

    def __init__(self, urls: tuple[str, ...], public_url: str, token: str,
                 http: aiohttp.ClientSession) -> None:  # fmt: skip
        self.urls, self.public_url = urls, public_url.rstrip("/")
        self.http = http
        self._validator = RequestValidator(token)

    def signature(self, url: str, params: Mapping[str, str]) -> str:
        """``X-Twilio-Signature`` of a form post of ``params`` to ``url``."""
        return str(self._validator.compute_signature(url, dict(params)))

    def path_of(self, url: str) -> str:
        """The path and query of one of the desk's public URLs (as its TwiML gives them)."""
        if url.startswith("/"):
            return url
        if not url.startswith(self.public_url + "/"):
            raise WebhookError(f"{url!r} is not under the public URL {self.public_url!r}")
        return url[len(self.public_url) :]

    async def post(self, url: str, params: Mapping[str, str], *, turn: int = 0) -> str:
        """Post ``params`` to ``url`` (a path, or a public URL); the answer's text on 2xx.

        Delivered to web process ``turn`` (modulo their number), the next one when it cannot
        be reached, as a load balancer in front of them would.
        """
        path = self.path_of(url)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": self.signature(self.public_url + path, params),
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": "TwilioProxy/1.1",
        }
        body = urllib.parse.urlencode(params)
        last: Exception | None = None
        for k in range(len(self.urls)):
            target = self.urls[(turn + k) % len(self.urls)]
            try:
                async with self.http.post(target + path, data=body, headers=headers,
                                          allow_redirects=False) as r:  # fmt: skip
                    text = await r.text()
                    if not 200 <= r.status < 300:
                        raise WebhookError(f"POST {path.split('?')[0]}: {r.status} {text[:200]}")
                    return text
            except aiohttp.ClientError as err:
                last = err
        raise WebhookError(f"POST {path.split('?')[0]}: no web process answered ({last})")
