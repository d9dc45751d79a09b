"""Pure parsing and wording for Twilio Voice webhooks (no I/O, no vendor library).

An incoming call becomes an :class:`InboundContact` on channel ``voice`` that always opens
its own ticket. The caller hears the desk in their language (the customer's stored language,
else a guess from the number's country, else English); what they hear is worded here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import phonenumbers

from contact_center.errors import ValidationError
from tickets.contact import InboundContact
from tickets.domain import Channel, HandleKind

__all__ = [
    "CALL_ENDED",
    "PROMPTS",
    "IncomingCall",
    "Prompts",
    "Recording",
    "Transcription",
    "call_contact",
    "guess_language",
    "hold_message",
    "parse_incoming_call",
    "parse_recording",
    "parse_transcription",
    "prompts_for",
    "voicemail_contact",
]

_CALL_SID = re.compile(r"^CA[0-9a-f]{32}$")
_ANY_SID = re.compile(r"^[A-Z]{2}[0-9a-f]{32}$")
CALL_ENDED = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
"""Final Twilio call statuses: the call is over."""

# Regions whose callers are greeted (and routed) in Chinese; everyone else in the default.
_REGION_LANGUAGE = {"CN": "zh", "TW": "zh", "HK": "zh", "MO": "zh"}


@dataclass(frozen=True, slots=True)
class Prompts:
    """What the caller hears, in one language (``say`` is the TwiML ``<Say language>``)."""

    say: str
    greeting: str
    position: str  # {position}
    wait: str  # {minutes}
    wait_short: str
    no_estimate: str
    voicemail_offer: str
    voicemail_prompt: str
    thanks: str
    connecting: str
    retry: str
    busy: str
    unavailable: str


PROMPTS = {
    "en": Prompts(
        say="en-US",
        greeting="Thank you for calling. Please hold, the next available agent will be with you.",
        position="You are number {position} in line.",
        wait="Your expected wait is about {minutes} minutes.",
        wait_short="Your expected wait is less than a minute.",
        no_estimate="An agent will be with you as soon as possible.",
        voicemail_offer="To leave a message instead, press 1 now.",
        voicemail_prompt="Please leave your message after the tone. Hang up when you are done.",
        thanks="Thank you, we received your message and will get back to you. Goodbye.",
        connecting="Connecting you to an agent now.",
        retry="Sorry, the agent could not take your call. Please stay on the line.",
        busy="Sorry, all our lines are busy right now.",
        unavailable="Sorry, we cannot take your call right now. Please try again later.",
    ),
    "zh": Prompts(
        say="zh-CN",
        greeting="感谢您的来电。请稍候，我们将尽快为您接通客服人员。",
        position="您现在排在第 {position} 位。",
        wait="预计等待时间约为 {minutes} 分钟。",
        wait_short="预计等待时间不到一分钟。",
        no_estimate="客服人员将尽快为您服务。",
        voicemail_offer="如需留言，请现在按 1。",
        voicemail_prompt="请在提示音后留言，留言完毕后请挂机。",
        thanks="谢谢，我们已收到您的留言，会尽快回复您。再见。",
        connecting="正在为您接通客服人员。",
        retry="抱歉，客服人员暂时无法接听，请不要挂机。",
        busy="抱歉，我们的线路现在全忙。",
        unavailable="抱歉，我们现在无法接听您的电话，请稍后再拨。",
    ),
}


def prompts_for(language: str | None) -> Prompts:
    """The prompts of a language tag (``zh-TW`` → Chinese), English when we have none."""
    primary = (language or "en").split("-", 1)[0].lower()
    return PROMPTS.get(primary, PROMPTS["en"])


def hold_message(language: str | None, position: int | None, expected_seconds: float | None) -> str:
    """The announcement between the hold music: place in line and expected wait."""
    p = prompts_for(language)
    parts = []
    if position is not None and position >= 1:
        parts.append(p.position.format(position=position))
    if expected_seconds is None:
        parts.append(p.no_estimate)
    elif expected_seconds < 60:
        parts.append(p.wait_short)
    else:
        parts.append(p.wait.format(minutes=math.ceil(expected_seconds / 60)))
    return " ".join(parts)


def guess_language(number: str) -> str | None:
    """The language of a caller's country when it is one we greet in besides English."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    return _REGION_LANGUAGE.get(phonenumbers.region_code_for_number(parsed) or "")


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """An incoming call (the Voice webhook's first request)."""

    call_sid: str
    caller: str  # E.164, or "" when the number is withheld
    called: str
    language: str | None

    @property
    def handle(self) -> tuple[str, HandleKind]:
        """The customer's handle: their number, or an anonymous one per call."""
        if self.caller:
            return self.caller, HandleKind.PHONE
        return f"anonymous-{self.call_sid}", HandleKind.EXTERNAL


def _sid(params: Mapping[str, str], name: str, pattern: re.Pattern[str] = _ANY_SID) -> str:
    value = (params.get(name) or "").strip()
    if not pattern.match(value):
        raise ValidationError(f"{name} is missing or not a Twilio SID", fields={name: "invalid"})
    return value


def _caller(params: Mapping[str, str]) -> str:
    raw = (params.get("From") or params.get("Caller") or "").strip()
    if not raw.startswith("+"):
        return ""  # "anonymous", "restricted", "client:…", "sip:…": nothing to call back
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        return ""
    if not phonenumbers.is_possible_number(parsed):
        return ""
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def parse_incoming_call(params: Mapping[str, str]) -> IncomingCall:
    """The call of a Voice webhook."""
    caller = _caller(params)
    return IncomingCall(
        call_sid=_sid(params, "CallSid", _CALL_SID),
        caller=caller,
        called=(params.get("To") or params.get("Called") or "").strip(),
        language=guess_language(caller) if caller else None,
    )


def call_contact(call: IncomingCall, language: str | None, queue: str | None) -> InboundContact:
    """The contact for ingest: its own ticket on channel voice, in ``language``."""
    handle, kind = call.handle
    who = call.caller or "a withheld number"
    return InboundContact(
        channel=Channel.VOICE,
        external_id=call.call_sid,
        handle=handle,
        handle_kind=kind,
        subject=f"Call from {who}",
        body_text=f"Incoming call from {who} to {call.called or 'our number'}.",
        language=language,
        queue=queue,
        new_ticket=True,
    )


@dataclass(frozen=True, slots=True)
class Recording:
    """A voicemail's recording (the ``<Record>`` action's request)."""

    recording_sid: str
    url: str
    seconds: int
    call: IncomingCall


def parse_recording(params: Mapping[str, str]) -> Recording | None:
    """The recording, or None when nothing was recorded."""
    url = (params.get("RecordingUrl") or "").strip()
    try:
        seconds = int(params.get("RecordingDuration") or 0)
    except ValueError:
        seconds = 0
    if not url or seconds <= 0:
        return None
    return Recording(_sid(params, "RecordingSid"), url, seconds, parse_incoming_call(params))


@dataclass(frozen=True, slots=True)
class Transcription:
    """The transcription callback of a voicemail."""

    transcription_sid: str
    recording_sid: str
    text: str
    call: IncomingCall


def parse_transcription(params: Mapping[str, str]) -> Transcription:
    """The transcription (its text, or a note that it failed)."""
    ok = (params.get("TranscriptionStatus") or "").strip().lower() == "completed"
    text = (params.get("TranscriptionText") or "").strip() if ok else ""
    return Transcription(
        _sid(params, "TranscriptionSid"),
        _sid(params, "RecordingSid"),
        f"Transcription of the voicemail: {text}" if text else
        "The voicemail could not be transcribed; listen to the recording.",
        parse_incoming_call(params),
    )  # fmt: skip


def voicemail_contact(
    call: IncomingCall, external_id: str, body: str, queue: str | None,
    language: str | None, ticket_hint: int | None = None,
) -> InboundContact:  # fmt: skip
    """A voicemail (or its transcription) as an async contact: a text conversation with the
    caller's number (replies go out as SMS), in the SMS queue."""
    handle, kind = call.handle
    return InboundContact(
        channel=Channel.SMS,
        external_id=external_id,
        handle=handle,
        handle_kind=kind,
        subject=f"Voicemail from {call.caller or 'a withheld number'}",
        body_text=body,
        language=language,
        queue=queue,
        ticket_hint=ticket_hint,
    )
