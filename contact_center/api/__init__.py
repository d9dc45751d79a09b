"""REST API v1 handlers, grouped by area; ``registry()`` collects them all."""

from __future__ import annotations

from contact_center.web import Registry

__all__ = ["registry"]


def registry() -> Registry:
    """Every REST endpoint of the core (channels and pages add their own)."""
    from contact_center.api import admin, customers, reports, session, system, tickets, webhooks

    reg = Registry()
    for module in (session, tickets, customers, admin, system, webhooks, reports):
        reg.extend(module.routes)
    return reg
