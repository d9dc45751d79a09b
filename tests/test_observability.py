"""Metrics access (admin or scrape token), request logs carry the request id and no secrets."""

from __future__ import annotations

import logging
from dataclasses import replace

from contact_center.app import create_app
from contact_center.logging import REQUEST_ID, RedactingFilter
from contact_center.settings import Secret
from tests.conftest import inbound


async def test_metrics_for_admin_or_scrape_token_only(aiohttp_client, settings, services, world):
    scrape = "scrape-token-0123456789"
    services.settings = replace(settings, metrics_token=Secret(scrape))
    app = create_app(services.settings, services=services)
    client = await aiohttp_client(app)
    await client.post("/api/v1/inbound", json=inbound("m1"), headers=world.auth("agent"))
    ok = await client.get("/metrics", headers={"Authorization": f"Bearer {scrape}"})
    assert ok.status == 200
    text = await ok.text()
    assert 'cc_contacts_ingested_total{channel="email",outcome="stored"} 1.0' in text
    assert (await client.get("/metrics", headers=world.auth("admin"))).status == 200
    assert (await client.get("/metrics", headers=world.auth("agent"))).status == 403
    assert (await client.get("/metrics")).status == 401
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401
    await client.close()


async def test_request_log_has_request_id_and_no_token(client, world, caplog):
    caplog.set_level(logging.INFO, logger="contact_center.http")
    headers = {**world.auth("agent"), "X-Request-Id": "req-abc.123"}
    resp = await client.get("/api/v1/tickets", headers=headers)
    assert resp.headers["X-Request-Id"] == "req-abc.123"
    lines = [r for r in caplog.records if r.name == "contact_center.http"]
    assert any(getattr(r, "path", "") == "/api/v1/tickets" and r.status == 200 for r in lines)
    token = world.tokens["agent"]
    assert all(token not in r.getMessage() for r in caplog.records)


def test_json_log_line_carries_request_id():
    from contact_center.logging import _JsonFormatter

    token = REQUEST_ID.set("rid-42")
    try:
        rec = logging.LogRecord("x", logging.WARNING, __file__, 1, "token=abc123 here", None, None)
        RedactingFilter().filter(rec)
        line = _JsonFormatter().format(rec)
    finally:
        REQUEST_ID.reset(token)
    assert '"request_id": "rid-42"' in line
    assert "abc123" not in line
