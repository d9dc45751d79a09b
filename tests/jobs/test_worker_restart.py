"""A real ``contact-center worker`` outlives a Redis restart that hits it in the middle of a job.

RQ's own work loop quits on the error, and its teardown raises when Redis is gone; the worker
command starts a new RQ worker instead (``contact_center.cli.supervise_worker``). The Redis is
a throwaway ``redis-server`` of this test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

import pytest

from contact_center.cli import supervise_worker
from contact_center.jobs import RqJobs
from tests.workers import kill_worker, start_worker

pytestmark = pytest.mark.redis


async def _until(done: Callable[[], bool], what: str, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while not done():
            await asyncio.sleep(0.02)  # polling a condition, bounded
    assert done(), what


async def test_worker_survives_redis_restart_mid_job(settings, own_redis, tmp_path):
    s = replace(settings, redis_url=own_redis.url, job_modules="tests.jobs.gate")
    gates, log = tmp_path / "gates", tmp_path / "worker.log"
    gates.mkdir()
    proc = await start_worker(s, log=log)
    try:
        jobs = RqJobs(own_redis.url, s.rq_queue, s.job_modules)
        jobs.enqueue_sync("test.gate", str(gates), "one")
        await _until((gates / "one.started").exists, "the first job started")
        own_redis.shutdown_nosave()  # Redis is gone while the job runs
        (gates / "one.open").touch()

        def noticed() -> bool:
            return proc.returncode is not None or b"lost Redis" in log.read_bytes()

        await _until(noticed, "the worker noticed")
        assert proc.returncode is None, log.read_text()[-3000:]  # RQ alone would have exited
        own_redis.start()  # empty, as after a crash
        jobs = RqJobs(own_redis.url, s.rq_queue, s.job_modules)
        jobs.enqueue_sync("test.gate", str(gates), "two")
        (gates / "two.open").touch()
        await _until((gates / "two.done").exists, "a job after the restart ran")
        assert proc.returncode is None
    finally:
        if proc.returncode is None:
            await kill_worker(proc)


class _Worker:
    def __init__(self, outcome: str, log: list[str]) -> None:
        self.outcome, self.log = outcome, log
        self._shutdown_requested_date = None

    def work(self, **_: object) -> bool:
        self.log.append(self.outcome)
        if self.outcome == "redis":
            from redis.exceptions import ConnectionError as RedisConnectionError

            raise RedisConnectionError("gone")
        if self.outcome == "stop":
            self._shutdown_requested_date = object()
        return True


def test_supervision_restarts_with_backoff_until_asked_to_stop():
    outcomes = iter(["redis", "error", "redis", "stop"])
    ran: list[str] = []
    slept: list[float] = []
    make = lambda: _Worker(next(outcomes), ran)  # noqa: E731
    code = supervise_worker(make, burst=False, logging_level="WARNING", sleep=slept.append,
                            max_backoff=1.5)  # fmt: skip
    assert code == 0
    assert ran == ["redis", "error", "redis", "stop"]
    assert slept == [0.5, 1.0, 1.5]


def test_a_burst_worker_is_not_restarted():
    ran: list[str] = []
    assert supervise_worker(lambda: _Worker("done", ran), burst=True, logging_level="INFO",
                            sleep=lambda _: None) == 0  # fmt: skip
    assert ran == ["done"]
