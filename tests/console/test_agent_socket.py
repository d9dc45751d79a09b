"""The /agent namespace against a running app: offers, accepts, rejects, expiry, presence.

Real python-socketio clients, the real app and router on SQLite and PostgreSQL; time moves
only through the injected clock (``clock.advance`` then ``routing.tick()``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from contact_center.app import create_app
from tests.conftest import applied, count, inbound, sql
from tests.console._agents import AgentClient, connect_refused, post_inbound
from tests.web._helpers import old_token


@pytest.fixture
async def server(aiohttp_server, settings, services, world):
    srv = await aiohttp_server(create_app(settings, services=services))
    yield srv
    await srv.close()  # app cleanup before the services fixture closes the database


@pytest.fixture
async def agents(server, world):
    """Connected consoles for the red agents (``agent``: general+billing, ``agent2``: general)
    and the blue one (``blue_agent``: tech)."""
    made: dict[str, AgentClient] = {}
    for who in ("agent", "agent2", "blue_agent"):
        c = AgentClient(who, world.tokens[who])
        await c.connect(server.port)
        await c.wait_for("snapshot")
        made[who] = c
    yield made
    for c in made.values():
        await c.close()


async def _available(*clients: AgentClient) -> None:
    for c in clients:
        ack = await c.call("presence", {"presence": "available"})
        assert ack == {"ok": True, "presence": "available"}


async def _settle(services) -> None:
    """Every committed event applied by the router (and the offers it made stored)."""
    await applied(services.db, services.routing)


async def _holder(services, world, clients: dict[str, AgentClient], tid: int) -> AgentClient:
    """The console holding the open offer of ``tid``, once the offer reached it."""
    await _settle(services)
    rows = sql(services.db, "SELECT agent_id FROM offer WHERE ticket_id = :t AND outcome IS NULL",
               t=tid)  # fmt: skip
    assert rows, f"ticket {tid} has no open offer"
    name = next(n for n, c in clients.items() if world.users[n]["id"] == rows[0][0])
    await clients[name].wait_for("offer", lambda d: d["ticket_id"] == tid)
    return clients[name]


async def _chat(server, world, ext: str, queue: str = "general", **kw: Any) -> int:
    body = inbound(ext, handle=f"visitor-{ext}", channel="chat", queue=queue, **kw)
    return int((await post_inbound(server.port, world.tokens["admin"], body))["ticket_id"])


async def test_connect_needs_a_valid_live_token(server, world, services):
    expired = old_token("test-secret-key-0123456789abcdef", world.users["agent"]["id"])
    for auth in (None, {}, {"token": "forged"}, {"token": expired}):
        assert await connect_refused(server.port, auth), auth
    services.db.write_sync(_deactivate, world.users["agent2"]["id"])
    services.users.drop(world.users["agent2"]["id"])
    assert await connect_refused(server.port, {"token": world.tokens["agent2"]})
    assert not await connect_refused(server.port, {"token": world.tokens["agent"]})


def _deactivate(uow, user_id):
    from contact_center.db import Actor
    from tickets.actions import admin

    admin.update_user(uow, Actor("cli"), user_id, {"active": False})


async def test_snapshot_then_offer_accept_and_assignment(server, world, services, agents):
    me = agents["agent"]
    snap = me.seen("snapshot")[0]
    assert snap["agent"]["presence"] == "offline" and snap["offers"] == []
    assert snap["resync"] is False and snap["last_event_id"] >= 1
    await _available(me)
    tid = await _chat(server, world, "c1")
    offer = await me.wait_for("offer", lambda d: d["ticket_id"] == tid)
    assert offer["ticket"]["channel"] == "chat" and offer["event_id"] > snap["last_event_id"]
    assert offer["expires_at"] > offer["created_at"]
    ack = await me.call("accept", {"ticket_id": tid})
    assert ack["ok"] is True and ack["ticket"]["assignee_id"] == world.users["agent"]["id"]
    got = await me.wait_for("assigned", lambda d: d["ticket"]["id"] == tid)
    assert got["ticket"]["status"] == "open"
    await me.wait_for("offer.ended", lambda d: d["outcome"] == "accepted")
    row = sql(services.db, "SELECT assignee_id, first_answer_at FROM ticket WHERE id = :t", t=tid)
    assert row[0][0] == world.users["agent"]["id"] and row[0][1] is not None
    # a second accept is refused with a clear code, and changes nothing
    again = await me.call("accept", {"ticket_id": tid})
    assert again == {
        "ok": False,
        "error": {"code": "offer_not_open", "message": "this offer is no longer open"},
    }
    # nobody else heard of the offer
    assert agents["agent2"].seen("offer") == [] and agents["blue_agent"].seen("offer") == []


async def test_bad_requests_get_clear_errors(agents):
    me = agents["agent"]
    for bad in (None, {}, {"ticket_id": "7"}, {"ticket_id": -1}, {"ticket_id": True}):
        ack = await me.call("accept", bad)
        assert ack["ok"] is False and ack["error"]["code"] == "invalid_request", bad
    ack = await me.call("presence", {"presence": "sleeping"})
    assert ack["ok"] is False and ack["error"]["fields"] == {"presence": "unknown"}
    ack = await me.call("reject", {"ticket_id": 999})
    assert ack["ok"] is False and ack["error"]["code"] == "offer_not_open"


async def test_reject_goes_to_the_next_agent_never_back(server, world, services, agents):
    a, b = agents["agent"], agents["agent2"]
    await _available(a, b)
    tid = await _chat(server, world, "r1")
    first = await _holder(services, world, agents, tid)
    other = b if first is a else a
    assert (await first.call("reject", {"ticket_id": tid}))["ok"] is True
    await other.wait_for("offer", lambda d: d["ticket_id"] == tid)
    assert (await other.call("reject", {"ticket_id": tid}))["ok"] is True
    await _settle(services)
    assert len(first.seen("offer")) == 1  # excluded for this ticket: never offered again
    assert count(services.db, "offer", "ticket_id = :t AND outcome = 'rejected'", t=tid) == 2
    assert count(services.db, "offer", "ticket_id = :t AND outcome IS NULL", t=tid) == 0


async def test_disconnect_mid_offer_expires_to_the_next_agent(
    server, world, services, agents, clock
):
    a, b = agents["agent"], agents["agent2"]
    await _available(a, b)
    tid = await _chat(server, world, "d1")
    first = await _holder(services, world, agents, tid)
    other = b if first is a else a
    await first.close()  # the browser went away with the offer on screen
    clock.advance(seconds=14.9)
    await services.routing.tick()
    assert other.seen("offer") == []
    clock.advance(seconds=0.2)  # past the 15 s live offer timeout
    await services.routing.tick()
    offer = await other.wait_for("offer", lambda d: d["ticket_id"] == tid)
    assert (await other.call("accept", {"ticket_id": tid}))["ok"] is True
    who = world.users[first.name]["id"]
    assert sql(services.db, 'SELECT presence FROM "user" WHERE id = :u', u=who)[0][0] == "away"
    assert count(services.db, "offer", "ticket_id = :t AND outcome = 'expired'", t=tid) == 1
    assert offer["event_id"] > 0


async def test_accept_racing_the_expiry_has_one_winner(server, world, services, agents, clock):
    a, b = agents["agent"], agents["agent2"]
    await _available(a, b)
    tids = [await _chat(server, world, f"race{i}") for i in range(6)]
    await _settle(services)
    for tid in tids:  # each first offer: its agent accepts just as the offer runs out
        holder = sql(services.db, "SELECT agent_id FROM offer WHERE ticket_id = :t "
                     "AND outcome IS NULL", t=tid)  # fmt: skip
        if not holder:
            continue
        agent = a if holder[0][0] == world.users["agent"]["id"] else b
        clock.advance(seconds=15)
        results = await asyncio.gather(agent.call("accept", {"ticket_id": tid}),
                                       services.routing.tick())  # fmt: skip
        ack = results[0]
        assigned = sql(services.db, "SELECT assignee_id FROM ticket WHERE id = :t", t=tid)[0][0]
        outcomes = [r[0] for r in sql(services.db, "SELECT outcome FROM offer WHERE "
                                      "ticket_id = :t ORDER BY id", t=tid)]  # fmt: skip
        if ack["ok"]:
            assert assigned == holder[0][0] and outcomes[0] == "accepted"
        else:
            assert ack["error"]["code"] in ("offer_expired", "offer_not_open")
            assert outcomes[0] == "expired" and assigned != holder[0][0]
        assert outcomes.count("accepted") <= 1
        await _available(a, b)
    await _settle(services)
    for tid in tids:
        open_offers = count(services.db, "offer", "ticket_id = :t AND outcome IS NULL", t=tid)
        assert open_offers <= 1


async def test_two_agents_accepting_at_once_one_wins(server, world, services, agents):
    a, b = agents["agent"], agents["agent2"]
    await _available(a, b)
    tid = await _chat(server, world, "both")
    await _holder(services, world, agents, tid)
    acks = await asyncio.gather(a.call("accept", {"ticket_id": tid}),
                                b.call("accept", {"ticket_id": tid}))  # fmt: skip
    assert sorted(x["ok"] for x in acks) == [False, True]
    assert count(services.db, "offer", "ticket_id = :t AND outcome = 'accepted'", t=tid) == 1


async def test_agents_see_only_their_own_team_and_offers(server, world, services, agents):
    red, blue = agents["agent"], agents["blue_agent"]
    boss = AgentClient("supervisor", world.tokens["supervisor"])  # red team's supervisor
    await boss.connect(server.port)
    await boss.wait_for("snapshot")
    try:
        await _available(red, blue, agents["agent2"])
        tech = await _chat(server, world, "t1", queue="tech")
        await blue.wait_for("offer", lambda d: d["ticket_id"] == tech)
        await boss.wait_for("team.presence",
                            lambda d: d["agent_id"] == world.users["agent2"]["id"])  # fmt: skip
        await _settle(services)
        assert red.seen("offer") == []
        blue_id = world.users["blue_agent"]["id"]
        assert [d["presence"] for d in boss.seen("team.presence")
                if d["agent_id"] == world.users["agent"]["id"]] == ["available"]  # fmt: skip
        assert all(d["agent_id"] != blue_id for d in boss.seen("team.presence"))
        # team mates' presence goes to the supervisor, not to every agent's console
        assert red.seen("team.presence") == [] and blue.seen("team.presence") == []
        assert red.seen("presence") != []  # an agent's own presence still comes
    finally:
        await boss.close()


async def test_reconnect_with_current_id_resumes_with_stale_id_resyncs(
    server, world, services, agents
):
    me = agents["agent"]
    await _available(me)
    presence = await me.wait_for("presence", lambda d: d["presence"] == "available")
    await me.close()
    again = AgentClient("agent", world.tokens["agent"])
    await again.connect(server.port, last_event_id=presence["event_id"])
    assert await again.wait_for("resumed") == {"last_event_id": presence["event_id"]}
    await again.close()
    tid = await _chat(server, world, "missed")  # an offer while the console was away
    await _settle(services)
    third = AgentClient("agent", world.tokens["agent"])
    await third.connect(server.port, last_event_id=presence["event_id"])
    snap = await third.wait_for("snapshot")
    assert snap["resync"] is True and [o["ticket_id"] for o in snap["offers"]] == [tid]
    assert (await third.call("accept", {"ticket_id": tid}))["ok"] is True
    await third.close()


async def test_revoked_user_is_disconnected(server, world, services, agents):
    me = agents["agent"]
    services.db.write_sync(_deactivate, world.users["agent"]["id"])
    for _ in range(100):
        if not me.client.connected:
            break
        await asyncio.sleep(0.02)
    assert not me.client.connected


async def test_an_event_for_an_agent_with_no_socket_here_is_not_encoded(
    server, world, agents, monkeypatch
):
    """Scaled out, every web process hears every event but holds only some agents' sockets:
    an offer for an agent connected elsewhere costs no packet here; one for an agent
    connected here is encoded once and arrives."""
    from datetime import UTC, datetime

    import socketio

    from contact_center.db import EventRecord
    from contact_center.realtime import SIO

    encoded: list[Any] = []
    real = socketio.packet.Packet.encode
    monkeypatch.setattr(socketio.packet.Packet, "encode",
                        lambda self: encoded.append(self.data) or real(self))  # fmt: skip
    ns = server.app[SIO].namespace_handlers["/agent"]
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def offer(agent_id: int, ticket_id: int) -> EventRecord:
        return EventRecord(10**9 + ticket_id, "offer.created", ticket_id, {
            "agent_id": agent_id, "offer_id": ticket_id, "ticket_id": ticket_id,
            "ticket": {"id": ticket_id}, "created_at": now.isoformat(),
            "expires_at": now.isoformat()}, now)  # fmt: skip

    await ns.on_bus_event(offer(world.users["supervisor"]["id"], 7001))  # no console open
    assert encoded == []
    assert ns.last_sent[world.users["supervisor"]["id"]] == 10**9 + 7001  # still recorded
    await ns.on_bus_event(offer(world.users["agent"]["id"], 7002))
    assert [d[0] for d in encoded] == ["offer"]
    got = await agents["agent"].wait_for("offer", lambda d: d["ticket_id"] == 7002)
    assert got["event_id"] == 10**9 + 7002
