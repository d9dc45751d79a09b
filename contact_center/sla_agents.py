"""Agents on the wallboard: presence, queues, capacity, live contacts handled, occupancy, offers.

:class:`Staff` is fed by the SLA service from committed events (``agent.presence``,
``user.*``, ``ticket.updated`` / ``ticket.assigned`` / ``ticket.solved`` / ``ticket.closed``,
``offer.*``) and rebuilt at start by replaying the day's events (:func:`load_staff`). Occupancy
comes from :class:`sla.occupancy.AgentTime`: an agent handling a live (chat, voice) contact or
in ``wrap_up`` is occupied, an ``available`` agent without one is idle.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from sla.clock import to_epoch
from sla.occupancy import AgentTime, Seconds
from tickets.actions._common import EVENT, OFFER, QUEUE_MEMBER, TICKET, USER
from tickets.domain import DEFAULT_CAPACITY, LIVE_CHANNELS, Role, TicketStatus

__all__ = [
    "AgentInfo",
    "Staff",
    "StaffHistory",
    "load_agents",
    "load_staff",
    "replay",
    "staff_since",
]

_LIVE = frozenset(c.value for c in LIVE_CHANNELS)
_HELD = (TicketStatus.NEW.value, TicketStatus.OPEN.value, TicketStatus.PENDING.value)
_PRESENCE_EVENTS = ("agent.presence", "user.created", "user.updated")
_TICKET_EVENTS = ("ticket.updated", "ticket.assigned", "ticket.solved", "ticket.closed")
_OFFER_ENDS = ("offer.accepted", "offer.rejected", "offer.expired", "offer.cancelled")
_BEFORE_LIMIT = 20_000  # presence events read back from the start of the day, at most


@dataclass(slots=True)
class AgentInfo:
    """An active agent: team, presence, the queues served and places per channel."""

    team_id: int | None
    presence: str
    queue_ids: frozenset[int] = frozenset()
    capacity: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_CAPACITY))


def _info(p: Mapping[str, Any]) -> AgentInfo:
    return AgentInfo(
        team_id=p.get("team_id"),
        presence=str(p.get("presence", "offline")),
        queue_ids=frozenset(int(q) for q in p.get("queue_ids") or ()),
        capacity={**DEFAULT_CAPACITY, **(p.get("capacity") or {})},
    )


class Staff:
    """Agents by id, their live contacts and occupancy, and open offers by ticket."""

    def __init__(self) -> None:
        self.agents: dict[int, AgentInfo] = {}
        self.time = AgentTime()
        self.channel_of: dict[int | str, str] = {}  # live contact -> its channel
        self.offers: dict[int, int] = {}  # ticket -> agent of its open offer

    # -- feeding ------------------------------------------------------------------------------

    def presence(self, agent_id: int, presence: str, at: float) -> set[int | None]:
        """An ``agent.presence`` event; the team whose figures changed (none if unknown)."""
        info = self.agents.get(agent_id)
        if info is None:
            return set()
        info.presence = presence
        self.time.presence(agent_id, info.team_id, presence, at)
        return {info.team_id}

    def user(self, p: Mapping[str, Any], at: float) -> set[int | None]:
        """A ``user.created`` / ``user.updated`` event; the teams whose figures changed."""
        uid, old = int(p["id"]), self.agents.get(int(p["id"]))
        teams: set[int | None] = set() if old is None else {old.team_id}
        if p.get("role") == Role.AGENT.value and p.get("active", True):
            info = self.agents[uid] = _info(p)
            if old is not None and "queue_ids" not in p:
                info.queue_ids = old.queue_ids
            self.time.presence(uid, info.team_id, info.presence, at)
            teams.add(info.team_id)
        elif old is not None:
            del self.agents[uid]
            self.time.remove(uid, at)
        return teams

    def ticket(self, p: Mapping[str, Any], at: float) -> None:
        """A ticket summary event: who handles the (live) ticket from ``at`` on."""
        tid, channel = int(p["id"]), p.get("channel")
        if channel is None or channel not in _LIVE:
            return
        assignee = p.get("assignee_id") if p.get("status") in _HELD else None
        self.time.handle(tid, None if assignee is None else int(assignee), at)
        if assignee is None:
            self.channel_of.pop(tid, None)
        else:
            self.channel_of[tid] = str(channel)

    def ended(self, ticket_id: int, at: float) -> None:
        """Solved or closed: nobody handles it any more, and its offer is gone."""
        self.time.handle(ticket_id, None, at)
        self.channel_of.pop(ticket_id, None)
        self.offers.pop(ticket_id, None)

    def offer(self, kind: str, p: Mapping[str, Any]) -> None:
        """``offer.created`` opens, the other ``offer.*`` events close a ticket's offer."""
        tid = int(p["ticket_id"])
        if kind == "offer.created":
            self.offers[tid] = int(p["agent_id"])
        elif kind in _OFFER_ENDS and self.offers.get(tid) == int(p["agent_id"]):
            del self.offers[tid]

    def apply(self, kind: str, p: Mapping[str, Any], at: float) -> set[int | None]:
        """Any event; the teams whose agent figures changed."""
        if kind == "agent.presence":
            return self.presence(int(p["id"]), str(p["presence"]), at)
        if kind in ("user.created", "user.updated"):
            return self.user(p, at)
        if kind in ("ticket.updated", "ticket.assigned"):
            before = self.time.handled_by.get(int(p["id"]))
            self.ticket(p, at)
            after = self.time.handled_by.get(int(p["id"]))
            return {self._team(a) for a in (before, after) if a is not None}
        if kind in ("ticket.solved", "ticket.closed"):
            agent = self.time.handled_by.get(int(p["id"]))
            self.ended(int(p["id"]), at)
            return set() if agent is None else {self._team(agent)}
        if kind.startswith("offer."):
            self.offer(kind, p)
            return {self._team(int(p["agent_id"]))}
        return set()

    def _team(self, agent_id: int) -> int | None:
        info = self.agents.get(agent_id)
        return None if info is None else info.team_id

    # -- reading ------------------------------------------------------------------------------

    def in_scope(self, team_id: int | None, everything: bool) -> Iterable[AgentInfo]:
        """The agents of a team (or every agent)."""
        return (
            a
            for a in self.agents.values()
            if everything or (team_id is not None and a.team_id == team_id)
        )

    def by_presence(self, team_id: int | None, everything: bool = False) -> dict[str, int]:
        """Active agents in scope counted by presence."""
        out: dict[str, int] = {}
        for a in self.in_scope(team_id, everything):
            out[a.presence] = out.get(a.presence, 0) + 1
        return out

    def load(self, agent_id: int, channel: str) -> int:
        """Live contacts of ``channel`` the agent handles now."""
        return sum(1 for t in self.time.contacts_of(agent_id) if self.channel_of.get(t) == channel)

    def summary(
        self, now: float, midnight: float, team_id: int | None, everything: bool = False
    ) -> dict[str, Any]:
        """The wallboard's ``agents`` section: by presence, occupancy, open offers.

        Occupancy windows start at the minute containing ``now - 900`` / ``now - 3600`` (like
        the service-level windows) or at ``midnight``; a supervisor without a team gets None.
        """
        known = everything or team_id is not None

        def seconds(start: float) -> Seconds | None:
            return (
                self.time.seconds(start, now, team=team_id, everything=everything)
                if known
                else None
            )

        def rounded(s: Seconds | None) -> float | None:
            value = None if s is None else s.occupancy
            return None if value is None else round(value, 4)

        today = seconds(midnight)
        ids = {
            i
            for i, a in self.agents.items()
            if everything or (team_id is not None and a.team_id == team_id)
        }
        return {
            "by_presence": self.by_presence(team_id, everything),
            "occupancy": {
                "today": rounded(today),
                "last_15m": rounded(seconds(now - 900)),
                "last_60m": rounded(seconds(now - 3600)),
            },
            "occupied_seconds_today": None if today is None else round(today.occupied, 3),
            "idle_seconds_today": None if today is None else round(today.idle, 3),
            "open_offers": sum(1 for a in self.offers.values() if a in ids),
        }


# -- reads and the start-up replay --------------------------------------------------------------


def load_agents(session: Connection) -> dict[int, AgentInfo]:
    """Active agents with their queues and capacity."""
    u = USER.c
    rows = session.execute(
        sa.select(u.id, u.team_id, u.presence, u.capacity).where(
            u.active.is_(True), u.role == Role.AGENT.value
        )
    ).all()
    queues: dict[int, set[int]] = {}
    for uid, qid in session.execute(sa.select(QUEUE_MEMBER.c.user_id, QUEUE_MEMBER.c.queue_id)):
        queues.setdefault(int(uid), set()).add(int(qid))
    return {
        int(r.id): AgentInfo(
            r.team_id,
            str(r.presence),
            frozenset(queues.get(int(r.id), ())),
            {**DEFAULT_CAPACITY, **(r.capacity or {})},
        )
        for r in rows
    }


@dataclass(frozen=True, slots=True)
class StaffHistory:
    """What :meth:`Staff.replay` needs: agents now, the day's events (in order: an iterable
    that may be read only once, inside the read that made it), the state at its start."""

    agents: dict[int, AgentInfo]
    events: Iterable[tuple[str, Mapping[str, Any], datetime]]
    changed: set[int]  # agents whose presence or user row changed since the start
    presence_before: dict[int, str]
    held_before: list[dict[str, Any]]
    offers: dict[int, int]


_STREAM = 5_000  # ticket-event rows fetched at a time


def _ticket_events(
    session: Connection, since: datetime
) -> Iterator[tuple[int, str, dict[str, Any], datetime]]:
    """The day's ticket events, only the four fields a replay reads, streamed in id order
    (a busy day has millions: never all of their payloads in memory at once)."""
    ev, p = EVENT.c, EVENT.c.payload
    q = (
        sa.select(
            ev.id, ev.type, ev.created_at, p["id"].as_integer(), p["channel"].as_string(),
            p["status"].as_string(), p["assignee_id"].as_integer(),
        )
        .where(ev.type.in_(_TICKET_EVENTS), ev.created_at >= since)
        .order_by(ev.id)
        .execution_options(yield_per=_STREAM)
    )  # fmt: skip
    for eid, kind, at, tid, channel, status, assignee in session.execute(q):
        yield eid, kind, {"id": tid, "channel": channel, "status": status,
                          "assignee_id": assignee}, at  # fmt: skip


def load_staff(session: Connection, since: datetime) -> StaffHistory:
    """Agents, their events since ``since`` and what held at ``since``. The ticket events
    are streamed: replay the history inside the same read (:func:`staff_since`)."""
    agents = load_agents(session)
    ev = EVENT.c
    people = [
        (int(i), str(k), dict(p), at)
        for i, k, p, at in session.execute(
            sa.select(ev.id, ev.type, ev.payload, ev.created_at)
            .where(ev.type.in_(_PRESENCE_EVENTS), ev.created_at >= since)
            .order_by(ev.id)
        )
    ]
    changed = {int(p["id"]) for _, _, p, _ in people}
    before: dict[int, str] = {}
    if changed:
        q = (
            sa.select(ev.payload)
            .where(ev.type.in_(_PRESENCE_EVENTS), ev.created_at < since)
            .order_by(ev.id.desc())
            .limit(_BEFORE_LIMIT)
        )
        for (p,) in session.execute(q):
            uid = int(p["id"])
            if uid in changed and uid not in before and "presence" in p:
                before[uid] = str(p["presence"])
    t = TICKET.c
    held = [
        {"id": r.id, "channel": r.channel, "status": r.status, "assignee_id": r.assignee_id}
        for r in session.execute(
            sa.select(t.id, t.channel, t.status, t.assignee_id).where(
                t.status.in_(_HELD),
                t.assignee_id.is_not(None),
                t.channel.in_(sorted(_LIVE)),
                t.updated_at < since,
            )
        )
    ]
    offers = {
        int(r.ticket_id): int(r.agent_id)
        for r in session.execute(
            sa.select(OFFER.c.ticket_id, OFFER.c.agent_id).where(OFFER.c.outcome.is_(None))
        )
    }
    merged = heapq.merge(people, _ticket_events(session, since), key=lambda e: e[0])
    events = ((kind, p, at) for _, kind, p, at in merged)
    return StaffHistory(agents, events, changed, before, held, offers)


def staff_since(session: Connection, since: datetime) -> Staff:
    """:func:`replay` of :func:`load_staff`, in one read (the stream needs its connection)."""
    return replay(load_staff(session, since), since)


def replay(history: StaffHistory, since: datetime) -> Staff:
    """A :class:`Staff` rebuilt from the day's events.

    Presence at ``since``: the current one for agents that did not change since, else the last
    one before ``since`` (read back through at most 20,000 presence events; not found: not
    counted until the agent's first change). Live contacts held at ``since``: the open ones
    whose last change is older (their current assignee). Then every event in order.
    """
    staff, start = Staff(), to_epoch(since)
    changed = history.changed
    for uid, info in history.agents.items():
        presence = info.presence if uid not in changed else history.presence_before.get(uid)
        staff.agents[uid] = AgentInfo(
            info.team_id, presence or "offline", info.queue_ids, info.capacity
        )
        staff.time.presence(uid, info.team_id, presence or "offline", start)
    for t in history.held_before:
        staff.ticket(t, start)
    for kind, p, at in history.events:
        if kind == "user.created" or kind == "user.updated":
            known = history.agents.get(int(p["id"]))
            if known is not None and "queue_ids" not in p:
                p = {**p, "queue_ids": sorted(known.queue_ids)}
        staff.apply(kind, p, to_epoch(at))
    for uid, info in history.agents.items():  # what is true now wins over the replay
        mine = staff.agents.get(uid)
        if mine is not None:
            mine.queue_ids, mine.capacity = info.queue_ids, info.capacity
    staff.offers = dict(history.offers)
    return staff
