"""One leader among the web processes, by a Redis lock that fails over when the leader dies.

The holder sets ``<name>`` to a random token with ``SET NX PX ttl`` and renews it every
``ttl / 3`` with a compare-and-set script; everybody else tries to take it every ``retry``
seconds. A leader that cannot renew in time (Redis gone, the process frozen) stops leading at
once — before its key can expire, so two leaders never overlap by the clock of this process —
and a killed leader's key expires after ``ttl``: a standby then leads within ``ttl + retry``
(3 s + 0.5 s by default). What runs under the lock must still tolerate a paused old leader
(the router's database compare-and-set does: one open offer per ticket). The lock is renewed
while the led work starts, too: rebuilding a busy router can take longer than ``ttl``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError

__all__ = ["LeaderLock"]

log = logging.getLogger(__name__)

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""

Hook = Callable[[], Awaitable[None]]


def _raise_if_cancelled() -> None:
    """Raise a cancellation the Redis client dropped. With a socket timeout, redis-py sends
    each command under ``asyncio.wait_for``, and on Python 3.11 ``wait_for`` drops a cancel
    that arrives as the command completes (CPython gh-86296, fixed in 3.12): the task is left
    cancelling but running, and a lock renewed on forever (an app's shutdown hung on it)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class LeaderLock:
    """Run ``on_elected`` while this process holds the lock and ``on_lost`` when it stops."""

    def __init__(
        self,
        redis_url: str,
        name: str,
        *,
        ttl: float = 3.0,
        retry: float = 0.5,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < retry < ttl:
            raise ValueError("need 0 < retry < ttl")
        self.redis_url = redis_url
        self.name = name
        self.ttl = ttl
        self.retry = retry
        # host:pid:random, so operators (and the cluster tooling) can tell who leads
        self.token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(8)}"
        self.leading = False
        self.renewals = 0  # successful renewals (for tests and diagnostics)
        self.elected = asyncio.Event()
        self._monotonic = monotonic
        self._client: Any = None

    async def run(self, on_elected: Hook, on_lost: Hook) -> None:
        """Contend forever (cancel to stop); lead while holding the lock."""
        import redis.asyncio as aredis

        self._client = aredis.Redis.from_url(self.redis_url, socket_timeout=self.ttl / 3)
        try:
            while True:
                try:
                    if await self._acquire():
                        await self._lead(on_elected, on_lost)
                except (RedisError, OSError):
                    log.warning("leader lock %s: Redis unreachable; retrying", self.name)
                except Exception:  # the led work failed: let another process try
                    log.exception("leader lock %s: leading failed; handing over", self.name)
                    with contextlib.suppress(RedisError, OSError):
                        await self._client.eval(_RELEASE, 1, self.name, self.token)
                await asyncio.sleep(self.retry)
        finally:
            await self._step_down(on_lost)
            with contextlib.suppress(RedisError, OSError):
                await self._client.eval(_RELEASE, 1, self.name, self.token)
            await self._client.aclose()

    async def _acquire(self) -> bool:
        got = await self._client.set(self.name, self.token, nx=True, px=int(self.ttl * 1000))
        _raise_if_cancelled()
        return bool(got)

    async def _lead(self, on_elected: Hook, on_lost: Hook) -> None:
        """Lead: start the led work while renewing the lock beside it (a start that takes
        longer than ``ttl``, as rebuilding a busy router can, must not let the lock expire);
        stop it when the lock is lost."""
        self.leading = True
        self.elected.set()
        log.info("leader lock %s: this process leads", self.name)
        keeper = asyncio.create_task(self._keep(self._monotonic() + self.ttl))
        starting: asyncio.Future[None] = asyncio.ensure_future(on_elected())
        try:
            await asyncio.wait({keeper, starting}, return_when=asyncio.FIRST_COMPLETED)
            if starting.done():
                starting.result()  # the start failed: raise (another process may try)
                await keeper  # lead until the lock is lost
        finally:
            for task in (keeper, starting):  # (a lost lock cancels a start still running)
                if not task.done():
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self._step_down(on_lost)

    async def _keep(self, held_until: float) -> None:
        """Renew every ``ttl / 3``; return when the lock is lost or cannot be renewed in time."""
        while True:
            await asyncio.sleep(self.ttl / 3)
            asked = self._monotonic()
            try:
                async with asyncio.timeout(self.ttl / 3):
                    renewed = await self._client.eval(
                        _RENEW, 1, self.name, self.token, int(self.ttl * 1000)
                    )
            except (RedisError, OSError, TimeoutError):  # slow or gone: lead on only
                # while the lock is surely still ours
                _raise_if_cancelled()
                if self._monotonic() >= held_until - self.ttl / 3:
                    log.warning("leader lock %s: cannot renew; stepping down", self.name)
                    return
                continue
            _raise_if_cancelled()
            if not renewed:  # expired and maybe taken: never lead beside another
                log.warning("leader lock %s: lost; stepping down", self.name)
                return
            held_until = asked + self.ttl
            self.renewals += 1

    async def _step_down(self, on_lost: Hook) -> None:
        if not self.leading:
            return
        self.leading = False
        self.elected.clear()
        try:
            await on_lost()
        except Exception:
            log.exception("leader lock %s: stopping the led work failed", self.name)
