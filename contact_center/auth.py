"""Passwords, signed expiring tokens, the per-process user cache, and login throttling."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import Connection

from contact_center.db import fetch
from contact_center.errors import RateLimited, Unauthorized
from tickets.actions._common import QUEUE_MEMBER, USER
from tickets.domain import Role
from tickets.queries import Viewer

__all__ = [
    "AuthUser",
    "LoginThrottle",
    "PasswordHashing",
    "TokenSigner",
    "UserCache",
    "load_auth_user",
]


class PasswordHashing:
    """Argon2id hashing (parameters lowered only in tests, through the constructor)."""

    def __init__(self, *, time_cost: int = 3, memory_cost: int = 65536) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost)
        self._dummy = self._hasher.hash("timing-equaliser")

    def hash(self, password: str) -> str:
        """Hash a new password."""
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Check a password; with no hash it still spends the time (no user enumeration)."""
        try:
            self._hasher.verify(password_hash or self._dummy, password)
        except (VerificationError, InvalidHashError):
            return False
        return bool(password_hash)


class TokenSigner:
    """Bearer and cookie tokens: HMAC-signed ``{u: user id, v: token version}`` with expiry."""

    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="cc-auth-token")
        self.ttl = ttl_seconds
        self._verified: dict[str, tuple[float, int, int]] = {}

    def issue(self, user_id: int, version: int) -> str:
        """A new token for this user at this token version."""
        return self._serializer.dumps({"u": user_id, "v": version})

    def read(self, token: str, *, now: float | None = None) -> tuple[int, int]:
        """(user id, version) of a valid, unexpired token; else :class:`Unauthorized`.

        Verified tokens are remembered until they expire, so a busy client's requests skip
        the HMAC and JSON work; the expiry check still runs on every call.
        """
        clock = time.time() if now is None else now
        hit = self._verified.get(token)
        if hit is not None:
            if hit[0] > clock:
                return hit[1], hit[2]
            self._verified.pop(token, None)
        user_id, version, issued = self._verify(token)
        if len(self._verified) > 50_000:
            self._verified.clear()
        self._verified[token] = (issued + self.ttl, user_id, version)
        return user_id, version

    def _verify(self, token: str) -> tuple[int, int, float]:
        try:
            data: Any
            data, issued = self._serializer.loads(token, max_age=self.ttl, return_timestamp=True)
        except SignatureExpired:
            raise Unauthorized("token expired") from None
        except BadSignature:
            raise Unauthorized("invalid token") from None
        if not isinstance(data, dict) or not isinstance(data.get("u"), int):
            raise Unauthorized("invalid token")
        return int(data["u"]), int(data.get("v", 0)), issued.timestamp()


@dataclass(frozen=True, slots=True)
class AuthUser:
    """An authenticated user, as the request handlers see them."""

    id: int
    email: str
    name: str
    role: Role
    team_id: int | None
    active: bool
    token_version: int
    language: str
    queue_ids: frozenset[int]

    @property
    def viewer(self) -> Viewer:
        """The query scope of this user."""
        return Viewer(self.id, self.role, self.team_id, self.queue_ids)


_USER = sa.select(USER).where(USER.c.id == sa.bindparam("uid"))
_QUEUES_OF = sa.select(QUEUE_MEMBER.c.queue_id).where(QUEUE_MEMBER.c.user_id == sa.bindparam("uid"))


def load_auth_user(session: Connection, user_id: int) -> AuthUser | None:
    """Read a user and their queues (statements built once: this runs per token check)."""
    rows = fetch(session, _USER, {"uid": user_id})
    if not rows:
        return None
    row = rows[0]
    queues = frozenset(r[0] for r in fetch(session, _QUEUES_OF, {"uid": user_id}))
    return AuthUser(
        id=row.id,
        email=row.email,
        name=row.name,
        role=Role(row.role),
        team_id=row.team_id,
        active=row.active,
        token_version=row.token_version,
        language=row.language,
        queue_ids=queues,
    )


class UserCache:
    """Users by id for token checks; dropped on ``user.updated`` events and after ``ttl``."""

    def __init__(self, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._items: dict[int, tuple[float, AuthUser | None]] = {}

    def get(self, user_id: int) -> tuple[bool, AuthUser | None]:
        """(hit, user)."""
        item = self._items.get(user_id)
        if item is None or item[0] < self._clock():
            return False, None
        return True, item[1]

    def put(self, user_id: int, user: AuthUser | None) -> None:
        """Remember a lookup."""
        if len(self._items) > 10_000:
            self._items.clear()
        self._items[user_id] = (self._clock() + self._ttl, user)

    def drop(self, user_id: int | None = None) -> None:
        """Forget one user, or everyone."""
        if user_id is None:
            self._items.clear()
        else:
            self._items.pop(user_id, None)


class LoginThrottle:
    """At most ``limit`` failed logins per key (account, address) in ``window`` seconds."""

    def __init__(
        self, limit: int = 10, window: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def check(self, *keys: str) -> None:
        """Raise :class:`RateLimited` when any key is over the limit."""
        now = self._clock()
        for key in keys:
            hits = self._failures.get(key)
            if hits is None:
                continue
            while hits and hits[0] <= now - self._window:
                hits.popleft()
            if len(hits) >= self._limit:
                raise RateLimited("too many failed logins; try again later")

    def failed(self, *keys: str) -> None:
        """Count a failure against each key."""
        now = self._clock()
        if len(self._failures) > 100_000:
            self._failures.clear()
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, *keys: str) -> None:
        """Clear the counters of a successful login."""
        for key in keys:
            self._failures.pop(key, None)
