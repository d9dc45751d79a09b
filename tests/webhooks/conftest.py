"""A local webhook receiver (an aiohttp app on 127.0.0.1) that records what it gets."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str = ""
    status: int = 200
    reply: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)  # sent with every answer
    hang: asyncio.Event | None = None
    got: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append(Received(dict(request.headers), await request.read()))
        self.arrived.set()
        if self.hang is not None:
            await self.hang.wait()
        return web.Response(status=self.status, text=self.reply, headers=self.headers)

    async def wait_for(self, n: int, timeout: float = 10) -> None:
        async def enough() -> None:
            while len(self.got) < n:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(enough(), timeout)


@pytest.fixture
async def receiver(aiohttp_server: Any) -> Receiver:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    rec.url = f"http://127.0.0.1:{server.port}/hook"
    return rec
