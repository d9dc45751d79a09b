"""The router's errors: one base class, each with a stable ``code`` for the service layer to
map onto the application's error hierarchy (``contact_center/errors.py``)."""

from __future__ import annotations

__all__ = [
    "DuplicateError",
    "OfferExpiredError",
    "RouterError",
    "UnknownAgentError",
    "UnknownOfferError",
    "UnknownTicketError",
]


class RouterError(Exception):
    """Base of the router's errors; ``code`` is a stable machine-readable name."""

    code = "routing_error"


class UnknownAgentError(RouterError):
    """No agent with that id is known to the router."""

    code = "unknown_agent"


class UnknownTicketError(RouterError):
    """The ticket is not in the state the call needs (or not known at all)."""

    code = "unknown_ticket"


class UnknownOfferError(RouterError):
    """There is no open offer of that ticket to that agent."""

    code = "unknown_offer"


class OfferExpiredError(RouterError):
    """The offer's ``expires_at`` has passed; it can no longer be accepted."""

    code = "offer_expired"


class DuplicateError(RouterError):
    """The agent or ticket is already known to the router."""

    code = "duplicate"
