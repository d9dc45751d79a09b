"""Value types and parsing for business hours: intervals of a local day and holidays.

Formats match the ``BusinessCalendar`` table: weekly hours ``{"mon": [["09:00", "17:00"]]}``
and holidays ``["2026-12-25", "2026-12-24 09:00-12:00"]`` (a date with hours is a *partial*
holiday: those are the only open hours of that date).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

__all__ = [
    "DAY_NAMES",
    "DAY_NAMES_LONG",
    "DaySchedule",
    "Holiday",
    "Interval",
    "normalize",
    "parse_clock",
    "parse_holiday",
    "parse_interval",
    "parse_weekly",
]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES_LONG = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_SECONDS = 86_400


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """Open hours ``[start, end)`` of one local day, in seconds after local midnight (0..86400)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= _DAY_SECONDS:
            raise ValueError(f"invalid business-hours interval {self.start}..{self.end}")


DaySchedule = tuple[Interval, ...]


@dataclass(frozen=True, slots=True)
class Holiday:
    """A closed date; with ``hours`` a partial holiday whose only open hours are those."""

    day: date
    hours: DaySchedule = ()


def normalize(intervals: Iterable[Interval]) -> DaySchedule:
    """Sort and merge overlapping or touching intervals."""
    merged: list[Interval] = []
    for iv in sorted(intervals):
        if merged and iv.start <= merged[-1].end:
            merged[-1] = Interval(merged[-1].start, max(merged[-1].end, iv.end))
        else:
            merged.append(iv)
    return tuple(merged)


def parse_clock(text: str) -> int:
    """``"HH:MM"`` or ``"HH:MM:SS"`` (``"24:00"`` allowed) to seconds after midnight."""
    parts = text.strip().split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        raise ValueError(f"invalid time of day {text!r} (want HH:MM)")
    h, m, s = (int(p) for p in (*parts, "0")[:3])
    if m > 59 or s > 59 or h * 3600 + m * 60 + s > _DAY_SECONDS:
        raise ValueError(f"invalid time of day {text!r}")
    return h * 3600 + m * 60 + s


def parse_interval(value: str | Sequence[str]) -> Interval:
    """``"09:00-17:00"`` or ``["09:00", "17:00"]`` to an :class:`Interval`."""
    parts = value.split("-") if isinstance(value, str) else list(value)
    if len(parts) != 2:
        raise ValueError(f"invalid interval {value!r} (want start-end)")
    return Interval(parse_clock(parts[0]), parse_clock(parts[1]))


def _day_index(key: str) -> int:
    name = key.strip().lower()
    if name[:3] not in DAY_NAMES or not DAY_NAMES_LONG[DAY_NAMES.index(name[:3])].startswith(name):
        raise ValueError(f"unknown weekday {key!r}")
    return DAY_NAMES.index(name[:3])


def parse_weekly(
    weekly: Mapping[str, Sequence[str | Sequence[str] | Interval]],
) -> tuple[DaySchedule, ...]:
    """Weekday name (``mon``.. or ``monday``..) to intervals; 7 schedules, Monday first."""
    days: list[list[Interval]] = [[] for _ in range(7)]
    for key, values in weekly.items():
        for value in values:
            iv = value if isinstance(value, Interval) else parse_interval(value)
            days[_day_index(key)].append(iv)
    return tuple(normalize(d) for d in days)


def parse_holiday(value: str | date | Holiday) -> Holiday:
    """``"YYYY-MM-DD"`` (closed) or ``"YYYY-MM-DD 09:00-12:00[,13:00-15:00]"`` (partial)."""
    if isinstance(value, Holiday):
        return value
    if isinstance(value, date):
        return Holiday(value)
    day_text, _, hours_text = value.strip().partition(" ")
    day = date.fromisoformat(day_text)
    hours = [parse_interval(h) for h in hours_text.replace(" ", "").split(",") if h]
    return Holiday(day, normalize(hours))
