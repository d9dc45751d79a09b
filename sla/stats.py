"""Live contact-center statistics from raw counters kept per (queue, channel, team, bucket).

Feed events with explicit times (``arrived``, ``answered(wait)``, ``abandoned(wait)``,
``callback(wait)``, ``completed(handle)``); each event counts in the bucket of its own timestamp.
Windows (today, last 15/60 min, 15-minute report intervals) are sums of whole buckets; the
formulas (service-level variants, ASA, AHT, ...) live in :mod:`sla.metrics`, re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sla.clock import from_epoch
from sla.metrics import (
    Counters,
    SlVariant,
    Summary,
    abandon_rate,
    aht,
    asa,
    longest_wait,
    occupancy,
    service_level,
    summarize,
)
from sla.metrics import seconds_of as _seconds

__all__ = [
    "Counters",
    "SeriesKey",
    "SlVariant",
    "StatsRecorder",
    "Summary",
    "abandon_rate",
    "aht",
    "asa",
    "longest_wait",
    "occupancy",
    "service_level",
    "summarize",
]

SeriesKey = tuple[str | int | None, str, str | int | None]
"""``(queue, channel, team)``."""


class StatsRecorder:
    """Counters per (queue, channel, team) and time bucket; explicit time, no clock."""

    def __init__(
        self,
        threshold_seconds: float = 20.0,
        short_abandon_seconds: float = 5.0,
        bucket_seconds: int = 60,
        channel_thresholds: Mapping[str, float] | None = None,
    ) -> None:
        thresholds = dict(channel_thresholds or {})
        if short_abandon_seconds > min([threshold_seconds, *thresholds.values()]):
            raise ValueError("the short-abandon threshold must not exceed the SL threshold")
        if bucket_seconds <= 0:
            raise ValueError("bucket_seconds must be positive")
        self.threshold_seconds = threshold_seconds
        self.short_abandon_seconds = short_abandon_seconds
        self.bucket_seconds = bucket_seconds
        self.channel_thresholds = thresholds
        self._series: dict[SeriesKey, dict[int, Counters]] = {}

    def threshold(self, channel: str) -> float:
        """The service-level threshold T of a channel."""
        return self.channel_thresholds.get(channel, self.threshold_seconds)

    def _bucket(
        self, t: float | datetime, queue: str | int | None, channel: str, team: str | int | None
    ) -> Counters:
        start = int(_seconds(t) // self.bucket_seconds) * self.bucket_seconds
        buckets = self._series.setdefault((queue, channel, team), {})
        bucket = buckets.get(start)
        if bucket is None:
            bucket = buckets[start] = Counters()
        return bucket

    def arrived(
        self,
        t: float | datetime,
        *,
        queue: str | int | None,
        channel: str,
        team: str | int | None = None,
    ) -> None:
        """A contact entered the queue (offered)."""
        self._bucket(t, queue, channel, team).offered += 1

    def answered(
        self,
        t: float | datetime,
        wait: float,
        *,
        queue: str | int | None,
        channel: str,
        team: str | int | None = None,
    ) -> None:
        """An agent answered after ``wait`` seconds in queue."""
        c = self._bucket(t, queue, channel, team)
        c.answered += 1
        c.answer_wait_total += wait
        c.answered_within_threshold += wait <= self.threshold(channel)

    def abandoned(
        self,
        t: float | datetime,
        wait: float,
        *,
        queue: str | int | None,
        channel: str,
        team: str | int | None = None,
    ) -> None:
        """The customer left the queue after ``wait`` seconds (short if under the threshold)."""
        c = self._bucket(t, queue, channel, team)
        c.abandoned += 1
        c.abandon_wait_total += wait
        c.abandoned_within_threshold += wait <= self.threshold(channel)
        c.short_abandoned += wait < self.short_abandon_seconds

    def callback(
        self,
        t: float | datetime,
        wait: float,
        *,
        queue: str | int | None,
        channel: str,
        team: str | int | None = None,
    ) -> None:
        """The customer left the queue asking for a callback after ``wait`` seconds."""
        c = self._bucket(t, queue, channel, team)
        c.callbacks += 1
        c.callbacks_within_threshold += wait <= self.threshold(channel)

    def completed(
        self,
        t: float | datetime,
        handle: float,
        *,
        queue: str | int | None,
        channel: str,
        team: str | int | None = None,
    ) -> None:
        """A contact was finished after ``handle`` seconds (talk + hold + after-contact work)."""
        c = self._bucket(t, queue, channel, team)
        c.handled += 1
        c.handle_time_total += handle

    def window(
        self,
        start: float | datetime,
        end: float | datetime,
        *,
        queue: str | int | None = None,
        channel: str | None = None,
        team: str | int | None = None,
    ) -> Counters:
        """Sum of the buckets overlapping ``[start, end)`` (``None`` filters match all)."""
        size = self.bucket_seconds
        first, last = int(_seconds(start) // size) * size, _seconds(end)
        steps = max(0, math.ceil((last - first) / size))
        total = Counters()
        for (q, ch, tm), buckets in self._series.items():
            if (queue is not None and q != queue) or (channel is not None and ch != channel):
                continue
            if team is not None and tm != team:
                continue
            if steps < len(buckets):
                for b in range(first, first + steps * size, size):
                    if (c := buckets.get(b)) is not None:
                        total.add(c)
            else:
                for b, c in buckets.items():
                    if first <= b < last:
                        total.add(c)
        return total

    def _through(self, now: float | datetime) -> float:
        """End of the bucket containing ``now`` (windows include the current bucket)."""
        return (_seconds(now) // self.bucket_seconds + 1) * self.bucket_seconds

    def last(
        self,
        now: float | datetime,
        seconds: float,
        *,
        queue: str | int | None = None,
        channel: str | None = None,
        team: str | int | None = None,
    ) -> Counters:
        """The last ``seconds`` up to ``now`` (e.g. 900 or 3600), in whole buckets."""
        start = _seconds(now) - seconds
        return self.window(start, self._through(now), queue=queue, channel=channel, team=team)

    def today(
        self,
        now: float | datetime,
        timezone: str = "UTC",
        *,
        queue: str | int | None = None,
        channel: str | None = None,
        team: str | int | None = None,
    ) -> Counters:
        """Since local midnight in ``timezone`` (counters reset at the site's midnight)."""
        zone = ZoneInfo(timezone)
        local = from_epoch(_seconds(now)).astimezone(zone)
        midnight = datetime.combine(local.date(), time(), tzinfo=zone)
        return self.window(midnight, self._through(now), queue=queue, channel=channel, team=team)

    def intervals(
        self,
        start: float | datetime,
        end: float | datetime,
        size: int = 900,
        *,
        queue: str | int | None = None,
        channel: str | None = None,
        team: str | int | None = None,
    ) -> list[tuple[float, Counters]]:
        """Report intervals of ``size`` seconds (a multiple of the bucket size) in a range."""
        if size % self.bucket_seconds:
            raise ValueError("interval size must be a multiple of bucket_seconds")
        first, last = int(_seconds(start) // size) * size, math.ceil(_seconds(end))
        return [
            (float(b), self.window(b, b + size, queue=queue, channel=channel, team=team))
            for b in range(first, last, size)
        ]

    def prune(self, before: float | datetime) -> None:
        """Drop buckets that start before ``before`` (keep a couple of days for reports)."""
        limit = _seconds(before)
        for buckets in self._series.values():
            for b in [b for b in buckets if b < limit]:
                del buckets[b]
