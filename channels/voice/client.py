"""TwiML for calls: the only module of the voice channel that imports the twilio library.

REST calls (redirecting a call to its agent) go through the SMS channel's
:class:`channels.sms.client.TwilioRest`, the one Twilio REST client of the desk.
"""

from __future__ import annotations

from dataclasses import dataclass

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from channels.voice.parse import Prompts

__all__ = [
    "AgentLine",
    "connect_twiml",
    "empty_twiml",
    "enqueue_twiml",
    "hangup_twiml",
    "hold_twiml",
    "leave_twiml",
    "record_twiml",
]


@dataclass(frozen=True, slots=True)
class AgentLine:
    """Where an agent takes calls: a phone number, else their Twilio Client identity."""

    agent_id: int
    phone: str | None = None

    @property
    def identity(self) -> str:
        """The Twilio Client (Voice SDK) identity of the agent's console."""
        return f"agent-{self.agent_id}"


def enqueue_twiml(
    p: Prompts, queue_name: str, wait_url: str, action_url: str, *, greet: bool = True,
    text: str | None = None,
) -> str:  # fmt: skip
    """Greet (or say ``text``) and put the call in the queue; ``wait_url`` entertains it."""
    r = VoiceResponse()
    say = p.greeting if greet else text
    if say:
        r.say(say, language=p.say)
    r.enqueue(queue_name, wait_url=wait_url, wait_url_method="POST", action=action_url,
              method="POST")  # fmt: skip
    return str(r)


def hold_twiml(
    p: Prompts, announcement: str, music_url: str, voicemail_url: str | None
) -> str:  # fmt: skip
    """One round of waiting: the announcement, the voicemail offer, the music."""
    r = VoiceResponse()
    if voicemail_url is not None:
        g = Gather(num_digits=1, action=voicemail_url, method="POST", timeout=3)
        g.say(f"{announcement} {p.voicemail_offer}", language=p.say)
        r.append(g)
    else:
        r.say(announcement, language=p.say)
    if music_url:
        r.play(music_url)
    else:
        r.pause(length=20)
    return str(r)


def empty_twiml() -> str:
    """Nothing more to do on this call."""
    return str(VoiceResponse())


def leave_twiml() -> str:
    """Leave the queue (the ``<Enqueue>`` action then hears ``QueueResult=leave``)."""
    r = VoiceResponse()
    r.leave()
    return str(r)


def record_twiml(
    p: Prompts, action_url: str, transcribe_url: str, max_seconds: int, *, sorry: str = ""
) -> str:  # fmt: skip
    """Ask for a message and record it, with a transcription callback."""
    r = VoiceResponse()
    if sorry:
        r.say(sorry, language=p.say)
    r.say(p.voicemail_prompt, language=p.say)
    r.record(action=action_url, method="POST", max_length=max_seconds, play_beep=True,
             transcribe=True, transcribe_callback=transcribe_url, finish_on_key="#")  # fmt: skip
    return str(r)


def hangup_twiml(p: Prompts | None = None, text: str = "") -> str:
    """Optionally say something, then hang up."""
    r = VoiceResponse()
    if p is not None and text:
        r.say(text, language=p.say)
    r.hangup()
    return str(r)


def connect_twiml(p: Prompts, line: AgentLine, action_url: str, timeout: int = 20) -> str:
    """Put the caller through to the agent (their phone, or their console's Twilio Client)."""
    r = VoiceResponse()
    r.say(p.connecting, language=p.say)
    d = Dial(action=action_url, method="POST", timeout=timeout, answer_on_bridge=True)
    if line.phone:
        d.number(line.phone)
    else:
        d.client(line.identity)
    r.append(d)
    return str(r)
