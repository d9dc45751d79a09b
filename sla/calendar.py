"""Business calendars: weekly wall-clock hours in a time zone, with (partial) holidays.

Semantics (see ``docs/sla.md``): an open interval ``[start, end)`` of a local date is mapped to
the real (UTC) interval between the instants at which the local clock reads ``start`` and
``end``; business time is real elapsed time inside those intervals. Across DST:

* a wall-clock time that does not exist (spring-forward gap) happens at the moment of the jump,
  so the missing hour is simply skipped (a 00:00-06:00 shift lasts 5 h that night);
* a wall-clock time that exists twice (fall-back) opens at its first and closes at its last
  occurrence, so a repeated hour counts by real elapsed time (00:00-06:00 lasts 7 h).

Arithmetic is exact in integer microseconds and walks whole days (each day's UTC spans are
computed once and cached), never minutes: a 30-business-day target is ~45 cheap steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sla.clock import from_us, require_utc, to_us
from sla.hours import (
    DAY_NAMES,
    DaySchedule,
    Holiday,
    Interval,
    normalize,
    parse_holiday,
    parse_weekly,
)

__all__ = ["MAX_CLOSED_DAYS", "BusinessCalendar"]

MAX_CLOSED_DAYS = 3_700
"""A walk that meets this many consecutive closed days gives up (calendar never opens)."""

_ONE_DAY = timedelta(days=1)
_CACHE_LIMIT = 8_192
Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """Weekly hours (7 day schedules, Monday first) in ``timezone`` plus holidays."""

    timezone: str
    weekly_hours: tuple[DaySchedule, ...]
    holidays: tuple[Holiday, ...] = ()
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _special: dict[date, DaySchedule] = field(init=False, repr=False, compare=False)
    _cache: dict[date, tuple[Span, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.weekly_hours) != 7:
            raise ValueError("weekly_hours needs 7 day schedules, Monday first")
        object.__setattr__(self, "weekly_hours", tuple(normalize(d) for d in self.weekly_hours))
        object.__setattr__(self, "_zone", ZoneInfo(self.timezone))
        object.__setattr__(self, "_special", {h.day: normalize(h.hours) for h in self.holidays})
        object.__setattr__(self, "_cache", {})

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_config(
        cls,
        timezone: str,
        weekly_hours: Mapping[str, Sequence[str | Sequence[str] | Interval]],
        holidays: Iterable[str | date | Holiday] = (),
    ) -> BusinessCalendar:
        """Build from the stored JSON shapes (``{"mon": [["09:00", "17:00"]]}``, ISO dates)."""
        return cls(timezone, parse_weekly(weekly_hours), tuple(parse_holiday(h) for h in holidays))

    @classmethod
    def office_hours(
        cls,
        timezone: str,
        start: str = "09:00",
        end: str = "17:00",
        weekdays: Iterable[int] = range(5),
        holidays: Iterable[str | date | Holiday] = (),
    ) -> BusinessCalendar:
        """The same hours on the given weekdays (0 = Monday; default Monday to Friday)."""
        hours = {DAY_NAMES[i]: [f"{start}-{end}"] for i in set(weekdays)}
        return cls(timezone, parse_weekly(hours), tuple(parse_holiday(h) for h in holidays))

    # -- day spans ----------------------------------------------------------------------------

    def hours_on(self, day: date) -> DaySchedule:
        """The open wall-clock intervals of a local date (holidays applied)."""
        special = self._special.get(day)
        return special if special is not None else self.weekly_hours[day.weekday()]

    def _offset_s(self, second: int) -> timedelta | None:
        return from_us(second * 1_000_000).astimezone(self._zone).utcoffset()

    def _resolve(self, day: date, second: int, is_end: bool) -> int:
        """UTC microseconds at which the local clock reads ``second`` on ``day``."""
        wall = datetime.combine(day, time()) + timedelta(seconds=second)
        first = to_us(wall.replace(tzinfo=self._zone, fold=0))
        second_fold = to_us(wall.replace(tzinfo=self._zone, fold=1))
        if first == second_fold:
            return first
        if first < second_fold:  # repeated wall time (fall-back): first or last occurrence
            return second_fold if is_end else first
        # nonexistent wall time (spring-forward gap): the instant of the jump, found by
        # bisection between the two candidate instants (the offset changes exactly once)
        lo, hi = second_fold // 1_000_000, -(-first // 1_000_000)
        before = self._offset_s(lo)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._offset_s(mid) == before:
                lo = mid
            else:
                hi = mid
        return hi * 1_000_000

    def spans_on(self, day: date) -> tuple[Span, ...]:
        """The open intervals of a local date as sorted, disjoint UTC microsecond spans."""
        cached = self._cache.get(day)
        if cached is not None:
            return cached
        spans: list[Span] = []
        for iv in self.hours_on(day):
            s, e = self._resolve(day, iv.start, False), self._resolve(day, iv.end, True)
            if e <= s:
                continue
            if spans and s <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(e, spans[-1][1]))
            else:
                spans.append((s, e))
        result = tuple(spans)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[day] = result
        return result

    def _local_date(self, us: int) -> date:
        return from_us(us).astimezone(self._zone).date()

    def _spans_from(self, us: int) -> Iterator[Span]:
        """Open spans at or after ``us`` in order, the first clipped to start at ``us``."""
        day = self._local_date(us) - _ONE_DAY
        floor, closed = us, 0
        while True:
            found = False
            for s, e in self.spans_on(day):
                s = max(s, floor)
                if e > s:
                    found = True
                    floor = e
                    yield s, e
            closed = 0 if found else closed + 1
            if closed > MAX_CLOSED_DAYS:
                raise ValueError(f"calendar {self.timezone} has no business hours in reach")
            day += _ONE_DAY

    # -- business time ------------------------------------------------------------------------

    def add_business_seconds(self, start: datetime, seconds: float) -> datetime:
        """The earliest instant at which ``seconds`` business seconds have run since ``start``.

        A target that is used up exactly at closing time lands on the closing instant (Friday
        17:00), not on the next opening. ``seconds=0`` returns ``start``.
        """
        remaining = round(seconds * 1_000_000)
        if remaining < 0:
            raise ValueError("seconds must not be negative")
        us = to_us(start)
        if remaining == 0:
            return from_us(us)
        for s, e in self._spans_from(us):
            if remaining <= e - s:
                return from_us(s + remaining)
            remaining -= e - s
        raise AssertionError("unreachable")  # pragma: no cover

    def business_seconds_between(self, a: datetime, b: datetime) -> float:
        """Business seconds in ``[a, b)``; negative when ``b`` is before ``a``."""
        a_us, b_us = to_us(a), to_us(b)
        if b_us < a_us:
            return -self.business_seconds_between(b, a)
        total = 0
        for s, e in self._spans_from(a_us):
            if s >= b_us:
                break
            total += min(e, b_us) - s
        return total / 1_000_000

    def is_open(self, t: datetime) -> bool:
        """Whether ``t`` falls inside business hours."""
        us = to_us(t)
        day = self._local_date(us)
        return any(s <= us < e for d in (day - _ONE_DAY, day) for s, e in self.spans_on(d))

    def next_open(self, t: datetime) -> datetime:
        """``t`` if open, else the next opening instant."""
        return from_us(next(self._spans_from(to_us(t)))[0])

    def business_seconds_on(self, day: date) -> float:
        """Length of a local date's business hours in real seconds (0 on closed days)."""
        return sum(e - s for s, e in self.spans_on(day)) / 1_000_000

    def add_business_days(self, start: datetime, days: int) -> datetime:
        """The same position ``days`` business days later ("within N business days").

        A business day is a local date with open hours. A start inside hours keeps its offset
        into the day (capped at the target day's length, e.g. a half-day holiday); a start after
        closing counts as the end of that day and one before opening as the end of the previous
        business day, so Friday 17:30 + 1 business day = Monday at closing time.
        """
        if days < 0:
            raise ValueError("days must not be negative")
        us = to_us(require_utc(start, "start"))
        day = self._local_date(us)
        spans = self.spans_on(day)
        length = sum(e - s for s, e in spans)
        offset = sum(min(e, us) - s for s, e in spans if s < us)
        if length == 0 or offset == 0:
            day, offset = self._previous_business_day(day), -1
        elif offset >= length:
            offset = -1
        for _ in range(days):
            day = self._next_business_day(day)
        spans = self.spans_on(day)
        if offset < 0 or offset >= sum(e - s for s, e in spans):
            return from_us(spans[-1][1])
        for s, e in spans:
            if offset <= e - s:
                return from_us(s + offset)
            offset -= e - s
        raise AssertionError("unreachable")  # pragma: no cover

    def _next_business_day(self, day: date) -> date:
        for _ in range(MAX_CLOSED_DAYS):
            day += _ONE_DAY
            if self.spans_on(day):
                return day
        raise ValueError(f"calendar {self.timezone} has no business hours in reach")

    def _previous_business_day(self, day: date) -> date:
        for _ in range(MAX_CLOSED_DAYS):
            day -= _ONE_DAY
            if self.spans_on(day):
                return day
        raise ValueError(f"calendar {self.timezone} has no business hours in reach")
