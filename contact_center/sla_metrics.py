"""Prometheus gauges of the live board, computed at scrape time (``GET /metrics``).

A custom collector on the app's registry reads the SLA service's in-memory board when scraped:
no database read, no background updates, the same definitions as the wallboard (docs/sla.md).

| metric | labels | value |
|---|---|---|
| ``cc_queue_waiting`` | ``queue`` | contacts waiting for a first answer or response |
| ``cc_queue_longest_wait_seconds`` | ``queue`` | now - arrival of the oldest of them |
| ``cc_queue_service_level_today`` | ``queue`` | V4 service level since midnight (absent: no data) |
| ``cc_queue_sla_breaches_today`` | ``queue`` | ``sla.breached`` events since local midnight |
| ``cc_agents`` | ``team``, ``presence`` | active agents |
| ``cc_agent_occupancy_today`` | ``team`` | occupied / (occupied + idle) agent seconds today |
| ``cc_offers_open`` | ``team`` | the router's offers not answered yet, by the agent's team |
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from contact_center.sla_live import epoch

if TYPE_CHECKING:
    from contact_center.sla_service import SlaService

__all__ = ["SlaCollector"]

_NO_TEAM = "none"


def _team(names: Mapping[int, str], team_id: int | None) -> str:
    return _NO_TEAM if team_id is None else names.get(team_id, _NO_TEAM)


class SlaCollector(Collector):
    """Queue, agent and offer gauges from one SLA service's board."""

    def __init__(self, service: SlaService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        """The gauges at this instant (called by ``generate_latest``)."""
        board, now = self.service.board, epoch(self.service.now())
        waiting = GaugeMetricFamily(
            "cc_queue_waiting", "Contacts waiting for a first answer", labels=["queue"]
        )
        longest = GaugeMetricFamily(
            "cc_queue_longest_wait_seconds", "Wait of the oldest waiting contact", labels=["queue"]
        )
        level = GaugeMetricFamily(
            "cc_queue_service_level_today",
            "Service level since local midnight (V4)",
            labels=["queue"],
        )
        breaches = GaugeMetricFamily(
            "cc_queue_sla_breaches_today", "SLA breaches since local midnight", labels=["queue"]
        )
        for q in sorted(board.catalog.queues.values(), key=lambda q: q.name):
            f = board.figures(now, queue_id=q.id)
            waiting.add_metric([q.name], f["waiting"])
            longest.add_metric([q.name], f["longest_wait_seconds"])
            if f["service_level"]["today"] is not None:
                level.add_metric([q.name], f["service_level"]["today"])
            breaches.add_metric([q.name], f["breaches_today"])
        yield from (waiting, longest, level, breaches)

        teams = board.catalog.teams
        staff = board.staff
        agents = GaugeMetricFamily(
            "cc_agents", "Active agents by presence", labels=["team", "presence"]
        )
        counts: dict[tuple[str, str], int] = {}
        for a in staff.agents.values():
            key = (_team(teams, a.team_id), a.presence)
            counts[key] = counts.get(key, 0) + 1
        for (team, presence), n in sorted(counts.items()):
            agents.add_metric([team, presence], n)
        yield agents

        occupancy = GaugeMetricFamily(
            "cc_agent_occupancy_today",
            "Occupied / (occupied + idle) agent seconds today",
            labels=["team"],
        )
        midnight = board.midnight(now)
        for team_id in sorted({a.team_id for a in staff.agents.values()}, key=lambda t: t or 0):
            value = staff.time.seconds(midnight, now, team=team_id).occupancy
            if value is not None:
                occupancy.add_metric([_team(teams, team_id)], value)
        yield occupancy

        offers = GaugeMetricFamily(
            "cc_offers_open", "Offers not answered yet, by agent team", labels=["team"]
        )
        by_team: dict[str, int] = {}
        for agent_id in staff.offers.values():
            info = staff.agents.get(agent_id)
            team = _team(teams, None if info is None else info.team_id)
            by_team[team] = by_team.get(team, 0) + 1
        for team, n in sorted(by_team.items()):
            offers.add_metric([team], n)
        yield offers
