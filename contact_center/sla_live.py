"""Live wallboard figures: raw counters (``sla.stats.StatsRecorder``) plus who waits right now.

Fed by the SLA service from committed events (and rebuilt from the database at start), read by
``GET /api/v1/wallboard`` and the ``/wallboard`` Socket.IO namespace. Everything is in memory
and explicit in time (epoch seconds), so figures are deterministic under an injected clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from contact_center.sla_agents import Staff
from contact_center.sla_data import Catalog, QueueInfo
from contact_center.sla_waiting import Contact, WaitingIndex
from sla import metrics as m
from sla.clock import from_epoch, to_epoch
from sla.erlang import agents_needed
from sla.stats import Counters, StatsRecorder
from tickets.domain import ASYNC_CHANNELS, LIVE_CHANNELS, TicketStatus

__all__ = ["BoardConfig", "Contact", "LiveBoard", "epoch"]

_LIVE = tuple(sorted(c.value for c in LIVE_CHANNELS))
_ENDED = (TicketStatus.SOLVED.value, TicketStatus.CLOSED.value)
_NO_TEAM = "no team"  # a recorder team key that matches nothing (a supervisor without a team)


@dataclass(frozen=True, slots=True)
class BoardConfig:
    """Operator choices for the figures (defaults: 80 % in 20 s, V4, short abandons < 5 s)."""

    timezone: str = "UTC"
    answer_threshold_seconds: float = 20.0
    async_threshold_seconds: float = 86_400.0
    short_abandon_seconds: float = 5.0
    target_service_level: float = 0.8
    default_aht_seconds: float | None = None
    variant: m.SlVariant = m.SlVariant.V4


def _r(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits)


@dataclass
class LiveBoard:
    """Counters and waiting contacts per queue, channel and team; snapshots for a scope."""

    config: BoardConfig = field(default_factory=BoardConfig)
    catalog: Catalog = field(default_factory=Catalog)

    def __post_init__(self) -> None:
        cfg = self.config
        self.recorder = StatsRecorder(
            threshold_seconds=cfg.answer_threshold_seconds,
            short_abandon_seconds=cfg.short_abandon_seconds,
            bucket_seconds=60,
            channel_thresholds={c.value: cfg.async_threshold_seconds for c in ASYNC_CHANNELS},
        )
        self.waiting = WaitingIndex()
        self.talking: dict[int, Contact] = {}
        self.breaches: list[tuple[float, int | None, int | None]] = []
        self.staff = Staff()

    # -- feeding ----------------------------------------------------------------------------

    def arrived(self, ticket_id: int, at: float, c: Contact) -> None:
        """A new ticket (counted once: a known ticket is ignored)."""
        if ticket_id in self.waiting or ticket_id in self.talking:
            return
        self.recorder.arrived(at, queue=c.queue_id, channel=c.channel, team=c.team_id)
        self.waiting.add(ticket_id, c)

    def answered(self, ticket_id: int, at: float) -> None:
        """First answer or first response: answered after the time it waited."""
        c = self.waiting.pop(ticket_id)
        if c is None:
            return
        wait = max(0.0, at - c.since)
        self.recorder.answered(at, wait, queue=c.queue_id, channel=c.channel, team=c.team_id)
        if c.channel in _LIVE:
            self.talking[ticket_id] = Contact(at, c.queue_id, c.channel, c.team_id)

    def ended(self, ticket_id: int, at: float) -> None:
        """Solved or closed: a live contact never answered is an abandon; else a handle time."""
        c = self.waiting.pop(ticket_id)
        if c is not None and c.channel in _LIVE:
            wait = max(0.0, at - c.since)
            self.recorder.abandoned(at, wait, queue=c.queue_id, channel=c.channel, team=c.team_id)
        t = self.talking.pop(ticket_id, None)
        if t is not None:
            handle = max(0.0, at - t.since)
            self.recorder.completed(at, handle, queue=t.queue_id, channel=t.channel, team=t.team_id)

    def moved(self, ticket_id: int, queue_id: int | None, team_id: int | None) -> set[int | None]:
        """The ticket changed queue; the teams whose figures changed."""
        teams: set[int | None] = set()
        c = self.waiting.pop(ticket_id)
        if c is not None:
            teams |= {c.team_id, team_id}
            self.waiting.add(ticket_id, Contact(c.since, queue_id, c.channel, team_id, c.priority))
        t = self.talking.get(ticket_id)
        if t is not None:
            teams |= {t.team_id, team_id}
            t.queue_id, t.team_id = queue_id, team_id
        return teams

    def reprioritized(self, ticket_id: int, priority: int) -> None:
        """The ticket's priority changed (its place in line moves)."""
        c = self.waiting.get(ticket_id)
        if c is not None:
            c.priority = priority

    def breached(self, at: float, queue_id: int | None, team_id: int | None) -> None:
        """A breach was announced (kept two days for 'today' in any time zone)."""
        self.breaches = [b for b in self.breaches if b[0] >= at - 2 * 86_400]
        self.breaches.append((at, queue_id, team_id))

    def replay(self, rows: Iterable[Any], since: float) -> None:
        """Rebuild counters from ticket rows (see ``sla_data.ticket_rows``) from ``since`` on."""
        for r in rows:
            created = to_epoch(r.created_at)
            c = Contact(created, r.queue_id, r.channel, r.team_id, r.priority)
            first = r.first_answer_at or r.first_response_at
            end_at = (r.solved_at or r.closed_at) if r.status in _ENDED else None
            end = None if end_at is None else to_epoch(end_at)
            if created >= since:
                self.recorder.arrived(created, queue=c.queue_id, channel=c.channel, team=c.team_id)
            if first is not None:
                a = to_epoch(first)
                if a >= since:
                    self.recorder.answered(a, max(0.0, a - created), queue=c.queue_id,
                                           channel=c.channel, team=c.team_id)  # fmt: skip
                if c.channel in _LIVE:
                    self.talking[r.id] = Contact(a, c.queue_id, c.channel, c.team_id)
                    if end is not None and end >= since:
                        self.ended(r.id, end)
                    elif end is not None:
                        del self.talking[r.id]
            elif end is None:
                self.waiting.add(r.id, c)
            elif c.channel in _LIVE and end >= since:
                self.recorder.abandoned(end, max(0.0, end - created), queue=c.queue_id,
                                        channel=c.channel, team=c.team_id)  # fmt: skip

    # -- reading ----------------------------------------------------------------------------

    def midnight(self, now: float) -> float:
        local = from_epoch(now).astimezone(ZoneInfo(self.config.timezone))
        return to_epoch(local.replace(hour=0, minute=0, second=0, microsecond=0))

    def figures(
        self, now: float, *, queue_id: int | None = None, team_id: int | None = None,
        everything: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        """The wallboard figures of one queue (``queue_id``), a team, or everything."""
        rec, tz = self.recorder, self.config.timezone
        f: dict[str, Any] = {"queue": queue_id} if queue_id is not None else {}
        if queue_id is None and not everything:
            f["team"] = team_id if team_id is not None else _NO_TEAM
        today, l15, l60 = rec.today(now, tz, **f), rec.last(now, 900, **f), rec.last(now, 3600, **f)

        def match(queue: int | None, team: int | None) -> bool:
            if queue_id is not None:
                return queue == queue_id
            return everything or (team_id is not None and team == team_id)

        waiting, oldest = self.waiting.summary(match)
        midnight = self.midnight(now)
        breaches = sum(1 for at, q, t in self.breaches if at >= midnight and match(q, t))
        sl = self.config.variant
        return {
            "waiting": waiting,
            "longest_wait_seconds": _r(m.longest_wait([] if oldest is None else [oldest], now), 3),
            "offered_today": today.offered,
            "answered_today": today.answered,
            "abandoned_today": today.abandoned,
            "short_abandoned_today": today.short_abandoned,
            "service_level": {
                "today": _r(m.service_level(today, sl)),
                "last_15m": _r(m.service_level(l15, sl)),
                "last_60m": _r(m.service_level(l60, sl)),
            },
            "asa_seconds": _r(m.asa(today), 3),
            "abandon_rate": _r(m.abandon_rate(today)),
            "aht_seconds": _r(m.aht(today), 3),
            "breaches_today": breaches,
            "staffing": self._staffing(now, f),
        }

    def _staffing(self, now: float, f: dict[str, Any]) -> dict[str, Any]:
        cfg, rec = self.config, self.recorder
        arrivals, handled = 0, Counters()
        for ch in _LIVE:
            arrivals += rec.last(now, 3600, channel=ch, **f).offered
            handled.add(rec.today(now, cfg.timezone, channel=ch, **f))
        aht, source = m.aht(handled), "today"
        if aht is None:
            aht, source = cfg.default_aht_seconds, "default"
        out: dict[str, Any] = {
            "live_arrivals_last_60m": arrivals,
            "aht_seconds": _r(aht, 3),
            "aht_source": source if aht is not None else None,
            "load_erlangs": None,
            "agents_needed": None,
        }
        if aht is not None and aht > 0:
            load = arrivals / 3600 * aht
            out["load_erlangs"] = _r(load)
            out["agents_needed"] = (
                0
                if load == 0
                else agents_needed(
                    load, aht, cfg.target_service_level, cfg.answer_threshold_seconds
                ).agents
            )
        return out

    def _queues(self, team_id: int | None, everything: bool) -> list[QueueInfo]:
        return sorted(
            (
                q
                for q in self.catalog.queues.values()
                if everything or (team_id is not None and q.team_id == team_id)
            ),
            key=lambda q: q.name,
        )

    def queue_entries(
        self, now: float, team_id: int | None, everything: bool = False
    ) -> list[dict[str, Any]]:
        """One entry per queue in scope (name, team and figures)."""
        return [
            {"queue_id": q.id, "name": q.name, "team_id": q.team_id,
             **self.figures(now, queue_id=q.id)}
            for q in self._queues(team_id, everything)
        ]  # fmt: skip

    def agents_summary(
        self, now: float, team_id: int | None, everything: bool = False
    ) -> dict[str, Any]:
        """Agents in scope: by presence, occupancy (today, last 15/60 min), open offers."""
        return self.staff.summary(now, self.midnight(now), team_id, everything)

    def settings(self) -> dict[str, Any]:
        """How the figures are computed (shown on the wallboard)."""
        cfg = self.config
        return {
            "variant": cfg.variant.name,
            "formula": cfg.variant.value,
            "short_abandons_excluded_below_seconds": cfg.short_abandon_seconds,
            "thresholds_seconds": {
                **{ch: cfg.answer_threshold_seconds for ch in _LIVE},
                **{c.value: cfg.async_threshold_seconds for c in sorted(ASYNC_CHANNELS)},
            },
            "target": {"service_level": cfg.target_service_level,
                       "threshold_seconds": cfg.answer_threshold_seconds},
            "timezone": cfg.timezone,
        }  # fmt: skip

    def snapshot(
        self, now: float, team_id: int | None, everything: bool = False, last_event_id: int = 0
    ) -> dict[str, Any]:
        """The whole board for a scope: a team (supervisor) or everything (admin)."""
        return {
            "last_event_id": last_event_id,
            "generated_at": from_epoch(now).isoformat(),
            "scope": {"all": True} if everything else {"team_id": team_id},
            "settings": self.settings(),
            "queues": self.queue_entries(now, team_id, everything),
            "totals": self.figures(now, team_id=team_id, everything=everything),
            "agents": self.agents_summary(now, team_id, everything),
        }


def epoch(t: datetime) -> float:
    """Epoch seconds of an aware datetime."""
    return to_epoch(t)
