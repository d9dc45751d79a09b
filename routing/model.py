"""Value types of the skills router: agents, work items, queue policy, offers, errors.

Everything here is an immutable (frozen, slotted) dataclass or a ``StrEnum``; the router keeps
its own mutable records internally and hands these out. ``Channel`` and ``Presence`` carry the
same string values as ``tickets.domain`` (a ``StrEnum`` member equals its string), but are
declared here so that the router core depends on the standard library only.

Time is a float in seconds on one monotonic-style axis chosen by the caller (epoch seconds work);
nothing in this package reads the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

__all__ = [
    "DEFAULT_CAPACITY",
    "DEFAULT_OFFER_TIMEOUT",
    "LIVE_CHANNELS",
    "MAX_LEVEL",
    "AgentSpec",
    "AgentView",
    "Assignment",
    "Channel",
    "Offer",
    "Presence",
    "QueueConfig",
    "RelaxStep",
    "RouterConfig",
    "SkillScore",
    "Strategy",
    "TicketState",
    "WorkItem",
    "language_skill",
]

MAX_LEVEL = 5
"""Skill levels run from 1 (basic) to ``MAX_LEVEL`` (expert)."""


class Channel(StrEnum):
    """Contact channel; each has its own per-agent capacity and offer timeout."""

    VOICE = "voice"
    CHAT = "chat"
    SMS = "sms"
    EMAIL = "email"
    API = "api"
    WHATSAPP = "whatsapp"


class Presence(StrEnum):
    """Agent presence. Only ``AVAILABLE`` agents receive offers."""

    AVAILABLE = "available"
    BUSY = "busy"
    AWAY = "away"
    OFFLINE = "offline"
    WRAP_UP = "wrap_up"


class Strategy(StrEnum):
    """Per-queue agent choice among the eligible ones."""

    LONGEST_IDLE = "longest_idle"
    """Smallest ``idle_since`` first (ties: smaller agent id)."""
    BEST_SKILL = "best_skill"
    """Highest skill score over the item's required skills, then longest idle."""


class SkillScore(StrEnum):
    """How ``Strategy.BEST_SKILL`` scores an agent over the item's required skills."""

    SUM = "sum"
    MAX = "max"


class TicketState(StrEnum):
    """Where a ticket is in the router: exactly one of these, or unknown to it."""

    WAITING = "waiting"
    OFFERED = "offered"
    ASSIGNED = "assigned"


LIVE_CHANNELS: frozenset[Channel] = frozenset({Channel.VOICE, Channel.CHAT})

DEFAULT_CAPACITY: Mapping[str, int] = MappingProxyType(
    {
        Channel.VOICE: 1,
        Channel.CHAT: 3,
        Channel.SMS: 5,
        Channel.EMAIL: 10,
        Channel.API: 10,
        Channel.WHATSAPP: 5,
    }
)

DEFAULT_OFFER_TIMEOUT: Mapping[str, float] = MappingProxyType(
    {c: (15.0 if c in LIVE_CHANNELS else 120.0) for c in Channel}
)


def language_skill(code: str) -> str:
    """The skill name that stands for speaking ``code`` (``"de"`` → ``"lang:de"``)."""
    return f"lang:{code.strip().lower()}"


def _levels(skills: Mapping[str, int], what: str) -> Mapping[str, int]:
    for name, level in skills.items():
        if not name or not 1 <= level <= MAX_LEVEL:
            raise ValueError(f"{what} {name!r}: level must be 1..{MAX_LEVEL}, got {level}")
    return MappingProxyType(dict(skills))


def _channel_map(values: Mapping[str, Any], what: str) -> dict[str, Any]:
    try:
        return {Channel(c): v for c, v in values.items()}
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """An agent as the router needs to know it.

    ``capacity`` overrides ``DEFAULT_CAPACITY`` per channel (0 switches a channel off).
    ``idle_since`` orders agents for ``Strategy.LONGEST_IDLE`` (smaller = idle longer).
    """

    id: int
    skills: Mapping[str, int] = field(default_factory=dict)
    queues: frozenset[int] = frozenset()
    capacity: Mapping[str, int] = field(default_factory=dict)
    presence: Presence = Presence.OFFLINE
    idle_since: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "skills", _levels(self.skills, "agent skill"))
        object.__setattr__(self, "queues", frozenset(self.queues))
        cap = _channel_map(self.capacity, "capacity")
        if any(v < 0 for v in cap.values()):
            raise ValueError("capacity must be >= 0")
        object.__setattr__(self, "capacity", MappingProxyType(cap))
        object.__setattr__(self, "presence", Presence(self.presence))

    def capacity_for(self, channel: str) -> int:
        """Effective capacity on ``channel`` (override, else the default)."""
        ch = Channel(channel)
        return self.capacity.get(ch, DEFAULT_CAPACITY[ch])


@dataclass(frozen=True, slots=True)
class WorkItem:
    """A ticket waiting for an agent.

    ``required_skills`` maps skill → minimum level; ``language`` adds the requirement
    ``lang:<code>`` at level 1. Higher ``priority`` is more urgent; within a priority the oldest
    ``enqueued_at`` goes first. ``preferred_agent`` (known-agent routing) gets the item first
    while ``enqueued_at + preference_window`` has not passed. ``excluded`` agents (who rejected
    it or let an offer expire) never get it again.
    """

    ticket: int
    channel: str
    queue: int
    priority: int = 0
    required_skills: Mapping[str, int] = field(default_factory=dict)
    language: str | None = None
    enqueued_at: float = 0.0
    preferred_agent: int | None = None
    preference_window: float = 0.0
    excluded: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "channel", Channel(self.channel))
        object.__setattr__(self, "required_skills", _levels(self.required_skills, "required"))
        object.__setattr__(self, "excluded", frozenset(self.excluded))
        if self.preference_window < 0:
            raise ValueError("preference_window must be >= 0")

    def requirements(self) -> dict[str, int]:
        """Required skills including the language skill (before any relaxation)."""
        req = dict(self.required_skills)
        if self.language:
            lang = language_skill(self.language)
            req[lang] = max(req.get(lang, 1), 1)
        return req


@dataclass(frozen=True, slots=True)
class RelaxStep:
    """One relaxation step of a queue, applied once an item has waited ``after_seconds``.

    Steps apply cumulatively in order. ``max_level`` caps every minimum level (``1`` = "accept
    level >= 1"); ``drop`` removes the named skills; ``drop_all`` removes every requirement
    ("any agent in the queue"), except ``lang:*`` ones when ``keep_language`` is set.
    """

    after_seconds: float
    max_level: int | None = None
    drop: frozenset[str] = frozenset()
    drop_all: bool = False
    keep_language: bool = False

    def __post_init__(self) -> None:
        if self.after_seconds < 0:
            raise ValueError("after_seconds must be >= 0")
        if self.max_level is not None and not 1 <= self.max_level <= MAX_LEVEL:
            raise ValueError(f"max_level must be 1..{MAX_LEVEL}")
        object.__setattr__(self, "drop", frozenset(self.drop))

    def apply(self, req: Mapping[str, int]) -> dict[str, int]:
        """The requirements after this step."""
        out: dict[str, int] = {}
        for skill, level in req.items():
            if skill in self.drop:
                continue
            if self.drop_all and not (self.keep_language and skill.startswith("lang:")):
                continue
            out[skill] = level if self.max_level is None else min(level, self.max_level)
        return out


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """Routing policy of one queue: agent-choice strategy and relaxation steps."""

    queue: int
    strategy: Strategy = Strategy.LONGEST_IDLE
    score: SkillScore = SkillScore.SUM
    relaxation: tuple[RelaxStep, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategy", Strategy(self.strategy))
        object.__setattr__(self, "score", SkillScore(self.score))
        steps = tuple(sorted(self.relaxation, key=lambda s: s.after_seconds))
        object.__setattr__(self, "relaxation", steps)

    def requirements_at(self, base: Mapping[str, int], stage: int) -> dict[str, int]:
        """``base`` requirements after the first ``stage`` relaxation steps."""
        req = dict(base)
        for step in self.relaxation[:stage]:
            req = step.apply(req)
        return req

    def stage_at(self, enqueued_at: float, now: float) -> int:
        """How many steps apply at ``now``: step k applies once ``enqueued_at + after <= now``."""
        return sum(1 for s in self.relaxation if enqueued_at + s.after_seconds <= now)


@dataclass(frozen=True, slots=True)
class RouterConfig:
    """Router-wide settings: offer timeout per channel; set agents ``away`` on expiry."""

    offer_timeout: Mapping[str, float] = field(default_factory=lambda: DEFAULT_OFFER_TIMEOUT)
    away_on_expire: bool = True

    def __post_init__(self) -> None:
        merged = dict(DEFAULT_OFFER_TIMEOUT)
        merged.update(_channel_map(self.offer_timeout, "offer_timeout"))
        if any(v <= 0 for v in merged.values()):
            raise ValueError("offer timeouts must be > 0")
        object.__setattr__(self, "offer_timeout", MappingProxyType(merged))

    def timeout_for(self, channel: str) -> float:
        """Seconds an offer on ``channel`` stays open."""
        return self.offer_timeout[Channel(channel)]


@dataclass(frozen=True, slots=True)
class Offer:
    """A reservation: ``ticket`` offered to ``agent`` until ``expires_at``.

    It holds one unit of the agent's capacity on ``channel`` until accepted (it becomes an
    assignment), rejected, expired, rescinded or cancelled.
    """

    ticket: int
    agent: int
    expires_at: float
    channel: Channel
    queue: int
    created_at: float


@dataclass(frozen=True, slots=True)
class Assignment:
    """A ticket an agent accepted; holds one unit of capacity until completed or cancelled."""

    ticket: int
    agent: int
    channel: Channel
    queue: int | None
    since: float


@dataclass(frozen=True, slots=True)
class AgentView:
    """Read-only state of one agent (for snapshots and debugging)."""

    id: int
    skills: Mapping[str, int]
    queues: frozenset[int]
    capacity: Mapping[str, int]
    load: Mapping[str, int]
    presence: Presence
    idle_since: float
    offers: tuple[int, ...]
    assigned: tuple[int, ...]

    def spec(self) -> AgentSpec:
        """An ``AgentSpec`` that re-creates this agent (for rebuilding a router)."""
        capacity = {str(c): n for c, n in self.capacity.items()}
        return AgentSpec(
            self.id, self.skills, self.queues, capacity, self.presence, self.idle_since
        )

    def free(self, channel: str) -> int:
        """Units of capacity left on ``channel`` (may be < 0 after a capacity cut)."""
        return self.capacity.get(channel, 0) - self.load.get(channel, 0)
