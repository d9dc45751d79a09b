"""The router's internal mutable records (one per agent, one per waiting or offered ticket).

Not part of the public API: the router hands out the immutable views of ``routing.model``.
"""

from __future__ import annotations

from collections.abc import Mapping

from routing.model import AgentSpec, Channel, Offer, Presence, WorkItem

__all__ = [
    "AgentBucket",
    "AgentEntry",
    "AgentRec",
    "ItemClass",
    "ItemEntry",
    "ItemKey",
    "ItemRec",
    "Req",
    "atoms_of_levels",
    "req_tuple",
]

Req = tuple[tuple[str, int], ...]
"""Requirements as a sorted tuple of ``(skill, min_level)``: hashable, a waiting-class key."""

ItemKey = tuple[int, float, int]
"""Waiting order: ``(-priority, enqueued_at, ticket)``; smaller goes first."""


def req_tuple(req: Mapping[str, int]) -> Req:
    """Canonical hashable form of a requirement mapping."""
    return tuple(sorted(req.items()))


def atoms_of_levels(skills: Mapping[str, int]) -> frozenset[tuple[str, int]]:
    """``{(skill, l) for every l <= level}``: an agent meets ``req`` iff ``req <= atoms``."""
    return frozenset((s, lvl) for s, top in skills.items() for lvl in range(1, top + 1))


class AgentRec:
    """Mutable state of one agent.

    ``tokens[c]`` is the token of the agent's current entries in the channel-``c`` indexes
    (absent: not indexed on ``c``); entries carrying any other token are stale. ``buckets[c]``
    caches the index buckets the agent belongs in on ``c`` (cleared when queues or skills
    change, and only used while no entry is live).
    """

    __slots__ = (
        "assigned",
        "atoms",
        "buckets",
        "cap",
        "id",
        "idle_since",
        "indexed_idle",
        "load",
        "offers",
        "pinned",
        "presence",
        "queues",
        "skills",
        "tokens",
    )

    def __init__(self, spec: AgentSpec) -> None:
        self.id: int = spec.id
        self.skills: dict[str, int] = dict(spec.skills)
        self.atoms: frozenset[tuple[str, int]] = atoms_of_levels(self.skills)
        self.queues: frozenset[int] = spec.queues
        self.cap: dict[str, int] = {c: spec.capacity_for(c) for c in Channel}
        self.load: dict[str, int] = dict.fromkeys(Channel, 0)
        self.presence: Presence = spec.presence
        self.idle_since: float = spec.idle_since
        self.tokens: dict[Channel, int] = {}
        self.buckets: dict[Channel, list[AgentBucket]] = {}
        self.indexed_idle: dict[Channel, float] = {}
        self.offers: set[int] = set()
        self.assigned: set[int] = set()
        self.pinned: set[int] = set()

    def set_skills(self, skills: Mapping[str, int]) -> None:
        """Replace the skills (and the derived atoms)."""
        self.skills = dict(skills)
        self.atoms = atoms_of_levels(self.skills)

    def offerable(self, channel: Channel) -> bool:
        """Available with free capacity on ``channel``: may receive an offer there."""
        return self.presence is Presence.AVAILABLE and self.load[channel] < self.cap[channel]


class ItemRec:
    """Mutable state of one waiting or offered ticket.

    ``base`` is the requirement before relaxation, ``req``/``atoms`` after the first ``stage``
    steps. ``ver`` changes whenever the item leaves its waiting class, which makes its heap
    entry stale. ``pinned_to`` is the preferred agent the item is waiting for (it is then in
    that agent's ``pinned`` set instead of a waiting class). ``relax_seq`` identifies the
    item's current relaxation timer; ``pref_open`` is false once the preference window closed.
    """

    __slots__ = (
        "atoms",
        "base",
        "channel",
        "cls",
        "excluded",
        "item",
        "key",
        "offer",
        "pinned_to",
        "pref_open",
        "queue",
        "relax_seq",
        "req",
        "stage",
        "ticket",
        "ver",
        "waiting",
    )

    def __init__(self, item: WorkItem) -> None:
        self.item = item
        self.ticket: int = item.ticket
        self.channel: Channel = Channel(item.channel)
        self.queue: int = item.queue
        self.key: ItemKey = (-item.priority, item.enqueued_at, item.ticket)
        self.base: Req = req_tuple(item.requirements())
        self.req: Req = self.base
        self.atoms: frozenset[tuple[str, int]] = frozenset(self.base)
        self.stage = 0
        self.excluded: set[int] = set(item.excluded)
        self.ver = 0
        self.cls: ItemClass | None = None
        self.pinned_to: int | None = None
        self.pref_open: bool = item.preferred_agent is not None and item.preference_window > 0
        self.relax_seq = -1
        self.offer: Offer | None = None
        self.waiting = False


AgentEntry = tuple[float, int, int, AgentRec]
"""``(idle_since, agent id, token, record)``: live iff ``record.tokens[channel] == token``."""

ItemEntry = tuple[int, float, int, int, ItemRec]
"""``(-priority, enqueued_at, ticket, ver, record)``: live iff ``record.ver == ver``."""


class AgentBucket:
    """A binary heap of agent entries plus the number of live ones (lazy deletion)."""

    __slots__ = ("heap", "live")

    def __init__(self) -> None:
        self.heap: list[AgentEntry] = []
        self.live = 0


class ItemClass:
    """Waiting items of one (queue, channel) with identical effective requirements ``req``.

    The heap top is kept live (stale entries are popped as soon as they surface), so the best
    item of the class is ``heap[0]`` in O(1).
    """

    __slots__ = ("atoms", "heap", "live", "req")

    def __init__(self, req: Req) -> None:
        self.req = req
        self.atoms: frozenset[tuple[str, int]] = frozenset(req)
        self.heap: list[ItemEntry] = []
        self.live = 0
