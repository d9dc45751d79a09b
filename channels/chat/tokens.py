"""Visitor tokens: the server names each anonymous visitor and signs that name."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

__all__ = ["Visitor", "VisitorTokens"]

TTL_SECONDS = 30 * 86_400


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who a widget session speaks for: a chat handle, and whether the site verified it."""

    handle: str
    verified: bool = False


class VisitorTokens:
    """HMAC-signed ``{h: handle, v: verified}``; only the server mints handles.

    A visitor can name no handle but the one its token carries, so it cannot join another
    visitor's conversation; a forged, expired or foreign token just gets a new visitor.
    """

    def __init__(self, secret: str, ttl_seconds: int = TTL_SECONDS) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="cc-chat-visitor")
        self.ttl = ttl_seconds

    @staticmethod
    def new_visitor() -> Visitor:
        """A fresh anonymous visitor (128 random bits)."""
        return Visitor("v-" + secrets.token_urlsafe(16).replace("_", "x").replace("-", "y"))

    def issue(self, visitor: Visitor) -> str:
        """The token the widget keeps and presents when it reconnects."""
        return self._serializer.dumps({"h": visitor.handle, "v": visitor.verified})

    def read(self, token: Any) -> Visitor | None:
        """The visitor of a valid token, else None."""
        if not isinstance(token, str) or not token or len(token) > 500:
            return None
        try:
            data = self._serializer.loads(token, max_age=self.ttl)
        except BadSignature:  # SignatureExpired is a BadSignature too
            return None
        if not isinstance(data, dict) or not isinstance(data.get("h"), str):
            return None
        return Visitor(data["h"], bool(data.get("v")))
