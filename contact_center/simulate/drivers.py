"""How simulated customers reach the deployment, one driver per channel.

Every driver sends a contact the way that channel's customers do, records when, waits for the
answer and, on a live channel, hangs up when the customer's patience runs out first. The API
driver posts to ``POST /api/v1/inbound`` (the integration channel, also used for channels
without a customer-side transport here); a hang-up on it is the end of the contact before an
agent took it (the ticket is solved unanswered, which the SLA engine counts as an abandon).
With a Twilio auth token, SMS/WhatsApp and voice customers use the desk's signed Twilio
webhooks instead (``TwilioSmsDriver``, ``TwilioVoiceDriver``; ``simulate/twilio.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import math
import time
import urllib.parse
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

from contact_center.simulate.model import LIVE, Outcome
from contact_center.simulate.runner import Api, Run, Target
from contact_center.simulate.twilio import TwilioHooks, WebhookError, new_sid

__all__ = [
    "ApiDriver",
    "ChatSocketDriver",
    "Driver",
    "ImapEmailDriver",
    "TwilioSmsDriver",
    "TwilioVoiceDriver",
    "driver_for",
]

TWILIO_CHANNELS = frozenset({"sms", "whatsapp", "voice"})
_PLACEHOLDER_ACCOUNT = "AC" + "0" * 32  # the desk does not check AccountSid; a shaped one


def _phone(tag: str, n: int) -> str:
    """A plausible US number per run and contact (each customer their own conversation)."""
    return f"+1{200 + int(tag) // 7 % 700:03d}{n % 10_000_000:07d}"


class Driver(Protocol):
    """Sends one contact and follows it to its end."""

    async def contact(self, outcome: Outcome) -> None: ...

    async def close(self) -> None: ...


class ApiDriver:
    """``POST /api/v1/inbound`` on the given channel; live contacts hang up after patience."""

    def __init__(self, channel: str, api: Api, admin: str, target: Target, sim: Run) -> None:
        self.channel, self.api, self.admin, self.target, self.sim = (
            channel, api, admin, target, sim)  # fmt: skip

    async def close(self) -> None:
        """Nothing to close (the API client belongs to the run)."""

    def _handle(self, n: int) -> str:
        tag = self.sim.tag
        if self.channel in ("chat", "api"):
            return f"visitor-sim-{tag}-{n}"
        if self.channel in TWILIO_CHANNELS:
            return _phone(tag, n)
        return f"sim-{tag}-{n}@sim.example"

    async def contact(self, outcome: Outcome) -> None:
        n = outcome.arrival.number
        body: dict[str, Any] = {
            "external_id": f"sim-{self.sim.tag}-{n}", "channel": self.channel,
            "handle": self._handle(n), "subject": f"sim {self.sim.tag} {n}",
            "body": "Hello, I need some help please.", "queue": self.target.queue,
        }  # fmt: skip
        outcome.sent_at = self.sim.now()
        try:
            _, data = await self.api.call("POST", "/api/v1/inbound", self.admin, body)
        except RuntimeError as err:
            outcome.error = str(err)
            return
        outcome.acked_at = self.sim.now()
        ticket = int(data["ticket_id"])
        self.sim.by_ticket[ticket] = n
        patience = outcome.arrival.patience_seconds
        if self.channel not in LIVE or patience is None:
            return
        answered = self.sim.answered.setdefault(n, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, outcome.sent_at + patience - self.sim.now())):
                await answered.wait()
        if outcome.answered_at is None:
            outcome.abandoned_at = self.sim.now()
            await self.api.call("PATCH", f"/api/v1/tickets/{ticket}", self.admin,
                                {"status": "solved"}, ok=(400, 404, 409))  # fmt: skip


class ImapEmailDriver:
    """Email as a customer's mail server delivers it: an IMAP ``APPEND`` into the mailbox the
    deployment watches (its IDLE poller then ingests it, exactly as with delivered mail)."""

    def __init__(self, target: Target, sim: Run) -> None:
        if target.imap is None:
            raise ValueError("the email driver needs an IMAP mailbox (--imap-*)")
        self.imap, self.sim = target.imap, sim
        self._conn: imaplib.IMAP4 | None = None
        self._lock = asyncio.Lock()

    def _append(self, raw: bytes) -> None:
        box = self.imap
        if self._conn is None:
            conn = (imaplib.IMAP4_SSL if box.tls else imaplib.IMAP4)(box.host, box.port)
            conn.login(box.user, box.password)
            self._conn = conn
        status, _ = self._conn.append(box.folder, "", imaplib.Time2Internaldate(time.time()), raw)
        if status != "OK":
            raise RuntimeError(f"IMAP APPEND answered {status}")

    async def contact(self, outcome: Outcome) -> None:
        n, tag = outcome.arrival.number, self.sim.tag
        msg = EmailMessage()
        msg["From"] = f"Sim customer {n} <sim-{tag}-{n}@sim.example>"
        msg["To"] = self.imap.address
        msg["Subject"] = f"sim {tag} {n}"
        msg["Message-ID"] = make_msgid(f"sim-{tag}-{n}", "sim.example")
        msg["Date"] = formatdate(localtime=False)
        msg.set_content("Hello, I need some help please.")
        outcome.sent_at = self.sim.now()
        try:
            async with self._lock:  # one IMAP connection; APPENDs in order
                await asyncio.to_thread(self._append, msg.as_bytes())
        except (OSError, imaplib.IMAP4.error, RuntimeError) as err:
            self._conn = None
            outcome.error = f"IMAP: {err}"
        else:
            outcome.acked_at = self.sim.now()  # in the mailbox: the desk must ingest it

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                await asyncio.to_thread(conn.logout)


class ChatSocketDriver:
    """Web chat as the widget does it: a ``/customer`` socket, ``start`` with the first
    message, the wait in line, and ``leave`` when the customer's patience runs out first."""

    def __init__(self, target: Target, sim: Run) -> None:
        self.target, self.sim = target, sim

    async def close(self) -> None:
        """Each customer's socket is closed with its contact."""

    async def _connect(self, sio: Any, n: int) -> None:
        """To the customer's web process, or the next one when it does not answer (as a load
        balancer in front of them does)."""
        import socketio

        urls = self.target.urls
        for k in range(len(urls)):
            url = urls[(n + k) % len(urls)]
            try:
                await sio.connect(url, namespaces=["/customer"], auth={"lang": "en"},
                                  headers={"Origin": self.target.origin or url},
                                  transports=["websocket"], wait_timeout=10)  # fmt: skip
                return
            except socketio.exceptions.ConnectionError:
                if k == len(urls) - 1:
                    raise

    async def contact(self, outcome: Outcome) -> None:
        import socketio

        n, tag = outcome.arrival.number, self.sim.tag
        sio = socketio.AsyncClient(reconnection=False)
        taken, ended = asyncio.Event(), asyncio.Event()
        sio.on("agent", lambda _d: taken.set(), namespace="/customer")
        sio.on("ended", lambda _d: ended.set(), namespace="/customer")
        try:
            await self._connect(sio, n)
            outcome.sent_at = self.sim.now()
            ack = await sio.call("start", {
                "client_id": f"sim-{tag}-{n}", "name": f"Sim customer {n}",
                "body": f"sim {tag} {n}\nHello, I need some help please.",
            }, namespace="/customer", timeout=30)  # fmt: skip
            if not ack.get("ok"):
                outcome.error = f"chat start: {ack.get('error')}"
                return
            outcome.acked_at = self.sim.now()
            self.sim.by_ticket[int(ack["ticket_id"])] = n
            patience = outcome.arrival.patience_seconds
            if patience is not None:
                answered = self.sim.answered.setdefault(n, asyncio.Event())
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, outcome.sent_at + patience
                                                   - self.sim.now())):  # fmt: skip
                        await answered.wait()
                if outcome.answered_at is None:
                    outcome.abandoned_at = self.sim.now()
                    await sio.call("leave", namespace="/customer", timeout=30)
                    return
            with contextlib.suppress(TimeoutError):  # stay until the agent ends the chat
                async with asyncio.timeout(outcome.arrival.handle_seconds + 60):
                    await ended.wait()
        except (socketio.exceptions.SocketIOError, OSError) as err:
            if outcome.sent_at is None:
                outcome.sent_at = self.sim.now()
            outcome.error = f"chat: {err!r}"
        finally:
            with contextlib.suppress(Exception):
                await sio.disconnect()


async def _set_within(event: asyncio.Event, seconds: float) -> bool:
    """Whether ``event`` is set within ``seconds``."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(0.0, seconds)):
            await event.wait()
    return event.is_set()


def _twilio_time() -> str:
    return datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


class TwilioSmsDriver:
    """Text messages as Twilio delivers them: a signed ``/webhooks/twilio/sms`` post with a new
    ``MessageSid``, from a number of the customer's own (so each one opens a ticket).

    The answer is empty TwiML, so the ticket is learned from the offer: the message's first
    line, ``sim <tag> <n>``, becomes the ticket's subject, which the agents match offers by.
    """

    def __init__(self, channel: str, hooks: TwilioHooks, target: Target, sim: Run) -> None:
        self.channel, self.hooks, self.target, self.sim = channel, hooks, target, sim

    async def close(self) -> None:
        """Nothing to close (the HTTP session belongs to the run)."""

    async def contact(self, outcome: Outcome) -> None:
        n, tag = outcome.arrival.number, self.sim.tag
        sender, to = _phone(tag, n), self.target.twilio_number
        extra: dict[str, str] = {"FromCountry": "US", "ToCountry": "US"}
        if self.channel == "whatsapp":
            extra = {"ProfileName": f"Sim customer {n}", "WaId": sender.lstrip("+")}
            sender, to = f"whatsapp:{sender}", f"whatsapp:{to}"
        sid = new_sid("SM")
        params = {
            "AccountSid": self.target.twilio_account_sid or _PLACEHOLDER_ACCOUNT,
            "ApiVersion": "2010-04-01", "MessageSid": sid, "SmsMessageSid": sid, "SmsSid": sid,
            "SmsStatus": "received", "From": sender, "To": to, "NumMedia": "0",
            "NumSegments": "1", "Body": f"sim {tag} {n}\nHello, I need some help please.",
            **extra,
        }  # fmt: skip
        outcome.sent_at = self.sim.now()
        try:
            await self.hooks.post("/webhooks/twilio/sms", params, turn=n)
        except WebhookError as err:
            outcome.error = f"{self.channel}: {err}"
        else:
            outcome.acked_at = self.sim.now()


def _enqueued(twiml: str) -> tuple[str, str, int]:
    """The ``waitUrl``, the action and the ticket of the TwiML answering an incoming call."""
    try:
        root = ET.fromstring(twiml)  # noqa: S314 - the desk's own TwiML, not a stranger's
    except ET.ParseError:
        raise WebhookError(f"the incoming call's answer is no TwiML: {twiml[:100]!r}") from None
    enqueue = root.find("Enqueue")
    wait = "" if enqueue is None else enqueue.get("waitUrl", "")
    action = "" if enqueue is None else enqueue.get("action", "")
    if not wait or not action:
        raise WebhookError(f"the desk did not enqueue the call: {twiml[:200]!r}")
    ticket = urllib.parse.parse_qs(urllib.parse.urlsplit(wait).query).get("t", [""])[0]
    if not ticket.isdigit():
        raise WebhookError(f"the queue's waitUrl names no ticket: {wait!r}")
    return wait, action, int(ticket)


class TwilioVoiceDriver:
    """Calls as Twilio reports them: the incoming-call webhook (its TwiML must enqueue the
    call), the queue's ``waitUrl`` at once and after each round of hold music; then either
    the caller hangs up in the queue when their patience runs out (the ``<Enqueue>`` action
    with ``QueueResult=hangup``, then the ``completed`` status callback), or an agent took
    the call and, after the handle time, the ``completed`` status callback ends it.

    The ticket is in the TwiML's ``waitUrl`` (``?t=``). The desk puts an answered call through
    with Twilio's REST API, which knows no simulated call: point the desk's
    ``CC_TWILIO_API_BASE_URL`` at a stub (``python -m tests.twilio_stub``).
    """

    hold_round = 30.0  # seconds of hold music between two waitUrl requests

    def __init__(self, hooks: TwilioHooks, target: Target, sim: Run) -> None:
        self.hooks, self.target, self.sim = hooks, target, sim

    async def close(self) -> None:
        """Nothing to close (the HTTP session belongs to the run)."""

    async def contact(self, outcome: Outcome) -> None:
        n = outcome.arrival.number
        caller, ours = _phone(self.sim.tag, n), self.target.twilio_number
        call = {
            "AccountSid": self.target.twilio_account_sid or _PLACEHOLDER_ACCOUNT,
            "ApiVersion": "2010-04-01", "CallSid": new_sid("CA"), "Direction": "inbound",
            "From": caller, "Caller": caller, "FromCountry": "US", "CallerCountry": "US",
            "To": ours, "Called": ours, "ToCountry": "US", "CalledCountry": "US",
        }  # fmt: skip
        outcome.sent_at = self.sim.now()
        try:
            await self._call(outcome, outcome.sent_at, call)
        except WebhookError as err:
            outcome.error = f"voice: {err}"

    async def _call(self, outcome: Outcome, sent_at: float, call: dict[str, str]) -> None:
        n = outcome.arrival.number
        post = self.hooks.post
        answer = await post("/webhooks/twilio/voice", {**call, "CallStatus": "ringing"}, turn=n)
        wait_url, action_url, ticket = _enqueued(answer)
        outcome.acked_at = self.sim.now()
        self.sim.by_ticket[ticket] = n
        answered = self.sim.answered.setdefault(n, asyncio.Event())
        patience = outcome.arrival.patience_seconds
        give_up = math.inf if patience is None else sent_at + patience
        queue = {"QueueSid": new_sid("QU"), "CallStatus": "in-progress"}
        while outcome.answered_at is None and self.sim.now() < give_up:
            await post(wait_url, {**call, **queue, "QueueTime": f"{self.sim.now() - sent_at:.0f}",
                                  "QueuePosition": "1", "AvgQueueTime": "0",
                                  "CurrentQueueSize": "1", "MaxQueueSize": "100"},
                       turn=n)  # fmt: skip
            await _set_within(answered, min(self.hold_round, give_up - self.sim.now()))
        if outcome.answered_at is None:
            outcome.abandoned_at = self.sim.now()
            waited = f"{outcome.abandoned_at - sent_at:.0f}"
            await post(action_url, {**call, **queue, "CallStatus": "completed",
                                    "QueueResult": "hangup", "QueueTime": waited},
                       turn=n)  # fmt: skip
            await post("/webhooks/twilio/status", self._completed(call, sent_at), turn=n)
            return
        await asyncio.sleep(
            max(0.0, outcome.answered_at + outcome.arrival.handle_seconds - self.sim.now())
        )
        await post("/webhooks/twilio/status", self._completed(call, sent_at), turn=n)

    def _completed(self, call: dict[str, str], sent_at: float) -> dict[str, str]:
        """The status callback of the call's end (the caller, or the agent, hung up)."""
        seconds = max(0, round(self.sim.now() - sent_at))
        return {**call, "CallStatus": "completed", "CallDuration": str(seconds),
                "Duration": str(-(-seconds // 60)), "CallbackSource": "call-progress-events",
                "SequenceNumber": "0", "Timestamp": _twilio_time()}  # fmt: skip


def driver_for(channel: str, api: Api, admin: str, target: Target, sim: Run) -> Driver:
    """The driver for a channel: the channel's own transport where the simulator has one
    (chat: the widget's socket; email: IMAP, when a mailbox is given; SMS, WhatsApp and voice:
    Twilio's signed webhooks, when a Twilio auth token is given), else the API."""
    if channel in TWILIO_CHANNELS and target.twilio_token:
        hooks = TwilioHooks(target.urls, target.public_url or target.urls[0],
                            target.twilio_token, api.http)  # fmt: skip
        if channel == "voice":
            return TwilioVoiceDriver(hooks, target, sim)
        return TwilioSmsDriver(channel, hooks, target, sim)
    if channel == "chat" and target.chat_socket:
        return ChatSocketDriver(target, sim)
    if channel == "email" and target.imap is not None:
        return ImapEmailDriver(target, sim)
    return ApiDriver(channel, api, admin, target, sim)
