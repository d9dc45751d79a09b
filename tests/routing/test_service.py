"""The router service inside the running app: events in, offers and assignments stored, and a
rebuild from the database after a restart (open offers resumed or expired, nothing lost).

Driven through the REST API and the actions; time moves only through the injected clock.
"""

from __future__ import annotations

from typing import Any

from routing.core import TicketState
from routing.service import RouterService, RoutingConfig
from tests.conftest import applied, count, reads_of, sql, wait_until_blocked
from tests.web._helpers import new_ticket, patch_ticket
from tickets.actions import routing as routing_actions


async def _settle(world) -> None:
    await applied(world.svc.db, world.svc.routing)


async def _available(client, world, *who: str) -> None:
    for w in who:
        resp = await client.put("/api/v1/me/presence", json={"presence": "available"},
                                headers=world.auth(w))  # fmt: skip
        assert resp.status == 200


def _open_offer(world, tid: int) -> Any:
    rows = sql(world.svc.db, "SELECT id, agent_id, expires_at FROM offer WHERE ticket_id = :t "
               "AND outcome IS NULL", t=tid)  # fmt: skip
    return rows[0] if rows else None


async def _ticket(client, world, **kw: Any) -> int:
    tid = int((await new_ticket(client, world, **kw))["ticket_id"])
    await _settle(world)
    return tid


async def test_offer_is_stored_and_accept_assigns(client, world):
    await _available(client, world, "agent")
    tid = await _ticket(client, world, channel="chat", handle="visitor-a1")
    offer = _open_offer(world, tid)
    assert offer is not None and offer.agent_id == world.users["agent"]["id"]
    summary = world.svc.db.write_sync(routing_actions.accept_offer, tid, offer.agent_id)
    assert summary["assignee_id"] == offer.agent_id and summary["status"] == "open"
    await _settle(world)
    assert world.svc.routing.router.state_of(tid) is TicketState.ASSIGNED
    answered = sql(world.svc.db, "SELECT count(*) FROM event WHERE type = 'ticket.answered' "
                   "AND ticket_id = :t", t=tid)  # fmt: skip
    assert answered[0][0] == 1  # a live contact: the accept is the answer (the SLA's 20 s)


async def test_only_eligible_agents_get_offers(client, world):
    await _available(client, world, "agent", "agent2", "blue_agent")
    billing = await _ticket(client, world, queue="billing")  # only "agent" serves billing
    tech = await _ticket(client, world, queue="tech")
    skilled = await _ticket(client, world, queue="general", skills={"billing": 4})  # nobody
    assert _open_offer(world, billing).agent_id == world.users["agent"]["id"]
    assert _open_offer(world, tech).agent_id == world.users["blue_agent"]["id"]
    assert _open_offer(world, skilled) is None
    assert world.svc.routing.router.state_of(skilled) is TicketState.WAITING


async def test_manual_assignment_cancels_the_open_offer(client, world):
    await _available(client, world, "agent")
    tid = await _ticket(client, world)
    assert _open_offer(world, tid) is not None
    status, _ = await patch_ticket(client, world, tid, "supervisor",
                                   assignee_id=world.users["agent2"]["id"])  # fmt: skip
    assert status == 200
    await _settle(world)
    assert _open_offer(world, tid) is None
    assert count(world.svc.db, "offer", "ticket_id = :t AND outcome = 'cancelled'", t=tid) == 1
    assignment = world.svc.routing.router.assignment_for(tid)
    assert assignment is not None and assignment.agent == world.users["agent2"]["id"]


async def test_solving_frees_capacity_for_the_next_contact(client, world):
    resp = await client.patch(
        f"/api/v1/users/{world.users['agent']['id']}",
        json={"capacity": {"api": 1}},
        headers=world.auth("admin"),
    )
    assert resp.status == 200, await resp.text()
    await _available(client, world, "agent")
    first = await _ticket(client, world, queue="billing")
    second = await _ticket(client, world, queue="billing")
    agent = world.users["agent"]["id"]
    world.svc.db.write_sync(routing_actions.accept_offer, first, agent)
    await _settle(world)
    assert _open_offer(world, second) is None  # full: one api contact at a time
    status, _ = await patch_ticket(client, world, first, "agent", status="solved")
    assert status == 200
    await _settle(world)
    assert _open_offer(world, second).agent_id == agent


async def test_queue_policy_change_reaches_the_router(client, world):
    qid = world.queues["general"]
    steps = [{"after_seconds": 30, "drop_all": True}]
    resp = await client.patch(
        f"/api/v1/queues/{qid}",
        headers=world.auth("admin"),
        json={"routing_strategy": "best_skill", "relaxation": steps},
    )
    assert resp.status == 200, await resp.text()
    await _settle(world)
    config = world.svc.routing.router.queue_config(qid)
    assert config.strategy.value == "best_skill" and config.relaxation[0].drop_all
    bad = await client.patch(
        f"/api/v1/queues/{qid}",
        headers=world.auth("admin"),
        json={"relaxation": [{"after_seconds": -1}]},
    )
    assert bad.status == 400


async def test_relaxation_lets_an_unskilled_agent_take_it_later(client, world, clock):
    qid = world.queues["general"]
    resp = await client.patch(
        f"/api/v1/queues/{qid}",
        headers=world.auth("admin"),
        json={"relaxation": [{"after_seconds": 30, "drop_all": True}]},
    )
    assert resp.status == 200
    await _available(client, world, "agent2")
    tid = await _ticket(client, world, skills={"billing": 5})  # agent2 has billing 3
    assert _open_offer(world, tid) is None
    clock.advance(seconds=30)
    await world.svc.routing.tick()
    assert _open_offer(world, tid).agent_id == world.users["agent2"]["id"]


async def test_deactivated_agent_loses_its_offer_to_the_next(client, world):
    await _available(client, world, "agent", "agent2")
    tid = await _ticket(client, world)
    holder = _open_offer(world, tid).agent_id
    resp = await client.patch(f"/api/v1/users/{holder}", json={"active": False},
                              headers=world.auth("admin"))  # fmt: skip
    assert resp.status == 200
    await _settle(world)
    now = _open_offer(world, tid)
    assert now is not None and now.agent_id != holder


async def test_known_agent_gets_the_returning_customer_first(client, world, clock):
    await _available(client, world, "agent", "agent2")
    first = await _ticket(client, world, handle="regular@example.com")
    served_by = _open_offer(world, first).agent_id
    world.svc.db.write_sync(routing_actions.accept_offer, first, served_by)
    for status_ in ("solved", "closed"):  # closed: the next contact is a new ticket
        status, _ = await patch_ticket(client, world, first, "admin", status=status_)
        assert status == 200
    await _settle(world)
    # the served agent comes back from a break: the other one has been idle longer now ...
    who = next(n for n in ("agent", "agent2") if world.users[n]["id"] == served_by)
    clock.advance(seconds=600)
    for presence in ("busy", "available"):
        resp = await client.put("/api/v1/me/presence", json={"presence": presence},
                                headers=world.auth(who))  # fmt: skip
        assert resp.status == 200
    await _settle(world)
    router = world.svc.routing.router
    other = next(a.id for a in router.snapshot().agents if a.id != served_by)
    assert router.agent_view(other).idle_since < router.agent_view(served_by).idle_since
    # ... but the customer's own agent gets the customer first
    second = await _ticket(client, world, handle="regular@example.com", body="again")
    assert second != first
    assert _open_offer(world, second).agent_id == served_by


async def test_restart_resumes_open_offers_and_expires_stale_ones(client, world, clock):
    await _available(client, world, "agent", "agent2")
    live = await _ticket(client, world, channel="chat", handle="visitor-live")
    mail = await _ticket(client, world, channel="email", handle="mail@example.com")
    live_offer, mail_offer = _open_offer(world, live), _open_offer(world, mail)
    await world.svc.routing.stop()  # the router's process dies with both offers open

    clock.advance(seconds=20)  # past the 15 s chat offer, inside the 120 s email one
    fresh = RouterService(world.svc.db, RoutingConfig())
    await fresh.load()
    assert _open_offer(world, mail).id == mail_offer.id  # resumed as it was
    assert fresh.router.offer_for(mail) is not None
    announced = sql(world.svc.db, "SELECT count(*) FROM event WHERE type = 'offer.created' "
                    "AND ticket_id = :t", t=mail)[0][0]  # fmt: skip
    assert announced == 2  # once when made, again by the router that took over
    assert count(world.svc.db, "offer", "id = :o AND outcome = 'expired'", o=live_offer.id) == 1
    again = _open_offer(world, live)
    assert again is not None and again.agent_id != live_offer.agent_id  # the next agent
    snapshot = fresh.router.snapshot()
    assert {o.ticket for o in snapshot.offers} == {live, mail}


async def test_offer_stored_refused_when_the_ticket_was_taken_meanwhile(client, world):
    await _available(client, world, "agent")
    tid = await _ticket(client, world, queue="billing", skills={"billing": 5})  # no offer
    status, _ = await patch_ticket(client, world, tid, "admin",
                                   assignee_id=world.users["agent2"]["id"])  # fmt: skip
    assert status == 200
    now = world.svc.db.clock()
    offers = [routing_actions.NewOffer(tid, world.users["agent"]["id"], now, now)]
    assert world.svc.db.write_sync(routing_actions.create_offers, offers) == [None]
    assert count(world.svc.db, "offer", "ticket_id = :t", t=tid) == 0


async def test_a_second_open_offer_of_a_ticket_is_refused_and_the_rest_kept(client, world):
    """The partial unique index refuses a second open offer (the insert skips it, no error);
    the other offers of the same batch are stored."""
    first = await _ticket(client, world, queue="billing", skills={"billing": 5})  # no offer:
    second = await _ticket(client, world, queue="billing", skills={"billing": 5})  # nobody in
    now = world.svc.db.clock()
    agent, agent2 = world.users["agent"]["id"], world.users["agent2"]["id"]
    made = world.svc.db.write_sync(routing_actions.create_offers,
                                   [routing_actions.NewOffer(first, agent, now, now)])  # fmt: skip
    assert made[0] is not None
    alone = [routing_actions.NewOffer(first, agent2, now, now)]
    assert world.svc.db.write_sync(routing_actions.create_offers, alone) == [None]
    batch = [routing_actions.NewOffer(first, agent2, now, now),
             routing_actions.NewOffer(second, agent2, now, now)]  # fmt: skip
    refused, stored = world.svc.db.write_sync(routing_actions.create_offers, batch)
    assert refused is None and stored is not None
    assert count(world.svc.db, "offer", "ticket_id = :t", t=first) == 1
    assert count(world.svc.db, "offer", "id = :o AND agent_id = :a", o=stored, a=agent2) == 1


async def test_an_offer_racing_another_routers_waits_and_is_refused(client, world, db_url):
    """Two routers offer one ticket at once: the second insert waits for the first one's
    transaction and, once it commits, skips its own offer (returns no id) without an error."""
    import threading

    import psycopg

    tid = await _ticket(client, world, queue="billing", skills={"billing": 5})  # no offer
    now = world.svc.db.clock()
    agent, agent2 = world.users["agent"]["id"], world.users["agent2"]["id"]
    if not db_url.startswith("postgresql"):  # one writer at a time: no such interleaving
        return
    first = psycopg.connect(db_url)  # the other router, between its insert and its commit
    first.execute("INSERT INTO offer (ticket_id, agent_id, created_at, expires_at)"
                  " VALUES (%s, %s, %s, %s)", (tid, agent, now, now))  # fmt: skip
    second: list[object] = []
    offers = [routing_actions.NewOffer(tid, agent2, now, now)]
    router = threading.Thread(
        target=lambda: second.append(world.svc.db.write_sync(routing_actions.create_offers, offers))
    )
    router.start()
    wait_until_blocked(db_url, router)
    assert router.is_alive()  # it waited for the first transaction
    first.commit()
    first.close()
    router.join(10)
    assert second == [[None]]
    assert count(world.svc.db, "offer", "ticket_id = :t", t=tid) == 1
    assert count(world.svc.db, "offer", "ticket_id = :t AND agent_id = :a", t=tid, a=agent) == 1


async def test_resync_catches_what_the_bus_lost(client, world, settings):
    """A contact and a presence change committed without the bus reaching the router (as when
    Redis restarts between processes) are found by the periodic resync."""
    from contact_center.db import Actor, Database
    from tickets.actions import admin, ingest
    from tickets.contact import InboundContact
    from tickets.domain import Channel

    silent = Database(settings.database_url, pool_size=1, clock=world.svc.db.clock)
    try:
        silent.write_sync(admin.set_presence, world.users["agent"]["id"], "available")
        contact = InboundContact(
            channel=Channel.API,
            external_id="lost-1",
            handle="lost@example.com",
            body_text="hello",
            queue="billing",
        )
        tid = silent.write_sync(ingest, contact, world.svc.ingest_policy, Actor("cli")).ticket_id
    finally:
        silent.close()
    router = world.svc.routing.router
    assert router.state_of(tid) is None  # nobody told it
    assert await world.svc.routing.resync() == 2  # the ticket and the agent
    assert _open_offer(world, tid).agent_id == world.users["agent"]["id"]
    assert await world.svc.routing.resync() == 0  # nothing left to fix


async def test_resync_counts_only_what_it_fixed(client, world, monkeypatch):
    """Under load the state is read before the router's lock, so tickets that events changed
    meanwhile differ from it; read again, they agree with the router and count for nothing."""
    from contact_center.routing_data import load_routing_state

    await _available(client, world, "agent")
    stale = await world.svc.db.read(load_routing_state)  # before these two contacts
    waiting = await _ticket(client, world, queue="general", skills={"billing": 4})  # nobody
    offered = await _ticket(client, world, channel="chat", handle="visitor-r1")
    router, real_read = world.svc.routing.router, world.svc.db.read
    assert router.state_of(waiting) is TicketState.WAITING
    assert router.state_of(offered) is TicketState.OFFERED

    async def read(fn, *args, **kw):
        return stale if fn is load_routing_state else await real_read(fn, *args, **kw)

    monkeypatch.setattr(world.svc.db, "read", read)
    assert await world.svc.routing.resync() == 0
    assert router.state_of(waiting) is TicketState.WAITING
    assert router.state_of(offered) is TicketState.OFFERED


async def test_solving_a_held_ticket_costs_the_router_no_read(client, world, monkeypatch):
    """``ticket.updated`` (with the new status) lets it go; the ``ticket.solved`` after it
    finds nothing to read for. A solve the router has not heard of still reads."""
    from contact_center.db import EventRecord
    from contact_center.routing_data import ticket_row

    svc = world.svc
    now = svc.db.clock()
    await _available(client, world, "agent")
    agent = world.users["agent"]["id"]
    first = await _ticket(client, world, queue="billing")
    svc.db.write_sync(routing_actions.accept_offer, first, agent)
    second = await _ticket(client, world, queue="billing")
    await _settle(world)
    reads = reads_of(monkeypatch, svc.routing.db, ticket_row)
    status, _ = await patch_ticket(client, world, first, "agent", status="solved")
    assert status == 200
    await _settle(world)
    assert reads == []
    assert svc.routing.router.state_of(first) is None
    # a solved event alone (no ticket.updated: as if that one was lost) is read and applied
    assert svc.routing.router.state_of(second) is not None
    await svc.routing.handle(EventRecord(10**9, "ticket.solved", second, {"id": second}, now))
    assert reads == [(second,)]
