"""Health, metrics, OpenAPI, the wallboard snapshot."""

from __future__ import annotations

import asyncio
import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from contact_center.api.common import services
from contact_center.errors import Forbidden, ServiceDeskError, Unauthorized, Unavailable
from contact_center.keys import AUTH_ERROR, SERVICES
from contact_center.keys import USER as USER_KEY
from contact_center.openapi import build_openapi
from contact_center.web import SUPERVISORS, Registry, json_response
from tickets.domain import Role

__all__ = ["routes"]

routes = Registry()


@routes.route("GET", "/healthz", roles=None, summary="Database and Redis state", tag="system")
async def healthz(request: web.Request) -> web.StreamResponse:
    """200 when every configured dependency answers, else 503 naming the failing one."""
    svc = services(request)
    checks: dict[str, str] = {}
    try:
        ok = await asyncio.wait_for(asyncio.to_thread(svc.db.ping), timeout=3)
        checks["database"] = "ok" if ok else "error"
    except Exception:  # noqa: BLE001  (any failure is "down" for a health check)
        checks["database"] = "error"
    if svc.redis is not None:
        try:
            await asyncio.wait_for(svc.redis.ping(), timeout=3)
            checks["redis"] = "ok"
        except Exception:  # noqa: BLE001
            checks["redis"] = "error"
    else:
        checks["redis"] = "not configured"
    healthy = all(v in ("ok", "not configured") for v in checks.values())
    return json_response(
        {"status": "ok" if healthy else "degraded", "checks": checks},
        status=200 if healthy else 503,
    )


@routes.route("GET", "/metrics", roles=None, auth="admin bearer or CC_METRICS_TOKEN",
              summary="Prometheus metrics", tag="system")  # fmt: skip
async def metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus text exposition, for admins or a scraper holding ``CC_METRICS_TOKEN``."""
    svc = services(request)
    user = request.get(USER_KEY)
    scrape = svc.settings.metrics_token.reveal()
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not (scrape and given and hmac.compare_digest(given.encode(), scrape.encode())):
        if user is None:
            raise request.get(AUTH_ERROR) or Unauthorized("login required")
        if user.role is not Role.ADMIN:
            raise Forbidden("your role may not use this")
    body = generate_latest(request.app[SERVICES].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.route("GET", "/api/v1/openapi.json", roles=None, summary="This API's OpenAPI 3.1 document",
              tag="system")  # fmt: skip
async def openapi(request: web.Request) -> web.StreamResponse:
    """Generated from the same registry that installs the routes."""
    return json_response(build_openapi(request.app))


@routes.route("GET", "/api/v1/wallboard", roles=SUPERVISORS, summary="Wallboard snapshot",
              tag="wallboard")  # fmt: skip
async def wallboard(request: web.Request) -> web.StreamResponse:
    """The live wallboard (docs/sla.md): a supervisor sees their team, an admin everything."""
    from contact_center.api.common import current_user

    user = current_user(request)
    sla = services(request).sla
    if sla is None:
        raise ServiceDeskError("the SLA service is not running")
    if sla.dormant:
        raise Unavailable("this is a standby leader: ask a web process (or the leader)")
    return json_response(sla.snapshot(user.team_id, everything=user.role is Role.ADMIN))
