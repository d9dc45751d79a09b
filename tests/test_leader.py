"""The Redis leader lock: one leader, failover when it is killed, stepping down without Redis.

Real Redis: the shared server for contention (a unique key per test), a throwaway one that the
test stops; the killed leader is a real process sent SIGKILL.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import time
import uuid

import pytest

from contact_center.leader import LeaderLock
from tests.channels.email.dovecot import free_port
from tests.conftest import REDIS_URL, until
from tests.workers import ROOT, RedisServer

pytestmark = pytest.mark.redis

TTL = 0.6
RETRY = 0.1


class Led:
    """Counts elections and step-downs."""

    def __init__(self) -> None:
        self.started = 0
        self.stopped = 0

    async def start(self) -> None:
        self.started += 1

    async def stop(self) -> None:
        self.stopped += 1


async def _until(condition, timeout: float = 5.0) -> float:
    return await until(condition, timeout, poll=0.01)


async def test_one_leader_and_an_orderly_handover():
    key = f"cc-test-leader-{uuid.uuid4().hex}"
    a, b = (
        LeaderLock(REDIS_URL, key, ttl=TTL, retry=RETRY),
        LeaderLock(REDIS_URL, key, ttl=TTL, retry=RETRY),
    )
    la, lb = Led(), Led()
    ta = asyncio.create_task(a.run(la.start, la.stop))
    await asyncio.wait_for(a.elected.wait(), 5)
    tb = asyncio.create_task(b.run(lb.start, lb.stop))
    for _ in range(5):  # b keeps trying while a renews: never two leaders
        await asyncio.sleep(TTL / 2)
        assert a.leading and not b.leading
    ta.cancel()  # an orderly stop releases the lock at once
    with pytest.raises(asyncio.CancelledError):
        await ta
    assert (la.started, la.stopped) == (1, 1)
    waited = await _until(lambda: b.leading)
    assert waited < TTL  # released, not expired
    tb.cancel()
    with pytest.raises(asyncio.CancelledError):
        await tb
    assert (lb.started, lb.stopped) == (1, 1)


async def test_a_killed_leader_is_replaced_within_the_lock_lifetime():
    key = f"cc-test-leader-{uuid.uuid4().hex}"
    code = (
        "import asyncio, sys\n"
        "from contact_center.leader import LeaderLock\n"
        f"lock = LeaderLock({REDIS_URL!r}, {key!r}, ttl={TTL}, retry={RETRY})\n"
        "async def up():\n"
        "    print('elected', flush=True)\n"
        "async def down():\n"
        "    pass\n"
        "asyncio.run(lock.run(up, down))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "elected"
        standby = LeaderLock(REDIS_URL, key, ttl=TTL, retry=RETRY)
        led = Led()
        task = asyncio.create_task(standby.run(led.start, led.stop))
        await asyncio.sleep(TTL)  # the living leader keeps it
        assert not standby.leading
        proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        await _until(lambda: standby.leading)
        assert time.monotonic() - killed <= TTL + RETRY + 0.3
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


async def test_the_leader_steps_down_when_redis_goes_away(tmp_path):
    server = RedisServer(free_port(), tmp_path)
    server.start()
    try:
        lock = LeaderLock(server.url, "leader", ttl=TTL, retry=RETRY)
        led = Led()
        task = asyncio.create_task(lock.run(led.start, led.stop))
        await asyncio.wait_for(lock.elected.wait(), 5)
        server.stop()
        stopped = time.monotonic()
        await _until(lambda: not lock.leading)
        assert time.monotonic() - stopped < TTL  # before its key could have expired
        assert led.stopped == 1
        server.start()  # back, empty: it leads again
        await _until(lambda: lock.leading)
        assert led.started == 2
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        server.stop()


def test_bad_timings_are_refused():
    with pytest.raises(ValueError):
        LeaderLock(REDIS_URL, "x", ttl=1.0, retry=1.0)


async def _cancel(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_start_longer_than_the_lock_lifetime_keeps_the_lock():
    """Rebuilding a busy router can take longer than the TTL: the lock is renewed meanwhile
    (it used to expire, and the leaders took it from each other in turn under load)."""
    key = f"cc-test-leader-{uuid.uuid4().hex}"
    a, b = (LeaderLock(REDIS_URL, key, ttl=TTL, retry=RETRY),
            LeaderLock(REDIS_URL, key, ttl=TTL, retry=RETRY))  # fmt: skip
    release, lb, stopped = asyncio.Event(), Led(), []

    async def slow_start() -> None:
        await release.wait()

    async def stop() -> None:
        stopped.append(True)

    ta = asyncio.create_task(a.run(slow_start, stop))
    await asyncio.wait_for(a.elected.wait(), 5)
    tb = asyncio.create_task(b.run(lb.start, lb.stop))
    await _until(lambda: a.renewals >= 4)  # 3 renewals a TTL: more than one TTL has passed
    assert a.leading and not b.leading and not stopped and lb.started == 0
    release.set()
    await _until(lambda: a.renewals >= 7)
    assert a.leading and not b.leading and not stopped
    await _cancel(ta)  # released: b leads next
    await _until(lambda: b.leading)
    await _cancel(tb)
    assert stopped == [True] and (lb.started, lb.stopped) == (1, 1)


async def test_a_lock_lost_while_starting_cancels_the_start():
    key = f"cc-test-leader-{uuid.uuid4().hex}"
    lock = LeaderLock(REDIS_URL, key, ttl=TTL, retry=RETRY)
    began, cancelled, stopped = asyncio.Event(), [], []

    async def endless_start() -> None:
        began.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def stop() -> None:
        stopped.append(True)

    task = asyncio.create_task(lock.run(endless_start, stop))
    await asyncio.wait_for(began.wait(), 5)
    import redis.asyncio as aredis

    async with aredis.Redis.from_url(REDIS_URL) as r:
        await r.set(key, "another process")  # the lock is someone else's now
    await _until(lambda: stopped == [True])
    assert cancelled == [True] and not lock.leading
    await _cancel(task)
    async with aredis.Redis.from_url(REDIS_URL) as r:
        assert await r.get(key) == b"another process"  # not released: it was not ours
        await r.delete(key)


async def test_a_cancel_that_meets_a_finishing_renewal_still_stops_the_lock():
    # redis-py sends each command under asyncio.wait_for when a socket timeout is set, and on
    # Python 3.11 wait_for drops a cancellation that arrives just as the command completes: the
    # lock then renewed on forever and an app's shutdown hung. Cancel at many moments of a busy
    # renewal loop (renewing every 10 ms); every cancel must end the lock.
    rng = random.Random(7)
    hung = 0
    for _ in range(60):
        lock = LeaderLock(REDIS_URL, f"cc-test-leader-{uuid.uuid4().hex}", ttl=0.03, retry=0.01)
        led = Led()
        task = asyncio.create_task(lock.run(led.start, led.stop))
        await _until(lambda lock=lock: lock.renewals >= 1)
        await asyncio.sleep(rng.random() * 0.02)  # (picks the cancel's moment; times nothing)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2)
        if not done:
            hung += 1
            task.cancel()
            await asyncio.wait({task}, timeout=2)
        assert led.stopped == led.started == 1
    assert hung == 0
