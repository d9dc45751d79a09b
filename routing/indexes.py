"""The two indexes that make a routing decision cheap.

``AgentIndex`` (item looks for an agent): offerable agents (available, free capacity on the
channel) per ``(channel, queue)`` and per ``(channel, queue, skill, level)`` — an agent with
skill level L sits in the buckets for levels 1..L, so the bucket of a requirement ``(s, min)``
holds exactly the agents meeting it. Buckets are binary heaps keyed by ``(idle_since, agent
id)`` with lazy deletion: every (agent, channel) indexing gets a fresh token and entries carrying
an older token are stale. A lookup takes the smallest bucket among the item's requirements and
walks it in heap order (without popping) until an agent meets the rest.

``WaitingIndex`` (agent looks for an item): waiting items per ``(queue, channel)``, grouped in
classes of identical effective requirements; each class is a heap keyed by ``(-priority,
enqueued_at, ticket)`` whose top is kept live. A lookup visits the classes of the agent's queues
on channels where it has free capacity and compares class tops; the skill check of a class is
one frozenset subset test and is skipped when the top cannot beat the best found so far.
"""

from __future__ import annotations

from collections.abc import Iterator
from heapq import heapify, heappop, heappush
from itertools import count
from typing import TypeVar

from routing.model import MAX_LEVEL, Channel, Offer, SkillScore, Strategy
from routing.records import AgentBucket, AgentEntry, AgentRec, ItemClass, ItemEntry, ItemRec

__all__ = ["AgentIndex", "WaitingIndex", "iter_sorted"]

_E = TypeVar("_E", AgentEntry, ItemEntry, tuple[float, int, Offer])

_SLACK = 32  # compact a heap once it holds more than 2 * live + _SLACK entries


def iter_sorted(heap: list[_E]) -> Iterator[_E]:
    """Yield a binary heap's entries in ascending order without modifying it.

    A best-first walk of the heap tree with a small frontier heap: the k smallest entries cost
    O(k log k), independent of the heap's size. Entries must be totally ordered (no ties).
    """
    n = len(heap)
    if not n:
        return
    frontier: list[tuple[_E, int]] = [(heap[0], 0)]
    while frontier:
        entry, i = heappop(frontier)
        yield entry
        left = 2 * i + 1
        if left < n:
            heappush(frontier, (heap[left], left))
            if left + 1 < n:
                heappush(frontier, (heap[left + 1], left + 1))


class AgentIndex:
    """Offerable agents by (channel, queue[, skill, level]), longest idle first."""

    __slots__ = ("_buckets", "_tokens", "channels")

    def __init__(self) -> None:
        self._buckets: dict[tuple[object, ...], AgentBucket] = {}
        self._tokens = count(1)
        self.channels: set[Channel] = set()
        """Channels indexed so far (a channel is indexed once an item on it shows up)."""

    def _bucket(self, key: tuple[object, ...]) -> AgentBucket:
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = AgentBucket()
        return b

    def buckets_of(self, a: AgentRec, c: Channel) -> list[AgentBucket]:
        """The buckets ``a`` belongs in on ``c``, cached on the agent until its queues or
        skills change (the caller clears ``a.buckets`` then)."""
        got = a.buckets.get(c)
        if got is None:
            got = []
            for q in a.queues:
                got.append(self._bucket((c, q)))
                got.extend(self._bucket((c, q, s, level)) for s, level in a.atoms)
            a.buckets[c] = got
        return got

    def add(self, a: AgentRec, c: Channel) -> None:
        """Index ``a`` on ``c`` (the caller checked it is offerable there and not indexed)."""
        token = next(self._tokens)
        a.tokens[c] = token
        a.indexed_idle[c] = a.idle_since
        entry: AgentEntry = (a.idle_since, a.id, token, a)
        for b in self.buckets_of(a, c):
            heappush(b.heap, entry)
            b.live += 1

    def remove(self, a: AgentRec, c: Channel) -> None:
        """Make ``a``'s entries on ``c`` stale; compact buckets that became mostly stale."""
        if a.tokens.pop(c, None) is None:
            return
        del a.indexed_idle[c]
        for b in a.buckets[c]:
            b.live -= 1
            if len(b.heap) > 2 * b.live + _SLACK:
                b.heap = [e for e in b.heap if e[3].tokens.get(c) == e[2]]
                heapify(b.heap)

    def live(self, c: Channel, q: int, skill: str | None = None, level: int = 1) -> int:
        """Number of offerable agents in a bucket (for tests and statistics)."""
        key: tuple[object, ...] = (c, q) if skill is None else (c, q, skill, level)
        b = self._buckets.get(key)
        return 0 if b is None else b.live

    def find(self, it: ItemRec, strategy: Strategy, score: SkillScore) -> AgentRec | None:
        """The agent ``it`` should be offered to, or ``None`` if no offerable agent is eligible.

        Cost: O(r) to pick the source bucket (r = number of requirements), then O(k log k) for
        the k entries walked; k = 1 when the longest-idle agent of the smallest bucket is
        eligible. ``BEST_SKILL`` walks the source bucket until an agent reaches the maximum
        possible score (worst case: the whole bucket).
        """
        c = it.channel
        src: AgentBucket | None = None
        if it.req:
            for s, level in it.req:
                b = self._buckets.get((c, it.queue, s, level))
                if b is None or b.live == 0:
                    return None
                if src is None or b.live < src.live:
                    src = b
        else:
            src = self._buckets.get((c, it.queue))
        if src is None or src.live == 0:
            return None
        heap = src.heap
        while heap[0][3].tokens.get(c) != heap[0][2]:
            heappop(heap)  # stale top; live > 0 guarantees a live entry below
        atoms, excluded = it.atoms, it.excluded
        if strategy is Strategy.LONGEST_IDLE:
            a = heap[0][3]
            if atoms <= a.atoms and a.id not in excluded:
                return a
            for e in iter_sorted(heap):
                a = e[3]
                if a.tokens.get(c) == e[2] and atoms <= a.atoms and a.id not in excluded:
                    return a
            return None
        use_sum = score is SkillScore.SUM
        ceiling = MAX_LEVEL * len(it.base) if use_sum else (MAX_LEVEL if it.base else 0)
        best: AgentRec | None = None
        best_score = -1
        for e in iter_sorted(heap):
            a = e[3]
            if a.tokens.get(c) != e[2] or not atoms <= a.atoms or a.id in excluded:
                continue
            levels = [a.skills.get(s, 0) for s, _ in it.base]
            value = sum(levels) if use_sum else max(levels, default=0)
            if value > best_score:  # strictly better: ties keep the longer-idle agent
                best, best_score = a, value
                if value >= ceiling:
                    break
        return best


class WaitingIndex:
    """Waiting (not pinned) items by queue → channel → requirement class."""

    __slots__ = ("_queues", "_vers", "size")

    def __init__(self) -> None:
        self._queues: dict[int, dict[Channel, dict[tuple[tuple[str, int], ...], ItemClass]]] = {}
        self._vers = count(1)  # entry versions are unique router-wide: entries never tie
        self.size = 0

    def add(self, it: ItemRec) -> None:
        """File ``it`` under its current ``req`` with a fresh version."""
        it.ver = next(self._vers)
        by_req = self._queues.setdefault(it.queue, {}).setdefault(it.channel, {})
        cls = by_req.get(it.req)
        if cls is None:
            cls = by_req[it.req] = ItemClass(it.req)
        heappush(cls.heap, (it.key[0], it.key[1], it.key[2], it.ver, it))
        cls.live += 1
        it.cls = cls
        self.size += 1

    def remove(self, it: ItemRec) -> None:
        """Take ``it`` out of its class: its entry turns stale; drop empty classes."""
        cls = it.cls
        if cls is None:
            return
        it.cls = None
        it.ver = 0  # no live entry has version 0
        cls.live -= 1
        self.size -= 1
        if cls.live == 0:
            by_c = self._queues[it.queue]
            by_req = by_c[it.channel]
            del by_req[cls.req]
            if not by_req:
                del by_c[it.channel]
                if not by_c:
                    del self._queues[it.queue]
            return
        heap = cls.heap
        while heap[0][4].ver != heap[0][3]:
            heappop(heap)
        if len(heap) > 2 * cls.live + _SLACK:
            cls.heap = [e for e in heap if e[4].ver == e[3]]
            heapify(cls.heap)

    def classes(self) -> int:
        """Number of non-empty requirement classes (for statistics)."""
        return sum(len(r) for by_c in self._queues.values() for r in by_c.values())

    def best_for(self, a: AgentRec, bound: ItemEntry | None) -> ItemEntry | None:
        """The first waiting item (in ``-priority, enqueued_at`` order) ``a`` is eligible for,
        better than ``bound``; else ``bound``. The caller checked ``a`` is available.

        Cost: O(C) for the C classes of ``a``'s queues on channels where ``a`` has free
        capacity (one tuple comparison each, plus a subset test when the top could win), plus
        a walk past the tops that excluded ``a``.
        """
        best = bound
        aid, atoms, load, cap = a.id, a.atoms, a.load, a.cap
        for q in a.queues:
            by_c = self._queues.get(q)
            if by_c is None:
                continue
            for c, by_req in by_c.items():
                if load[c] >= cap[c]:
                    continue
                for cls in by_req.values():
                    e = cls.heap[0]
                    if best is not None and e >= best:
                        continue
                    if not cls.atoms <= atoms:
                        continue
                    if aid in e[4].excluded:
                        found: ItemEntry | None = None
                        for e2 in iter_sorted(cls.heap):
                            if best is not None and e2 >= best:
                                break
                            if e2[4].ver == e2[3] and aid not in e2[4].excluded:
                                found = e2
                                break
                        if found is None:
                            continue
                        e = found
                    best = e
        return best
