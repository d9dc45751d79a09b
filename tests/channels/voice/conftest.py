"""Twilio fixtures: the REST stub, the desk configured for it, signed webhooks."""

from tests.channels.twilio_fixtures import desk, hooks, settings, stub

__all__ = ["desk", "hooks", "settings", "stub"]
