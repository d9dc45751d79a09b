"""Login, logout, who am I, presence."""

from __future__ import annotations

from typing import Literal

import pydantic
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy import Connection

from contact_center.api.common import current_user, services
from contact_center.auth import load_auth_user
from contact_center.clientaddr import Networks, client_address
from contact_center.db import Actor, UnitOfWork
from contact_center.errors import Unauthorized
from contact_center.web import ALL_STAFF, Registry, StrictModel, json_response, parse_body
from tickets.actions import admin as admin_actions
from tickets.actions._common import USER

__all__ = ["LoginBody", "routes"]

routes = Registry()


class LoginBody(StrictModel):
    """Credentials."""

    email: str = pydantic.Field(min_length=3, max_length=320)
    password: str = pydantic.Field(min_length=1, max_length=1024)


class PresenceBody(StrictModel):
    """An agent's presence."""

    presence: Literal["available", "busy", "away", "offline", "wrap_up"]


async def authenticate(request: web.Request, email: str, password: str) -> tuple[str, int]:
    """Check credentials (throttled per account and address); returns (token, user id)."""
    svc = services(request)
    email = email.strip().lower()
    proxies = Networks.parse(svc.settings.trusted_proxies)  # a few entries: cheap per login
    client = client_address(request.remote, request.headers.get("X-Forwarded-For"), proxies)
    keys = (f"acct:{email}", f"ip:{client}")
    svc.throttle.check(*keys)
    row = await svc.db.read(_user_by_email, email)
    ok = svc.passwords.verify(row[1] if row else None, password)
    if not ok or row is None or not row[2]:
        svc.throttle.failed(*keys)
        await svc.db.write(_audit_login, email, None, False)
        raise Unauthorized("wrong email or password")
    svc.throttle.succeeded(*keys)
    await svc.db.write(_audit_login, email, row[0], True)
    return svc.signer.issue(row[0], row[3]), row[0]


def _user_by_email(session: Connection, email: str) -> tuple[int, str, bool, int] | None:
    r = session.execute(
        sa.select(USER.c.id, USER.c.password_hash, USER.c.active, USER.c.token_version).where(
            USER.c.email == email
        )
    ).first()
    return None if r is None else (r[0], r[1], r[2], r[3])


def _audit_login(uow: UnitOfWork, email: str, user_id: int | None, ok: bool) -> None:
    uow.audit(
        Actor("user" if ok else "anonymous", user_id),
        "auth.login" if ok else "auth.login_failed",
        "user",
        user_id,
        {"email": email},
    )


@routes.route("POST", "/api/v1/login", roles=None, summary="Log in; returns a bearer token",
              tag="session", body=LoginBody)  # fmt: skip
async def login(request: web.Request) -> web.StreamResponse:
    """Exchange email and password for an expiring bearer token."""
    body = await parse_body(request, LoginBody)
    token, user_id = await authenticate(request, body.email, body.password)
    svc = services(request)
    user = await svc.db.read(load_auth_user, user_id)
    assert user is not None
    return json_response(
        {
            "token": token,
            "token_type": "Bearer",
            "expires_in": svc.signer.ttl,
            "user": {"id": user.id, "name": user.name, "role": user.role.value},
        }
    )


@routes.route("GET", "/api/v1/me", roles=ALL_STAFF, summary="The current user", tag="session")
async def me(request: web.Request) -> web.StreamResponse:
    """Who the token belongs to."""
    u = current_user(request)
    return json_response(
        {
            "id": u.id,
            "email": u.email,
            "name": u.name,
            "role": u.role.value,
            "team_id": u.team_id,
            "language": u.language,
            "queue_ids": sorted(u.queue_ids),
        }
    )


@routes.route("PUT", "/api/v1/me/presence", roles=ALL_STAFF, summary="Set own presence",
              tag="session", body=PresenceBody)  # fmt: skip
async def presence(request: web.Request) -> web.StreamResponse:
    """Available, busy, away, offline or wrap-up."""
    body = await parse_body(request, PresenceBody)
    u = current_user(request)
    await services(request).db.write(admin_actions.set_presence, u.id, body.presence)
    return json_response({"id": u.id, "presence": body.presence})
