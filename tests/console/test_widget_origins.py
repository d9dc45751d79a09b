"""Sites allowed to embed the chat widget (CC_SOCKET_ORIGINS) get no staff socket."""

from __future__ import annotations

from dataclasses import replace

import pytest
import socketio

from contact_center.app import create_app

SHOP = "https://shop.example"


@pytest.fixture
def settings(settings):  # the shared settings, with a widget site allowed
    return replace(settings, socket_origins=SHOP)


async def _outcome(port: int, origin: str, auth: dict | None, cookie: str) -> str:
    client = socketio.AsyncClient(reconnection=False)
    try:
        await client.connect(f"http://127.0.0.1:{port}", namespaces=["/agent"], auth=auth,
                             headers={"Cookie": cookie, "Origin": origin},
                             transports=["websocket"], wait_timeout=5)  # fmt: skip
        return "connected"
    except socketio.exceptions.ConnectionError:
        return "refused"
    finally:
        if client.connected:
            await client.disconnect()
        await client.shutdown()
        if client.eio.http is not None:  # a refused handshake leaves the HTTP session open
            await client.eio.http.close()


async def test_the_session_cookie_opens_staff_sockets_only_from_the_desks_own_pages(
    aiohttp_server, settings, services, world
):
    srv = await aiohttp_server(create_app(settings, services=services))
    cookie = f"cc_session={world.tokens['agent']}"
    own = settings.public_base_url
    assert await _outcome(srv.port, SHOP, None, cookie) == "refused"
    assert await _outcome(srv.port, own, None, cookie) == "connected"
    assert await _outcome(srv.port, "https://evil.example", None, cookie) == "refused"
    # an explicit token is the caller's own credential, not an ambient one: it works
    assert await _outcome(srv.port, SHOP, {"token": world.tokens["agent"]}, "") == "connected"
    await srv.close()
