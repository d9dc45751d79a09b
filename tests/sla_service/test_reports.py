"""Reports: daily SLA compliance as JSON and CSV (formula-safe), the SVG chart (escaped)."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import timedelta

from contact_center.db import Actor
from contact_center.reports import safe_cell
from tests.sla_service._helpers import contact, reply, settle, sla_of
from tickets.actions import admin

EVIL = '=HYPERLINK("http://evil.example","x")'
MARKUP = '<script>alert("x")</script> & co'


def _queue(world, name: str) -> None:
    world.svc.db.write_sync(admin.create_queue, Actor("cli"),
                            {"name": name, "team_id": world.teams["red"],
                             "sla_policy_id": 1})  # fmt: skip


async def _day(client, world, clock, queue: str) -> None:
    """Two chats in ``queue``: one answered in 5 s (met), one answered after 30 s (breached)."""
    svc = world.svc
    first = (await contact(client, world, "r-a", queue=queue))["ticket_id"]
    clock.advance(seconds=5)
    await reply(client, world, first, "supervisor")
    second = (await contact(client, world, "r-b", queue=queue))["ticket_id"]
    await settle(svc)
    clock.advance(seconds=30)
    await sla_of(svc).tick()
    await reply(client, world, second, "supervisor")
    await contact(client, world, "r-c", channel="email", queue=queue)  # open: not yet judged
    await settle(svc)


async def test_compliance_json_and_formula_safe_csv(client, world, clock):
    _queue(world, EVIL)
    await _day(client, world, clock, EVIL)
    q = "start=2026-03-02&end=2026-03-02"
    resp = await client.get(f"/api/v1/reports/sla?{q}", headers=world.auth("supervisor"))
    assert resp.status == 200
    body = await resp.json()
    rows = {(r["queue"], r["channel"]): r for r in body["rows"]}
    chat = rows[(EVIL, "chat")]
    assert chat["date"] == "2026-03-02" and chat["team"] == "red"
    assert (chat["tickets"], chat["met"], chat["breached"], chat["open"]) == (2, 1, 1, 0)
    assert chat["compliance"] == 0.5
    email = rows[(EVIL, "email")]
    assert (email["open"], email["compliance"]) == (1, None)

    resp = await client.get(f"/api/v1/reports/sla.csv?{q}&group_by=queue",
                            headers=world.auth("supervisor"))  # fmt: skip
    assert resp.status == 200
    assert resp.content_type == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    text = (await resp.read()).decode("utf-8")
    assert text.startswith("\ufeff")
    table = list(csv.reader(io.StringIO(text[1:])))
    assert table[0][:3] == ["date", "queue", "tickets"]
    assert table[1][1] == "'" + EVIL  # neutralised: a spreadsheet shows text, runs nothing
    assert table[1][2:6] == ["3", "1", "1", "1"]

    # the blue supervisor sees none of it; agents may not ask
    resp = await client.get(f"/api/v1/reports/sla?{q}", headers=world.auth("blue_supervisor"))
    assert (await resp.json())["rows"] == []
    resp = await client.get(f"/api/v1/reports/sla?{q}", headers=world.auth("agent"))
    assert resp.status == 403


async def test_bad_report_queries_are_rejected(client, world):
    for q in ("start=2026-03-02&end=2026-03-01", "start=2026-01-01&end=2027-06-01",
              "start=2026-03-02&end=2026-03-02&group_by=customer",
              "start=2026-03-02&end=2026-03-02&timezone=Mars/Base",
              "start=yesterday&end=2026-03-02", "start=2026-03-02&end=2026-03-02&x=1"):  # fmt: skip
        resp = await client.get(f"/api/v1/reports/sla?{q}", headers=world.auth("admin"))
        assert resp.status == 400, q


def test_safe_cell_neutralises_every_formula_start():
    for value in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "  =1", "\n=1", " \t@x"):
        assert safe_cell(value) == "'" + value
    for value in ("plain", "1=1", "a-b", "", "'=x"):
        assert safe_cell(value) == value
    assert safe_cell(-3) == -3 and safe_cell(0.5) == 0.5 and safe_cell(None) is None


async def test_service_level_chart_is_escaped_svg(client, world, clock):
    _queue(world, MARKUP)
    await _day(client, world, clock, MARKUP)
    queue_id = next(q.id for q in sla_of(world.svc).timers.catalog.queues.values()
                    if q.name == MARKUP)  # fmt: skip
    resp = await client.get(
        f"/api/v1/reports/service-level.svg?day=2026-03-02&queue_id={queue_id}"
        "&interval_minutes=15", headers=world.auth("admin"))  # fmt: skip
    assert resp.status == 200
    assert resp.content_type == "image/svg+xml"
    svg = await resp.text()
    assert "<script" not in svg
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in svg
    root = ET.fromstring(svg)  # noqa: S314 - our own output: checks it is well-formed
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    assert len(root.findall(f"{ns}circle")) == 1  # one 15-minute interval with answers: 09:00
    labels = [t.text for t in root.findall(f"{ns}text")]
    assert "00:00" in labels and "100 %" in labels
    assert clock.now - timedelta(minutes=1) < clock.now
