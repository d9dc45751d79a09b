"""Typed keys for everything stored on the app and on requests (no string keys)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from contact_center.auth import (
        AuthUser,
        LoginThrottle,
        PasswordHashing,
        TokenSigner,
        UserCache,
    )
    from contact_center.db import Database
    from contact_center.errors import Unauthorized
    from contact_center.events import EventBus
    from contact_center.jobs import JobQueue
    from contact_center.metrics import Metrics
    from contact_center.settings import Settings
    from contact_center.sla_service import SlaService
    from contact_center.web import Endpoint
    from contact_center.webhooks.outbox import SubscriptionCache
    from contact_center.webhooks.ssrf import TargetGuard
    from routing.service import RouterService
    from tickets.actions.ingest import IngestPolicy

__all__ = ["AUTH_ERROR", "AUTH_VIA", "ENDPOINTS", "SERVICES", "USER", "Services"]


@dataclass(slots=True)
class Services:
    """Everything a handler needs, built once by ``create_app``."""

    settings: Settings
    db: Database
    bus: EventBus
    jobs: JobQueue
    signer: TokenSigner
    passwords: PasswordHashing
    users: UserCache
    throttle: LoginThrottle
    ingest_policy: IngestPolicy
    metrics: Metrics
    registry: CollectorRegistry
    webhooks: SubscriptionCache
    webhook_guard: TargetGuard  # SSRF allow list + resolver, shared by the API and in-process jobs
    redis: Any = None
    sla: SlaService | None = None  # set by contact_center.sla_service.install_sla
    routing: RouterService | None = None  # set by routing.service.install_routing


SERVICES: web.AppKey[Services] = web.AppKey("services")
USER: web.RequestKey[AuthUser] = web.RequestKey("user")
AUTH_ERROR: web.RequestKey[Unauthorized] = web.RequestKey("auth_error")
AUTH_VIA: web.RequestKey[str] = web.RequestKey("auth_via", str)

ENDPOINTS: web.AppKey[list[Endpoint]] = web.AppKey("endpoints")
