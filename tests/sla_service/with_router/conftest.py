"""SLA tests with the real router running: offers, accepts and cancellations drive the figures."""

from __future__ import annotations

from dataclasses import replace

import pytest

from contact_center.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The SLA service tests' settings, with the router back on."""
    return replace(settings, routing_enabled=True)
