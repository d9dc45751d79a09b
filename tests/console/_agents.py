"""Real python-socketio clients on the /agent namespace, recording what arrives in order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import socketio

EVENTS = ("snapshot", "resumed", "offer", "offer.ended", "assigned", "unassigned",
          "ticket.updated", "presence", "team.presence", "message", "typing", "read",
          "customer.left")  # fmt: skip


class AgentClient:
    """One agent console: connects with a token, records events, sends requests with acks."""

    def __init__(self, name: str, token: str) -> None:
        self.name = name
        self.token = token
        self.client = socketio.AsyncClient(reconnection=False)
        self.got: list[tuple[str, Any]] = []
        self.arrived = asyncio.Event()
        self.on_offer: Callable[[dict[str, Any]], Any] | None = None
        for event in EVENTS:
            self.client.on(event, self._recorder(event), namespace="/agent")

    def _recorder(self, event: str) -> Any:
        async def record(data: Any) -> None:
            self.got.append((event, data))
            self.arrived.set()
            if event == "offer" and self.on_offer is not None:
                asyncio.get_running_loop().create_task(self.on_offer(data))

        return record

    async def connect(self, port: int, **auth: Any) -> None:
        await self.client.connect(
            f"http://127.0.0.1:{port}", namespaces=["/agent"], auth={"token": self.token, **auth},
            transports=["websocket"], wait_timeout=5,
        )  # fmt: skip

    async def call(self, event: str, data: Any = None) -> dict[str, Any]:
        result: dict[str, Any] = await self.client.call(event, data, namespace="/agent", timeout=5)
        return result

    async def wait_for(
        self, event: str, match: Callable[[Any], bool] = lambda d: True, timeout: float = 5
    ) -> Any:
        async def find() -> Any:
            while True:
                for kind, data in self.got:
                    if kind == event and match(data):
                        return data
                self.arrived.clear()
                await self.arrived.wait()

        return await asyncio.wait_for(find(), timeout)

    def seen(self, event: str) -> list[Any]:
        return [d for k, d in self.got if k == event]

    async def close(self) -> None:
        if self.client.connected:
            await self.client.disconnect()
        await self.client.shutdown()


async def connect_refused(port: int, auth: Any) -> bool:
    """True if the /agent namespace refuses this connection."""
    client = socketio.AsyncClient(reconnection=False)
    try:
        await client.connect(f"http://127.0.0.1:{port}", namespaces=["/agent"], auth=auth,
                             transports=["websocket"], wait_timeout=5)  # fmt: skip
    except socketio.exceptions.ConnectionError:
        return True
    finally:
        if client.connected:
            await client.disconnect()
        await client.shutdown()
    return False


async def post_inbound(port: int, token: str, body: dict[str, Any]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"http://127.0.0.1:{port}/api/v1/inbound", json=body,
                               headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert resp.status in (200, 201), await resp.text()
        data: dict[str, Any] = await resp.json()
        return data
