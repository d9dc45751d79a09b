"""Business calendars: weekends, holidays, partial holidays and DST, with exact instants."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import pytest

from sla.calendar import BusinessCalendar
from sla.clock import CALENDAR_TIME
from sla.hours import Holiday, Interval, parse_clock, parse_holiday

H = 3600
BERLIN = BusinessCalendar.office_hours("Europe/Berlin")  # Mon-Fri 09:00-17:00
NEW_YORK = BusinessCalendar.office_hours("America/New_York")
ALL_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def every_day(timezone: str, *hours: str) -> BusinessCalendar:
    return BusinessCalendar.from_config(timezone, {d: list(hours) for d in ALL_DAYS})


# -- office hours, weekends, holidays ---------------------------------------------------------

FRIDAY_1730 = utc(2026, 3, 6, 16, 30)  # Friday 17:30 CET, after closing


def test_friday_evening_plus_eight_business_hours_is_monday_closing_time() -> None:
    # Friday after 17:00 counts nothing; Monday 09:00-17:00 uses up all 8 hours: Monday 17:00.
    assert BERLIN.add_business_seconds(FRIDAY_1730, 8 * H) == utc(2026, 3, 9, 16, 0)


def test_friday_evening_plus_one_business_day_is_monday_closing_time() -> None:
    assert BERLIN.add_business_days(FRIDAY_1730, 1) == utc(2026, 3, 9, 16, 0)
    assert BERLIN.add_business_days(FRIDAY_1730, 3) == utc(2026, 3, 11, 16, 0)


def test_one_day_target_in_business_seconds_is_three_eight_hour_days() -> None:
    # 86,400 business seconds = 24 business hours = Mon, Tue, Wed 09:00-17:00.
    assert BERLIN.add_business_seconds(FRIDAY_1730, 86_400) == utc(2026, 3, 11, 16, 0)


def test_monday_holiday_pushes_to_tuesday() -> None:
    cal = BusinessCalendar.office_hours("Europe/Berlin", holidays=["2026-03-09"])
    assert cal.add_business_seconds(FRIDAY_1730, 8 * H) == utc(2026, 3, 10, 16, 0)
    assert cal.add_business_days(FRIDAY_1730, 1) == utc(2026, 3, 10, 16, 0)
    assert cal.business_seconds_between(FRIDAY_1730, utc(2026, 3, 10, 16, 0)) == 8 * H


def test_inside_hours_keeps_the_time_of_day() -> None:
    friday_10 = utc(2026, 3, 6, 9, 0)  # 10:00 CET
    assert BERLIN.add_business_seconds(friday_10, 8 * H) == utc(2026, 3, 9, 9, 0)
    assert BERLIN.add_business_days(friday_10, 1) == utc(2026, 3, 9, 9, 0)
    before_opening = utc(2026, 3, 9, 7, 0)  # Monday 08:00 CET = end of Friday in business time
    assert BERLIN.add_business_days(before_opening, 1) == utc(2026, 3, 9, 16, 0)


def test_partial_holiday_and_christmas() -> None:
    cal = BusinessCalendar.office_hours(
        "Europe/Berlin", holidays=["2026-12-24 09:00-12:00", "2026-12-25", date(2026, 12, 31)]
    )
    wed_16 = utc(2026, 12, 23, 15, 0)  # Wednesday 16:00 CET: 1 h left today
    # 1 h Wednesday + 3 h on Christmas Eve (09-12) + 1 h on Monday 28th -> Monday 10:00 CET.
    assert cal.add_business_seconds(wed_16, 5 * H) == utc(2026, 12, 28, 9, 0)
    assert cal.business_seconds_on(date(2026, 12, 24)) == 3 * H
    assert cal.business_seconds_on(date(2026, 12, 25)) == 0
    # Business-day offset is capped by the short day: Wed 16:00 + 1 day -> Thu 12:00.
    assert cal.add_business_days(wed_16, 1) == utc(2026, 12, 24, 11, 0)
    assert not cal.is_open(utc(2026, 12, 24, 11, 30))


def test_lunch_break_splits_the_day() -> None:
    cal = BusinessCalendar.from_config(
        "Europe/Berlin", {"mon": [["09:00", "12:00"], ["13:00", "17:00"]]}
    )
    monday_1130 = utc(2026, 3, 9, 10, 30)
    assert cal.add_business_seconds(monday_1130, H) == utc(2026, 3, 9, 12, 30)  # 13:30 CET
    assert cal.business_seconds_on(date(2026, 3, 9)) == 7 * H


def test_is_open_and_next_open() -> None:
    assert BERLIN.is_open(utc(2026, 3, 9, 8, 0))  # Monday 09:00 CET: opening instant is open
    assert not BERLIN.is_open(utc(2026, 3, 9, 16, 0))  # 17:00 closing instant is closed
    assert BERLIN.next_open(FRIDAY_1730) == utc(2026, 3, 9, 8, 0)
    t = utc(2026, 3, 9, 12, 34, 56, 789)
    assert BERLIN.next_open(t) == t


def test_zero_and_negative_and_reverse() -> None:
    assert BERLIN.add_business_seconds(FRIDAY_1730, 0) == FRIDAY_1730
    with pytest.raises(ValueError):
        BERLIN.add_business_seconds(FRIDAY_1730, -1)
    a, b = utc(2026, 3, 4, 10, 0), utc(2026, 3, 9, 10, 0)
    assert BERLIN.business_seconds_between(b, a) == -BERLIN.business_seconds_between(a, b)
    assert BERLIN.business_seconds_between(a, b) == 24 * H  # Wed 11:00 CET .. Mon 11:00 CET


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError):
        BERLIN.add_business_seconds(datetime(2026, 3, 6, 9, 0), 60)  # noqa: DTZ001


def test_long_targets_walk_days_not_minutes() -> None:
    # 30 business days of 8 h from Friday evening: Mon 9 March .. Fri 17 April (CEST by then).
    assert BERLIN.add_business_seconds(FRIDAY_1730, 30 * 8 * H) == utc(2026, 4, 17, 15, 0)
    cal = BusinessCalendar.office_hours("Europe/Berlin", holidays=["2027-01-01"])
    started = time.perf_counter()
    for i in range(20):
        due = cal.add_business_seconds(FRIDAY_1730 + timedelta(hours=i), 250 * 8 * H)
        assert cal.business_seconds_between(FRIDAY_1730 + timedelta(hours=i), due) == 250 * 8 * H
    assert time.perf_counter() - started < 1.0


def test_a_calendar_that_never_opens_fails_loudly() -> None:
    with pytest.raises(ValueError):
        BusinessCalendar.from_config("UTC", {}).add_business_seconds(FRIDAY_1730, 1)


def test_parsing() -> None:
    assert parse_clock("24:00") == 86_400
    assert parse_clock("09:30:15") == 9 * H + 30 * 60 + 15
    for bad in ("9", "25:00", "12:60", "x:00"):
        with pytest.raises(ValueError):
            parse_clock(bad)
    with pytest.raises(ValueError):
        Interval(10, 10)
    assert parse_holiday("2026-12-24 09:00-12:00,13:00-14:00") == Holiday(
        date(2026, 12, 24), (Interval(9 * H, 12 * H), Interval(13 * H, 14 * H))
    )
    with pytest.raises(ValueError):
        BusinessCalendar.from_config("UTC", {"funday": [["09:00", "17:00"]]})
    with pytest.raises(ValueError):
        BusinessCalendar("UTC", ((),) * 6)
    monday = BusinessCalendar.from_config("UTC", {"Monday": ["09:00-12:00", ["11:00", "13:00"]]})
    assert monday.hours_on(date(2026, 3, 9)) == (Interval(9 * H, 13 * H),)
    assert (
        BusinessCalendar.from_config("Europe/Berlin", {d: ["09:00-17:00"] for d in ALL_DAYS[:5]})
        == BERLIN
    )
    assert hash(BERLIN) == hash(BusinessCalendar.office_hours("Europe/Berlin"))
    with pytest.raises(ValueError):
        CALENDAR_TIME.add_business_seconds(FRIDAY_1730, -1)


# -- daylight saving time ---------------------------------------------------------------------


def test_berlin_office_hours_across_spring_forward() -> None:
    # Fri 27 Mar 16:00 CET (UTC+1) + 2 h: 1 h Friday, 1 h Monday -> Mon 30 Mar 10:00 CEST (UTC+2).
    assert BERLIN.add_business_seconds(utc(2026, 3, 27, 15, 0), 2 * H) == utc(2026, 3, 30, 8, 0)
    assert BERLIN.business_seconds_between(utc(2026, 3, 27, 8), utc(2026, 3, 30, 7)) == 8 * H


def test_berlin_office_hours_across_fall_back() -> None:
    # Fri 23 Oct 16:00 CEST + 2 h -> Mon 26 Oct 10:00 CET = 09:00 UTC.
    assert BERLIN.add_business_seconds(utc(2026, 10, 23, 14, 0), 2 * H) == utc(2026, 10, 26, 9, 0)


def test_new_york_office_hours_across_both_transitions() -> None:
    # Fri 6 Mar 16:00 EST (UTC-5) + 2 h -> Mon 9 Mar 10:00 EDT (UTC-4) = 14:00 UTC.
    assert NEW_YORK.add_business_seconds(utc(2026, 3, 6, 21), 2 * H) == utc(2026, 3, 9, 14)
    # Fri 30 Oct 16:00 EDT + 2 h -> Mon 2 Nov 10:00 EST = 15:00 UTC.
    assert NEW_YORK.add_business_seconds(utc(2026, 10, 30, 20), 2 * H) == utc(2026, 11, 2, 15)


def test_round_the_clock_wall_calendar_counts_real_time_across_dst() -> None:
    cal = every_day("Europe/Berlin", "00:00-24:00")
    # Sat 28 Mar 00:00 CET .. Mon 30 Mar 00:00 CEST is 47 real hours; fall weekend is 49.
    assert cal.business_seconds_between(utc(2026, 3, 27, 23), utc(2026, 3, 29, 22)) == 47 * H
    assert cal.business_seconds_between(utc(2026, 10, 23, 22), utc(2026, 10, 25, 23)) == 49 * H
    # Sat 12:00 CET + 24 h = Sun 13:00 CEST (11:00 UTC), the same as calendar time.
    assert cal.add_business_seconds(utc(2026, 3, 28, 11), 24 * H) == utc(2026, 3, 29, 11)
    assert CALENDAR_TIME.add_business_seconds(utc(2026, 3, 28, 11), 24 * H) == utc(2026, 3, 29, 11)


def test_night_shift_skips_the_missing_hour_and_counts_the_repeated_one() -> None:
    cal = every_day("Europe/Berlin", "00:00-06:00")
    assert cal.business_seconds_on(date(2026, 3, 29)) == 5 * H
    assert cal.business_seconds_on(date(2026, 10, 25)) == 7 * H
    assert cal.business_seconds_on(date(2026, 10, 26)) == 6 * H
    # Sun 29 Mar 00:00 CET + 2.5 h: 00:00-02:00 CET, jump to 03:00 CEST, +0.5 h -> 03:30 CEST.
    assert cal.add_business_seconds(utc(2026, 3, 28, 23), 2.5 * H) == utc(2026, 3, 29, 1, 30)
    # Sun 25 Oct 00:00 CEST + 3.5 h of real time -> the second 02:30 (CET) = 01:30 UTC.
    assert cal.add_business_seconds(utc(2026, 10, 24, 22), 3.5 * H) == utc(2026, 10, 25, 1, 30)


def test_boundaries_inside_the_gap_and_the_repeated_hour() -> None:
    cal = BusinessCalendar.from_config("Europe/Berlin", {"sun": ["02:30-05:00"]})
    # 02:30 does not exist on 29 Mar: opening happens at the jump (03:00 CEST = 01:00 UTC).
    assert cal.next_open(utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 1, 0)
    assert cal.business_seconds_on(date(2026, 3, 29)) == 2 * H
    # 02:30 exists twice on 25 Oct: open from the first (CEST, 00:30 UTC) to 05:00 CET (04:00 UTC).
    assert cal.next_open(utc(2026, 10, 24, 12)) == utc(2026, 10, 25, 0, 30)
    assert cal.business_seconds_on(date(2026, 10, 25)) == 3.5 * H


def test_new_york_repeated_and_missing_hour() -> None:
    cal = BusinessCalendar.from_config("America/New_York", {"sun": ["01:00-02:00"]})
    assert cal.business_seconds_on(date(2026, 11, 1)) == 2 * H  # 01:00 EDT .. 02:00 EST
    gap = BusinessCalendar.from_config("America/New_York", {"sun": ["02:00-03:00"]})
    assert gap.business_seconds_on(date(2026, 3, 8)) == 0  # the hour does not exist
    assert gap.next_open(utc(2026, 3, 7, 12)) == utc(2026, 3, 15, 6)  # next Sunday 02:00 EDT
