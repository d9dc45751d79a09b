"""The Voice webhooks: a call comes in, waits in the queue, is put through, or leaves a message.

Twilio's requests in the life of a call, all signed and checked (``channels.sms.webhook``):

1. ``/webhooks/twilio/voice``: the call's ticket is opened; TwiML greets and enqueues it.
2. ``/webhooks/twilio/voice/wait`` (the queue's ``waitUrl``, again after each round of music):
   place in line and expected wait; after ``CC_TWILIO_VOICEMAIL_AFTER_SECONDS``, "press 1".
3. ``/webhooks/twilio/voice/queue`` (the ``<Enqueue>`` action, when the call leaves the
   queue): ``hangup`` is an abandon, ``leave`` records a voicemail.
4. An agent accepts: ``channels.voice.connector`` redirects the call to them (REST).
5. ``/webhooks/twilio/voice/dial`` (the ``<Dial>`` action): the conversation is over, or the
   agent did not pick up and the call waits again.
6. ``/webhooks/twilio/voice/recording`` and ``/transcription``: the voicemail and its text
   become messages of an async (SMS) ticket with the caller's number.

Call status callbacks arrive on ``/webhooks/twilio/status`` (:func:`call_status`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from channels.sms.handlers import enqueue_media
from channels.sms.parse import Media
from channels.sms.webhook import TWILIO, query_int, twiml, verified
from channels.voice.calls import end_call, open_call, requeue_call, ticket_of_message
from channels.voice.client import (
    empty_twiml,
    enqueue_twiml,
    hangup_twiml,
    hold_twiml,
    leave_twiml,
    record_twiml,
)
from channels.voice.connector import call_query
from channels.voice.parse import (
    CALL_ENDED,
    hold_message,
    parse_incoming_call,
    parse_recording,
    parse_transcription,
    prompts_for,
    voicemail_contact,
)
from channels.voice.waiting import queue_estimate
from contact_center.api.common import services
from contact_center.db import Actor
from contact_center.errors import ValidationError
from contact_center.web import Registry
from tickets.actions import ingest

__all__ = ["call_status", "routes"]

routes = Registry()
_ACTOR = Actor("channel:voice")
VOICEMAIL_MAX_SECONDS = 180
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _route(path: str, summary: str) -> Callable[[Handler], Handler]:
    """A signed Twilio webhook: anonymous, checked by its signature (``verified``)."""
    return routes.route("POST", path, roles=None, auth="twilio-signature", summary=summary,
                        tag="twilio")  # fmt: skip


def _int(params: Mapping[str, str], name: str) -> int | None:
    raw = (params.get(name) or "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else None


def _call_sid(params: Mapping[str, str]) -> str:
    sid = (params.get("CallSid") or "").strip()
    if not sid.startswith("CA") or len(sid) != 34:
        raise ValidationError("CallSid is missing or not a call SID", fields={"CallSid": "invalid"})
    return sid


class _Urls:
    """Our voice webhook URLs for one call's ticket (absolute: Twilio signs what it calls)."""

    def __init__(self, request: web.Request, ticket_id: int, language: str | None) -> None:
        self._config = request.app[TWILIO].config
        self._query = call_query(ticket_id, language)

    def __call__(self, name: str, *, query: bool = True) -> str:
        return self._config.url(f"/webhooks/twilio/voice/{name}" + (self._query if query else ""))


def _queue_name(request: web.Request) -> str:
    return f"cc-{request.app[TWILIO].config.voice_queue or 'voice'}"[:64]


@_route("/webhooks/twilio/voice", "Twilio Voice webhook: an incoming call")
async def incoming(request: web.Request) -> web.StreamResponse:
    """Open the call's ticket (once per CallSid); greet in the caller's language and enqueue."""
    params = await verified(request)
    tw, svc = request.app[TWILIO], services(request)
    call = parse_incoming_call(params)
    view = await svc.db.write(open_call, call, svc.ingest_policy, tw.config.voice_queue)
    if view.final:  # a late retry of a call that is over
        return twiml(hangup_twiml())
    svc.metrics.contacts.labels("voice", "stored").inc()
    url = _Urls(request, view.ticket_id, view.language)
    p = prompts_for(view.language)
    return twiml(enqueue_twiml(p, _queue_name(request), url("wait"), url("queue")))


@_route(
    "/webhooks/twilio/voice/wait",
    "Twilio queue wait URL: place in line, expected wait, voicemail offer",
)
async def wait(request: web.Request) -> web.StreamResponse:
    """One round of waiting; a caller who pressed 1 leaves the queue for voicemail."""
    params = await verified(request)
    config, svc = request.app[TWILIO].config, services(request)
    language = request.query.get("lang")
    p = prompts_for(language)
    voicemail = config.voicemail_after_seconds > 0
    if voicemail and (params.get("Digits") or "").strip() == "1":
        return twiml(leave_twiml())
    ticket_id = query_int(request, "t")
    position, expected = queue_estimate(svc.sla, ticket_id)
    if position is None:  # the SLA service does not know the call (yet): Twilio's figures
        position, expected = _int(params, "QueuePosition"), _int(params, "AvgQueueTime") or None
    waited = _int(params, "QueueTime") or 0
    offer = voicemail and waited >= config.voicemail_after_seconds
    vm_url = config.url(request.raw_path) if offer else None
    text = hold_message(language, position, expected)
    return twiml(hold_twiml(p, text, config.hold_music_url, vm_url))


@_route(
    "/webhooks/twilio/voice/queue",
    "Twilio Enqueue action: the call left the queue (hung up, voicemail, ...)",
)
async def queue_result(request: web.Request) -> web.StreamResponse:
    """``hangup``: an abandon (unless answered); ``leave`` or a queue failure: voicemail."""
    params = await verified(request)
    config, svc = request.app[TWILIO].config, services(request)
    result = (params.get("QueueResult") or "").strip().lower()
    sid = _call_sid(params)
    if result in ("bridged", "redirected"):  # put through to the agent: the call goes on
        return twiml(empty_twiml())
    if result == "hangup":
        await svc.db.write(end_call, sid)
        return twiml(empty_twiml())
    language = request.query.get("lang")
    p = prompts_for(language)
    if result == "leave" or config.voicemail_after_seconds > 0:
        await svc.db.write(end_call, sid, True)
        url = _Urls(request, query_int(request, "t") or 0, language)
        sorry = "" if result == "leave" else p.busy
        return twiml(record_twiml(p, url("recording"), url("transcription"),
                                  VOICEMAIL_MAX_SECONDS, sorry=sorry))  # fmt: skip
    await svc.db.write(end_call, sid)  # queue-full / error and no voicemail: nothing to offer
    return twiml(hangup_twiml(p, p.unavailable))


@_route(
    "/webhooks/twilio/voice/dial",
    "Twilio Dial action: the agent's leg of the call ended or never started",
)
async def dial_result(request: web.Request) -> web.StreamResponse:
    """Talked: the call is over. Agent busy or not answering: back into the queue."""
    params = await verified(request)
    svc = services(request)
    sid = _call_sid(params)
    status = (params.get("DialCallStatus") or "").strip().lower()
    if status in ("completed", "answered"):
        await svc.db.write(end_call, sid, False, "completed")
        return twiml(hangup_twiml())
    view = await svc.db.write(requeue_call, sid, f"agent's line: {status or 'unknown'}")
    if view is None:
        return twiml(hangup_twiml())
    p = prompts_for(view.language)
    url = _Urls(request, view.ticket_id, view.language)
    return twiml(enqueue_twiml(p, _queue_name(request), url("wait"), url("queue"), greet=False,
                               text=p.retry))  # fmt: skip


@_route("/webhooks/twilio/voice/recording", "Twilio Record action: a voicemail was recorded")
async def recording(request: web.Request) -> web.StreamResponse:
    """The voicemail becomes a message of an async ticket; the recording is fetched later."""
    params = await verified(request)
    config, svc = request.app[TWILIO].config, services(request)
    language = request.query.get("lang")
    p = prompts_for(language)
    rec = parse_recording(params)
    if rec is None:
        return twiml(hangup_twiml())
    body = (f"Voicemail of {rec.seconds} s from the call {rec.call.call_sid} "
            "(the recording is attached; the transcription follows).")  # fmt: skip
    contact = voicemail_contact(rec.call, rec.recording_sid, body, config.sms_queue, language)
    result = await svc.db.write(ingest, contact, svc.ingest_policy, _ACTOR)
    if not result.duplicate:
        svc.metrics.contacts.labels("voicemail", "stored").inc()
        await enqueue_media(svc, result.message_id, [Media(f"{rec.url}.mp3", "audio/mpeg")],
                            "voicemail")  # fmt: skip
    return twiml(hangup_twiml(p, p.thanks))


@_route("/webhooks/twilio/voice/transcription", "Twilio transcription callback of a voicemail")
async def transcription(request: web.Request) -> web.StreamResponse:
    """The transcription joins the voicemail's ticket as a message."""
    params = await verified(request)
    config, svc = request.app[TWILIO].config, services(request)
    t = parse_transcription(params)
    hint = await svc.db.read(ticket_of_message, "sms", t.recording_sid)
    contact = voicemail_contact(t.call, t.transcription_sid, t.text, config.sms_queue,
                                request.query.get("lang"), hint)  # fmt: skip
    await svc.db.write(ingest, contact, svc.ingest_policy, _ACTOR)
    return web.Response(status=204)


async def call_status(request: web.Request, params: Mapping[str, str]) -> None:
    """A call status callback (on ``/webhooks/twilio/status``): a final one ends the call.

    Callbacks may come in any order; an ended call stays ended (``calls.end_call``).
    """
    status = (params.get("CallStatus") or "").strip().lower()
    if status in CALL_ENDED:
        await services(request).db.write(end_call, _call_sid(params), False, status)
