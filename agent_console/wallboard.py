"""The ``/wallboard`` Socket.IO namespace: live queue figures for supervisors and admins.

On connect a socket joins its room (``team:<id>`` for a supervisor, ``all`` for an admin) and
gets ``wallboard.snapshot`` (the same document as ``GET /api/v1/wallboard``, with
``last_event_id``). Afterwards the SLA service's coalesced changes (every 250 ms at most) push
``wallboard.update`` with the changed teams' queues, totals and agents, and ``sla.alert`` for
each warning or breach. Each process emits to its own sockets only (``ignore_queue``): every
process runs its own SLA service over the same event stream.
"""

from __future__ import annotations

from typing import Any

from contact_center.auth import AuthUser
from contact_center.keys import Services
from contact_center.realtime import AuthedNamespace
from contact_center.sla_live import epoch
from contact_center.sla_service import Change, SlaService
from tickets.domain import Role

__all__ = ["ALL_ROOM", "TEXT", "WallboardNamespace", "team_room"]

ALL_ROOM = "all"

TEXT = {
    "en": {
        "wallboard": "Wallboard",
        "queue": "Queue",
        "waiting": "Waiting",
        "longest": "Longest wait (s)",
        "sl_today": "SL today",
        "sl_15": "SL 15 min",
        "sl_60": "SL 60 min",
        "asa": "ASA (s)",
        "abandon": "Abandoned",
        "breaches": "Breaches today",
        "needed": "Agents needed",
        "agents": "Agents",
        "connecting": "Connecting…",
        "live": "Live",
        "offline": "Disconnected",
        "answered": "Answered today",
        "abandoned": "Abandoned today",
        "available": "Agents available",
        "chart": "Service level through the day",
        "totals": "All queues",
    },
    "zh": {
        "wallboard": "实时看板",
        "queue": "队列",
        "waiting": "等待中",
        "longest": "最长等待（秒）",
        "sl_today": "今日服务水平",
        "sl_15": "15分钟服务水平",
        "sl_60": "60分钟服务水平",
        "asa": "平均应答（秒）",
        "abandon": "放弃率",
        "breaches": "今日违约",
        "needed": "所需坐席",
        "agents": "坐席",
        "connecting": "连接中…",
        "live": "实时",
        "offline": "已断开",
        "answered": "今日已接听",
        "abandoned": "今日放弃",
        "available": "空闲坐席",
        "chart": "全天服务水平",
        "totals": "全部队列",
    },
}


def team_room(team_id: int | None) -> str:
    """The room of one team's supervisors."""
    return f"team:{team_id}"


class WallboardNamespace(AuthedNamespace):
    """Supervisors see their team's queues; admins see every queue."""

    roles = frozenset({Role.SUPERVISOR, Role.ADMIN})

    def __init__(self, services: Services, namespace: str = "/wallboard") -> None:
        super().__init__(namespace, services)
        if services.sla is not None:
            services.sla.listen(self.push)

    def _sla(self) -> SlaService:
        sla = self.services.sla
        if sla is None:  # pragma: no cover - create_app always installs it
            raise RuntimeError("the SLA service is not installed")
        return sla

    async def joined(self, sid: str, user: AuthUser) -> None:
        """Join the room, then send the snapshot (updates after it carry higher event ids)."""
        everything = user.role is Role.ADMIN
        await self.enter_room(sid, ALL_ROOM if everything else team_room(user.team_id))
        snap = self._sla().snapshot(user.team_id, everything=everything)
        await self.emit("wallboard.snapshot", snap, to=sid)

    def update_for(
        self, change: Change, team_id: int | None, everything: bool = False
    ) -> dict[str, Any]:
        """The ``wallboard.update`` payload for one room."""
        sla = self._sla()
        board, now = sla.board, epoch(sla.now())
        teams = sorted(change.teams, key=lambda t: (t is None, t or 0))
        scope = teams if everything else [team_id]
        queues = [q for t in scope for q in board.queue_entries(now, t)]
        return {
            "last_event_id": change.last_event_id,
            "generated_at": sla.now().isoformat(),
            "scope": {"all": True} if everything else {"team_id": team_id},
            "teams": teams if everything else [team_id],
            "queues": queues,
            "totals": board.figures(now, team_id=team_id, everything=everything),
            "agents": board.agents_summary(now, team_id, everything),
        }

    def watched(self, room: str) -> bool:
        """Whether a socket of this process is in ``room`` (nobody there: nothing to build)."""
        participants = self.server.manager.get_participants(self.namespace, room)
        return next(iter(participants), None) is not None

    async def push(self, change: Change) -> None:
        """Emit the change to the rooms it concerns (this process's sockets only); a room
        with nobody in it on this process costs nothing."""
        if change.teams:
            for team in change.teams:
                if team is not None and self.watched(team_room(team)):
                    await self.emit("wallboard.update", self.update_for(change, team),
                                    room=team_room(team), ignore_queue=True)  # fmt: skip
            if self.watched(ALL_ROOM):
                await self.emit("wallboard.update", self.update_for(change, None, everything=True),
                                room=ALL_ROOM, ignore_queue=True)  # fmt: skip
        for alert in change.alerts:
            team = alert.get("team_id")
            if team is not None:
                await self.emit("sla.alert", alert, room=team_room(team), ignore_queue=True)
            await self.emit("sla.alert", alert, room=ALL_ROOM, ignore_queue=True)
