"""Background jobs: one interface, an in-process runner and an RQ runner with equal retries.

Jobs are synchronous functions ``fn(ctx, *args)`` registered with :func:`job`; they must be
idempotent (a crashed worker's job may run again). Arguments are JSON values only (RQ runs with
the JSON serializer: pickle on a shared queue would let Redis writers run code on workers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from contact_center.db import Database
from contact_center.settings import Settings
from tickets.blobs import BlobStore

if TYPE_CHECKING:
    from contact_center.webhooks.ssrf import TargetGuard

__all__ = [
    "REGISTRY",
    "InProcessJobs",
    "JobContext",
    "JobQueue",
    "JobSpec",
    "RqJobs",
    "job",
    "load_job_modules",
    "run_job",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a job may use; ``final_attempt`` tells it to record a permanent failure."""

    db: Database
    settings: Settings
    blobs: BlobStore
    senders: dict[str, Any] = field(default_factory=dict)
    webhook_guard: TargetGuard | None = None  # None: built from settings (system DNS)
    attempt: int = 1
    final_attempt: bool = True


JobFunc = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A registered job: its function and retry plan (``intervals[i]`` before retry i+1)."""

    name: str
    func: JobFunc
    retries: int = 3
    intervals: tuple[int, ...] = (5, 30, 120)
    timeout: int = 120

    def interval(self, retry_index: int) -> int:
        """Seconds to wait before retry number ``retry_index`` (0-based)."""
        if not self.intervals:
            return 0
        return self.intervals[min(retry_index, len(self.intervals) - 1)]


REGISTRY: dict[str, JobSpec] = {}


def job(
    name: str, *, retries: int = 3, intervals: Sequence[int] = (5, 30, 120), timeout: int = 120
) -> Callable[[JobFunc], JobFunc]:
    """Register a job function under ``name``."""

    def deco(func: JobFunc) -> JobFunc:
        REGISTRY[name] = JobSpec(name, func, retries, tuple(intervals), timeout)
        return func

    return deco


def load_job_modules(extra: str = "") -> None:
    """Import the modules that register jobs: ours and ``CC_JOB_MODULES`` extensions."""
    import importlib

    import contact_center.tasks  # noqa: F401  (registers the built-in jobs)

    for name in filter(None, (m.strip() for m in extra.split(","))):
        importlib.import_module(name)


def _spec(name: str) -> JobSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise LookupError(f"no job named {name!r}") from None


class JobQueue(Protocol):
    """Where the app sends work."""

    async def enqueue(self, name: str, *args: Any) -> None:
        """Run job ``name`` with JSON-able ``args`` soon, with its retries."""

    async def start(self) -> None:
        """Begin running jobs (in-process) or connect (RQ)."""

    async def stop(self) -> None:
        """Finish or cancel what runs, then close."""

    async def lost(self) -> bool:
        """Whether jobs enqueued earlier may be gone (a new queue since the last look)."""


class InProcessJobs:
    """Runs jobs on threads of this process, with the same retry plan RQ uses."""

    def __init__(
        self,
        context: JobContext,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        load_job_modules(context.settings.job_modules)
        self._context = context
        self._sleep = sleep
        self._tasks: set[asyncio.Task[None]] = set()
        self._inflight: set[asyncio.Future[Any]] = set()
        self._looked = False

    async def lost(self) -> bool:
        """True once: what an earlier process had queued in its memory died with it."""
        first, self._looked = not self._looked, True
        return first

    async def enqueue(self, name: str, *args: Any) -> None:
        spec = _spec(name)
        task = asyncio.create_task(self._run(spec, args), name=f"job:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, spec: JobSpec, args: tuple[Any, ...]) -> None:
        for attempt in range(1, spec.retries + 2):
            final = attempt == spec.retries + 1
            ctx = replace(self._context, attempt=attempt, final_attempt=final)
            running = asyncio.ensure_future(asyncio.to_thread(spec.func, ctx, *args))
            self._inflight.add(running)
            running.add_done_callback(self._inflight.discard)
            try:
                await asyncio.shield(running)  # a stop() waits for the thread instead
            except Exception:
                log.warning("job %s attempt %d failed", spec.name, attempt, exc_info=True)
                if final:
                    log.error("job %s failed for good after %d attempts", spec.name, attempt)
                    return
                await self._sleep(spec.interval(attempt - 1))
            else:
                return

    async def drain(self) -> None:
        """Wait until every enqueued job (with retries) has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        """Cancel waiting retries; let attempts already running on threads finish."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.gather(*list(self._inflight), return_exceptions=True)


class RqJobs:
    """Enqueues onto an RQ queue in Redis; ``contact-center worker`` runs them."""

    def __init__(self, redis_url: str, queue_name: str, job_modules: str = "") -> None:
        from redis import Redis
        from rq import Queue
        from rq.serializers import JSONSerializer

        load_job_modules(job_modules)
        self._redis = Redis.from_url(redis_url)
        self.queue = Queue(queue_name, connection=self._redis, serializer=JSONSerializer)

    def enqueue_sync(self, name: str, *args: Any) -> str:
        """Enqueue from synchronous code; returns the RQ job id."""
        from rq import Retry

        spec = _spec(name)
        retry = Retry(max=spec.retries, interval=list(spec.intervals)) if spec.retries else None
        rq_job = self.queue.enqueue_call(
            "contact_center.jobs.run_job",
            args=[name, list(args)],
            timeout=spec.timeout,
            retry=retry,
            failure_ttl=7 * 24 * 3600,
            description=f"{name}{tuple(args)!r}",
        )
        return str(rq_job.id)

    async def enqueue(self, name: str, *args: Any) -> None:
        await asyncio.to_thread(self.enqueue_sync, name, *args)

    async def start(self) -> None:
        await asyncio.to_thread(self._redis.ping)

    async def stop(self) -> None:
        await asyncio.to_thread(self._redis.close)

    def lost_sync(self) -> bool:
        """True when the queue's marker key was missing (and is now set): Redis started
        empty (a restart without persistence, a new or flushed server), so jobs enqueued
        before may be gone. One process of many sees True for each loss (``SET NX``)."""
        return bool(self._redis.set(f"{self.queue.key}:marker", "1", nx=True))

    async def lost(self) -> bool:
        return await asyncio.to_thread(self.lost_sync)


_WORKER_CONTEXT: list[JobContext] = []


def worker_context() -> JobContext:
    """The job context of this worker process, built on first use from the environment."""
    if not _WORKER_CONTEXT:
        from channels import build_senders
        from contact_center.events import publish_sync
        from contact_center.webhooks.outbox import SubscriptionCache
        from contact_center.webhooks.ssrf import TargetGuard
        from contact_center.webhooks.wiring import install_outbox

        settings = Settings.from_env()
        db = Database(settings.database_url, pool_size=2)
        if settings.redis_url:
            url, channel = settings.redis_url, settings.events_channel
            db.on_commit = lambda events: publish_sync(url, channel, events)
            rq = RqJobs(url, settings.rq_queue, settings.job_modules)

            def wake(ids: Sequence[int]) -> None:
                for delivery_id in ids:
                    rq.enqueue_sync("deliver_webhook", delivery_id)

            install_outbox(db, SubscriptionCache(), wake)
        _WORKER_CONTEXT.append(
            JobContext(
                db=db,
                settings=settings,
                blobs=BlobStore(settings.data_dir / "attachments"),
                senders=build_senders(settings),
                webhook_guard=TargetGuard.from_config(settings.webhook_allow_cidrs),
            )
        )
    return _WORKER_CONTEXT[0]


def run_job(name: str, args: list[Any]) -> Any:
    """Entry point RQ calls in a worker: run the named job with this process's context."""
    from rq import get_current_job

    load_job_modules(worker_context().settings.job_modules)
    spec = _spec(name)
    current = get_current_job()
    retries_left = getattr(current, "retries_left", None) if current is not None else None
    attempt = spec.retries + 1 - (retries_left or 0)
    ctx = replace(worker_context(), attempt=attempt, final_attempt=not retries_left)
    return spec.func(ctx, *args)
