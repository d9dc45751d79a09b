"""The /agent namespace's conversation requests are scoped: chat only, own tickets only."""

from __future__ import annotations

import pytest

from contact_center.app import create_app
from tests.conftest import inbound
from tests.console._agents import AgentClient, post_inbound


@pytest.fixture
async def server(aiohttp_server, settings, services, world):
    srv = await aiohttp_server(create_app(settings, services=services))
    yield srv
    await srv.close()


async def _console(server, world, who):
    c = AgentClient(who, world.tokens[who])
    await c.connect(server.port)
    await c.wait_for("snapshot")
    return c


async def test_replies_typing_and_read_marks_stay_in_scope(server, world):
    red, blue = await _console(server, world, "agent"), await _console(server, world, "blue_agent")
    mail = await post_inbound(server.port, world.tokens["admin"],
                              inbound("m1", channel="email", queue="general"))  # fmt: skip
    chat = await post_inbound(server.port, world.tokens["admin"],
                              inbound("c1", handle="visitor-c1", channel="chat",
                                      queue="general"))  # fmt: skip
    snap = red.seen("snapshot")[0]
    assert "now" in snap  # the console's clock offset for countdowns
    ack = await red.call("reply", {"ticket_id": mail["ticket_id"], "body": "hi",
                                   "client_id": "abcdefgh"})  # fmt: skip
    assert ack["ok"] is False and ack["error"]["fields"] == {"ticket_id": "not a chat ticket"}
    tid = chat["ticket_id"]
    for bad in ({"ticket_id": tid, "body": "", "client_id": "abcdefgh"},
                {"ticket_id": tid, "body": "hi", "client_id": "x"},
                {"ticket_id": tid, "body": "hi", "client_id": "../../etc"}):  # fmt: skip
        assert (await red.call("reply", bad))["error"]["code"] == "invalid_request", bad
    for event, body in (("reply", {"body": "hi", "client_id": "abcdefgh"}),
                        ("typing", {"typing": True}), ("read", {"message_id": 1})):  # fmt: skip
        ack = await blue.call(event, {"ticket_id": chat["ticket_id"], **body})
        assert ack["error"]["code"] == "not_found", event  # another team's chat: not there
    # in scope (unassigned in the agent's queue) but not theirs: no typing on its behalf
    ack = await red.call("typing", {"ticket_id": chat["ticket_id"], "typing": True})
    assert ack["error"]["fields"] == {"ticket_id": "not yours"}
    await red.close()
    await blue.close()
