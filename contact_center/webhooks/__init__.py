"""Signed outbound webhooks (Standard Webhooks) delivered from a transactional outbox."""

from __future__ import annotations

from contact_center.webhooks.outbox import SubscriptionCache, due_deliveries, fan_out

__all__ = ["SubscriptionCache", "due_deliveries", "fan_out"]
