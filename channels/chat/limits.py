"""Flood limits for the public widget: token buckets per key with explicit time (pure)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["ChatLimits", "RateLimiter"]


class RateLimiter:
    """``burst`` requests at once, refilled at ``per_minute`` per minute, per key.

    Keys are visitors or client addresses; at most ``max_keys`` are remembered (the least
    recently used are forgotten first, which only ever gives a forgotten key a fresh bucket).
    """

    def __init__(self, per_minute: float, burst: int, max_keys: int = 50_000) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("a limit needs a positive rate and a burst of at least 1")
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str, now: float, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens from ``key``'s bucket at time ``now`` (seconds) if it has them."""
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate)
        ok = tokens >= cost
        self._buckets[key] = (tokens - cost if ok else tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return ok


@dataclass
class ChatLimits:
    """The widget's limits: messages per visitor, new sessions and forms per client address."""

    messages: RateLimiter
    sessions: RateLimiter
    forms: RateLimiter
    typing: RateLimiter

    @classmethod
    def create(cls, messages_per_minute: int) -> ChatLimits:
        """Messages (and files) per visitor as configured; the rest fixed."""
        return cls(
            messages=RateLimiter(messages_per_minute, burst=max(5, messages_per_minute // 3)),
            sessions=RateLimiter(30, burst=30),  # connections per client address
            forms=RateLimiter(6, burst=5),  # new chats, offline messages, transcripts per address
            typing=RateLimiter(120, burst=10),  # typing notices per visitor
        )
