"""Socket.IO connections are authorised at connect by token (or cookie) and role."""

from __future__ import annotations

import pytest
import socketio

from contact_center.app import create_app
from contact_center.realtime import AuthedNamespace
from tickets.domain import Role


class SupervisorsOnly(AuthedNamespace):
    roles = frozenset({Role.SUPERVISOR, Role.ADMIN})

    async def joined(self, sid, user):
        await self.emit("hello", {"name": user.name}, to=sid)


@pytest.fixture
async def server(aiohttp_server, settings, services, world):
    app = create_app(settings, services=services,
                     extra_namespaces=[lambda svc: SupervisorsOnly("/test", svc)])  # fmt: skip
    srv = await aiohttp_server(app)
    yield srv
    await srv.close()  # app cleanup before the services fixture closes the database


async def _connect(server, auth, headers=None):
    client = socketio.AsyncClient(reconnection=False)
    got = {}

    @client.on("hello", namespace="/test")
    async def hello(data):
        got["hello"] = data

    try:
        await client.connect(
            f"http://127.0.0.1:{server.port}",
            namespaces=["/test"],
            auth=auth,
            transports=["websocket"],
            headers=headers or {},
            wait_timeout=5,
        )
    except socketio.exceptions.ConnectionError as err:
        await client.shutdown()
        if client.eio.http is not None:
            await client.eio.http.close()
        return None, str(err)
    await client.sleep(0.05)
    return client, got


async def test_missing_bad_and_wrong_role_tokens_are_refused(server, world):
    for auth in (None, {"token": "forged"}, {"token": world.tokens["agent"]}):
        client, _why = await _connect(server, auth)
        assert client is None, auth
    client, got = await _connect(server, {"token": world.tokens["supervisor"]})
    assert client is not None
    for _ in range(50):
        if got:
            break
        await client.sleep(0.02)
    assert got["hello"] == {"name": "Supervisor"}
    await client.disconnect()


async def test_foreign_origin_is_refused(server, world):
    client, _ = await _connect(server, {"token": world.tokens["admin"]},
                               headers={"Origin": "https://evil.example"})  # fmt: skip
    assert client is None
