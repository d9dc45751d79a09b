"""Read-only results of the router: a whole-state snapshot and the outcome of a tick."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from routing.model import AgentView, Assignment, Offer, WorkItem

__all__ = ["RouterSnapshot", "Tick", "WaitingView"]


@dataclass(frozen=True, slots=True)
class WaitingView:
    """A waiting ticket: its item, relaxation stage, effective requirements, pin, exclusions."""

    item: WorkItem
    stage: int
    requirements: Mapping[str, int]
    pinned_to: int | None
    excluded: frozenset[int]


@dataclass(frozen=True, slots=True)
class Tick:
    """What :meth:`routing.core.Router.tick` did: offers that expired, offers made."""

    expired: tuple[Offer, ...]
    offers: tuple[Offer, ...]


@dataclass(frozen=True, slots=True)
class RouterSnapshot:
    """The router's whole state, sorted by id; ``to_dict()`` gives plain JSON-able data.

    Items carry their current ``excluded`` sets. Rebuilding a router from it:
    ``add_agent(view.spec())`` for each agent, then ``restore_assignment`` for each
    assignment, ``restore_offer`` for each offer (its item from ``offered_items``) and
    ``enqueue`` for each of ``waiting_items()``.
    """

    agents: tuple[AgentView, ...]
    waiting: tuple[WaitingView, ...]
    offers: tuple[Offer, ...]
    offered_items: tuple[WorkItem, ...]
    assignments: tuple[Assignment, ...]

    def waiting_items(self) -> tuple[WorkItem, ...]:
        """The waiting items (with their current exclusions), ready to ``enqueue`` again."""
        return tuple(w.item for w in self.waiting)

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts/lists/strings/numbers, for JSON export and debugging."""

        def item(i: WorkItem) -> dict[str, Any]:
            return {
                "ticket": i.ticket,
                "channel": str(i.channel),
                "queue": i.queue,
                "priority": i.priority,
                "required_skills": dict(i.required_skills),
                "language": i.language,
                "enqueued_at": i.enqueued_at,
                "preferred_agent": i.preferred_agent,
                "preference_window": i.preference_window,
                "excluded": sorted(i.excluded),
            }

        return {
            "agents": [
                {
                    "id": a.id,
                    "skills": dict(a.skills),
                    "queues": sorted(a.queues),
                    "capacity": {str(c): n for c, n in a.capacity.items()},
                    "load": {str(c): n for c, n in a.load.items() if n},
                    "presence": str(a.presence),
                    "idle_since": a.idle_since,
                    "offers": list(a.offers),
                    "assigned": list(a.assigned),
                }
                for a in self.agents
            ],
            "waiting": [
                {
                    **item(w.item),
                    "excluded": sorted(w.excluded),
                    "stage": w.stage,
                    "requirements": dict(w.requirements),
                    "pinned_to": w.pinned_to,
                }
                for w in self.waiting
            ],
            "offers": [
                {
                    "ticket": o.ticket,
                    "agent": o.agent,
                    "channel": str(o.channel),
                    "queue": o.queue,
                    "created_at": o.created_at,
                    "expires_at": o.expires_at,
                    "item": item(i),
                }
                for o, i in zip(self.offers, self.offered_items, strict=True)
            ],
            "assignments": [
                {
                    "ticket": s.ticket,
                    "agent": s.agent,
                    "channel": str(s.channel),
                    "queue": s.queue,
                    "since": s.since,
                }
                for s in self.assignments
            ],
        }
