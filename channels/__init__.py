"""Channel adapters: each turns its payloads into ``InboundContact`` and sends replies out."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from channels.base import LocalSender, OutboundMessage, OutboundSender, SendResult
from contact_center.settings import Settings

__all__ = [
    "SOCKET_NAMESPACES",
    "LocalSender",
    "OutboundMessage",
    "OutboundSender",
    "SendResult",
    "build_senders",
    "channel_routes",
    "setup_channels",
]

SOCKET_NAMESPACES: web.AppKey[list[Any]] = web.AppKey("channel_socket_namespaces")
"""Socket.IO namespace factories the channels' ``setup`` hooks add (the chat's ``/customer``)."""


def build_senders(settings: Settings) -> dict[str, Any]:
    """One sender per channel that can send with these settings.

    API and chat replies are read by the customer's client from the desk itself; email (SMTP)
    and SMS, WhatsApp and voice (Twilio) senders join here when they are configured.
    """
    local = LocalSender()
    senders: dict[str, Any] = {"api": local, "chat": local}
    from channels.email import email_sender  # SMTP when CC_SMTP_HOST is set

    email = email_sender(settings)
    if email is not None:
        senders["email"] = email
    from channels.sms import sms_sender  # Twilio REST when CC_TWILIO_* are set

    sms = sms_sender(settings)
    if sms is not None:
        for channel in ("sms", "whatsapp", "voice"):  # voice: replies to a caller are texts
            senders[channel] = sms
    return senders


def setup_channels(app: web.Application, settings: Settings) -> None:
    """Let each configured channel add its routes and long-lived tasks (``cleanup_ctx``).

    A channel package exposes ``setup(app, settings) -> None``; it does nothing when its
    settings are absent, so the embedded default runs with the API channel only.
    """
    import importlib

    app[SOCKET_NAMESPACES] = []
    for name in CHANNEL_PACKAGES:
        module = importlib.import_module(f"channels.{name}")
        setup = getattr(module, "setup", None)
        if setup is not None:
            setup(app, settings)


def channel_routes() -> list[Any]:
    """The route registries of the channels (the built-in API channel's and each package's
    ``routes``), for ``create_app`` to install with the rest."""
    import importlib

    from contact_center.web import Registry

    found = []
    for name in ("api", *CHANNEL_PACKAGES):
        routes = getattr(importlib.import_module(f"channels.{name}"), "routes", None)
        if isinstance(routes, Registry):
            found.append(routes)
    return found


CHANNEL_PACKAGES: tuple[str, ...] = ("email", "chat", "sms", "voice")
"""Channel packages with a ``setup`` hook, in start order (the API channel is built in)."""
