"""The Twilio transport: the only module of the SMS channel that imports the twilio library.

* :class:`SignatureCheck` wraps ``twilio.request_validator.RequestValidator`` (form parameters,
  or the raw JSON body with its ``bodySHA256`` query parameter).
* :class:`TwilioRest` is the official REST client (``twilio.rest.Client``) on an HTTP client
  that sends ``https://api.twilio.com`` requests to ``CC_TWILIO_API_BASE_URL`` instead (a local
  stub in tests and demos). It is synchronous: call it from job threads, RQ workers, or through
  ``asyncio.to_thread``. Media downloads (MMS files, voicemail recordings) use aiohttp.
* Vendor errors become ours here: 401/403 :class:`ChannelAuthFailed`, 429/5xx and network
  trouble :class:`ChannelUnavailable` (retried by the job), anything else :class:`ChannelError`
  (final: an opted-out or invalid number will not get better by retrying).
"""

from __future__ import annotations

import base64
import functools
import hmac
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator, get_signature_algorithm
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from channels.sms.config import REAL_API_BASE, TwilioConfig
from contact_center.errors import ChannelAuthFailed, ChannelError, ChannelUnavailable

__all__ = ["FetchedMedia", "SignatureCheck", "TwilioRest", "message_twiml", "rebase"]

# Twilio answers media downloads with a redirect to its CDN (S3 pre-signed URLs).
_MEDIA_HOSTS = (".twilio.com", ".twiliocdn.com", ".amazonaws.com")
_REDIRECTS = (301, 302, 303, 307, 308)
_KNOWN_CODES = {
    21610: "the customer opted out (STOP); they can send START",
    21211: "not a valid phone number",
    21614: "not a mobile number",
    21408: "sending to this region is not enabled",
    63016: "outside WhatsApp's 24-hour window (a template message is needed)",
}


class SignatureCheck:
    """``X-Twilio-Signature`` validation with the account's auth token."""

    def __init__(self, auth_token: str) -> None:
        self._validator = RequestValidator(auth_token)

    def valid(
        self, url: str, params: Mapping[str, Any] | str, signature: str, settings_header: str = ""
    ) -> bool:
        """True if Twilio signed exactly this URL and these form fields (or this raw JSON body,
        whose SHA-256 must then be the URL's ``bodySHA256``)."""
        if not signature:
            return False
        algorithm = get_signature_algorithm(settings_header)
        if not isinstance(params, str):  # the common case: one HMAC, compared in constant time
            try:
                expected = self._validator.compute_signature(url, params, algorithm)
            except ValueError:  # an algorithm this twilio release does not know
                return False
            if hmac.compare_digest(expected.encode(), signature.encode()):
                return True
        # JSON bodies, and URLs Twilio signed with (or without) the default port
        return bool(self._validator.validate(url, params, signature, algorithm))


def message_twiml(text: str | None = None) -> str:
    """A Messaging TwiML answer: empty, or one reply message."""
    if not text:
        return _empty_messaging_twiml()
    response = MessagingResponse()
    response.message(text)
    return str(response)


@functools.cache
def _empty_messaging_twiml() -> str:
    return str(MessagingResponse())  # the answer to nearly every webhook: built once


def rebase(url: str, api_base_url: str) -> str:
    """``url`` with Twilio's API origin swapped for the configured one (a stub, or itself)."""
    if api_base_url != REAL_API_BASE and url.startswith(REAL_API_BASE + "/"):
        return api_base_url + url[len(REAL_API_BASE) :]
    return url


class _RebasedHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """Twilio's own HTTP client, sending API requests to ``CC_TWILIO_API_BASE_URL``."""

    def __init__(self, api_base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._base = api_base_url

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        return super().request(method, rebase(url, self._base), *args, **kwargs)


def _mapped(err: TwilioRestException) -> ChannelError:
    status, code = int(err.status or 0), err.code
    why = _KNOWN_CODES.get(int(code)) if isinstance(code, int) else None
    text = (f"Twilio {status}" + (f" error {code}" if code else "") + f": {why or err.msg}")[:300]
    if status in (401, 403):
        return ChannelAuthFailed(text)
    if status == 429 or status >= 500:
        return ChannelUnavailable(text)
    return ChannelError(text)


@dataclass(frozen=True, slots=True)
class FetchedMedia:
    """One downloaded file, or why it was dropped (``data`` None)."""

    content_type: str
    data: bytes | None
    dropped: str | None = None


class TwilioRest:
    """The REST calls the desk makes: send a message, redirect a call, download media."""

    def __init__(self, config: TwilioConfig, client: Client | None = None) -> None:
        self.config = config
        self._client = client
        self._lock = threading.Lock()

    @property
    def client(self) -> Client:
        """The official client (built on first use; thread-safe)."""
        with self._lock:
            if self._client is None:
                http = _RebasedHttpClient(self.config.api_base_url, self.config.timeout_seconds)
                self._client = Client(
                    self.config.account_sid, self.config.auth_token.reveal(), http_client=http
                )
            return self._client

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except TwilioRestException as err:
            raise _mapped(err) from None
        except OSError as err:  # requests' errors are OSErrors (connection, timeout)
            raise ChannelUnavailable(f"Twilio {what}: {type(err).__name__}") from None

    def send_message(self, *, to: str, sender: str, body: str, status_callback: str) -> str:
        """Send an SMS/WhatsApp message; Twilio's message SID."""
        kwargs: dict[str, Any] = {"to": to, "body": body, "status_callback": status_callback}
        if sender.startswith("MG"):
            kwargs["messaging_service_sid"] = sender
        else:
            kwargs["from_"] = sender
        message = self._call("send", self.client.messages.create, **kwargs)
        if str(message.status) in ("failed", "undelivered"):
            raise ChannelError(f"Twilio refused the message: {message.error_message or ''}")
        return str(message.sid)

    def update_call(self, call_sid: str, twiml: str) -> str:
        """Replace what a live call does (e.g. take it out of the queue to an agent)."""
        call = self._call("call update", self.client.calls(call_sid).update, twiml=twiml)
        return str(call.status)

    # -- media --------------------------------------------------------------------------------

    def _allowed(self, url: str) -> bool:
        api = self.config.api_base_url
        if url.startswith(api + "/"):
            return True
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        return parts.scheme == "https" and host.endswith(_MEDIA_HOSTS)

    async def fetch_media(
        self, items: Sequence[tuple[str, str]], max_bytes: int
    ) -> list[FetchedMedia]:
        """Download each (url, content type); larger files than ``max_bytes`` are dropped."""
        timeout = aiohttp.ClientTimeout(total=3 * self.config.timeout_seconds)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            return [await self._fetch(http, url, kind, max_bytes) for url, kind in items]

    async def _fetch(
        self, http: aiohttp.ClientSession, url: str, kind: str, max_bytes: int
    ) -> FetchedMedia:
        if not url.startswith((REAL_API_BASE + "/", self.config.api_base_url + "/")):
            return FetchedMedia(kind, None, "not a Twilio media URL")
        target = rebase(url, self.config.api_base_url)
        pair = f"{self.config.account_sid}:{self.config.auth_token.reveal()}".encode()
        token = "Basic " + base64.b64encode(pair).decode()
        try:
            for hop in range(4):  # credentials go to the API only, never to the CDN
                headers = {"Authorization": token} if hop == 0 else {}
                async with http.get(target, headers=headers, allow_redirects=False) as resp:
                    if resp.status in _REDIRECTS:
                        target = urljoin(target, resp.headers.get("Location", ""))
                        if not self._allowed(target):
                            return FetchedMedia(kind, None, "redirected outside Twilio")
                        continue
                    if resp.status == 404:
                        return FetchedMedia(kind, None, "no longer at Twilio (404)")
                    if resp.status in (401, 403):
                        raise ChannelAuthFailed(f"Twilio media download refused ({resp.status})")
                    if resp.status == 429 or resp.status >= 500:
                        raise ChannelUnavailable(f"Twilio media download: {resp.status}")
                    if resp.status != 200:
                        raise ChannelError(f"Twilio media download: {resp.status}")
                    too_big = f"larger than {max_bytes} bytes"
                    if (resp.content_length or 0) > max_bytes:
                        return FetchedMedia(kind, None, too_big)
                    data = bytearray()
                    async for chunk in resp.content.iter_chunked(64 * 1024):
                        data += chunk
                        if len(data) > max_bytes:
                            return FetchedMedia(kind, None, too_big)
                    return FetchedMedia(kind or resp.content_type, bytes(data))
        except (aiohttp.ClientError, TimeoutError) as err:
            raise ChannelUnavailable(f"Twilio media download: {type(err).__name__}") from None
        raise ChannelError("Twilio media download: too many redirects")
