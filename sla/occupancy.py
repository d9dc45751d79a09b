"""Agent occupancy from presence and handling: occupied and idle seconds per team and bucket.

Feed state changes with explicit times (epoch seconds): :meth:`AgentTime.presence` (and team
changes), :meth:`AgentTime.handle` (a live contact assigned to an agent, or released). An agent
is, at every instant, in one of three states:

* **occupied**: handling at least one live contact (any presence but ``offline``), or in
  ``wrap_up`` (after-contact work counts as handle time);
* **idle**: ``available`` with no live contact (waiting for work);
* not counted: ``offline``, or ``busy`` / ``away`` with no live contact (not staffed for work).

Occupancy = occupied / (occupied + idle) agent seconds (:func:`sla.metrics.occupancy`, Amazon
Connect's definition). Each interval is credited to the buckets it overlaps, split exactly at
bucket boundaries, so a window from a bucket boundary to ``now`` is exact to the microsecond.
Costs: a change O(buckets the closed interval spans); a window O(buckets + agents).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["AgentState", "AgentTime", "Seconds", "state_of"]


class AgentState(StrEnum):
    """What an agent's time counts as."""

    OCCUPIED = "occupied"
    IDLE = "idle"


def state_of(presence: str, contacts: int) -> AgentState | None:
    """The state of an agent with ``presence`` handling ``contacts`` live contacts."""
    if presence == "offline":
        return None
    if contacts > 0 or presence == "wrap_up":
        return AgentState.OCCUPIED
    return AgentState.IDLE if presence == "available" else None


@dataclass(slots=True)
class Seconds:
    """Occupied and idle agent seconds of a window."""

    occupied: float = 0.0
    idle: float = 0.0

    @property
    def occupancy(self) -> float | None:
        """occupied / (occupied + idle); ``None`` without staffed time."""
        total = self.occupied + self.idle
        return None if total <= 0 else self.occupied / total


@dataclass(slots=True)
class _Agent:
    team: int | str | None
    presence: str
    since: float
    contacts: set[int | str] = field(default_factory=set)

    @property
    def state(self) -> AgentState | None:
        return state_of(self.presence, len(self.contacts))


Team = int | str | None


class AgentTime:
    """Occupied and idle seconds per team, from presence and handling changes (no clock)."""

    def __init__(self, bucket_seconds: int = 60) -> None:
        if bucket_seconds <= 0:
            raise ValueError("bucket_seconds must be positive")
        self.bucket_seconds = bucket_seconds
        self.agents: dict[int, _Agent] = {}
        self.handled_by: dict[int | str, int] = {}  # live contact -> agent
        self._buckets: dict[Team, dict[int, list[float]]] = {}

    # -- feeding ------------------------------------------------------------------------------

    def _close(self, agent: _Agent, at: float) -> None:
        """Credit the agent's time since its last change to its team's buckets."""
        state, start = agent.state, agent.since
        agent.since = max(at, start)
        if state is None or at <= start:
            return
        slot = 0 if state is AgentState.OCCUPIED else 1
        size, buckets = self.bucket_seconds, self._buckets.setdefault(agent.team, {})
        cursor = start
        while cursor < at:
            b = int(cursor // size) * size
            end = min(at, b + size)
            pair = buckets.get(b)
            if pair is None:
                pair = buckets[b] = [0.0, 0.0]
            pair[slot] += end - cursor
            cursor = end

    def presence(self, agent_id: int, team: Team, presence: str, at: float) -> None:
        """The agent's presence (or team) at ``at``; a new agent starts here."""
        agent = self.agents.get(agent_id)
        if agent is None:
            self.agents[agent_id] = _Agent(team, presence, at)
            return
        self._close(agent, at)
        agent.team, agent.presence = team, presence

    def remove(self, agent_id: int, at: float) -> None:
        """The agent left (deactivated, no longer an agent): its time stops counting."""
        agent = self.agents.pop(agent_id, None)
        if agent is None:
            return
        self._close(agent, at)
        for contact in agent.contacts:
            self.handled_by.pop(contact, None)

    def handle(self, contact: int | str, agent_id: int | None, at: float) -> None:
        """Live ``contact`` is handled by ``agent_id`` from ``at`` on (``None``: by nobody)."""
        current = self.handled_by.get(contact)
        if current == agent_id:
            return
        if current is not None:
            old = self.agents.get(current)
            if old is not None:
                self._close(old, at)
                old.contacts.discard(contact)
            del self.handled_by[contact]
        if agent_id is None:
            return
        agent = self.agents.get(agent_id)
        if agent is None:  # not an agent we count (e.g. a supervisor taking a chat)
            return
        self._close(agent, at)
        agent.contacts.add(contact)
        self.handled_by[contact] = agent_id

    def contacts_of(self, agent_id: int) -> frozenset[int | str]:
        """The live contacts the agent handles now."""
        agent = self.agents.get(agent_id)
        return frozenset() if agent is None else frozenset(agent.contacts)

    def state(self, agent_id: int) -> AgentState | None:
        """The agent's state now (``None``: not counted or unknown)."""
        agent = self.agents.get(agent_id)
        return None if agent is None else agent.state

    # -- reading ------------------------------------------------------------------------------

    def seconds(
        self, start: float, now: float, *, team: Team = None, everything: bool = False
    ) -> Seconds:
        """Occupied and idle seconds from the bucket containing ``start`` up to ``now``, for one
        team (``team``) or every team (``everything``)."""
        size = self.bucket_seconds
        first = int(start // size) * size
        out = Seconds()
        for key, buckets in self._buckets.items():
            if not everything and key != team:
                continue
            for b, (occupied, idle) in buckets.items():
                if first <= b <= now:
                    out.occupied += occupied
                    out.idle += idle
        for agent in self.agents.values():
            state = agent.state
            if state is None or (not everything and agent.team != team):
                continue
            open_for = max(0.0, now - max(agent.since, first))
            if state is AgentState.OCCUPIED:
                out.occupied += open_for
            else:
                out.idle += open_for
        return out

    def prune(self, before: float) -> None:
        """Drop buckets that start before ``before`` (keep two days for 'today' anywhere)."""
        for buckets in self._buckets.values():
            for b in [b for b in buckets if b < before]:
                del buckets[b]
