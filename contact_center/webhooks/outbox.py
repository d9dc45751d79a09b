"""The webhook outbox: subscriptions, fan-out inside each transaction, claims and results.

Delivery rows are written in the same transaction as the events they carry, so a crash or a
Redis restart loses nothing: the database is the queue, jobs only wake it up, and the sweeper
re-wakes rows whose job vanished.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import Connection

from contact_center.db import SYSTEM, Actor, UnitOfWork
from contact_center.errors import NotFound, ValidationError
from contact_center.settings import WEBHOOK_TIMEOUT_MAX_SECONDS
from contact_center.webhooks.signing import new_secret
from tickets.models import WebhookDelivery, WebhookSubscription

__all__ = [
    "DELIVERY",
    "LEASE_MARGIN",
    "RETRY_SCHEDULE",
    "REWAKE",
    "SUB",
    "Claim",
    "SubscriptionCache",
    "claim_delivery",
    "create_subscription",
    "due_deliveries",
    "fan_out",
    "lease_for",
    "matches",
    "record_result",
    "replay",
    "rotate_secret",
    "update_subscription",
]

SUB = cast(sa.Table, WebhookSubscription.__table__)  # type: ignore[attr-defined]
DELIVERY = cast(sa.Table, WebhookDelivery.__table__)  # type: ignore[attr-defined]

# Seconds before attempt 2, 3, ...: about 28 hours in all (the schedule Svix publishes), ±20 %.
RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
# A row whose job may have vanished (queued but never run) is woken again after this.
REWAKE = timedelta(seconds=60)
# A claim's lease outlasts the attempt's whole budget by this much: the database writes around
# the attempt and clock skew between hosts. The attempt itself stops at its budget.
LEASE_MARGIN = timedelta(seconds=30)
MAX_RETRY_AFTER = timedelta(hours=24)  # a receiver's Retry-After is honoured up to this
GONE = "410 Gone: the receiver asked us to stop; the subscription is disabled"
ROTATION_GRACE = timedelta(hours=24)


def lease_for(timeout_seconds: float) -> timedelta:
    """How long a claim holds a row, for ``CC_WEBHOOK_TIMEOUT_SECONDS`` (1-60).

    The attempt ends ``timeout_seconds`` after it started (before the claim), so by the time
    the lease runs out and another worker may claim the row, the first one has stopped sending.
    """
    if not 0 < timeout_seconds <= WEBHOOK_TIMEOUT_MAX_SECONDS:
        raise ValueError(f"webhook timeout must be 1-{WEBHOOK_TIMEOUT_MAX_SECONDS} seconds")
    return timedelta(seconds=timeout_seconds) + LEASE_MARGIN


def matches(patterns: list[str], event_type: str) -> bool:
    """``*`` matches everything, ``ticket.*`` a family, otherwise exact names."""
    for p in patterns:
        if p == "*" or p == event_type or (p.endswith(".*") and event_type.startswith(p[:-1])):
            return True
    return False


class SubscriptionCache:
    """Active subscriptions, re-read at most every ``ttl`` seconds (and on local changes)."""

    def __init__(self, ttl: float = 1.0) -> None:
        self._ttl = ttl
        self._lock = threading.Lock()
        self._loaded_at = -1e18
        self._subs: list[tuple[int, list[str]]] = []

    def invalidate(self) -> None:
        """Reload on next use."""
        with self._lock:
            self._loaded_at = -1e18

    def get(self, session: Connection) -> list[tuple[int, list[str]]]:
        """(id, event types) of active subscriptions."""
        now = time.monotonic()
        with self._lock:
            if now - self._loaded_at < self._ttl:
                return self._subs
        rows = session.execute(sa.select(SUB.c.id, SUB.c.event_types).where(SUB.c.active)).all()
        with self._lock:
            self._subs = [(r[0], list(r[1])) for r in rows]
            self._loaded_at = now
            return self._subs


def fan_out(cache: SubscriptionCache) -> Any:
    """A transaction hook that writes one outbox row per (matching subscription, event)."""

    def hook(uow: UnitOfWork) -> None:
        if not uow.published:
            return
        subs = cache.get(uow.session)
        if not subs:
            return
        rows = [
            {
                "subscription_id": sid,
                "event_id": ev.id,
                "status": "pending",
                "next_attempt_at": uow.now + REWAKE,
                "created_at": uow.now,
            }
            for ev in uow.published
            for sid, types in subs
            if matches(types, ev.type)
        ]
        if rows:
            ids = uow.session.execute(
                sa.insert(DELIVERY).returning(DELIVERY.c.id, sort_by_parameter_order=True), rows
            ).scalars()
            uow.outbox.extend(ids)

    return hook


def create_subscription(uow: UnitOfWork, actor: Actor, values: dict[str, Any]) -> dict[str, Any]:
    """A new subscription; its secret is returned once, here."""
    values = {**values, "secret": new_secret(), "created_at": uow.now, "active": True}
    sid = uow.session.execute(sa.insert(SUB).values(**values).returning(SUB.c.id)).scalar_one()
    uow.audit(actor, "webhook.create", "webhook", sid, {"url": values["url"]})
    return {"id": sid, **{k: v for k, v in values.items() if k != "created_at"}}


def _get(uow: UnitOfWork, sid: int) -> Any:
    row = uow.session.execute(sa.select(SUB).where(SUB.c.id == sid)).first()
    if row is None:
        raise NotFound("no such webhook")
    return row


def update_subscription(
    uow: UnitOfWork, actor: Actor, sid: int, changes: dict[str, Any]
) -> dict[str, Any]:
    """Change url, event types, description, active or allow_private; ``delete`` removes it."""
    _get(uow, sid)
    if changes.pop("delete", False):
        uow.session.execute(sa.delete(DELIVERY).where(DELIVERY.c.subscription_id == sid))
        uow.session.execute(sa.delete(SUB).where(SUB.c.id == sid))
        uow.audit(actor, "webhook.delete", "webhook", sid)
        return {"id": sid, "deleted": True}
    if changes:
        uow.session.execute(sa.update(SUB).where(SUB.c.id == sid).values(**changes))
    uow.audit(actor, "webhook.update", "webhook", sid, {"fields": sorted(changes)})
    return public(_get(uow, sid))


def rotate_secret(uow: UnitOfWork, actor: Actor, sid: int) -> dict[str, Any]:
    """New secret; the old one keeps signing too for 24 hours so receivers can switch."""
    row = _get(uow, sid)
    secret = new_secret()
    uow.session.execute(
        sa.update(SUB)
        .where(SUB.c.id == sid)
        .values(
            secret=secret,
            previous_secret=row.secret,
            previous_secret_expires_at=uow.now + ROTATION_GRACE,
        )
    )
    uow.audit(actor, "webhook.rotate_secret", "webhook", sid)
    return {
        "id": sid,
        "secret": secret,
        "previous_valid_until": (uow.now + ROTATION_GRACE).isoformat(),
    }


def public(row: Any) -> dict[str, Any]:
    """A subscription without its secrets."""
    return {"id": row.id, "url": row.url, "description": row.description,
            "event_types": row.event_types, "active": row.active,
            "allow_private": row.allow_private}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Claim:
    """Everything a delivery attempt needs, read under the claim."""

    delivery_id: int
    attempt: int
    url: str
    allow_private: bool
    secrets: list[str]
    msg_id: str
    event_type: str
    event_payload: dict[str, Any]
    event_created_at: datetime


def claim_delivery(uow: UnitOfWork, delivery_id: int, lease: timedelta) -> Claim | None:
    """Take the row for one attempt (None when delivered, dead, or leased by someone else).

    The claim is one conditional UPDATE, so of two workers only one gets the row; it holds it
    for ``lease`` (:func:`lease_for`). A row of a disabled subscription is dead-lettered here.
    """
    from tickets.models import Event

    ev_t = cast(sa.Table, Event.__table__)  # type: ignore[attr-defined]
    claimable = sa.or_(
        DELIVERY.c.status.in_(["pending", "retrying"]),
        sa.and_(DELIVERY.c.status == "delivering", DELIVERY.c.lease_until < uow.now),
    )
    row = uow.session.execute(
        sa.update(DELIVERY)
        .where(DELIVERY.c.id == delivery_id, claimable)
        .values(status="delivering", lease_until=uow.now + lease, attempts=DELIVERY.c.attempts + 1)
        .returning(DELIVERY.c.subscription_id, DELIVERY.c.event_id, DELIVERY.c.attempts)
    ).first()
    if row is None:
        return None
    sub = _get(uow, row.subscription_id)
    if not sub.active:
        uow.session.execute(
            sa.update(DELIVERY)
            .where(DELIVERY.c.id == delivery_id)
            .values(status="dead", lease_until=None, next_attempt_at=None,
                    attempts=DELIVERY.c.attempts - 1, last_error="subscription is disabled")
        )  # fmt: skip
        return None
    ev = uow.session.execute(sa.select(ev_t).where(ev_t.c.id == row.event_id)).one()
    secrets_ = [sub.secret]
    if (
        sub.previous_secret
        and sub.previous_secret_expires_at
        and sub.previous_secret_expires_at > uow.now
    ):
        secrets_.append(sub.previous_secret)
    return Claim(delivery_id, row.attempts, sub.url, sub.allow_private, secrets_,
                 f"msg_{ev.id}", ev.type, ev.payload, ev.created_at)  # fmt: skip


def record_result(
    uow: UnitOfWork,
    delivery_id: int,
    attempt: int,
    status_code: int | None,
    response: str,
    error: str | None,
    retry_after: float | None = None,
) -> str:
    """Store an attempt's outcome; schedule the next one or dead-letter. Returns the new status.

    Only the claim that made ``attempt`` may record it (``superseded`` otherwise). 2xx is
    delivered; 410 Gone dead-letters the row and disables the subscription; anything else is
    retried on :data:`RETRY_SCHEDULE`, not before a 429/503's ``retry_after`` seconds.
    """
    values: dict[str, Any] = {
        "last_status_code": status_code,
        "last_response": response[:2000],
        "last_error": error[:1000] if error else None,
        "lease_until": None,
    }
    if status_code is not None and 200 <= status_code < 300:
        values.update(status="delivered", delivered_at=uow.now, next_attempt_at=None)
    elif status_code == 410:
        values.update(status="dead", next_attempt_at=None, last_error=GONE)
    elif attempt > len(RETRY_SCHEDULE):
        values.update(status="dead", next_attempt_at=None)
    else:
        delay = timedelta(seconds=RETRY_SCHEDULE[attempt - 1] * random.uniform(0.8, 1.2))
        if retry_after is not None:
            delay = max(delay, min(timedelta(seconds=retry_after), MAX_RETRY_AFTER))
        values.update(status="retrying", next_attempt_at=uow.now + delay)
    sub_id = uow.session.execute(
        sa.update(DELIVERY)
        .where(
            DELIVERY.c.id == delivery_id,
            DELIVERY.c.status == "delivering",
            DELIVERY.c.attempts == attempt,
        )
        .values(**values)
        .returning(DELIVERY.c.subscription_id)
    ).scalar()
    if sub_id is None:
        return "superseded"  # replayed or re-claimed meanwhile: the newer claim records
    if status_code == 410:
        uow.session.execute(sa.update(SUB).where(SUB.c.id == sub_id).values(active=False))
        uow.audit(SYSTEM, "webhook.disable", "webhook", sub_id,
                  {"reason": "410 Gone", "delivery_id": delivery_id})  # fmt: skip
    return str(values["status"])


def due_deliveries(uow: UnitOfWork, limit: int = 500) -> list[int]:
    """Rows whose job may have vanished or whose retry is due; pushes their wake-up forward."""
    due = sa.or_(
        sa.and_(
            DELIVERY.c.status.in_(["pending", "retrying"]), DELIVERY.c.next_attempt_at <= uow.now
        ),
        sa.and_(DELIVERY.c.status == "delivering", DELIVERY.c.lease_until < uow.now),
    )
    ids = list(
        uow.session.execute(
            sa.select(DELIVERY.c.id).where(due).order_by(DELIVERY.c.id).limit(limit)
        ).scalars()
    )
    if ids:
        uow.session.execute(
            sa.update(DELIVERY)
            .where(DELIVERY.c.id.in_(ids), DELIVERY.c.status == "delivering")
            .values(status="retrying")
        )
        uow.session.execute(
            sa.update(DELIVERY)
            .where(DELIVERY.c.id.in_(ids))
            .values(next_attempt_at=uow.now + REWAKE)
        )
    return ids


def replay(
    uow: UnitOfWork,
    actor: Actor,
    *,
    delivery_id: int | None = None,
    subscription_id: int | None = None,
    due_in: timedelta = REWAKE,
) -> list[int]:
    """Put dead (or, for one named delivery, any finished) rows back in the queue.

    The caller's commit hook wakes them at once; the sweeper takes them after ``due_in``
    (zero for the CLI, whose process wakes nothing).
    """
    q = sa.select(DELIVERY.c.id)
    if delivery_id is not None:
        q = q.where(DELIVERY.c.id == delivery_id)
    elif subscription_id is not None:
        _get(uow, subscription_id)  # an unknown webhook is an error, not "0 replayed"
        q = q.where(DELIVERY.c.subscription_id == subscription_id, DELIVERY.c.status == "dead")
    else:
        raise ValidationError("name a delivery or a subscription", fields={"id": "required"})
    ids = list(uow.session.execute(q).scalars())
    if delivery_id is not None and not ids:
        raise NotFound("no such delivery")
    if ids:
        uow.session.execute(
            sa.update(DELIVERY)
            .where(DELIVERY.c.id.in_(ids))
            .values(
                status="pending", attempts=0, next_attempt_at=uow.now + due_in, lease_until=None
            )
        )
        uow.outbox.extend(ids)
    uow.audit(actor, "webhook.replay", "webhook_delivery", delivery_id,
              {"subscription_id": subscription_id, "count": len(ids)})  # fmt: skip
    return ids
