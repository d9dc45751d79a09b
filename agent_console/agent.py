"""The ``/agent`` Socket.IO namespace: offers, accepts and presence for the agent console.

On connect (token or session cookie, any staff role) a socket joins ``agent:<id>`` and, for a
supervisor or admin with a team, ``team:<id>`` (an agent's console has no use for every team
mate's presence change: with 300 agents in a team that fan-out was a tenth of a web process's
time); it gets ``snapshot`` (presence, capacity, load, open offers, own tickets,
``last_event_id``), or ``resumed`` when it reconnects with the ``last_event_id`` of the newest
event this process sent it. Committed events reach it as ``offer``, ``offer.ended``,
``assigned``, ``unassigned``, ``ticket.updated``, ``presence`` and, in the team room,
``team.presence``; each carries ``event_id``. Requests (``presence``, ``accept``, ``reject``,
``sync``) answer with an ack. Every process emits to its own sockets (``ignore_queue``) from
the same event stream. Payloads: ``docs/realtime.md``.
"""

from __future__ import annotations

from typing import Any

from agent_console.conversations import Conversations
from contact_center.auth import AuthUser
from contact_center.db import EventRecord
from contact_center.errors import ValidationError
from contact_center.keys import Services
from contact_center.realtime import AuthedNamespace, acked
from contact_center.routing_data import agent_snapshot
from tickets.actions import admin as admin_actions
from tickets.actions import routing as routing_actions
from tickets.domain import Presence, Role

__all__ = ["AgentNamespace", "agent_room", "team_room"]

_TEAM_WATCHERS = (Role.SUPERVISOR, Role.ADMIN)  # who gets ``team.presence``
_OFFER_ENDS = {f"offer.{o}" for o in ("accepted", "rejected", "expired", "cancelled")}


def agent_room(user_id: int) -> str:
    """The room of one agent's sockets (every tab and device)."""
    return f"agent:{user_id}"


def team_room(team_id: int) -> str:
    """The room of one team's agents (presence of team mates)."""
    return f"team:{team_id}"


def _ticket_id(data: Any) -> int:
    raw = data.get("ticket_id") if isinstance(data, dict) else None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
        raise ValidationError("ticket_id (a positive integer) is required",
                              fields={"ticket_id": "required"})  # fmt: skip
    return raw


class AgentNamespace(AuthedNamespace, Conversations):
    """Agents (and supervisors or admins who take contacts) at the console."""

    roles = frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN})

    def __init__(self, services: Services, namespace: str = "/agent") -> None:
        super().__init__(namespace, services)
        self.last_sent: dict[int, int] = {}  # agent id -> id of the newest event sent there
        self._init_conversations()
        services.bus.subscribe(self.on_bus_event)

    # -- connect ------------------------------------------------------------------------------

    async def joined(self, sid: str, user: AuthUser) -> None:
        """Rooms first, then the snapshot: an event in between arrives (with a higher id)
        rather than being lost; the client drops events not newer than the snapshot."""
        await self.enter_room(sid, agent_room(user.id))
        if user.team_id is not None and user.role in _TEAM_WATCHERS:
            await self.enter_room(sid, team_room(user.team_id))
        claimed = (await self.auth(sid)).get("last_event_id")
        sent = self.last_sent.get(user.id)
        if isinstance(claimed, int) and sent is not None and claimed >= sent:
            await self.emit("resumed", {"last_event_id": claimed}, to=sid)
            return
        snap = await self._snapshot(user.id)
        await self.emit("snapshot", {**snap, "resync": claimed is not None}, to=sid)

    async def _snapshot(self, user_id: int) -> dict[str, Any]:
        db = self.services.db
        now = db.clock()
        snap: dict[str, Any] = await db.read(agent_snapshot, user_id, now)
        return {**snap, "now": now.isoformat()}

    # -- requests (each answers with an ack) ----------------------------------------------------

    async def on_presence(self, sid: str, data: Any = None) -> dict[str, Any]:
        """``{"presence": "available" | "busy" | "away" | "offline" | "wrap_up"}``."""

        async def run() -> dict[str, Any]:
            user = await self.user(sid)
            raw = data.get("presence") if isinstance(data, dict) else None
            if raw not in {p.value for p in Presence}:
                raise ValidationError("unknown presence", fields={"presence": "unknown"})
            await self.services.db.write(admin_actions.set_presence, user.id, str(raw))
            return {"presence": raw}

        return await acked(run())

    async def on_accept(self, sid: str, data: Any = None) -> dict[str, Any]:
        """``{"ticket_id": n}``: take the offered ticket; the ack carries it on success."""

        async def run() -> dict[str, Any]:
            user = await self.user(sid)
            ticket = await self.services.db.write(
                routing_actions.accept_offer, _ticket_id(data), user.id
            )
            return {"ticket": ticket}

        return await acked(run())

    async def on_reject(self, sid: str, data: Any = None) -> dict[str, Any]:
        """``{"ticket_id": n}``: decline; the next eligible agent gets it, never this one."""

        async def run() -> dict[str, Any]:
            user = await self.user(sid)
            await self.services.db.write(routing_actions.reject_offer, _ticket_id(data), user.id)
            return {"ticket_id": _ticket_id(data)}

        return await acked(run())

    async def on_sync(self, sid: str, data: Any = None) -> dict[str, Any]:
        """A fresh snapshot in the ack (after the client noticed it missed something)."""

        async def run() -> dict[str, Any]:
            user = await self.user(sid)
            return {"snapshot": await self._snapshot(user.id)}

        return await acked(run())

    # -- committed events -> this process's sockets --------------------------------------------

    async def _to_agent(self, agent_id: Any, name: str, ev: EventRecord, data: Any) -> None:
        if agent_id is None:
            return
        aid = int(agent_id)
        self.last_sent[aid] = max(self.last_sent.get(aid, 0), ev.id)
        await self.emit(name, {"event_id": ev.id, **data}, room=agent_room(aid), ignore_queue=True)

    async def on_bus_event(self, ev: EventRecord) -> None:
        """Translate one committed event into what the agents concerned should see."""
        p = ev.payload
        if ev.type.startswith("ticket.") and ev.type != "ticket.assigned":
            self.learn_owner(p)
        if ev.type in ("message.created", "chat.read", "chat.left"):
            await self.conversation_event(ev)
        elif ev.type == "offer.created":
            await self._to_agent(p["agent_id"], "offer", ev, {
                "offer_id": p["offer_id"], "ticket_id": p["ticket_id"], "ticket": p["ticket"],
                "created_at": p["created_at"], "expires_at": p["expires_at"]})  # fmt: skip
        elif ev.type in _OFFER_ENDS:
            await self._to_agent(p["agent_id"], "offer.ended", ev, {
                "offer_id": p["offer_id"], "ticket_id": p["ticket_id"],
                "outcome": ev.type.split(".", 1)[1], "reason": p.get("reason")})  # fmt: skip
        elif ev.type == "ticket.assigned":
            self.learn_owner(p)
            ticket = {k: v for k, v in p.items() if k != "previous_assignee_id"}
            await self._to_agent(p.get("assignee_id"), "assigned", ev, {"ticket": ticket})
            previous = p.get("previous_assignee_id")
            if previous is not None and previous != p.get("assignee_id"):
                await self._to_agent(previous, "unassigned", ev, {"ticket_id": p["id"]})
        elif ev.type == "ticket.updated":
            ticket = {k: v for k, v in p.items() if k != "changed"}
            await self._to_agent(p.get("assignee_id"), "ticket.updated", ev,
                                 {"ticket": ticket, "changed": p.get("changed", [])})  # fmt: skip
        elif ev.type == "agent.presence":
            await self._presence(ev)
        elif ev.type == "user.updated" and (p.get("revoked") or not p.get("active", True)):
            await self._disconnect_user(int(p["id"]))

    async def _presence(self, ev: EventRecord) -> None:
        p = ev.payload
        aid = int(p["id"])
        await self._to_agent(aid, "presence", ev,
                             {"presence": p["presence"], "reason": p.get("reason")})  # fmt: skip
        team = p.get("team_id")
        if team is not None:
            await self.emit("team.presence",
                            {"event_id": ev.id, "agent_id": aid, "presence": p["presence"]},
                            room=team_room(int(team)), ignore_queue=True)  # fmt: skip

    async def _disconnect_user(self, user_id: int) -> None:
        """A revoked or deactivated user's sockets are closed (they must log in again)."""
        room = agent_room(user_id)
        sids = [sid for sid, _ in self.server.manager.get_participants(self.namespace, room)]
        for sid in sids:
            await self.disconnect(sid)
