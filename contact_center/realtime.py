"""Socket.IO server: one per app, JSON only, token-authorised namespaces.

Every namespace authenticates at connect (``auth={"token": ...}`` or the session cookie) and
checks the role; a refused connection gets a ``ConnectionRefusedError`` with our error code.
Across processes the ``AsyncRedisManager`` (JSON payloads) fans emits out; workers emit with a
write-only manager.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

import socketio
from aiohttp import web

from contact_center.auth import AuthUser, load_auth_user
from contact_center.errors import Forbidden, ServiceDeskError, Unauthorized
from contact_center.keys import SERVICES, Services
from contact_center.settings import Settings
from tickets.domain import Role

__all__ = [
    "SIO",
    "AuthedNamespace",
    "LocalManager",
    "RedisManager",
    "acked",
    "allowed_origins",
    "attach_socketio",
    "authenticate_environ",
    "has_local",
]

log = logging.getLogger(__name__)

SIO: web.AppKey[socketio.AsyncServer] = web.AppKey("sio")


def has_local(server: socketio.AsyncServer, namespace: str, room: str) -> bool:
    """Whether a socket of this process is in ``room`` (scaled out, the other web processes
    hold the rest): for work that only matters to a local socket, such as reading what an
    emit would carry. The emit itself already skips an empty room (:class:`LocalManager`)."""
    return bool(server.manager.rooms.get(namespace, {}).get(room))


def _has_participants(rooms: dict[Any, Any], namespace: str, room: Any) -> bool:
    ns = rooms.get(namespace)
    if not ns:
        return False
    if room is None:  # the whole namespace: python-socketio keeps everyone in room None
        return bool(ns.get(None))
    if isinstance(room, str) or not hasattr(room, "__len__"):
        return bool(ns.get(room))
    return any(ns.get(r) for r in room)


class LocalManager(socketio.AsyncManager):  # type: ignore[misc]
    """The in-process manager, whose emit returns at once when none of this process's sockets
    is in the room. python-socketio builds and encodes the packet first and only then looks
    for the room's sockets; scaled out, every process hears every event and most rooms are
    another process's, so that is most of the encoding it does."""

    async def emit(self, event: str, data: Any, namespace: str, room: Any = None,
                   skip_sid: Any = None, callback: Any = None, to: Any = None,
                   **kwargs: Any) -> None:  # fmt: skip
        if not _has_participants(self.rooms, namespace, to or room):
            return
        await super().emit(event, data, namespace, room=room, skip_sid=skip_sid,
                           callback=callback, to=to, **kwargs)  # fmt: skip


class RedisManager(socketio.AsyncRedisManager, LocalManager):  # type: ignore[misc]
    """``AsyncRedisManager`` whose local delivery (``ignore_queue``, and what other processes
    publish) is :class:`LocalManager`'s: in the method order it sits between the pub/sub layer
    and the plain manager, so publishing to the other processes is unchanged."""


def allowed_origins(settings: Settings) -> list[str]:
    """The console's own origin (from CC_PUBLIC_BASE_URL) plus configured widget origins."""
    parts = urlsplit(settings.public_base_url)
    origins = [f"{parts.scheme}://{parts.netloc}"]
    origins += [o.strip() for o in settings.socket_origins.split(",") if o.strip()]
    return origins


def _widget_origins(settings: Settings) -> frozenset[str]:
    """The allowed origins that are not the desk's own (``CC_SOCKET_ORIGINS``)."""
    own = allowed_origins(settings)[0]
    return frozenset(o for o in allowed_origins(settings)[1:] if o != own)


async def authenticate_environ(
    svc: Services, environ: dict[str, Any], auth: Any, roles: Iterable[Role]
) -> AuthUser:
    """The user a connecting socket speaks for, or a refusal naming why."""
    token = auth.get("token") if isinstance(auth, dict) else None
    if not token:
        cookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
        origin = environ.get("HTTP_ORIGIN")
        if "cc_session" in cookie and origin not in _widget_origins(svc.settings):
            # the session cookie speaks only for the desk's own pages: a site allowed to embed
            # the chat widget (CC_SOCKET_ORIGINS) gets no staff socket, even if a browser sent it
            token = cookie["cc_session"].value
    if not isinstance(token, str) or not token:
        raise Unauthorized("token required")
    user_id, version = svc.signer.read(token)
    hit, user = svc.users.get(user_id)
    if not hit:
        user = await svc.db.read(load_auth_user, user_id)
        svc.users.put(user_id, user)
    if user is None or not user.active or user.token_version != version:
        raise Unauthorized("session revoked")
    if user.role not in set(roles):
        raise Forbidden("your role may not use this")
    return user


class AuthedNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    """A namespace whose connect handler authenticates and stores the user in the session."""

    roles: frozenset[Role] = frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN})

    def __init__(self, namespace: str, services: Services) -> None:
        super().__init__(namespace)
        self.services = services

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        try:
            user = await authenticate_environ(self.services, environ, auth, self.roles)
        except ServiceDeskError as err:
            raise socketio.exceptions.ConnectionRefusedError(err.to_dict()["error"]) from None
        await self.save_session(sid, {"user": user, "auth": auth if isinstance(auth, dict) else {}})
        await self.joined(sid, user)

    async def joined(self, sid: str, user: AuthUser) -> None:
        """Hook for subclasses: join rooms, send the snapshot."""

    async def auth(self, sid: str) -> dict[str, Any]:
        """What the socket sent at connect besides its token (``last_event_id``, ...)."""
        session = await self.get_session(sid)
        auth: dict[str, Any] = session.get("auth", {})
        return auth

    async def user(self, sid: str) -> AuthUser:
        """The authenticated user of a socket."""
        session = await self.get_session(sid)
        user: AuthUser = session["user"]
        return user


async def acked(call: Awaitable[Any]) -> dict[str, Any]:
    """Run a socket request; its ack: ``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``.

    The one place where our errors become Socket.IO acks (the HTTP twin is the ``errors``
    middleware): a ``ServiceDeskError`` keeps its code and message, anything else is logged
    and answered as ``internal`` without details.
    """
    try:
        result = await call
    except ServiceDeskError as err:
        return {"ok": False, "error": err.to_dict()["error"]}
    except Exception:
        log.exception("socket request failed")
        return {"ok": False, "error": {"code": "internal", "message": "internal error"}}
    return {"ok": True, **(result or {})}


def attach_socketio(
    app: web.Application,
    settings: Settings,
    namespaces: Iterable[Callable[[Services], socketio.AsyncNamespace]],
) -> socketio.AsyncServer:
    """Create the server, register namespaces, attach to the app (path ``/socket.io``)."""
    manager: LocalManager = LocalManager()
    if settings.redis_url:
        manager = RedisManager(settings.redis_url, channel=settings.events_channel + "-sio")
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=manager,
        cors_allowed_origins=allowed_origins(settings),
        # a chat visitor's file arrives as one binary message (CC_CHAT_ATTACHMENT_MAX_BYTES)
        max_http_buffer_size=max(1_000_000, settings.chat_attachment_max_bytes + 64 * 1024),
        logger=False,
        engineio_logger=False,
    )
    svc = app[SERVICES]
    for factory in namespaces:
        sio.register_namespace(factory(svc))
    sio.attach(app)
    app[SIO] = sio

    async def close_sockets(app: web.Application) -> None:
        # On shutdown every client is told at once and reconnects (to another process) rather
        # than the process waiting out aiohttp's shutdown timeout on open websockets. Bounded:
        # a socket whose peer vanished never drains its send queue.
        closing = [asyncio.create_task(s.close()) for s in list(sio.eio.sockets.values())]
        if closing:
            _, late = await asyncio.wait(closing, timeout=2)
            for task in late:
                task.cancel()
        await sio.shutdown()

    app.on_shutdown.append(close_sockets)
    return sio


Emit = Callable[..., Awaitable[None]]
