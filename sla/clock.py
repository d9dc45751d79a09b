"""Time primitives for the SLA core: UTC instants, pauses and pause-aware deadline arithmetic.

Nothing here reads the clock: every function takes the instants it needs. A *time base* is
anything with the four business-time operations (:class:`TimeBase`); :data:`CALENDAR_TIME`
is the 24/7 one (plain elapsed time) and :class:`sla.calendar.BusinessCalendar` the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = [
    "CALENDAR_TIME",
    "EPOCH",
    "UTC",
    "CalendarTime",
    "Pause",
    "TimeBase",
    "deadline_after",
    "elapsed_excluding",
    "from_epoch",
    "from_us",
    "merge_pauses",
    "require_utc",
    "to_epoch",
    "to_us",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def require_utc(t: datetime, name: str = "t") -> datetime:
    """Return ``t`` converted to UTC; raise ``ValueError`` if it is naive."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {t!r}")
    return t.astimezone(UTC)


def to_us(t: datetime) -> int:
    """Exact integer microseconds since the Unix epoch of an aware datetime."""
    return (require_utc(t) - EPOCH) // _US


def from_us(us: int) -> datetime:
    """The UTC datetime ``us`` microseconds after the Unix epoch."""
    return EPOCH + timedelta(microseconds=us)


def to_epoch(t: datetime) -> float:
    """Float seconds since the Unix epoch (the engine's time unit)."""
    return require_utc(t).timestamp()


def from_epoch(seconds: float) -> datetime:
    """The UTC datetime for float epoch seconds."""
    return datetime.fromtimestamp(seconds, UTC)


class TimeBase(Protocol):
    """The business-time operations the SLA math needs (calendar time or a business calendar)."""

    def add_business_seconds(self, start: datetime, seconds: float) -> datetime:
        """The earliest instant at which ``seconds`` of business time have passed since start."""
        ...

    def business_seconds_between(self, a: datetime, b: datetime) -> float:
        """Business seconds in ``[a, b)`` (negative if ``b < a``)."""
        ...

    def is_open(self, t: datetime) -> bool:
        """Whether business time is running at ``t``."""
        ...

    def next_open(self, t: datetime) -> datetime:
        """``t`` if open, else the next instant at which business time starts running."""
        ...


@dataclass(frozen=True, slots=True)
class CalendarTime:
    """The 24/7 time base: business time is elapsed (real) time."""

    def add_business_seconds(self, start: datetime, seconds: float) -> datetime:
        """``start + seconds`` (rounded to the microsecond); ``seconds`` must not be negative."""
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        return from_us(to_us(start) + round(seconds * 1_000_000))

    def business_seconds_between(self, a: datetime, b: datetime) -> float:
        """Elapsed seconds from ``a`` to ``b``."""
        return (to_us(b) - to_us(a)) / 1_000_000

    def is_open(self, t: datetime) -> bool:
        """Always open."""
        require_utc(t)
        return True

    def next_open(self, t: datetime) -> datetime:
        """``t`` itself."""
        return require_utc(t)


CALENDAR_TIME = CalendarTime()


@dataclass(frozen=True, slots=True)
class Pause:
    """An interval during which the SLA clock is stopped; ``end=None`` means still paused."""

    start: datetime
    end: datetime | None = None

    def __post_init__(self) -> None:
        require_utc(self.start, "start")
        if self.end is not None and require_utc(self.end, "end") < self.start:
            raise ValueError("a pause cannot end before it starts")


def merge_pauses(pauses: Iterable[Pause], after: datetime) -> list[Pause]:
    """Sort, clip to ``>= after`` and merge overlapping or touching pauses."""
    clipped: list[Pause] = []
    for p in sorted(pauses, key=lambda p: p.start):
        if p.end is not None and p.end <= after:
            continue
        start = max(p.start, after)
        if clipped:
            last = clipped[-1]
            if last.end is None:
                break
            if start <= last.end:
                end = None if p.end is None else max(p.end, last.end)
                clipped[-1] = Pause(last.start, end)
                continue
        clipped.append(Pause(start, p.end))
    return clipped


def deadline_after(
    base: TimeBase, start: datetime, seconds: float, pauses: Iterable[Pause] = ()
) -> datetime | None:
    """When ``seconds`` of un-paused business time will have run since ``start``.

    Returns ``None`` when the clock is paused (open-ended pause) before the target is reached:
    the deadline is unknown until the pause ends. Cost: one business-time walk per pause.
    """
    remaining = float(seconds)
    cursor = require_utc(start, "start")
    for pause in merge_pauses(pauses, cursor):
        candidate = base.add_business_seconds(cursor, remaining)
        if candidate <= pause.start:
            return candidate
        remaining -= base.business_seconds_between(cursor, pause.start)
        if pause.end is None:
            return None
        cursor = pause.end
    return base.add_business_seconds(cursor, remaining)


def elapsed_excluding(
    base: TimeBase, start: datetime, now: datetime, pauses: Iterable[Pause] = ()
) -> float:
    """Business seconds in ``[start, now)`` minus those inside pauses (never negative)."""
    start = require_utc(start, "start")
    now = require_utc(now, "now")
    if now <= start:
        return 0.0
    total = base.business_seconds_between(start, now)
    for pause in merge_pauses(pauses, start):
        if pause.start >= now:
            break
        end = now if pause.end is None else min(pause.end, now)
        total -= base.business_seconds_between(pause.start, end)
    return max(total, 0.0)
