"""The SLA service tests run without the router: their hand-computed mornings assume no agent
receives offers (an expired offer would set the agent away mid-scenario)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from contact_center.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings with routing off."""
    return replace(settings, routing_enabled=False)
