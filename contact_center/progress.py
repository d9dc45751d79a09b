"""Which committed events a consumer (the router, the SLA service) has applied.

Event ids come from a sequence. On PostgreSQL two transactions can take ids 50 and 52 and commit
in the other order, so the bus may hand a consumer event 52 before 50: "the newest id applied"
does not say that every older one was. :class:`HandledEvents` keeps the ids themselves (for a
bounded window), so a caller can wait for exactly the events it saw committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

__all__ = ["HandledEvents"]


class HandledEvents:
    """The ids applied since the last load, and every id up to ``through`` (what load read).

    At most ``2 * window`` ids are kept: when there are more, those older than the newest
    ``window`` are dropped and taken as applied (an event that arrives that late was delivered
    long ago or never will be). Pruning only past twice the window keeps it off the per-event
    path: one pass every ``window`` events, not one for each event.
    """

    def __init__(self, window: int = 65_536) -> None:
        self.through = 0  # every event up to here is applied (read by a load)
        self.newest = 0
        self._window = window
        self._ids: set[int] = set()
        self._changed = asyncio.Event()

    def loaded(self, through: int) -> None:
        """A load read the database up to event ``through``."""
        self.through = max(self.through, through)
        self._prune()

    def add(self, ids: Iterable[int]) -> None:
        """Events applied (in any order)."""
        for event_id in ids:
            self._ids.add(event_id)
            self.newest = max(self.newest, event_id)
        if len(self._ids) > 2 * self._window:
            self.through = max(self.through, self.newest - self._window)
            self._prune()
        self._changed.set()

    def __contains__(self, event_id: object) -> bool:
        return isinstance(event_id, int) and (event_id <= self.through or event_id in self._ids)

    async def wait(self, ids: Iterable[int]) -> None:
        """Return once every one of ``ids`` is applied (wrap in a timeout)."""
        pending = [i for i in ids if i not in self]
        while pending:
            self._changed.clear()
            await self._changed.wait()
            pending = [i for i in pending if i not in self]

    def _prune(self) -> None:
        floor = self.through
        self._ids = {i for i in self._ids if i > floor}
        self._changed.set()
