"""The Twilio settings both Twilio channels use (SMS/WhatsApp here, voice in ``channels.voice``)."""

from __future__ import annotations

from dataclasses import dataclass

from contact_center.settings import Secret, Settings

__all__ = ["REAL_API_BASE", "TwilioConfig"]

REAL_API_BASE = "https://api.twilio.com"
"""Where Twilio's REST API and media live; ``CC_TWILIO_API_BASE_URL`` may point elsewhere."""


@dataclass(frozen=True, slots=True)
class TwilioConfig:
    """``CC_TWILIO_*`` plus the public base URL every signature is checked against."""

    account_sid: str
    auth_token: Secret
    public_base_url: str
    api_base_url: str = REAL_API_BASE
    sms_from: str = ""
    whatsapp_from: str = ""
    sms_queue: str | None = None
    voice_queue: str | None = None
    voicemail_after_seconds: int = 120
    hold_music_url: str = ""
    keyword_replies: bool = False
    help_text: str = ""
    media_max_bytes: int = 10 * 1024 * 1024
    timeout_seconds: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioConfig | None:
        """The configuration, or None when Twilio is not set up at all.

        Half a setup fails here, at startup: without the auth token no webhook could be
        verified (every one would be refused), without the account SID nothing can be sent.
        """
        sid, token = settings.twilio_account_sid.strip(), settings.twilio_auth_token
        if not sid and not token:
            return None
        if not token.reveal():
            raise ValueError(
                "CC_TWILIO_ACCOUNT_SID is set but CC_TWILIO_AUTH_TOKEN is not: no Twilio "
                "webhook could be verified"
            )
        if not sid.startswith("AC"):
            raise ValueError("CC_TWILIO_ACCOUNT_SID must be the account SID (AC...)")
        if settings.twilio_voicemail_after_seconds < 0:
            raise ValueError("CC_TWILIO_VOICEMAIL_AFTER_SECONDS must be 0 (off) or more")
        base = settings.twilio_api_base_url.strip().rstrip("/") or REAL_API_BASE
        if not base.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError("CC_TWILIO_API_BASE_URL must be https:// (or a loopback stub)")
        return cls(
            account_sid=sid,
            auth_token=token,
            public_base_url=settings.public_base_url.strip().rstrip("/"),
            api_base_url=base,
            sms_from=settings.twilio_sms_from.strip(),
            whatsapp_from=settings.twilio_whatsapp_from.strip(),
            sms_queue=settings.twilio_sms_queue.strip() or None,
            voice_queue=settings.twilio_voice_queue.strip() or None,
            voicemail_after_seconds=settings.twilio_voicemail_after_seconds,
            hold_music_url=settings.twilio_hold_music_url.strip(),
            keyword_replies=settings.twilio_sms_keyword_replies,
            help_text=settings.twilio_sms_help_text.strip(),
            media_max_bytes=settings.attachment_max_bytes,
        )

    def url(self, path_and_query: str) -> str:
        """The public URL of one of our webhooks (what Twilio calls, and signs)."""
        return self.public_base_url + path_and_query
