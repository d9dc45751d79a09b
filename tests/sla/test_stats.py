"""Live statistics: the four service-level variants on a hand-computed example, and windows."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction

import pytest

from sla.clock import to_epoch
from sla.stats import (
    Counters,
    SlVariant,
    StatsRecorder,
    abandon_rate,
    aht,
    asa,
    longest_wait,
    occupancy,
    service_level,
    summarize,
)

T0 = to_epoch(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
Q = {"queue": "support", "channel": "voice"}


def example(rec: StatsRecorder, t: float = T0) -> None:
    """10 offered; answered after 5, 10, 20, 25, 40 s; abandoned after 2 (short), 15, 30 s;
    one callback after 10 s; one still waiting; two contacts handled in 100 and 200 s."""
    for _ in range(10):
        rec.arrived(t, **Q)
    for wait in (5, 10, 20, 25, 40):
        rec.answered(t + wait, wait, **Q)
    for wait in (2, 15, 30):
        rec.abandoned(t + wait, wait, **Q)
    rec.callback(t + 10, 10, **Q)
    for handle in (100, 200):
        rec.completed(t + 50, handle, **Q)


def close(value: float | None, expected: Fraction | float) -> bool:
    return value is not None and abs(value - float(expected)) < 1e-12


def test_raw_counters() -> None:
    rec = StatsRecorder()
    example(rec)
    c = rec.window(T0, T0 + 60)
    assert c == Counters(
        offered=10,
        answered=5,
        answered_within_threshold=3,  # 5, 10 and 20 s (T = 20 s is met)
        abandoned=3,
        abandoned_within_threshold=2,  # 2 and 15 s
        short_abandoned=1,  # 2 s < 5 s
        callbacks=1,
        callbacks_within_threshold=1,
        answer_wait_total=100.0,
        abandon_wait_total=47.0,
        handled=2,
        handle_time_total=300.0,
    )


def test_service_level_variants_by_hand() -> None:
    rec = StatsRecorder()
    example(rec)
    c = rec.window(T0, T0 + 60)
    # V1 A_T / A = 3/5
    assert close(service_level(c, SlVariant.V1), Fraction(3, 5))
    # V2 (A_T + Ab_T) / (A + Ab): short abandon excluded 4/7; raw (Asterisk) 5/8
    assert close(service_level(c, SlVariant.V2), Fraction(4, 7))
    assert close(service_level(c, SlVariant.V2, exclude_short_abandons=False), Fraction(5, 8))
    # V3 (A_T + Ab_T + CB_T) / Q: 5/9 without the short abandon; raw (Connect) 6/10
    assert close(service_level(c, SlVariant.V3), Fraction(5, 9))
    assert close(service_level(c, SlVariant.V3, exclude_short_abandons=False), Fraction(6, 10))
    # V4 A_T / (A + Ab - SAb) = 3/7 (default); with short abandons 3/8; without abandons 3/5
    assert close(service_level(c), Fraction(3, 7))
    assert close(service_level(c, SlVariant.V4, exclude_short_abandons=False), Fraction(3, 8))
    assert close(service_level(c, SlVariant.V4, include_abandons=False), Fraction(3, 5))
    assert close(asa(c), 20.0) and close(aht(c), 150.0)
    assert close(abandon_rate(c), Fraction(2, 9))
    assert close(abandon_rate(c, exclude_short_abandons=False), Fraction(3, 10))
    s = summarize(c)
    assert s.variant is SlVariant.V4 and close(s.service_level, Fraction(3, 7))


def test_other_metrics_and_empty_windows() -> None:
    assert occupancy(300, 100) == 0.75
    assert occupancy(0, 0) is None
    assert longest_wait([T0 - 30, T0 - 5], T0) == 30
    assert longest_wait([], T0) == 0
    empty = Counters()
    assert service_level(empty) is None and asa(empty) is None and aht(empty) is None
    assert abandon_rate(empty) is None


def test_windows_sum_buckets() -> None:
    rec = StatsRecorder()
    example(rec, T0 - 2 * 3600)  # two hours ago: today only
    example(rec, T0 - 30 * 60)  # half an hour ago: today and last 60 min
    example(rec, T0 - 5 * 60)  # five minutes ago: every window
    rec.arrived(T0 - 5 * 60, queue="sales", channel="chat", team="b")
    now = T0 + 1
    assert rec.last(now, 900, **Q).offered == 10
    assert rec.last(now, 3600, **Q).offered == 20
    assert rec.today(now, "Europe/Berlin", **Q).offered == 30
    assert rec.today(now, "Europe/Berlin").offered == 31
    assert rec.last(now, 900, channel="chat").offered == 1
    assert rec.last(now, 900, team="b").offered == 1
    assert rec.last(now, 900, queue="nope").offered == 0
    berlin_night = T0 - 9.5 * 3600  # 23:30 UTC on Sunday = 00:30 CET on Monday
    rec.arrived(berlin_night, **Q)
    assert rec.today(now, "Europe/Berlin", **Q).offered == 31  # counters reset at local midnight
    assert rec.today(now, "UTC", **Q).offered == 30
    report = rec.intervals(T0 - 3600, T0, 900, **Q)
    assert [int(start - T0) for start, _ in report] == [-3600, -2700, -1800, -900]
    assert [c.offered for _, c in report] == [0, 0, 10, 10]
    rec.prune(T0 - 3600)
    assert rec.today(now, "Europe/Berlin", **Q).offered == 20


def test_thresholds_per_channel_and_validation() -> None:
    rec = StatsRecorder(channel_thresholds={"email": 86_400})
    rec.answered(T0, 3600, queue=None, channel="email")
    rec.answered(T0, 3600, queue=None, channel="chat")
    assert rec.window(T0, T0 + 60, channel="email").answered_within_threshold == 1
    assert rec.window(T0, T0 + 60, channel="chat").answered_within_threshold == 0
    with pytest.raises(ValueError):
        StatsRecorder(threshold_seconds=3, short_abandon_seconds=5)
    with pytest.raises(ValueError):
        rec.intervals(T0, T0 + 900, 90)
