"""Pure parts of the voice channel: calls, languages, what the caller hears, voicemail."""

from __future__ import annotations

import pytest

from channels.voice.parse import (
    call_contact,
    guess_language,
    hold_message,
    parse_incoming_call,
    parse_recording,
    parse_transcription,
    prompts_for,
    voicemail_contact,
)
from contact_center.errors import ValidationError
from tests.channels.twilio_fixtures import call_params
from tickets.domain import Channel, HandleKind


def test_an_incoming_call_is_its_own_voice_ticket():
    call = parse_incoming_call(call_params("+1 (415) 555-0101", CallSid="CA" + "c" * 32))
    assert call.caller == "+14155550101" and call.call_sid == "CA" + "c" * 32
    contact = call_contact(call, None, "general")
    assert contact.channel is Channel.VOICE and contact.new_ticket
    assert contact.external_id == call.call_sid and contact.queue == "general"
    assert contact.handle_kind is HandleKind.PHONE and contact.subject == "Call from +14155550101"


@pytest.mark.parametrize("sender", ["anonymous", "restricted", "client:alice", "+266696687", ""])
def test_a_withheld_number_gets_a_handle_of_its_own(sender):
    call = parse_incoming_call(call_params(sender, Caller=sender))
    assert call.caller == "" and call.language is None
    handle, kind = call.handle
    assert kind is HandleKind.EXTERNAL and handle == f"anonymous-{call.call_sid}"


def test_a_call_needs_a_call_sid():
    with pytest.raises(ValidationError):
        parse_incoming_call(call_params(CallSid="SM" + "0" * 32))


@pytest.mark.parametrize(
    ("number", "language"),
    [("+8613800138000", "zh"), ("+886912345678", "zh"), ("+85291234567", "zh"),
     ("+14155550101", None), ("+4930123456", None), ("not a number", None)],
)  # fmt: skip
def test_the_language_is_guessed_from_the_country(number, language):
    assert guess_language(number) == language


def test_prompts_follow_the_language_tag():
    assert prompts_for("zh-TW").say == "zh-CN" and prompts_for(None).say == "en-US"
    assert prompts_for("fr").say == "en-US"


@pytest.mark.parametrize(
    ("position", "wait", "text"),
    [(1, None, "You are number 1 in line. An agent will be with you as soon as possible."),
     (3, 25.0, "You are number 3 in line. Your expected wait is less than a minute."),
     (2, 61.0, "You are number 2 in line. Your expected wait is about 2 minutes."),
     (None, 300.0, "Your expected wait is about 5 minutes.")],
)  # fmt: skip
def test_the_hold_message(position, wait, text):
    assert hold_message("en", position, wait) == text


def test_the_hold_message_in_chinese():
    assert hold_message("zh", 2, 90) == "您现在排在第 2 位。 预计等待时间约为 2 分钟。"


def test_recordings_and_transcriptions():
    base = call_params()
    assert parse_recording({**base, "RecordingSid": "RE" + "1" * 32, "RecordingUrl": "",
                            "RecordingDuration": "0"}) is None  # fmt: skip
    rec = parse_recording({**base, "RecordingSid": "RE" + "1" * 32,
                           "RecordingUrl": "https://api.twilio.com/x/RE1",
                           "RecordingDuration": "14"})  # fmt: skip
    assert rec is not None and rec.seconds == 14
    contact = voicemail_contact(rec.call, rec.recording_sid, "vm", "general", "en")
    assert contact.channel is Channel.SMS and contact.subject == "Voicemail from +14155550101"
    t = parse_transcription({**base, "TranscriptionSid": "TR" + "2" * 32,
                             "RecordingSid": "RE" + "1" * 32, "TranscriptionStatus": "completed",
                             "TranscriptionText": "Please call me back"})  # fmt: skip
    assert t.text == "Transcription of the voicemail: Please call me back"
    failed = parse_transcription({**base, "TranscriptionSid": "TR" + "2" * 32,
                                  "RecordingSid": "RE" + "1" * 32,
                                  "TranscriptionStatus": "failed"})  # fmt: skip
    assert "could not be transcribed" in failed.text
