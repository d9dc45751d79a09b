"""The Socket.IO managers skip encoding a local emit to a room none of this process's sockets is
in (every process hears every event; most rooms are another process's), and still deliver to
the ones that are. Real server, real client, real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis
import socketio
from aiohttp import web

from contact_center.realtime import LocalManager, RedisManager
from tests.conftest import REDIS_URL


class _Room(socketio.AsyncNamespace):  # type: ignore[misc]
    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        await self.enter_room(sid, "here")


@pytest.fixture(params=["local", "redis"])
async def served(request, unused_tcp_port, monkeypatch):
    channel = f"cc-test-sio-{uuid.uuid4().hex}"
    manager = LocalManager() if request.param == "local" else RedisManager(REDIS_URL, channel)
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager)
    sio.register_namespace(_Room("/t"))
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    got: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    client = socketio.AsyncClient()
    for name in ("a", "b", "c", "d"):
        client.on(name, lambda data, name=name: got.put_nowait((name, data)), namespace="/t")
    await client.connect(f"http://127.0.0.1:{unused_tcp_port}", namespaces=["/t"],
                         transports=["websocket"])  # fmt: skip
    for _ in range(200):  # the connect handler has joined the room
        if sio.manager.rooms.get("/t", {}).get("here"):
            break
        await asyncio.sleep(0.01)
    encoded: list[Any] = []
    real = socketio.packet.Packet.encode
    monkeypatch.setattr(socketio.packet.Packet, "encode",
                        lambda self: encoded.append(self.data) or real(self))  # fmt: skip
    try:
        yield request.param, sio, channel, got, encoded
    finally:
        await client.disconnect()
        await sio.shutdown()
        await runner.cleanup()
        if isinstance(manager, RedisManager):  # its listener and connections (a test's own)
            if getattr(manager, "thread", None) is not None:
                manager.thread.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await manager.thread
            if getattr(manager, "redis", None) is not None:
                await manager.pubsub.aclose()
                await manager.redis.aclose()


async def test_an_emit_to_a_room_with_no_socket_here_is_not_encoded(served):
    _kind, sio, _, got, encoded = served
    await sio.emit("a", {"n": 1}, room="elsewhere", namespace="/t", ignore_queue=True)
    await sio.emit("a", {"n": 2}, room=["elsewhere", "nowhere"], namespace="/t",
                   ignore_queue=True)  # fmt: skip
    await sio.emit("a", {"n": 3}, room="elsewhere", namespace="/nobody", ignore_queue=True)
    assert encoded == []
    await sio.emit("b", {"n": 4}, room="here", namespace="/t", ignore_queue=True)
    await sio.emit("c", {"n": 5}, room=["elsewhere", "here"], namespace="/t", ignore_queue=True)
    await sio.emit("d", {"n": 6}, namespace="/t", ignore_queue=True)  # everyone here
    assert [d[0] for d in encoded] == ["b", "c", "d"]  # each encoded once
    arrived = [await asyncio.wait_for(got.get(), 10) for _ in range(3)]
    assert arrived == [("b", {"n": 4}), ("c", {"n": 5}), ("d", {"n": 6})]
    assert got.empty()  # the skipped ones never came


async def test_an_emit_for_every_process_is_still_published(served):
    """Without ``ignore_queue`` the Redis manager publishes to the other processes even when
    no local socket is in the room (they may hold it); only the local delivery is skipped."""
    kind, sio, channel, _, encoded = served
    if kind == "local":
        await sio.emit("a", {"n": 1}, room="elsewhere", namespace="/t")
        assert encoded == []
        return
    sub = aioredis.Redis.from_url(REDIS_URL)
    pubsub = sub.pubsub()
    await pubsub.subscribe(channel)
    try:
        await sio.emit("a", {"n": 7}, room="elsewhere", namespace="/t")
        message = None
        while message is None or message["type"] != "message":
            message = await pubsub.get_message(timeout=10)
            assert message is not None, "nothing published"
        sent = json.loads(message["data"])  # the managers' JSON payloads
        assert (sent["event"], sent["room"], sent["data"]) == ("a", "elsewhere", [{"n": 7}])
        assert encoded == []
    finally:
        await pubsub.aclose()
        await sub.aclose()
