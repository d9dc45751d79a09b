"""The composition root: ``create_app(settings)`` builds everything; nothing happens at import."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from contact_center.auth import (
    LoginThrottle,
    PasswordHashing,
    TokenSigner,
    UserCache,
    load_auth_user,
)
from contact_center.db import Database, EventRecord
from contact_center.errors import PayloadTooLarge, ServiceDeskError, Unauthorized
from contact_center.events import EventBus, InProcessBus, RedisBus
from contact_center.jobs import InProcessJobs, JobContext, JobQueue, RqJobs
from contact_center.keys import AUTH_ERROR, AUTH_VIA, ENDPOINTS, SERVICES, USER, Services
from contact_center.logging import REQUEST_ID
from contact_center.metrics import Metrics
from contact_center.realtime import attach_socketio
from contact_center.settings import Settings
from contact_center.web import Registry, json_response
from contact_center.webhooks.outbox import SubscriptionCache
from contact_center.webhooks.ssrf import Resolver, TargetGuard
from contact_center.webhooks.wiring import install_outbox, sweeper
from tickets.actions.ingest import IngestPolicy
from tickets.blobs import BlobStore
from tickets.models import utcnow

__all__ = ["SESSION_COOKIE", "build_services", "create_app"]

log = logging.getLogger("contact_center.http")
outbox_log = logging.getLogger("contact_center.webhooks")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SESSION_COOKIE = "cc_session"
STATIC_DIR = Path(__file__).resolve().parent.parent / "agent_console" / "static"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
    "object-src 'none'"
)


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id (ours, or the caller's if sane), timing, metrics, security headers."""
    given = request.headers.get("X-Request-Id", "")
    rid = given if _REQUEST_ID_RE.match(given) else uuid.uuid4().hex
    token = REQUEST_ID.set(rid)
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
    except web.HTTPException as exc:  # a redirect raised by a page (errors re-raises < 400)
        status = exc.status
        _secure(exc, rid)
        raise
    finally:
        elapsed = time.perf_counter() - start
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        svc = request.app[SERVICES]
        svc.metrics.requests.labels(request.method, name, str(status)).inc()
        svc.metrics.latency.labels(name).observe(elapsed)
        REQUEST_ID.reset(token)
    if log.isEnabledFor(logging.INFO):
        log.info(
            "%s %s %d",
            request.method,
            request.path,
            response.status,
            extra={"method": request.method, "path": request.path, "status": response.status,
                   "duration_ms": round(elapsed * 1000, 2)},
        )  # fmt: skip
    _secure(response, rid)
    return response


def _secure(response: web.StreamResponse, rid: str) -> None:
    response.headers["X-Request-Id"] = rid
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes ``{"error": {...}}`` with a fitting status; internals never leak."""
    try:
        return await handler(request)
    except ServiceDeskError as err:
        return json_response(err.to_dict(), status=err.http_status)
    except web.HTTPRequestEntityTooLarge:
        err2 = PayloadTooLarge("request body too large")
        return json_response(err2.to_dict(), status=413)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
        body = {"error": {"code": code, "message": exc.reason}}
        return json_response(body, status=exc.status)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        body = {
            "error": {
                "code": "internal",
                "message": "internal error",
                "request_id": REQUEST_ID.get(),
            }
        }
        return json_response(body, status=500)


async def _resolve_user(request: web.Request, token: str) -> None:
    svc = request.app[SERVICES]
    try:
        user_id, version = svc.signer.read(token)
    except Unauthorized as err:
        request[AUTH_ERROR] = err
        return
    hit, user = svc.users.get(user_id)
    if not hit:
        user = await svc.db.read(load_auth_user, user_id)
        svc.users.put(user_id, user)
    if user is None or not user.active or user.token_version != version:
        request[AUTH_ERROR] = Unauthorized("session revoked")
        return
    request[USER] = user


@web.middleware
async def authentication(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bearer header or session cookie; the route guard decides whether it is required.

    Cookie-authenticated requests that change state must carry ``X-Requested-With`` (a header
    no cross-site form can send), on top of the cookie's ``SameSite=Strict``.
    """
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            request[AUTH_ERROR] = Unauthorized("use 'Authorization: Bearer <token>'")
        else:
            request[AUTH_VIA] = "bearer"
            await _resolve_user(request, token.strip())
    elif SESSION_COOKIE in request.cookies:
        request[AUTH_VIA] = "cookie"
        await _resolve_user(request, request.cookies[SESSION_COOKIE])
        if request.method not in _SAFE and "X-Requested-With" not in request.headers:
            request.pop(USER, None)
            request[AUTH_ERROR] = Unauthorized("cookie requests must send X-Requested-With")
    return await handler(request)


def _bus(settings: Settings) -> EventBus:
    if settings.redis_url:
        return RedisBus(settings.redis_url, settings.events_channel)
    return InProcessBus()


def _count_events(svc: Services) -> Callable[[EventRecord], Awaitable[None]]:
    """Counts events and their lag (``cc_event_lag_seconds``: this process's subscribers run
    after the event's transaction by that much); a lag above the live offer timeout is
    logged, at most once a minute: the process is overloaded, and its agents get offers that
    have already expired."""
    warned: list[datetime] = []
    limit = timedelta(seconds=svc.settings.routing_offer_timeout_live_seconds)
    by_type: dict[str, Any] = {}  # the counter's child per type (``labels`` locks and checks)

    async def count(ev: EventRecord) -> None:
        child = by_type.get(ev.type)
        if child is None:
            child = by_type[ev.type] = svc.metrics.events.labels(ev.type)
        child.inc()
        now = svc.db.clock()
        lag = now - ev.created_at
        svc.metrics.event_lag.observe(max(0.0, lag.total_seconds()))
        if lag > limit and (not warned or now - warned[-1] >= timedelta(minutes=1)):
            warned[:] = [now]
            log.warning("event stream %.1f s behind in this process (event %d, %s): it is "
                        "overloaded; offers reach agents late", lag.total_seconds(), ev.id,
                        ev.type)  # fmt: skip
        if ev.type == "user.updated":
            svc.users.drop(int(ev.payload["id"]))

    return count


def build_services(
    settings: Settings,
    *,
    password_hashing: PasswordHashing | None = None,
    clock: Callable[[], datetime] | None = None,
    resolver: Resolver | None = None,
) -> Services:
    """Construct (but do not start) everything the app uses.

    ``resolver`` replaces DNS for webhook targets (tests inject one; RQ workers use DNS).
    """
    from channels import build_senders

    bus = _bus(settings)
    db = Database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        on_commit=bus.publish,
        clock=clock or utcnow,
    )
    blobs = BlobStore(settings.data_dir / "attachments")
    guard = TargetGuard.from_config(settings.webhook_allow_cidrs, resolver)
    jobs: JobQueue
    if settings.redis_url:
        jobs = RqJobs(settings.redis_url, settings.rq_queue, settings.job_modules)
    else:
        jobs = InProcessJobs(
            JobContext(
                db=db,
                settings=settings,
                blobs=blobs,
                senders=build_senders(settings),
                webhook_guard=guard,
            )
        )
    metrics = Metrics.create()
    webhooks = SubscriptionCache()
    return Services(
        settings=settings,
        db=db,
        bus=bus,
        jobs=jobs,
        signer=TokenSigner(settings.secret_key.reveal(), settings.token_ttl_seconds),
        passwords=password_hashing or PasswordHashing(),
        users=UserCache(),
        throttle=LoginThrottle(),
        ingest_policy=IngestPolicy(
            blobs=blobs,
            reopen_window=timedelta(seconds=settings.reopen_window_seconds),
            attachment_max_bytes=settings.attachment_max_bytes,
        ),
        metrics=metrics,
        registry=metrics.registry,
        webhooks=webhooks,
        webhook_guard=guard,
    )


def _wake_outbox(svc: Services, loop: asyncio.AbstractEventLoop) -> Callable[[Sequence[int]], None]:
    """Enqueue delivery jobs for new outbox rows (called from the writer thread).

    The rows are committed already, so a failed enqueue (Redis down) is only logged: the
    outbox sweeper enqueues the row again once Redis is back.
    """

    def logged(done: concurrent.futures.Future[None]) -> None:
        err = None if done.cancelled() else done.exception()
        if err is not None:
            outbox_log.warning("webhook delivery not enqueued (%s); the sweeper will retry",
                               type(err).__name__, exc_info=err)  # fmt: skip

    def wake(ids: Sequence[int]) -> None:
        for delivery_id in ids:
            coro = svc.jobs.enqueue("deliver_webhook", delivery_id)
            asyncio.run_coroutine_threadsafe(coro, loop).add_done_callback(logged)

    return wake


@asynccontextmanager
async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    svc = app[SERVICES]
    svc.bus.subscribe(_count_events(svc))
    await svc.bus.start()
    await svc.jobs.start()
    install_outbox(svc.db, svc.webhooks, _wake_outbox(svc, asyncio.get_running_loop()))

    async def enqueue(delivery_id: int) -> None:
        await svc.jobs.enqueue("deliver_webhook", delivery_id)

    async def enqueue_message(message_id: int) -> None:
        await svc.jobs.enqueue("deliver_message", message_id)

    sweep = asyncio.create_task(
        sweeper(svc.db, enqueue, svc.settings.webhook_sweep_seconds,
                enqueue_message=enqueue_message, lost=svc.jobs.lost),
        name="outbox-sweeper",
    )  # fmt: skip
    if svc.settings.redis_url:
        import redis.asyncio as aredis

        svc.redis = aredis.Redis.from_url(svc.settings.redis_url)
    try:
        yield
    finally:
        sweep.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweep
        await svc.jobs.stop()
        await svc.bus.stop()
        if svc.redis is not None:
            await svc.redis.aclose()
        await asyncio.to_thread(svc.db.close)


def create_app(
    settings: Settings,
    *,
    services: Services | None = None,
    extra_namespaces: Sequence[Callable[[Services], Any]] = (),
) -> web.Application:
    """Build the web application for these settings."""
    from agent_console import namespace_factories, pages_registry
    from channels import SOCKET_NAMESPACES, channel_routes, setup_channels
    from contact_center.api import registry
    from contact_center.sla_service import install_sla

    app = web.Application(
        middlewares=[request_context, errors, authentication],
        client_max_size=settings.request_max_bytes,
    )
    app[SERVICES] = services or build_services(settings)
    reg = Registry()
    reg.extend(registry())
    for channel_registry in channel_routes():
        reg.extend(channel_registry)
    reg.extend(pages_registry())
    reg.install(app)
    app[ENDPOINTS] = reg.endpoints
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=True)
    app.cleanup_ctx.append(_lifecycle)
    if settings.backup_daily:  # on for `serve` unless CC_BACKUP_DAILY=false; off in Settings()
        from contact_center.backup_scheduler import install_backups

        install_backups(app)
    setup_channels(app, settings)
    install_sla(app)  # SLA timers + live counters: its own cleanup_ctx, subscribes to the bus
    if settings.routing_enabled:
        from routing.service import install_routing

        install_routing(app)  # the skills router: its own cleanup_ctx, subscribes to the bus
    attach_socketio(
        app, settings, [*namespace_factories(), *app[SOCKET_NAMESPACES], *extra_namespaces]
    )
    return app
