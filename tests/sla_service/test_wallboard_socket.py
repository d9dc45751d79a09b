"""The /wallboard namespace: snapshot on connect, pushed updates per team, supervisors only."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio

from contact_center.app import create_app
from tests.conftest import inbound


@pytest.fixture
async def server(aiohttp_server, settings, services, world):
    srv = await aiohttp_server(create_app(settings, services=services))
    yield srv
    await srv.close()  # app cleanup before the services fixture closes the database


class Board:
    """A connected wallboard client that records what it receives, in order."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.got: list[tuple[str, Any]] = []
        self.arrived = asyncio.Event()
        for name in ("wallboard.snapshot", "wallboard.update", "sla.alert"):
            self.client.on(name, self._recorder(name), namespace="/wallboard")

    def _recorder(self, name: str) -> Any:
        async def record(data: Any) -> None:
            self.got.append((name, data))
            self.arrived.set()

        return record

    async def wait_for(self, name: str, match: Any = lambda d: True, timeout: float = 5) -> Any:
        async def find() -> Any:
            while True:
                for kind, data in self.got:
                    if kind == name and match(data):
                        return data
                self.arrived.clear()
                await self.arrived.wait()

        return await asyncio.wait_for(find(), timeout)

    async def close(self) -> None:
        await self.client.disconnect()


async def _connect(server, token: str) -> Board | None:
    board = Board()
    try:
        await board.client.connect(f"http://127.0.0.1:{server.port}", namespaces=["/wallboard"],
                                   auth={"token": token}, transports=["websocket"],
                                   wait_timeout=5)  # fmt: skip
    except socketio.exceptions.ConnectionError:
        await board.client.shutdown()
        return None
    return board


def _queue(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((q for q in data["queues"] if q["name"] == name), None)


def _waiting(data: dict[str, Any], name: str) -> int | None:
    queue = _queue(data, name)
    return None if queue is None else int(queue["waiting"])


async def _ingest(server, world, ext: str, queue: str) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"http://127.0.0.1:{server.port}/api/v1/inbound",
                               json=inbound(ext, handle=f"{ext}@example.com", queue=queue),
                               headers=world.auth("admin"))  # fmt: skip
        assert resp.status == 201, await resp.text()


async def test_supervisor_gets_snapshot_and_own_team_updates_only(server, world):
    red = await _connect(server, world.tokens["supervisor"])
    blue = await _connect(server, world.tokens["blue_supervisor"])
    admin = await _connect(server, world.tokens["admin"])
    assert red and blue and admin
    try:
        snap = await red.wait_for("wallboard.snapshot")
        assert snap["scope"] == {"team_id": world.teams["red"]}
        assert _queue(snap, "general")["waiting"] == 0
        assert _queue(snap, "tech") is None
        assert "last_event_id" in snap
        await blue.wait_for("wallboard.snapshot")
        await admin.wait_for("wallboard.snapshot")

        await _ingest(server, world, "ws-red", "general")
        loop = asyncio.get_running_loop()
        start = loop.time()
        update = await red.wait_for("wallboard.update", lambda d: _waiting(d, "general") == 1)
        assert loop.time() - start < 1.0  # pushed within a second of the event
        assert update["last_event_id"] > snap["last_event_id"]
        assert update["totals"]["offered_today"] == 1
        assert all(q["team_id"] == world.teams["red"] for q in update["queues"])
        await admin.wait_for("wallboard.update", lambda d: _waiting(d, "general") == 1)

        # blue hears about blue's queue, and never got red's numbers before that
        await _ingest(server, world, "ws-blue", "tech")
        await blue.wait_for("wallboard.update", lambda d: _queue(d, "tech")["waiting"] == 1)
        for kind, data in blue.got:
            if kind == "wallboard.update":
                assert _queue(data, "general") is None
                assert data["scope"] == {"team_id": world.teams["blue"]}
    finally:
        for board in (red, blue, admin):
            await board.close()


async def test_updates_are_built_only_for_rooms_someone_watches(server, world, monkeypatch):
    from agent_console.wallboard import WallboardNamespace

    built: list[tuple[int | None, bool]] = []
    real = WallboardNamespace.update_for

    def spy(self: Any, change: Any, team_id: int | None, everything: bool = False) -> Any:
        built.append((team_id, everything))
        return real(self, change, team_id, everything)

    monkeypatch.setattr(WallboardNamespace, "update_for", spy)
    red = await _connect(server, world.tokens["supervisor"])  # red's board, no admin's
    assert red
    try:
        await red.wait_for("wallboard.snapshot")
        await _ingest(server, world, "ws-blue-only", "tech")  # blue's queue: nobody watches
        await _ingest(server, world, "ws-red-too", "general")
        await red.wait_for("wallboard.update", lambda d: _waiting(d, "general") == 1)
        assert built and set(built) == {(world.teams["red"], False)}
    finally:
        await red.close()


async def test_agents_and_strangers_are_refused(server, world):
    for token in (world.tokens["agent"], "forged"):
        assert await _connect(server, token) is None


async def test_breach_alert_reaches_the_team_supervisor(server, world, clock):
    from datetime import timedelta

    from tests.sla_service._helpers import settle

    red = await _connect(server, world.tokens["supervisor"])
    assert red
    try:
        await red.wait_for("wallboard.snapshot")
        import aiohttp

        async with aiohttp.ClientSession() as http:
            resp = await http.post(f"http://127.0.0.1:{server.port}/api/v1/inbound",
                                   json=inbound("ws-chat", handle="visitor-ws", channel="chat"),
                                   headers=world.auth("admin"))  # fmt: skip
            ticket_id = (await resp.json())["ticket_id"]
        await settle(world.svc)
        clock.advance(seconds=20)
        await world.svc.sla.tick()
        alert = await red.wait_for("sla.alert", lambda a: a["type"] == "sla.breached")
        assert alert["ticket_id"] == ticket_id and alert["metric"] == "answer"
        assert alert["priority"] == 3 and alert["team_id"] == world.teams["red"]
        assert clock.now - timedelta(seconds=20) < clock.now  # the clock drove it, not a sleep
    finally:
        await red.close()


async def test_updates_carry_occupancy(server, world, clock):
    import aiohttp

    from tests.sla_service._helpers import settle

    red = await _connect(server, world.tokens["supervisor"])
    assert red
    try:
        await red.wait_for("wallboard.snapshot")
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{server.port}/api/v1"
            resp = await http.put(f"{base}/me/presence", json={"presence": "available"},
                                  headers=world.auth("agent"))  # fmt: skip
            assert resp.status == 200
            resp = await http.post(
                f"{base}/inbound",
                headers=world.auth("admin"),
                json=inbound("ws-occ", handle="visitor-occ", channel="chat"),
            )
            ticket_id = (await resp.json())["ticket_id"]
            await settle(world.svc)
            clock.advance(seconds=60)  # idle for a minute, then on the chat for 90 s
            resp = await http.patch(
                f"{base}/tickets/{ticket_id}",
                headers=world.auth("supervisor"),
                json={"assignee_id": world.users["agent"]["id"]},
            )
            assert resp.status == 200
            await settle(world.svc)
            clock.advance(seconds=90)
            resp = await http.put(f"{base}/me/presence", json={"presence": "busy"},
                                  headers=world.auth("agent2"))  # fmt: skip
            assert resp.status == 200
        update = await red.wait_for(
            "wallboard.update", lambda d: d["agents"]["by_presence"].get("busy") == 1
        )
        assert update["agents"]["occupancy"]["today"] == 0.6  # 90 / (90 + 60)
        assert update["agents"]["occupied_seconds_today"] == 90.0
    finally:
        await red.close()
