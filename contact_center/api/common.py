"""Small helpers every handler uses."""

from __future__ import annotations

from aiohttp import web

from contact_center.auth import AuthUser
from contact_center.db import Actor
from contact_center.errors import NotFound, Unauthorized
from contact_center.keys import SERVICES, USER, Services

__all__ = ["actor", "current_user", "path_id", "services"]


def services(request: web.Request) -> Services:
    """The app's services."""
    return request.app[SERVICES]


def current_user(request: web.Request) -> AuthUser:
    """The authenticated user (the route guard guarantees one)."""
    user: AuthUser | None = request.get(USER)
    if user is None:
        raise Unauthorized("login required")
    return user


def actor(request: web.Request) -> Actor:
    """The audit actor of this request."""
    return Actor("user", current_user(request).id)


def path_id(request: web.Request, name: str = "id") -> int:
    """An integer path parameter; anything else is simply not found."""
    raw = request.match_info.get(name, "")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:  # ASCII digits only
        raise NotFound("not found")
    return int(raw)
