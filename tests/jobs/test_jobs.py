"""Jobs: the same retry semantics in-process and on a real RQ worker with real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from contact_center.app import build_services
from contact_center.jobs import InProcessJobs, JobContext, RqJobs
from tests.conftest import FAST_HASHING, REDIS_URL, build_world, inbound, sql

pytestmark = pytest.mark.redis


async def _no_sleep(_: float) -> None:
    return None


def _attempts(path: Path) -> list[str]:
    return path.read_text().split()


@pytest.fixture
def job_settings(settings):
    return replace(settings, job_modules="tests.jobs.flaky")


RETRY_CASES = [(3, ["1:0", "2:0", "3:0"]), (9, ["1:0", "2:0", "3:0", "4:1"])]


@pytest.mark.parametrize(("succeed_on", "expected"), RETRY_CASES)
async def test_in_process_retries(job_settings, services, tmp_path, succeed_on, expected):
    ctx = JobContext(db=services.db, settings=job_settings, blobs=services.ingest_policy.blobs)
    jobs = InProcessJobs(ctx, sleep=_no_sleep)
    path = tmp_path / "attempts"
    await jobs.enqueue("test.flaky", str(path), succeed_on)
    await jobs.drain()
    assert _attempts(path) == expected


def _worker_env(settings, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
    env.update(
        CC_DATABASE_URL=settings.database_url,
        CC_REDIS_URL=redis_url,
        CC_RQ_QUEUE=settings.rq_queue,
        CC_DATA_DIR=str(settings.data_dir),
        CC_SECRET_KEY=settings.secret_key.reveal(),
        CC_JOB_MODULES=settings.job_modules,
        CC_LOG_LEVEL="WARNING",
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    return env


def _run_worker(settings, redis_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "contact_center.cli", "worker", "--burst"],
        env=_worker_env(settings, redis_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(("succeed_on", "expected"), RETRY_CASES)
def test_rq_worker_retries_the_same_way(job_settings, tmp_path, succeed_on, expected):
    jobs = RqJobs(REDIS_URL, job_settings.rq_queue, job_settings.job_modules)
    path = tmp_path / "attempts"
    job_id = jobs.enqueue_sync("test.flaky", str(path), succeed_on)
    proc = _run_worker(job_settings, REDIS_URL)
    assert proc.returncode == 0, proc.stderr
    assert _attempts(path) == expected
    from rq.job import Job
    from rq.serializers import JSONSerializer

    job = Job.fetch(job_id, connection=redis.Redis.from_url(REDIS_URL), serializer=JSONSerializer)
    assert job.get_status() == ("finished" if succeed_on <= 4 else "failed")


def test_rq_jobs_use_json_not_pickle(job_settings, tmp_path):
    jobs = RqJobs(REDIS_URL, job_settings.rq_queue, job_settings.job_modules)
    job_id = jobs.enqueue_sync("test.flaky", str(tmp_path / "a"), 1)
    raw = redis.Redis.from_url(REDIS_URL).hget(f"rq:job:{job_id}", "data")
    assert raw is not None
    payload = json.loads(zlib.decompress(raw))  # JSON; a pickle would not parse
    assert payload[0] == "contact_center.jobs.run_job"
    assert payload[2][0] == "test.flaky"
    jobs.queue.empty()


async def test_reply_is_delivered_by_a_real_rq_worker(settings, tmp_path):
    """An email reply (API and chat replies need no job) through a real worker to a real SMTP
    server."""
    from tests.channels.email.conftest import running_sink

    with running_sink() as sink:
        rq_settings = replace(settings, redis_url=REDIS_URL, smtp_host="127.0.0.1",
                              smtp_port=sink.port, smtp_tls="none",
                              email_from="Desk <support@example.test>")  # fmt: skip
        svc = build_services(rq_settings, password_hashing=FAST_HASHING)
        world = build_world(svc)
        from aiohttp.test_utils import TestClient, TestServer

        from contact_center.app import create_app

        app = create_app(rq_settings, services=svc)
        async with TestClient(TestServer(app)) as client:
            r = await client.post("/api/v1/inbound", json=inbound("rq-1", channel="email",
                                                                  handle="crm-1@example.com"),
                                  headers=world.auth("admin"))  # fmt: skip
            ticket_id = (await r.json())["ticket_id"]
            r = await client.post(f"/api/v1/tickets/{ticket_id}/replies",
                                  json={"body": "Thanks!"},
                                  headers=world.auth("admin"))  # fmt: skip
            assert r.status == 201
            message_id = (await r.json())["message_id"]
            row = "select delivery_status from message where id=:i"
            assert sql(svc.db, row, i=message_id) == [("queued",)]
            from tests.workers import worker_env  # every setting, SMTP included

            proc = subprocess.run(
                [sys.executable, "-m", "contact_center.cli", "worker", "--burst"],
                env=worker_env(rq_settings), capture_output=True, text=True, timeout=60,
                check=False,
            )  # fmt: skip
            assert proc.returncode == 0, proc.stderr
            assert sql(svc.db, row, i=message_id) == [("sent",)]
        assert [rcpt for _, rcpt, _ in sink.received] == [["crm-1@example.com"]]
