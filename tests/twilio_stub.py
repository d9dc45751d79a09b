"""A local stand-in for Twilio: its REST API (what the desk calls) and its webhooks (what it sends).

:class:`TwilioStub` is an aiohttp app answering the REST calls the desk makes, with realistic
JSON, checking HTTP Basic auth with the account SID and auth token, and recording each call:

* ``POST /2010-04-01/Accounts/{sid}/Messages.json``: send an SMS/WhatsApp message (201);
  numbers in ``opted_out`` get Twilio's 400 / 21610, and ``fail_next`` queues other answers;
* ``POST /2010-04-01/Accounts/{sid}/Calls/{CallSid}.json``: update a live call (``Twiml``);
  calls in ``ended_calls`` get Twilio's 400 / 21220;
* ``GET …/Messages/{MM}/Media/{ME}`` and ``GET …/Recordings/{RE}.mp3``: a 307 to ``/cdn/…``
  (as Twilio redirects to its CDN), which serves the bytes registered with ``add_media``.

:class:`Webhooks` posts webhooks to the desk signed exactly as Twilio signs them (form fields
or a JSON body with ``bodySHA256``), for the URL Twilio would call: the desk's public URL.

Run it for a demo: ``python -m tests.twilio_stub --port 8099`` and start the desk with
``CC_TWILIO_API_BASE_URL=http://127.0.0.1:8099`` and the account SID and auth token it prints
(``--account-sid``, ``--auth-token`` choose them).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import secrets
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

__all__ = ["API", "TwilioStub", "Webhooks", "new_sid"]

API = "https://api.twilio.com"


def new_sid(prefix: str) -> str:
    """A Twilio-shaped SID: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def _rfc2822(t: datetime) -> str:
    return t.strftime("%a, %d %b %Y %H:%M:%S +0000")


@dataclass
class Recorded:
    """One REST request the stub answered."""

    method: str
    path: str
    form: dict[str, str]
    status: int


@dataclass
class TwilioStub:
    """The fake REST API; ``await start()`` returns its base URL."""

    account_sid: str
    auth_token: str
    requests: list[Recorded] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    call_updates: list[dict[str, str]] = field(default_factory=list)
    opted_out: set[str] = field(default_factory=set)
    ended_calls: set[str] = field(default_factory=set)
    fail_next: list[tuple[int, int, str]] = field(default_factory=list)  # (status, code, text)
    fail_calls: list[tuple[int, int, str]] = field(default_factory=list)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    base_url: str = ""

    def __post_init__(self) -> None:
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # -- life cycle ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        acct = "/2010-04-01/Accounts/{account}"
        app.router.add_post(acct + "/Messages.json", self._create_message)
        app.router.add_post(acct + "/Calls/{call}.json", self._update_call)
        app.router.add_get(acct + "/Messages/{message}/Media/{media}", self._media_redirect)
        app.router.add_get(acct + "/Recordings/{recording}.mp3", self._media_redirect)
        app.router.add_get("/cdn/{media}", self._cdn)
        return app

    async def start(self, port: int = 0) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{bound}"
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- what tests register and wait for -------------------------------------------------------

    def add_media(self, data: bytes, content_type: str, *, message_sid: str | None = None) -> str:
        """Register a file; the URL Twilio would put in a webhook (``MediaUrl0``)."""
        media_sid = new_sid("ME")
        self.media[media_sid] = (data, content_type)
        msg = message_sid or new_sid("MM")
        return f"{API}/2010-04-01/Accounts/{self.account_sid}/Messages/{msg}/Media/{media_sid}"

    def add_recording(self, data: bytes) -> tuple[str, str]:
        """Register a voicemail recording; (RecordingSid, RecordingUrl without extension)."""
        rec = new_sid("RE")
        self.media[rec] = (data, "audio/mpeg")
        return rec, f"{API}/2010-04-01/Accounts/{self.account_sid}/Recordings/{rec}"

    async def wait_for(self, check: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Until ``check()`` is truthy (re-checked whenever the stub answers a request)."""

        async def until() -> Any:
            while not (found := check()):
                self._changed.clear()
                await self._changed.wait()
            return found

        return await asyncio.wait_for(until(), timeout)

    # -- handlers -----------------------------------------------------------------------------

    def _authorised(self, request: web.Request) -> bool:
        want = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("Authorization", "") == f"Basic {want}"

    @staticmethod
    def _error(status: int, code: int, message: str) -> web.Response:
        return web.json_response({"code": code, "message": message, "status": status,
                                  "more_info": f"https://www.twilio.com/docs/errors/{code}"},
                                 status=status)  # fmt: skip

    def _record(self, request: web.Request, form: Mapping[str, str], status: int) -> None:
        self.requests.append(Recorded(request.method, request.path, dict(form), status))
        self._changed.set()

    async def _create_message(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        if not self._authorised(request) or request.match_info["account"] != self.account_sid:
            self._record(request, form, 401)
            return self._error(401, 20003, "Authenticate")
        to = form.get("To", "")
        if not to or not (form.get("Body") or form.get("MediaUrl")):
            self._record(request, form, 400)
            return self._error(400, 21602, "Message body is required.")
        if not (form.get("From") or form.get("MessagingServiceSid")):
            self._record(request, form, 400)
            return self._error(400, 21603, "A 'From' phone number is required.")
        if to.removeprefix("whatsapp:") in self.opted_out:
            self._record(request, form, 400)
            return self._error(400, 21610, "Attempt to send to unsubscribed recipient")
        if self.fail_next:
            status, code, text = self.fail_next.pop(0)
            self._record(request, form, status)
            return self._error(status, code, text)
        sid = new_sid("SM")
        now = _rfc2822(datetime.now(UTC))
        body = {
            "account_sid": self.account_sid, "api_version": "2010-04-01",
            "body": form.get("Body", ""), "date_created": now, "date_sent": None,
            "date_updated": now, "direction": "outbound-api", "error_code": None,
            "error_message": None, "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"), "num_media": "0",
            "num_segments": str(max(1, -(-len(form.get("Body", "")) // 153))),
            "price": None, "price_unit": "USD", "sid": sid, "status": "queued",
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/"
                                          f"{sid}/Media.json"},
            "to": to, "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }  # fmt: skip
        self.messages.append({**body, "status_callback": form.get("StatusCallback")})
        self._record(request, form, 201)
        return web.json_response(body, status=201)

    async def _update_call(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        call = request.match_info["call"]
        if not self._authorised(request):
            self._record(request, form, 401)
            return self._error(401, 20003, "Authenticate")
        if call in self.ended_calls:
            self._record(request, form, 400)
            return self._error(400, 21220, "Call is not in-progress. Cannot redirect.")
        if self.fail_calls:
            status, code, text = self.fail_calls.pop(0)
            self._record(request, form, status)
            return self._error(status, code, text)
        self.call_updates.append({"call_sid": call, **form})
        now = _rfc2822(datetime.now(UTC))
        body = {
            "sid": call, "account_sid": self.account_sid, "status": "in-progress",
            "direction": "inbound", "date_created": now, "date_updated": now,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{call}.json",
        }  # fmt: skip
        self._record(request, form, 200)
        return web.json_response(body)

    async def _media_redirect(self, request: web.Request) -> web.Response:
        media = request.match_info.get("media") or request.match_info.get("recording", "")
        self._record(request, {}, 307 if media in self.media else 404)
        if media not in self.media:
            return self._error(404, 20404, "The requested resource was not found")
        raise web.HTTPTemporaryRedirect(f"{self.base_url}/cdn/{media}")

    async def _cdn(self, request: web.Request) -> web.Response:
        if "Authorization" in request.headers:  # pre-signed CDN URLs refuse extra credentials
            return web.Response(status=400, text="credentials sent to the CDN")
        found = self.media.get(request.match_info["media"])
        if found is None:
            return web.Response(status=404)
        self._record(request, {}, 200)
        return web.Response(body=found[0], content_type=found[1])


@dataclass
class Webhooks:
    """Posts signed Twilio webhooks to the desk at ``target`` (where it listens), signing them
    for ``public_base_url`` (where Twilio believes it is)."""

    target: str
    public_base_url: str
    auth_token: str
    session: aiohttp.ClientSession | None = None

    def signature(self, url: str, params: Mapping[str, str] | None = None) -> str:
        """``X-Twilio-Signature`` of a form post to ``url``."""
        return str(RequestValidator(self.auth_token).compute_signature(url, dict(params or {})))

    async def _http(self) -> aiohttp.ClientSession:
        if self.session is None:
            self.session = aiohttp.ClientSession()
        return self.session

    async def post(
        self, path: str, params: Mapping[str, str], *, sign_url: str | None = None,
        headers: Mapping[str, str] | None = None, signature: str | None = None,
    ) -> tuple[int, str]:  # fmt: skip
        """A form webhook, signed for the public URL of ``path`` (or ``sign_url``)."""
        url = sign_url or self.public_base_url + path
        sig = self.signature(url, params) if signature is None else signature
        http = await self._http()
        async with http.post(self.target + path, data=urllib.parse.urlencode(params),
                             headers={"Content-Type": "application/x-www-form-urlencoded",
                                      "X-Twilio-Signature": sig, **(headers or {})},
                             allow_redirects=False) as resp:  # fmt: skip
            return resp.status, await resp.text()

    async def post_json(
        self, path: str, body: Any, *, hash_of: bytes | None = None
    ) -> tuple[int, str]:
        """A JSON webhook: ``bodySHA256`` in the signed URL (of ``hash_of``, normally the body)."""
        raw = json.dumps(body).encode()
        digest = hashlib.sha256(raw if hash_of is None else hash_of).hexdigest()
        sep = "&" if "?" in path else "?"
        full = f"{path}{sep}bodySHA256={digest}"
        sig = self.signature(self.public_base_url + full)
        http = await self._http()
        async with http.post(self.target + full, data=raw,
                             headers={"Content-Type": "application/json",
                                      "X-Twilio-Signature": sig}) as resp:  # fmt: skip
            return resp.status, await resp.text()

    async def status_of(self, message: Mapping[str, Any], status: str, **extra: str) -> int:
        """Twilio's status callback for a message the stub accepted, to the URL it was given."""
        callback = str(message["status_callback"])
        path = callback.removeprefix(self.public_base_url)
        params = {"MessageSid": message["sid"], "MessageStatus": status, "SmsStatus": status,
                  "AccountSid": message["account_sid"], "To": message["to"],
                  "From": message["from"] or "", "ApiVersion": "2010-04-01", **extra}  # fmt: skip
        code, _ = await self.post(path, params)
        return code

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


def _main() -> None:  # pragma: no cover - manual demo helper
    parser = argparse.ArgumentParser(prog="python -m tests.twilio_stub")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--account-sid", default="AC" + "0" * 32)
    parser.add_argument("--auth-token", default="demo-twilio-token")
    args = parser.parse_args()

    async def serve() -> None:
        stub = TwilioStub(args.account_sid, args.auth_token)
        print(f"Twilio stub on {await stub.start(args.port)} "
              f"(CC_TWILIO_ACCOUNT_SID={args.account_sid} "
              f"CC_TWILIO_AUTH_TOKEN={args.auth_token})")  # fmt: skip
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":  # pragma: no cover
    _main()
