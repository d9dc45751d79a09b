"""What a receiver's answer does: 410 Gone disables the subscription; 429/503 Retry-After
postpones the next attempt (never earlier than our own schedule, at most 24 hours)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from contact_center.keys import SERVICES
from contact_center.webhooks.outbox import GONE
from tests.conftest import inbound, sql
from tests.webhooks.test_delivery import _subscribe
from tests.webhooks.test_targets import _sweep_and_drain


async def _deliveries(client, world, sub_id: int) -> list[dict]:
    r = await client.get(f"/api/v1/webhooks/{sub_id}/deliveries", headers=world.auth("admin"))
    return (await r.json())["items"]


def _at(iso: str) -> datetime:
    when = datetime.fromisoformat(iso)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


async def test_410_gone_disables_the_subscription_until_an_admin_turns_it_on(
    client, world, receiver
):
    svc = client.app[SERVICES]
    receiver.status = 410
    _, sub = await _subscribe(client, world, receiver.url, types=["message.created"])
    await client.post("/api/v1/inbound", json=inbound("g1"), headers=world.auth("agent"))
    await receiver.wait_for(1)
    await svc.jobs.drain()
    (row,) = await _deliveries(client, world, sub["id"])
    assert (row["status"], row["last_status_code"], row["last_error"]) == ("dead", 410, GONE)
    listed = await (await client.get("/api/v1/webhooks", headers=world.auth("admin"))).json()
    assert [w["active"] for w in listed["items"]] == [False]
    audit = await (await client.get("/api/v1/audit?action=webhook.disable",
                                    headers=world.auth("admin"))).json()  # fmt: skip
    (entry,) = audit["items"]
    assert (entry["actor"], entry["target_id"]) == ("system", sub["id"])
    assert entry["detail"] == {"reason": "410 Gone", "delivery_id": row["id"]}

    await client.post("/api/v1/inbound", json=inbound("g2"), headers=world.auth("agent"))
    await svc.jobs.drain()
    assert len(receiver.got) == 1  # nothing more is sent to a receiver that said Gone
    assert {s for (s,) in sql(svc.db, "select status from webhookdelivery")} == {"dead"}

    receiver.status = 200
    r = await client.patch(f"/api/v1/webhooks/{sub['id']}", json={"active": True},
                           headers=world.auth("admin"))  # fmt: skip
    assert r.status == 200
    await client.post(f"/api/v1/webhooks/{sub['id']}/replay", headers=world.auth("admin"))
    await svc.jobs.drain()
    assert {s for (s,) in sql(svc.db, "select status from webhookdelivery")} == {"delivered"}


@pytest.mark.parametrize(("status", "retry_after", "wait"), [
    (429, "3600", timedelta(hours=1)),
    (503, "HTTP-DATE+2h", timedelta(hours=2)),
    (429, "999999", timedelta(hours=24)),  # capped
])  # fmt: skip
async def test_retry_after_postpones_the_next_attempt(client, world, receiver, clock, status,
                                                      retry_after, wait):  # fmt: skip
    svc = client.app[SERVICES]
    if retry_after == "HTTP-DATE+2h":
        retry_after = format_datetime(clock.now + timedelta(hours=2), usegmt=True)
    receiver.status, receiver.headers = status, {"Retry-After": retry_after}
    _, sub = await _subscribe(client, world, receiver.url, types=["message.created"])
    await client.post("/api/v1/inbound", json=inbound("r1"), headers=world.auth("agent"))
    await receiver.wait_for(1)
    await svc.jobs.drain()
    (row,) = await _deliveries(client, world, sub["id"])
    assert (row["status"], row["last_status_code"]) == ("retrying", status)
    assert _at(row["next_attempt_at"]) - clock.now == wait  # our own schedule said 5 s
    clock.advance(seconds=wait.total_seconds() - 1)
    assert await _sweep_and_drain(svc) == 0
    clock.advance(seconds=2)
    receiver.status, receiver.headers = 200, {}
    assert await _sweep_and_drain(svc) == 1
    assert len(receiver.got) == 2
    assert (await _deliveries(client, world, sub["id"]))[0]["status"] == "delivered"


async def test_retry_after_never_brings_a_retry_forward(client, world, receiver, clock):
    svc = client.app[SERVICES]
    receiver.status, receiver.headers = 503, {"Retry-After": "0"}
    _, sub = await _subscribe(client, world, receiver.url, types=["message.created"])
    await client.post("/api/v1/inbound", json=inbound("r1"), headers=world.auth("agent"))
    await receiver.wait_for(1)
    await svc.jobs.drain()
    (row,) = await _deliveries(client, world, sub["id"])
    assert timedelta(seconds=4) <= _at(row["next_attempt_at"]) - clock.now <= timedelta(seconds=6)
