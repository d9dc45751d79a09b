"""SLA timer engine: warning/breach timers in a near heap plus far buckets, lazily cancelled.

Entries are ``(fire_at, kind_rank, seq, ticket_id, metric, kind, version)``. Every
``(ticket, metric)`` has a current *version*; re-scheduling or cancelling replaces it, and
entries carrying an older version are dropped when they surface (lazy cancellation).

Two levels keep the hot heap small: timers are filed into far buckets of ``bucket_seconds``
(a dict of lists, O(1) per insert) and a bucket moves into the *near* binary heap only when
its start is not later than the near heap's top (or the near heap is empty). The near heap
therefore holds about one bucket's worth of timers, so the cost of a fired timer depends on
how many timers come due in the next bucket, not on how many tickets are open.

Costs: ``schedule`` O(m) amortised for m timers (O(m log b) into the near heap), ``cancel``
O(1), ``pop_due`` O((k + s) log b) for k fired and s stale entries (each stale entry paid for
once by the push that made it), ``next_fire_at`` amortised O(1); b = timers in the near
window. Storage is compacted when stale entries outnumber live ones.

Time is float epoch seconds (``datetime`` accepted and converted). The engine never reads the
clock: an async driver sleeps until :meth:`SlaEngine.next_fire_at` and calls ``pop_due``.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from sla.clock import from_epoch, to_epoch
from sla.policy import Deadlines, Metric

__all__ = ["Fired", "Kind", "OpenTicket", "SlaEngine", "TicketId", "Timer", "timers_from"]

TicketId = int | str


class Kind(StrEnum):
    """What a timer announces."""

    WARNING = "warning"
    BREACH = "breach"


_RANK = {Kind.WARNING: 0, Kind.BREACH: 1}


@dataclass(frozen=True, slots=True)
class Timer:
    """One timer to arm: ``metric``'s ``kind`` at ``fire_at`` (epoch seconds)."""

    metric: Metric
    kind: Kind
    fire_at: float


class Fired(NamedTuple):
    """A timer that came due (a named tuple: cheap to create on the hot path)."""

    fire_at: float
    ticket_id: TicketId
    kind: Kind
    metric: Metric
    version: int

    @property
    def fire_at_datetime(self) -> datetime:
        """``fire_at`` as a UTC datetime."""
        return from_epoch(self.fire_at)


@dataclass(frozen=True, slots=True)
class OpenTicket:
    """An open ticket for :meth:`SlaEngine.rebuild`: leave out timers already announced."""

    ticket_id: TicketId
    deadlines: Deadlines | tuple[Timer, ...]


class _Slot:
    """Current version of one (ticket, metric), its live entries and what last fired."""

    __slots__ = ("breached_at", "pending", "version", "warned_at")

    def __init__(self, version: int) -> None:
        self.version = version
        self.pending = 0
        self.warned_at: float | None = None
        self.breached_at: float | None = None

    def already_fired(self, kind: Kind, fire_at: float) -> bool:
        return fire_at == (self.warned_at if kind is Kind.WARNING else self.breached_at)

    def remembers(self) -> bool:
        return self.warned_at is not None or self.breached_at is not None


_Entry = tuple[float, int, int, TicketId, Metric, Kind, int]


def timers_from(deadlines: Deadlines) -> list[Timer]:
    """The warning and breach timers of a :class:`Deadlines`."""
    timers: list[Timer] = []
    for metric, warn, due in deadlines.items():
        if warn is not None:
            timers.append(Timer(metric, Kind.WARNING, to_epoch(warn)))
        if due is not None:
            timers.append(Timer(metric, Kind.BREACH, to_epoch(due)))
    return timers


def _seconds(t: float | datetime) -> float:
    return to_epoch(t) if isinstance(t, datetime) else float(t)


class SlaEngine:
    """Warning/breach timers for open tickets, fired in deadline order."""

    def __init__(self, bucket_seconds: float = 60.0) -> None:
        if bucket_seconds <= 0:
            raise ValueError("bucket_seconds must be positive")
        self._width = bucket_seconds
        self._slots: dict[tuple[TicketId, Metric], _Slot] = {}
        self._versions = itertools.count(1)
        self._seq = itertools.count()
        self._live = 0
        self._clear()

    def _clear(self) -> None:
        self._near: list[_Entry] = []
        self._far: dict[int, list[_Entry]] = {}
        self._far_keys: list[int] = []  # heap of the keys of self._far
        self._far_count = 0
        self._through: int | None = None  # highest bucket moved into the near heap

    def __len__(self) -> int:
        """Number of armed (not cancelled, not yet fired) timers."""
        return self._live

    @property
    def heap_size(self) -> int:
        """Stored entries, stale ones included (for monitoring)."""
        return len(self._near) + self._far_count

    @property
    def near_size(self) -> int:
        """Entries in the near heap (what a pop pays ``log`` of)."""
        return len(self._near)

    def schedule(self, ticket_id: TicketId, deadlines: Deadlines | Iterable[Timer]) -> None:
        """Replace all timers of ``ticket_id`` by those of ``deadlines``.

        A timer identical to the last one of its metric and kind that fired for this ticket is
        not armed again, so re-scheduling after every ticket write does not repeat warnings; a
        changed deadline arms a new timer. Past instants fire on the next pop.
        """
        self._push_all(ticket_id, deadlines, heapify_later=False)
        self._maybe_compact()

    def _push_all(
        self, ticket_id: TicketId, deadlines: Deadlines | Iterable[Timer], *, heapify_later: bool
    ) -> None:
        timers = timers_from(deadlines) if isinstance(deadlines, Deadlines) else list(deadlines)
        by_metric = {t.metric for t in timers}
        for metric in Metric:
            key = (ticket_id, metric)
            old = self._slots.get(key)
            if old is not None:
                self._live -= old.pending
            if metric not in by_metric:
                if old is not None and old.remembers():
                    old.version, old.pending = next(self._versions), 0
                elif old is not None:
                    del self._slots[key]
                continue
            slot = _Slot(next(self._versions))
            if old is not None:
                slot.warned_at, slot.breached_at = old.warned_at, old.breached_at
            self._slots[key] = slot
        for timer in timers:
            slot = self._slots[(ticket_id, timer.metric)]
            if slot.already_fired(timer.kind, timer.fire_at):
                continue
            rank, seq = _RANK[timer.kind], next(self._seq)
            entry = (timer.fire_at, rank, seq, ticket_id, timer.metric, timer.kind, slot.version)
            self._file(entry, heapify_later)
            slot.pending += 1
            self._live += 1

    def _file(self, entry: _Entry, heapify_later: bool) -> None:
        key = int(entry[0] // self._width)
        if self._through is not None and key <= self._through:
            if heapify_later:
                self._near.append(entry)
            else:
                heapq.heappush(self._near, entry)
            return
        bucket = self._far.get(key)
        if bucket is None:
            bucket = self._far[key] = []
            if not heapify_later:
                heapq.heappush(self._far_keys, key)
        bucket.append(entry)
        self._far_count += 1

    def cancel(self, ticket_id: TicketId, metric: Metric | None = None) -> None:
        """Disarm the ticket's timers (one metric, or all) and forget what fired. O(1)."""
        for m in Metric if metric is None else (metric,):
            slot = self._slots.pop((ticket_id, m), None)
            if slot is not None:
                self._live -= slot.pending
        self._maybe_compact()

    def rebuild(
        self, open_tickets: Iterable[OpenTicket | tuple[TicketId, Deadlines | Iterable[Timer]]]
    ) -> None:
        """Start over from the open tickets (after a restart), in O(n).

        Timers whose instant is already past fire on the first :meth:`pop_due`, so no deadline
        is forgotten; leave out (set to None) the ones the previous process already announced.
        """
        self._slots, self._live = {}, 0
        self._clear()
        for item in open_tickets:
            ticket_id, deadlines = (
                (item.ticket_id, item.deadlines) if isinstance(item, OpenTicket) else item
            )
            self._push_all(ticket_id, deadlines, heapify_later=True)
        self._far_keys = list(self._far)
        heapq.heapify(self._far_keys)

    def _valid(self, entry: _Entry) -> bool:
        slot = self._slots.get((entry[3], entry[4]))
        return slot is not None and slot.version == entry[6]

    def _settle(self) -> None:
        """Move far buckets that could hold the earliest timer into the near heap."""
        near, keys = self._near, self._far_keys
        while keys and (not near or keys[0] * self._width <= near[0][0]):
            key = heapq.heappop(keys)
            entries = self._far.pop(key)
            self._far_count -= len(entries)
            bucket = [e for e in entries if self._valid(e)]  # stale ones are dropped here
            self._through = key if self._through is None else max(self._through, key)
            if len(bucket) > len(near):
                near.extend(bucket)
                heapq.heapify(near)
            else:
                for e in bucket:
                    heapq.heappush(near, e)

    def next_fire_at(self) -> float | None:
        """Epoch seconds of the earliest armed timer (``None`` if none): sleep until then."""
        near = self._near
        while True:
            self._settle()
            if not near:
                return None
            if self._valid(near[0]):
                return near[0][0]
            heapq.heappop(near)

    def pop_due(self, now: float | datetime) -> list[Fired]:
        """Every armed timer with ``fire_at <= now``, in (fire_at, warning-before-breach) order."""
        limit, near, slots, pop = _seconds(now), self._near, self._slots, heapq.heappop
        fired: list[Fired] = []
        add, make = fired.append, tuple.__new__  # (Fired's own __new__ is a Python frame)
        boundary = self._boundary()  # where the next far bucket starts: settle only there
        while True:
            if not near or near[0][0] >= boundary:
                self._settle()
                boundary = self._boundary()
            if not near or near[0][0] > limit:
                break
            fire_at, _, _, ticket_id, metric, kind, version = pop(near)
            slot = slots.get((ticket_id, metric))
            if slot is None or slot.version != version:
                continue  # cancelled or re-scheduled: a stale entry
            slot.pending -= 1
            if kind is Kind.WARNING:
                slot.warned_at = fire_at
            else:
                slot.breached_at = fire_at
            add(make(Fired, (fire_at, ticket_id, kind, metric, version)))
        self._live -= len(fired)
        return fired

    def _boundary(self) -> float:
        """Start of the earliest far bucket (infinity when there is none)."""
        return self._far_keys[0] * self._width if self._far_keys else math.inf

    def _maybe_compact(self) -> None:
        if self.heap_size > 2 * self._live + 1024:
            self._near = [e for e in self._near if self._valid(e)]
            heapq.heapify(self._near)
            far = {k: [e for e in b if self._valid(e)] for k, b in self._far.items()}
            self._far = {k: b for k, b in far.items() if b}
            self._far_keys = list(self._far)
            heapq.heapify(self._far_keys)
            self._far_count = sum(len(b) for b in self._far.values())
