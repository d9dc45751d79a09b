"""SLA reports from the tickets table: daily compliance (JSON, CSV) and a service-level chart (SVG).

Compliance per (day, queue, channel, team), the day being the ticket's local creation date:
each ticket's promise (``answer`` on live channels, ``first_response`` on the others) is *met*
(done by its deadline), *breached* (flagged, or done after the deadline), *open* (still
running or paused) or *untracked* (no policy); ``compliance = met / (met + breached)``.
Resolution targets are counted alongside. The chart replays a day's tickets into
:class:`sla.stats.StatsRecorder` and plots the live-board service level per interval.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import Connection

from contact_center.sla_data import load_catalog, ticket_rows
from contact_center.sla_live import BoardConfig, LiveBoard
from sla import metrics as m
from sla.clock import from_epoch, to_epoch
from tickets.actions._common import TICKET
from tickets.domain import LIVE_CHANNELS

__all__ = [
    "DIMENSIONS",
    "Scope",
    "chart_svg",
    "compliance",
    "local_bounds",
    "render_svg",
    "safe_cell",
    "to_csv",
]

DIMENSIONS = ("queue", "channel", "team")
_LIVE = {c.value for c in LIVE_CHANNELS}
_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose tickets: one team (supervisor) or everything (admin, optionally one team)."""

    team_id: int | None
    everything: bool = False


def local_bounds(start: date, end: date, tz: str) -> tuple[datetime, datetime]:
    """UTC instants of local midnight on ``start`` and after ``end`` (inclusive range)."""
    zone = ZoneInfo(tz)
    lo = datetime.combine(start, time(), tzinfo=zone)
    hi = datetime.combine(end + timedelta(days=1), time(), tzinfo=zone)
    return lo, hi


def _outcome(done: datetime | None, due: datetime | None, breached: bool) -> str:
    if breached or (done is not None and due is not None and done > due):
        return "breached"
    if done is not None and due is not None:
        return "met"
    return "open"


def _filter(q: Any, scope: Scope) -> Any:
    if scope.team_id is not None:
        return q.where(TICKET.c.team_id == scope.team_id)
    return q if scope.everything else q.where(sa.false())  # a supervisor without a team


def compliance(
    session: Connection,
    start: date,
    end: date,
    tz: str,
    scope: Scope,
    group_by: Sequence[str] = DIMENSIONS,
) -> list[dict[str, Any]]:
    """Daily SLA compliance rows, grouped by ``group_by`` (a subset of :data:`DIMENSIONS`)."""
    zone, (lo, hi) = ZoneInfo(tz), local_bounds(start, end, tz)
    catalog = load_catalog(session)
    t = TICKET.c
    q = sa.select(
        t.created_at, t.channel, t.queue_id, t.team_id, t.sla_policy_id, t.first_answer_at,
        t.first_response_at, t.solved_at, t.answer_due_at, t.first_response_due_at,
        t.resolution_due_at, t.answer_breached, t.first_response_breached, t.resolution_breached,
    ).where(t.created_at >= lo, t.created_at < hi)  # fmt: skip
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in session.execute(_filter(q, scope)):
        queue = catalog.queues.get(r.queue_id) if r.queue_id is not None else None
        dims = {
            "queue": queue.name if queue else None,
            "channel": r.channel,
            "team": catalog.teams.get(r.team_id) if r.team_id is not None else None,
        }
        day = r.created_at.astimezone(zone).date().isoformat()
        key = (day, *(dims[d] or "" for d in group_by))
        row = rows.get(key)
        if row is None:
            row = rows[key] = {"date": day, **{d: dims[d] for d in group_by}, "tickets": 0,
                               "met": 0, "breached": 0, "open": 0, "untracked": 0,
                               "resolution_met": 0, "resolution_breached": 0}  # fmt: skip
        row["tickets"] += 1
        if r.channel in _LIVE:
            done, due, flag = (
                r.first_answer_at or r.first_response_at,
                r.answer_due_at,
                r.answer_breached,
            )
        else:
            done, due, flag = (
                r.first_response_at,
                r.first_response_due_at,
                r.first_response_breached,
            )
        if r.sla_policy_id is None and due is None and not flag:
            row["untracked"] += 1
        else:
            row[_outcome(done, due, flag)] += 1
        if r.resolution_due_at is not None or r.resolution_breached:
            res = _outcome(r.solved_at, r.resolution_due_at, r.resolution_breached)
            if res != "open":
                row[f"resolution_{res}"] += 1
    out = [rows[k] for k in sorted(rows)]
    for row in out:
        judged = row["met"] + row["breached"]
        row["compliance"] = round(row["met"] / judged, 4) if judged else None
    return out


def safe_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas: text starting with = + - @ tab or CR gets a ``'``."""
    if not isinstance(value, str):
        return value
    if value.startswith(_DANGEROUS) or value.lstrip(" \t\r\n").startswith(_DANGEROUS):
        return "'" + value
    return value


def to_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    """CSV text (UTF-8 with BOM for spreadsheets); every text cell passes :func:`safe_cell`."""
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else safe_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def _series(
    session: Connection, day: date, tz: str, scope: Scope, queue_id: int | None, minutes: int,
    config: BoardConfig,
) -> tuple[list[tuple[datetime, float | None]], str | None]:  # fmt: skip
    lo, hi = local_bounds(day, day, tz)
    rows: list[Any] = []
    if scope.everything or scope.team_id is not None:
        rows = ticket_rows(session, lo, hi, include_open=False, team_id=scope.team_id,
                           queue_id=queue_id)  # fmt: skip
    board = LiveBoard(config)
    board.replay(rows, to_epoch(lo))
    points: list[tuple[datetime, float | None]] = []
    step = minutes * 60
    t0, t1 = to_epoch(lo), to_epoch(hi)
    at = t0
    while at < t1:
        c = board.recorder.window(at, min(at + step, t1))
        points.append((from_epoch(at), m.service_level(c, config.variant)))
        at += step
    name = None
    if queue_id is not None:
        info = load_catalog(session).queues.get(queue_id)
        name = info.name if info else None
    return points, name


def chart_svg(
    session: Connection,
    day: date,
    tz: str,
    scope: Scope,
    *,
    queue_id: int | None = None,
    minutes: int = 60,
    config: BoardConfig | None = None,
) -> str:
    """An SVG line chart of the service level per interval of a local day (text escaped)."""
    cfg = config or BoardConfig(timezone=tz)
    points, queue_name = _series(session, day, tz, scope, queue_id, minutes, cfg)
    title = f"Service level {day.isoformat()} ({tz})" + (f" — {queue_name}" if queue_name else "")
    target = cfg.target_service_level
    note = f"{cfg.variant.name}: {cfg.variant.value}; target {round(target * 100)} %"
    labels = [at.astimezone(ZoneInfo(tz)).strftime("%H:%M") for at, _ in points]
    return render_svg([v for _, v in points], labels, title, note, target)


def render_svg(
    values: Sequence[float | None], labels: Sequence[str], title: str, note: str, target: float
) -> str:
    """The chart: one point per interval (gaps where there is no data), a dashed target."""
    width, height, left, top, plot_w, plot_h = 760, 320, 56, 40, 680, 220
    n = max(len(values), 1)

    def x(i: int) -> float:
        return round(left + plot_w * (i + 0.5) / n, 1)

    def y(v: float) -> float:
        return round(top + plot_h * (1 - v), 1)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="22" font-size="15">{escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" '
        'fill="none" stroke="#999"/>',
        f'<line x1="{left}" x2="{left + plot_w}" y1="{y(target)}" y2="{y(target)}" '
        'stroke="#2a7" stroke-dasharray="4 3"/>',
    ]
    out += [
        f'<text x="{left - 6}" y="{y(v) + 4}" text-anchor="end">{round(v * 100)} %</text>'
        for v in (0.0, 0.5, 1.0)
    ]
    every = max(1, n // 8)
    out += [
        f'<text x="{x(i)}" y="{top + plot_h + 16}" text-anchor="middle">{escape(label)}</text>'
        for i, label in enumerate(labels)
        if i % every == 0
    ]
    segments: list[list[str]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            segments.append([])
            continue
        segments[-1].append(f"{x(i)},{y(v)}")
        out.append(f'<circle cx="{x(i)}" cy="{y(v)}" r="2.5" fill="#2458c6"/>')
    out += [
        f'<polyline fill="none" stroke="#2458c6" stroke-width="2" points="{" ".join(seg)}"/>'
        for seg in segments
        if len(seg) > 1
    ]
    out.append(f'<text x="{left}" y="{height - 16}" fill="#555">{escape(note)}</text>')
    out.append("</svg>")
    return "\n".join(out)
