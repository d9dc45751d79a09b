"""``GET /healthz`` with Redis configured: ok while it answers, 503 naming it when it is gone.

Redis is the real local server, reached through a TCP relay the test can cut: after the cut
the configured URL points to a closed port, as when Redis dies under a running web process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import pytest

from contact_center.app import build_services, create_app
from tests.conftest import FAST_HASHING, REDIS_URL

SECRET = "hush-redis-password-4711"


class Relay:
    """Forwards TCP connections to the real Redis until :meth:`cut` closes port and streams."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._pipes: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        self._writers += [writer, up_writer]
        pipes = [asyncio.create_task(self._copy(reader, up_writer)),
                 asyncio.create_task(self._copy(up_reader, writer))]  # fmt: skip
        self._pipes.update(pipes)
        await asyncio.gather(*pipes)
        self._pipes.difference_update(pipes)

    @staticmethod
    async def _copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            dst.close()

    async def cut(self) -> None:
        """Stop listening and drop every relayed connection: the port is closed."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for pipe in list(self._pipes):
            pipe.cancel()
        for writer in self._writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        self._writers.clear()


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    target = urlsplit(REDIS_URL)
    r = Relay(target.hostname or "127.0.0.1", target.port or 6379)
    await r.start()
    yield r
    await r.cut()


def _redis_url(port: int) -> str:
    db = urlsplit(REDIS_URL).path or "/0"
    return f"redis://default:{SECRET}@127.0.0.1:{port}{db}"


async def _app_client(aiohttp_client: Any, settings: Any, clock: Any, redis_url: str) -> Any:
    configured = replace(settings, redis_url=redis_url)
    svc = build_services(configured, password_hashing=FAST_HASHING, clock=clock)
    return await aiohttp_client(create_app(configured, services=svc))


def _no_secrets(text: str, settings: Any, redis_url: str) -> None:
    for secret in (SECRET, redis_url, settings.secret_key.reveal(), settings.database_url):
        assert secret not in text


async def test_healthz_with_redis_configured_is_ok(aiohttp_client, settings, clock):
    url = _redis_url(urlsplit(REDIS_URL).port or 6379)
    client = await _app_client(aiohttp_client, settings, clock, url)
    resp = await client.get("/healthz")
    text = await resp.text()
    assert resp.status == 200, text
    assert await resp.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    _no_secrets(text, settings, url)


async def test_healthz_names_redis_when_its_port_closes(aiohttp_client, settings, clock, relay):
    url = _redis_url(relay.port)
    client = await _app_client(aiohttp_client, settings, clock, url)
    resp = await client.get("/healthz")
    assert resp.status == 200, await resp.text()  # through the relay, Redis answers
    await relay.cut()
    resp = await client.get("/healthz")
    text = await resp.text()
    assert resp.status == 503, text
    assert await resp.json() == {
        "status": "degraded",
        "checks": {"database": "ok", "redis": "error"},
    }
    _no_secrets(text, settings, url)
    assert str(relay.port) not in text  # not even where it tried to connect
