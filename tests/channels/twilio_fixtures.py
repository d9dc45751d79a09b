"""Fixtures and payloads shared by the SMS and voice tests: the Twilio stub, a running desk
configured for it, and webhook parameters shaped like the ones Twilio sends.

Import the fixtures into a package's ``conftest.py`` (``from tests.channels.twilio_fixtures
import *``). The desk believes it lives at ``PUBLIC`` (``CC_PUBLIC_BASE_URL``), as behind a
TLS proxy; webhooks are sent to its real port and signed for ``PUBLIC`` URLs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from contact_center.app import create_app
from contact_center.settings import Secret, Settings
from tests.twilio_stub import TwilioStub, Webhooks, new_sid

__all__ = [
    "ACCOUNT_SID",
    "OUR_NUMBER",
    "PUBLIC",
    "TOKEN",
    "WHATSAPP_NUMBER",
    "call_params",
    "desk",
    "hooks",
    "settings",
    "sms_params",
    "stub",
]

PUBLIC = "https://desk.example.test"
ACCOUNT_SID = "AC" + "5e" * 16
TOKEN = "twilio-test-auth-token-0123456789"
OUR_NUMBER = "+15005550006"
WHATSAPP_NUMBER = "whatsapp:+14155238886"


def sms_params(body: str, sender: str = "+14155550101", **extra: str) -> dict[str, str]:
    """An inbound SMS webhook, field for field as Twilio posts it."""
    sid = extra.pop("MessageSid", None) or new_sid("SM")
    return {
        "ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid, "NumMedia": "0",
        "ToCity": "", "FromZip": "94105", "SmsSid": sid, "FromState": "CA",
        "SmsStatus": "received", "FromCity": "SAN FRANCISCO", "Body": body,
        "FromCountry": "US", "To": OUR_NUMBER, "ToZip": "", "NumSegments": "1",
        "MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": sender, "ApiVersion": "2010-04-01",
        **extra,
    }  # fmt: skip


def call_params(sender: str = "+14155550101", **extra: str) -> dict[str, str]:
    """An incoming call's Voice webhook, as Twilio posts it."""
    sid = extra.pop("CallSid", None) or new_sid("CA")
    return {
        "AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": sid,
        "CallStatus": "ringing", "Called": OUR_NUMBER, "CalledCountry": "US",
        "Caller": sender, "CallerCountry": "US", "Direction": "inbound", "From": sender,
        "FromCountry": "US", "To": OUR_NUMBER, "ToCountry": "US", **extra,
    }  # fmt: skip


@pytest.fixture
async def stub() -> AsyncIterator[TwilioStub]:
    """Twilio's REST API, on a local port."""
    s = TwilioStub(ACCOUNT_SID, TOKEN)
    await s.start()
    yield s
    await s.close()


@pytest.fixture
def settings(settings: Settings, stub: TwilioStub) -> Settings:
    """The test settings with Twilio configured against the stub."""
    return replace(
        settings,
        public_base_url=PUBLIC,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=Secret(TOKEN),
        twilio_api_base_url=stub.base_url,
        twilio_sms_from=OUR_NUMBER,
        twilio_whatsapp_from=WHATSAPP_NUMBER,
        twilio_voicemail_after_seconds=60,
        twilio_sms_keyword_replies=True,
        twilio_hold_music_url="https://desk.example.test/static/hold.mp3",
    )


@pytest.fixture
async def desk(aiohttp_server: Any, settings: Settings, services: Any, world: Any) -> Any:
    """The real app on a real port (webhooks and Socket.IO clients reach it over TCP)."""
    srv = await aiohttp_server(create_app(settings, services=services))
    yield srv
    await srv.close()  # app cleanup before the services fixture closes the database


@pytest.fixture
async def hooks(desk: Any) -> AsyncIterator[Webhooks]:
    """Signed webhooks to the desk, for its public URLs."""
    h = Webhooks(f"http://127.0.0.1:{desk.port}", PUBLIC, TOKEN)
    yield h
    await h.close()
