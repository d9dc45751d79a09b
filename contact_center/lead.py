"""``contact-center lead``: a process that only contends to lead the router and SLA timers.

Scaled out, web processes run with ``CC_ROUTING_ENABLED=false`` and two or more of these run
beside them: the one holding the Redis lock routes (``contact_center.leader``), the others
stand by (dormant: no events read, no SLA board) and take over within ``CC_LEADER_TTL_MS``
+ 0.5 s when it dies. It serves only ``/healthz``, ``/metrics``, the OpenAPI document and
the wallboard snapshot (the leader's; 503 on a standby), on ``CC_PORT``
(bind it to loopback or a private interface: nothing here is for browsers).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from aiohttp import web

from contact_center.settings import Settings

if TYPE_CHECKING:
    from contact_center.keys import Services

__all__ = ["create_leader_app"]


def create_leader_app(settings: Settings, *, services: Services | None = None) -> web.Application:
    """The lean app of a leader process: lifecycle, SLA service, router, health.

    Standing by, it reads no events and keeps no SLA board (a board here would only serve
    this process's /metrics and wallboard, which the web processes serve anyway): the bus
    subscribes and the router and SLA service load from the database when it takes the lead
    (``install_routing(dormant_standby=True)``). Its wallboard answers 503 meanwhile."""
    from contact_center.api import system
    from contact_center.app import (
        _lifecycle,
        authentication,
        build_services,
        errors,
        request_context,
    )
    from contact_center.keys import ENDPOINTS, SERVICES
    from contact_center.sla_service import install_sla
    from contact_center.web import Registry
    from routing.service import install_routing

    if not settings.redis_url:
        raise ValueError("a leader process needs CC_REDIS_URL (the lock and the event bus)")
    settings = replace(settings, routing_enabled=True)
    app = web.Application(middlewares=[request_context, errors, authentication])
    app[SERVICES] = services or build_services(settings)
    reg = Registry()
    reg.extend(system.routes)
    reg.install(app)
    app[ENDPOINTS] = reg.endpoints
    app.cleanup_ctx.append(_lifecycle)
    install_sla(app, dormant_standby=True)
    install_routing(app, dormant_standby=True)
    return app
