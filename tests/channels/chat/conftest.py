"""Chat fixtures: the real app with the /customer namespace, agents who speak English."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from contact_center.app import create_app
from contact_center.db import Actor
from tests.conftest import World
from tests.console._agents import AgentClient
from tickets.actions import admin


@pytest.fixture
def chat_overrides() -> dict[str, Any]:
    """Settings a test changes (parametrize ``chat_overrides`` to change them)."""
    return {}


@pytest.fixture
def settings(settings, chat_overrides):  # the shared settings, plus this test's chat ones
    return replace(settings, **chat_overrides)


@pytest.fixture
def chat_world(world: World) -> World:
    """The red agents speak English (a widget chat needs ``lang:en``); ``agent`` Chinese too."""
    for who, skills in (("agent", {"billing": 3, "lang:en": 4, "lang:zh": 3}),
                        ("agent2", {"billing": 3, "lang:en": 4})):  # fmt: skip
        world.svc.db.write_sync(admin.update_user, Actor("cli"), world.users[who]["id"],
                                {"skills": skills})  # fmt: skip
    return world


@pytest.fixture
async def server(aiohttp_server, settings, services, chat_world):
    srv = await aiohttp_server(create_app(settings, services=services))
    yield srv
    await srv.close()  # app cleanup before the services fixture closes the database


@pytest.fixture
async def agent(server, chat_world):
    """The ``agent`` console, connected and available."""
    c = AgentClient("agent", chat_world.tokens["agent"])
    await c.connect(server.port)
    await c.wait_for("snapshot")
    assert (await c.call("presence", {"presence": "available"}))["ok"]
    yield c
    await c.close()
