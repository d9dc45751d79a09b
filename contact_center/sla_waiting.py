"""Who waits right now: contacts without a first answer, indexed per (queue, team)."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Contact", "WaitingIndex"]


@dataclass(slots=True)
class Contact:
    """A ticket waiting for its first answer (``since`` = arrival) or in a live conversation."""

    since: float
    queue_id: int | None
    channel: str
    team_id: int | None
    priority: int = 2


class WaitingIndex:
    """Waiting contacts with counts and the oldest arrival per (queue, team): lazy heaps, so a
    snapshot costs O(keys · log n) instead of a scan of everyone waiting."""

    def __init__(self) -> None:
        self.items: dict[int, Contact] = {}
        self._heaps: dict[tuple[int | None, int | None], list[tuple[float, int]]] = {}
        self._counts: dict[tuple[int | None, int | None], int] = {}
        self._lines: dict[tuple[int | None, str], set[int]] = {}  # (queue, channel) -> tickets

    def __contains__(self, ticket_id: object) -> bool:
        return ticket_id in self.items

    def __len__(self) -> int:
        return len(self.items)

    def get(self, ticket_id: int) -> Contact | None:
        """The waiting contact of a ticket."""
        return self.items.get(ticket_id)

    def add(self, ticket_id: int, c: Contact) -> None:
        """Start waiting (the arrival time is ``c.since``)."""
        self.pop(ticket_id)
        key = (c.queue_id, c.team_id)
        self.items[ticket_id] = c
        self._counts[key] = self._counts.get(key, 0) + 1
        self._lines.setdefault((c.queue_id, c.channel), set()).add(ticket_id)
        heap = self._heaps.setdefault(key, [])
        heapq.heappush(heap, (c.since, ticket_id))
        if len(heap) > 2 * self._counts[key] + 1024:  # drop entries of contacts gone
            heap[:] = [
                (x.since, t) for t, x in self.items.items() if (x.queue_id, x.team_id) == key
            ]
            heapq.heapify(heap)

    def pop(self, ticket_id: int) -> Contact | None:
        """Stop waiting; the contact, if it was waiting."""
        c = self.items.pop(ticket_id, None)
        if c is not None:
            self._counts[(c.queue_id, c.team_id)] -= 1
            self._lines[(c.queue_id, c.channel)].discard(ticket_id)
        return c

    def line(self, queue_id: int | None, channel: str) -> list[int]:
        """Who waits in a queue on a channel, in the router's order: higher priority first,
        then earlier arrival, then lower ticket id. O(k log k) for k waiting there."""
        items = self.items
        return sorted(self._lines.get((queue_id, channel), ()),
                      key=lambda t: (-items[t].priority, items[t].since, t))  # fmt: skip

    def _oldest(self, key: tuple[int | None, int | None]) -> float | None:
        heap = self._heaps.get(key, [])
        while heap:
            since, tid = heap[0]
            c = self.items.get(tid)
            if c is not None and (c.queue_id, c.team_id) == key and c.since == since:
                return since
            heapq.heappop(heap)
        return None

    def summary(self, match: Callable[[int | None, int | None], bool]) -> tuple[int, float | None]:
        """(how many wait, earliest arrival) over the (queue, team) keys ``match`` accepts."""
        count, oldest = 0, None
        for key, n in self._counts.items():
            if n and match(*key):
                count += n
                first = self._oldest(key)
                if first is not None and (oldest is None or first < oldest):
                    oldest = first
        return count, oldest
