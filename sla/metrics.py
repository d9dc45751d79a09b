"""Contact-center metric formulas over raw counters (reference §3): pure functions.

Service level has four production variants (:class:`SlVariant`); all are computed from the same
raw counts, so the variant is a display choice, not a storage one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum

from sla.clock import to_epoch

__all__ = [
    "Counters",
    "SlVariant",
    "Summary",
    "abandon_rate",
    "aht",
    "asa",
    "longest_wait",
    "occupancy",
    "seconds_of",
    "service_level",
    "summarize",
]


def seconds_of(t: float | datetime) -> float:
    """Epoch seconds of a float or an aware datetime."""
    return to_epoch(t) if isinstance(t, datetime) else float(t)


@dataclass(slots=True)
class Counters:
    """Raw counts of one bucket or window. ``abandoned`` includes the short abandons."""

    offered: int = 0
    answered: int = 0
    answered_within_threshold: int = 0
    abandoned: int = 0
    abandoned_within_threshold: int = 0
    short_abandoned: int = 0
    callbacks: int = 0
    callbacks_within_threshold: int = 0
    answer_wait_total: float = 0.0
    abandon_wait_total: float = 0.0
    handled: int = 0
    handle_time_total: float = 0.0

    def add(self, other: Counters) -> None:
        """Add ``other`` into this one."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def __add__(self, other: Counters) -> Counters:
        total = Counters()
        total.add(self)
        total.add(other)
        return total


class SlVariant(StrEnum):
    """Service-level variants of reference §3.1 (T = threshold)."""

    V1 = "answered/answered"  # A_T / A (Asterisk ServicelevelPerf)
    V2 = "abandons within T count as met"  # (A_T + Ab_T) / (A + Ab) (Asterisk ServicelevelPerf2)
    V3 = "removed from queue within T / queued"  # (A_T + Ab_T + CB_T) / Q (Amazon Connect)
    V4 = "answered within T / (answered + abandoned)"  # A_T / (A + Ab [- SAb]) (Genesys)


def _ratio(num: float, den: float) -> float | None:
    return None if den <= 0 else num / den


def service_level(
    c: Counters,
    variant: SlVariant = SlVariant.V4,
    *,
    exclude_short_abandons: bool = True,
    include_abandons: bool = True,
) -> float | None:
    """Service level as a fraction (``None`` without data).

    With ``exclude_short_abandons`` (the default) short abandons leave numerator and
    denominator of V2-V4; ``exclude_short_abandons=False`` gives the vendors' raw formulas.
    ``include_abandons`` is Genesys' *Include Abandons* switch (V4 only).
    """
    short = c.short_abandoned if exclude_short_abandons else 0
    ab, ab_t = c.abandoned - short, c.abandoned_within_threshold - short
    match variant:
        case SlVariant.V1:
            return _ratio(c.answered_within_threshold, c.answered)
        case SlVariant.V2:
            return _ratio(c.answered_within_threshold + ab_t, c.answered + ab)
        case SlVariant.V3:
            met = c.answered_within_threshold + ab_t + c.callbacks_within_threshold
            return _ratio(met, c.offered - short)
        case SlVariant.V4:
            return _ratio(c.answered_within_threshold, c.answered + (ab if include_abandons else 0))


def asa(c: Counters) -> float | None:
    """Average speed of answer: total answer wait / answered (seconds)."""
    return _ratio(c.answer_wait_total, c.answered)


def aht(c: Counters) -> float | None:
    """Average handle time: total handle time / handled (seconds)."""
    return _ratio(c.handle_time_total, c.handled)


def abandon_rate(c: Counters, *, exclude_short_abandons: bool = True) -> float | None:
    """Abandoned / offered (Amazon Connect), short abandons removed from both by default."""
    short = c.short_abandoned if exclude_short_abandons else 0
    return _ratio(c.abandoned - short, c.offered - short)


def occupancy(busy_seconds: float, available_seconds: float) -> float | None:
    """Handle time / (handle time + idle time) of agents (Amazon Connect)."""
    return _ratio(busy_seconds, busy_seconds + available_seconds)


def longest_wait(waiting_since: Iterable[float | datetime], now: float | datetime) -> float:
    """Seconds the oldest waiting item has waited (0 when nothing waits)."""
    oldest = min((seconds_of(t) for t in waiting_since), default=None)
    return 0.0 if oldest is None else max(0.0, seconds_of(now) - oldest)


@dataclass(frozen=True, slots=True)
class Summary:
    """The wallboard figures of one window."""

    counters: Counters
    service_level: float | None
    variant: SlVariant
    asa: float | None
    aht: float | None
    abandon_rate: float | None


def summarize(c: Counters, variant: SlVariant = SlVariant.V4) -> Summary:
    """Service level (``variant``, short abandons excluded), ASA, AHT and abandon rate."""
    return Summary(c, service_level(c, variant), variant, asa(c), aht(c), abandon_rate(c))
