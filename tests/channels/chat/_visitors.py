"""Real python-socketio clients on the /customer namespace, recording what arrives in order."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import socketio

EVENTS = ("welcome", "message", "queue", "status", "agent", "typing", "read", "ended")


class Refused(Exception):
    """The namespace refused the connection; ``args[0]`` is its reason (code, message)."""


def cid() -> str:
    """A widget-style client id for a message."""
    return uuid.uuid4().hex[:16]


class Visitor:
    """One widget: connects (optionally with a token or identity), records events, acks."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.got: list[tuple[str, Any]] = []
        self.arrived = asyncio.Event()
        self.refused: Any = None
        for event in EVENTS:
            self.client.on(event, self._recorder(event), namespace="/customer")
        self.client.on("connect_error", self._refusal, namespace="/customer")

    async def _refusal(self, data: Any) -> None:
        self.refused = data.get("data") if isinstance(data, dict) else data

    def _recorder(self, event: str) -> Any:
        async def record(data: Any) -> None:
            self.got.append((event, data))
            self.arrived.set()

        return record

    async def connect(self, port: int, headers: dict[str, str] | None = None, **auth: Any) -> Any:
        """Connect and return the welcome."""
        mark = len(self.seen("welcome"))
        try:
            await self.client.connect(
                f"http://127.0.0.1:{port}",
                namespaces=["/customer"],
                auth=auth,
                transports=["websocket"],
                headers=headers or {},
                wait_timeout=5,
            )
        except socketio.exceptions.ConnectionError:
            await self.client.shutdown()
            raise Refused(self.refused) from None
        return await self.wait_for("welcome", skip=mark)

    @property
    def token(self) -> str:
        return str(self.seen("welcome")[-1]["visitor_token"])

    async def call(self, event: str, data: Any = None) -> dict[str, Any]:
        result: dict[str, Any] = await self.client.call(
            event, data, namespace="/customer", timeout=5
        )
        return result

    async def wait_for(
        self,
        event: str,
        match: Callable[[Any], bool] = lambda d: True,
        timeout: float = 5,
        skip: int = 0,
    ) -> Any:
        async def find() -> Any:
            while True:
                found = [d for k, d in self.got if k == event and match(d)]
                if len(found) > skip:
                    return found[skip]
                self.arrived.clear()
                await self.arrived.wait()

        return await asyncio.wait_for(find(), timeout)

    def seen(self, event: str) -> list[Any]:
        return [d for k, d in self.got if k == event]

    async def disconnect(self) -> None:
        if self.client.connected:
            await self.client.disconnect()

    async def close(self) -> None:
        await self.disconnect()
        await self.client.shutdown()
