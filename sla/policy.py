"""SLA policies, most-specific-wins matching, deadlines and status: pure functions of facts.

Input is a policy plus a ticket's timeline facts (created, channel, pauses, replies); output is
:class:`Deadlines` (what to arm timers for); :func:`sla.status.evaluate` gives met / breached /
remaining from the same facts.
Which metric applies where:

* ``answer`` (live channels: chat, voice), from ``created_at`` in *calendar time*, never paused;
* ``first_response`` (async channels: email, sms, whatsapp, api), from ``created_at``;
* ``next_response`` (async), from the oldest customer message still awaiting a reply;
* ``resolution`` (every channel), from ``created_at``.

The last three use the policy's business calendar (``None`` = calendar time) and exclude
paused time when ``pause_while_pending`` (paused business time does not count either).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from sla.calendar import BusinessCalendar
from sla.clock import CALENDAR_TIME, Pause, TimeBase, deadline_after

__all__ = [
    "ASYNC_CHANNELS",
    "LIVE_CHANNELS",
    "Deadlines",
    "Metric",
    "PolicyRule",
    "PolicySet",
    "SlaPolicy",
    "TicketFacts",
    "compute_deadlines",
    "deadlines_for",
    "due_and_warn",
    "paused_for",
]

LIVE_CHANNELS = frozenset({"chat", "voice"})
ASYNC_CHANNELS = frozenset({"email", "sms", "whatsapp", "api"})


class Metric(StrEnum):
    """The four tracked promises."""

    ANSWER = "answer"
    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """Targets in seconds (``None`` = not tracked); business targets are business seconds."""

    answer_seconds: float | None = 20
    first_response_seconds: float | None = 86_400
    next_response_seconds: float | None = None
    resolution_seconds: float | None = None
    business_hours: BusinessCalendar | None = None
    warn_at_percent: float | None = 80
    pause_while_pending: bool = True
    name: str = "default"

    def __post_init__(self) -> None:
        for metric in Metric:
            target = self.target(metric)
            if target is not None and target <= 0:
                raise ValueError(f"{metric} target must be positive, got {target}")
        if self.warn_at_percent is not None and not 0 < self.warn_at_percent <= 100:
            raise ValueError("warn_at_percent must be in (0, 100]")

    def target(self, metric: Metric) -> float | None:
        """The target of one metric in seconds, or ``None``."""
        return {
            Metric.ANSWER: self.answer_seconds,
            Metric.FIRST_RESPONSE: self.first_response_seconds,
            Metric.NEXT_RESPONSE: self.next_response_seconds,
            Metric.RESOLUTION: self.resolution_seconds,
        }[metric]

    def time_base(self, metric: Metric) -> TimeBase:
        """Calendar time for ``answer``; the business calendar (if any) for the others."""
        if metric is Metric.ANSWER or self.business_hours is None:
            return CALENDAR_TIME
        return self.business_hours

    def applies(self, metric: Metric, channel: str) -> bool:
        """Whether ``metric`` is tracked for ``channel`` under this policy."""
        if self.target(metric) is None:
            return False
        if metric is Metric.ANSWER:
            return channel in LIVE_CHANNELS
        if metric in (Metric.FIRST_RESPONSE, Metric.NEXT_RESPONSE):
            return channel not in LIVE_CHANNELS
        return True


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """A policy for tickets matching every given key (``None`` = any)."""

    policy: SlaPolicy
    queue: str | int | None = None
    priority: int | None = None
    channel: str | None = None

    @property
    def specificity(self) -> tuple[int, bool, bool, bool]:
        """More keys win; on a tie queue beats priority beats channel."""
        keys = (self.queue is not None, self.priority is not None, self.channel is not None)
        return (sum(keys), *keys)


@dataclass(frozen=True, slots=True)
class PolicySet:
    """Chooses a policy by (queue, priority, channel): most specific matching rule wins."""

    rules: tuple[PolicyRule, ...] = ()
    default: SlaPolicy = field(default_factory=SlaPolicy)
    _index: dict[tuple[str | int | None, int | None, str | None], SlaPolicy] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        index: dict[tuple[str | int | None, int | None, str | None], SlaPolicy] = {}
        for rule in self.rules:
            key = (rule.queue, rule.priority, rule.channel)
            if key in index:
                raise ValueError(f"two SLA policy rules for the same keys {key}")
            index[key] = rule.policy
        object.__setattr__(self, "_index", index)

    def match(self, queue: str | int | None, priority: int | None, channel: str) -> SlaPolicy:
        """The policy of the most specific rule matching the ticket (8 dict lookups)."""
        for use_q, use_p, use_c in _PATTERNS:
            if (use_q and queue is None) or (use_p and priority is None):
                continue
            key = (
                queue if use_q else None,
                priority if use_p else None,
                channel if use_c else None,
            )
            policy = self._index.get(key)
            if policy is not None:
                return policy
        return self.default


_PATTERNS = sorted(
    ((q, p, c) for q in (True, False) for p in (True, False) for c in (True, False)),
    key=lambda k: (sum(k), *k),
    reverse=True,
)


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Due and warning instants per metric (UTC; ``None`` = not running)."""

    answer_due: datetime | None = None
    answer_warn_at: datetime | None = None
    first_response_due: datetime | None = None
    first_response_warn_at: datetime | None = None
    next_response_due: datetime | None = None
    next_response_warn_at: datetime | None = None
    resolution_due: datetime | None = None
    resolution_warn_at: datetime | None = None

    def due(self, metric: Metric) -> datetime | None:
        """Due instant of ``metric``."""
        return self.pair(metric)[1]

    def warn_at(self, metric: Metric) -> datetime | None:
        """Warning instant of ``metric``."""
        return self.pair(metric)[0]

    def pair(self, metric: Metric) -> tuple[datetime | None, datetime | None]:
        """``(warn_at, due)`` of ``metric``."""
        match metric:
            case Metric.ANSWER:
                return self.answer_warn_at, self.answer_due
            case Metric.FIRST_RESPONSE:
                return self.first_response_warn_at, self.first_response_due
            case Metric.NEXT_RESPONSE:
                return self.next_response_warn_at, self.next_response_due
            case Metric.RESOLUTION:
                return self.resolution_warn_at, self.resolution_due

    def items(self) -> Iterator[tuple[Metric, datetime | None, datetime | None]]:
        """``(metric, warn_at, due)`` for every metric with a due or warning instant."""
        for metric in Metric:
            warn, due = self.pair(metric)
            if warn is not None or due is not None:
                yield metric, warn, due

    @property
    def next_breach_at(self) -> datetime | None:
        """The earliest due instant (what to index for a backstop sweep)."""
        dues = [due for _, _, due in self.items() if due is not None]
        return min(dues, default=None)


@dataclass(frozen=True, slots=True)
class TicketFacts:
    """What the SLA math needs to know about a ticket (all instants tz-aware)."""

    created_at: datetime
    channel: str
    pauses: tuple[Pause, ...] = ()
    answered_at: datetime | None = None
    first_response_at: datetime | None = None
    awaiting_reply_since: datetime | None = None
    resolved_at: datetime | None = None

    def start(self, metric: Metric) -> datetime | None:
        """When the metric's clock starts (``None``: not running)."""
        if metric is Metric.NEXT_RESPONSE:
            return self.awaiting_reply_since
        return self.created_at

    def completed(self, metric: Metric) -> datetime | None:
        """When the metric was fulfilled (``None``: still open)."""
        return {
            Metric.ANSWER: self.answered_at,
            Metric.FIRST_RESPONSE: self.first_response_at,
            Metric.NEXT_RESPONSE: None,
            Metric.RESOLUTION: self.resolved_at,
        }[metric]


def paused_for(policy: SlaPolicy, metric: Metric, pauses: Iterable[Pause]) -> tuple[Pause, ...]:
    """The pauses that stop ``metric``'s clock (none for ``answer`` or without pausing)."""
    if metric is Metric.ANSWER or not policy.pause_while_pending:
        return ()
    return tuple(pauses)


def due_and_warn(
    policy: SlaPolicy, metric: Metric, start: datetime, pauses: Iterable[Pause]
) -> tuple[datetime | None, datetime | None]:
    """``(due, warn_at)`` of ``metric`` started at ``start`` (None: untracked or paused)."""
    target = policy.target(metric)
    if target is None:
        return None, None
    base, paused = policy.time_base(metric), paused_for(policy, metric, pauses)
    due = deadline_after(base, start, target, paused)
    pct = policy.warn_at_percent
    warn = None if pct is None else deadline_after(base, start, target * pct / 100, paused)
    return due, warn


def compute_deadlines(
    policy: SlaPolicy,
    created_at: datetime,
    channel: str,
    pauses: Iterable[Pause] = (),
    *,
    awaiting_reply_since: datetime | None = None,
) -> Deadlines:
    """Deadlines of every metric that applies to a ticket of ``channel`` (none completed)."""
    facts = TicketFacts(created_at, channel, tuple(pauses))
    if awaiting_reply_since is not None:
        facts = replace(facts, awaiting_reply_since=awaiting_reply_since)
    return deadlines_for(policy, facts)


def deadlines_for(policy: SlaPolicy, facts: TicketFacts) -> Deadlines:
    """Deadlines of the metrics still running (completed metrics and paused clocks get None)."""
    values: dict[str, datetime | None] = {}
    for metric in Metric:
        start = facts.start(metric)
        if start is None or not policy.applies(metric, facts.channel):
            continue
        if facts.completed(metric) is not None or facts.resolved_at is not None:
            continue
        due, warn = due_and_warn(policy, metric, start, facts.pauses)
        values[f"{metric.value}_due"], values[f"{metric.value}_warn_at"] = due, warn
    return Deadlines(**values)
