"""Property tests: adding and measuring business time are inverse and monotone, DST included."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from sla.calendar import BusinessCalendar
from sla.clock import CALENDAR_TIME, TimeBase, from_us, to_us

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
BASES: list[TimeBase] = [
    CALENDAR_TIME,
    BusinessCalendar.office_hours(
        "Europe/Berlin", holidays=["2026-03-30", "2026-10-26", "2026-12-24 09:00-12:00"]
    ),
    BusinessCalendar.office_hours("America/New_York", "08:30", "17:45"),
    BusinessCalendar.from_config(
        "Europe/Berlin", {d: ["00:00-06:00", "20:00-24:00"] for d in DAYS}
    ),
    BusinessCalendar.from_config("America/New_York", {d: ["01:00-03:00"] for d in DAYS}),
    BusinessCalendar.from_config("Australia/Lord_Howe", {d: ["00:00-24:00"] for d in DAYS}),
    BusinessCalendar.from_config(
        "America/Santiago", {d: ["00:00-01:00", "23:00-24:00"] for d in DAYS}
    ),
    BusinessCalendar.from_config("Asia/Beirut", {d: ["00:00-24:00"] for d in DAYS[:5]}),
]
START = to_us(datetime(2026, 1, 1, tzinfo=UTC))
END = to_us(datetime(2027, 1, 1, tzinfo=UTC))

bases = st.sampled_from(BASES)
instants = st.integers(START, END).map(from_us)
amounts = st.integers(0, 40 * 86_400 * 1_000_000).map(lambda us: us / 1_000_000)
FAST = settings(
    max_examples=int(os.environ.get("SLA_EXAMPLES", "150")), deadline=None, database=None
)


@FAST
@given(bases, instants, amounts)
def test_measuring_what_was_added_gives_it_back(base: TimeBase, a: datetime, s: float) -> None:
    due = base.add_business_seconds(a, s)
    assert due >= a
    assert base.business_seconds_between(a, due) == s


@FAST
@given(bases, instants, amounts, amounts)
def test_adding_is_monotone(base: TimeBase, a: datetime, s1: float, s2: float) -> None:
    lo, hi = sorted((s1, s2))
    assert base.add_business_seconds(a, lo) <= base.add_business_seconds(a, hi)


@FAST
@given(bases, instants, instants, instants)
def test_measuring_is_additive_and_monotone(
    base: TimeBase, a: datetime, b: datetime, c: datetime
) -> None:
    a, b, c = sorted((a, b, c))
    ab, bc = base.business_seconds_between(a, b), base.business_seconds_between(b, c)
    assert ab >= 0 and bc >= 0
    assert round((ab + bc) * 1e6) == round(base.business_seconds_between(a, c) * 1e6)


@FAST
@given(bases, instants, instants)
def test_adding_what_was_measured_lands_at_or_before(
    base: TimeBase, a: datetime, b: datetime
) -> None:
    a, b = sorted((a, b))
    back = base.add_business_seconds(a, base.business_seconds_between(a, b))
    assert a <= back <= b
    assert base.business_seconds_between(back, b) == 0  # only closed time between them
    if base.is_open(b) and base.is_open(b - timedelta(microseconds=1)):
        assert back == b


@FAST
@given(bases, instants)
def test_next_open_is_open_and_nothing_before_it_counts(base: TimeBase, t: datetime) -> None:
    opening = base.next_open(t)
    assert opening >= t
    assert base.is_open(opening)
    assert base.business_seconds_between(t, opening) == 0
