from tests.conftest import count, inbound


async def test_inbound_creates_ticket(client, world):
    resp = await client.post("/api/v1/inbound", json=inbound("m1"), headers=world.auth("admin"))
    assert resp.status == 201, await resp.text()
    data = await resp.json()
    assert data["created_ticket"] is True
    assert count(world.svc.db, "message") == 1
