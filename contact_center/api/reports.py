"""SLA reports: daily compliance as JSON or CSV, and the service level through a day as SVG.

Supervisors get their own team's tickets; admins everything (or one team with ``team_id``).
"""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic
from aiohttp import web

from contact_center.api.common import actor, current_user, services
from contact_center.errors import ValidationError
from contact_center.reports import DIMENSIONS, Scope, chart_svg, compliance, to_csv
from contact_center.web import SUPERVISORS, Registry, StrictModel, json_response, parse_query
from tickets.actions.exports import record_export
from tickets.domain import Role

__all__ = ["routes"]

routes = Registry()
MAX_DAYS = 366


class SlaReportQuery(StrictModel):
    """A date range (inclusive, local dates) and how to group the rows."""

    start: date
    end: date
    group_by: str = pydantic.Field(default="queue,channel,team", max_length=40)
    timezone: str | None = pydantic.Field(default=None, max_length=64)
    team_id: int | None = None


class ChartQuery(StrictModel):
    """One local day, optionally one queue, and the interval length."""

    day: date
    queue_id: int | None = None
    timezone: str | None = pydantic.Field(default=None, max_length=64)
    interval_minutes: int = pydantic.Field(default=60, ge=5, le=240)
    team_id: int | None = None


def _zone(request: web.Request, name: str | None) -> str:
    sla = services(request).sla
    tz = name or (sla.config.board.timezone if sla is not None else "UTC")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            "unknown time zone", fields={"timezone": "not an IANA zone"}
        ) from None
    return tz


def _scope(request: web.Request, team_id: int | None) -> Scope:
    user = current_user(request)
    if user.role is Role.ADMIN:
        return Scope(team_id, everything=team_id is None)
    return Scope(user.team_id)  # supervisors: their own team, whatever they ask for


def _groups(raw: str) -> tuple[str, ...]:
    groups = tuple(g.strip() for g in raw.split(",") if g.strip())
    if not groups or any(g not in DIMENSIONS for g in groups) or len(set(groups)) != len(groups):
        raise ValidationError("bad group_by", fields={"group_by": "queue, channel and/or team"})
    return tuple(d for d in DIMENSIONS if d in groups)


Report = tuple[SlaReportQuery, str, tuple[str, ...], list[dict[str, Any]], Scope]


async def _report(request: web.Request) -> Report:
    q = parse_query(request, SlaReportQuery)
    if q.end < q.start or (q.end - q.start).days >= MAX_DAYS:
        raise ValidationError("bad date range", fields={"end": f"after start, {MAX_DAYS} days max"})
    tz, groups, scope = _zone(request, q.timezone), _groups(q.group_by), _scope(request, q.team_id)
    rows = await services(request).db.read(compliance, q.start, q.end, tz, scope, groups)
    return q, tz, groups, rows, scope


@routes.route("GET", "/api/v1/reports/sla", roles=SUPERVISORS, query=SlaReportQuery,
              summary="Daily SLA compliance", tag="reports")  # fmt: skip
async def sla_report(request: web.Request) -> web.StreamResponse:
    """``rows``: one per day and group, with met / breached / open counts and ``compliance``."""
    q, tz, groups, rows, _ = await _report(request)
    return json_response({"start": q.start.isoformat(), "end": q.end.isoformat(),
                          "timezone": tz, "group_by": list(groups), "rows": rows})  # fmt: skip


@routes.route("GET", "/api/v1/reports/sla.csv", roles=SUPERVISORS, query=SlaReportQuery,
              summary="Daily SLA compliance as CSV", tag="reports")  # fmt: skip
async def sla_report_csv(request: web.Request) -> web.StreamResponse:
    """The same rows as CSV; text cells that a spreadsheet would run as formulas are quoted.

    Every export writes an audit row ``report.export`` first (who, range, scope, row count).
    """
    q, tz, groups, rows, scope = await _report(request)
    await services(request).db.write(
        record_export, actor(request), "sla.csv",
        {"start": q.start.isoformat(), "end": q.end.isoformat(), "timezone": tz,
         "group_by": list(groups), "team_id": None if scope.everything else scope.team_id,
         "rows": len(rows)},
    )  # fmt: skip
    columns = ["date", *groups, "tickets", "met", "breached", "open", "untracked", "compliance",
               "resolution_met", "resolution_breached"]  # fmt: skip
    name = f"sla-{q.start.isoformat()}-{q.end.isoformat()}.csv"
    return web.Response(
        text=to_csv(rows, columns),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@routes.route("GET", "/api/v1/reports/service-level.svg", roles=SUPERVISORS, query=ChartQuery,
              summary="Service level through a day (SVG chart)", tag="reports")  # fmt: skip
async def service_level_chart(request: web.Request) -> web.StreamResponse:
    """A server-rendered SVG line chart; all text in it is escaped."""
    q = parse_query(request, ChartQuery)
    if 1440 % q.interval_minutes:
        raise ValidationError("bad interval", fields={"interval_minutes": "must divide a day"})
    tz = _zone(request, q.timezone)
    sla = services(request).sla
    config = sla.config.board if sla is not None else None
    svg = await services(request).db.read(
        chart_svg, q.day, tz, _scope(request, q.team_id), queue_id=q.queue_id,
        minutes=q.interval_minutes, config=config,
    )  # fmt: skip
    return web.Response(text=svg, content_type="image/svg+xml", charset="utf-8")
