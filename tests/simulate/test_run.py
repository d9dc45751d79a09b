"""The simulator against the real app: agents as Socket.IO clients, chat customers on the
widget's socket and others through the API, a hang-up after patience, the table and the chart."""

from __future__ import annotations

from dataclasses import replace

import pytest

from contact_center.app import create_app
from contact_center.simulate.model import ChannelMix, Scenario, arrivals
from contact_center.simulate.report import chart, summary, table
from contact_center.simulate.runner import Target, run
from tests.conftest import PASSWORD


@pytest.fixture
def settings(settings):  # every simulated chat customer comes from this machine
    return replace(settings, chat_unlimited_addresses="127.0.0.1")


async def test_a_short_run_answers_and_abandons_and_reports(aiohttp_server, settings, services,
                                                            world, tmp_path):  # fmt: skip
    srv = await aiohttp_server(create_app(settings, services=services))
    try:
        scenario = Scenario(
            (ChannelMix("chat", 7200, aht_seconds=1.0, patience_seconds=0.5),
             ChannelMix("api", 1800, aht_seconds=1.0)),
            seconds=4, agents=2, accept_delay_seconds=0.2, seed=7,
        )  # fmt: skip
        plan = arrivals(scenario)
        target = Target(
            (f"http://127.0.0.1:{srv.port}",),
            "admin@test.example",
            PASSWORD,
            origin=settings.public_base_url,
        )  # the widget's page: the desk's own
        sim = await run(target, scenario, plan, drain_seconds=20, progress=None)
    finally:
        await srv.close()
    outcomes = list(sim.outcomes.values())
    assert len(outcomes) == len(plan) and all(o.error is None for o in outcomes)
    assert all(o.acked_at is not None and o.acked_at >= o.sent_at for o in outcomes)
    assert sim.agent_errors == 0, sim.agent_error_samples
    result = summary(scenario, outcomes)
    chat = result["chat"]["figures"]
    assert chat.answered > 0  # agents took some ...
    assert chat.abandoned > 0  # ... and half-second patience lost others
    assert chat.answered + chat.abandoned + chat.unanswered == chat.offered
    assert result["chat"]["prediction"].model == "erlang_a"
    assert result["api"]["prediction"] is None  # async: no queueing prediction
    assert all(o.answered_at is not None for o in outcomes if o.arrival.channel == "api")
    text = table(scenario, result)
    assert text.splitlines()[0].startswith("channel") and "chat" in text
    png = chart(scenario, outcomes, result, tmp_path / "run.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_a_failed_agent_step_is_counted_not_lost():
    import asyncio
    import random

    from contact_center.simulate.runner import Run, SimAgent

    sim = Run(Scenario((ChannelMix("chat", 60),), seconds=1, agents=1))
    agent = SimAgent("a", "token", "http://127.0.0.1:9", None, sim, random.Random(1))  # type: ignore[arg-type]

    async def accept(_data):
        raise TimeoutError("accept not acknowledged in 10 s")

    agent._spawner(accept)({"offer_id": 1})
    await asyncio.gather(*agent.tasks)
    assert sim.agent_errors == 1
    assert sim.agent_error_samples == ["TimeoutError: accept not acknowledged in 10 s"]


async def test_an_agent_set_away_unheard_comes_back_after_a_reconnect(aiohttp_server, settings,
                                                                      services, world):  # fmt: skip
    """The desk sets an agent away while its socket is gone (its offers ran out); the socket
    comes back ``resumed``, without a snapshot: the agent asks for one and is available again."""
    import asyncio
    import random

    from contact_center.simulate.runner import Api, Run, SimAgent
    from tests.conftest import sql
    from tickets.actions import admin

    def presence() -> str:
        return str(sql(services.db, 'SELECT presence FROM "user" WHERE id = :u', u=uid)[0][0])

    srv = await aiohttp_server(create_app(settings, services=services))
    url, uid = f"http://127.0.0.1:{srv.port}", int(world.users["agent"]["id"])
    api = Api((url,))
    sim = Run(Scenario((ChannelMix("chat", 60),), seconds=1, agents=1))
    agent = SimAgent("agent", world.tokens["agent"], url, api, sim, random.Random(1))
    try:
        await agent.start()
        assert presence() == "available"
        agent.sio.handlers["/agent"].pop("presence")  # deaf: as while its socket was gone
        await services.db.write(admin.set_presence, uid, "away")
        assert presence() == "away"
        agent._on_connect()  # the socket is back (its second connect)
        async with asyncio.timeout(10):
            while presence() != "available":
                await asyncio.sleep(0.02)  # polling the database, bounded
        assert sim.agent_errors == 0, sim.agent_error_samples
    finally:
        await agent.close()
        await api.close()
        await srv.close()


async def test_an_agent_whose_web_process_is_gone_reconnects_to_the_next(aiohttp_server,
                                                                         settings, services,
                                                                         world):  # fmt: skip
    """As a console behind a load balancer: the socket's process goes away, the reconnect
    goes to the next web process (and the agent resyncs there)."""
    import asyncio
    import random

    from contact_center.app import build_services
    from contact_center.simulate.runner import Api, Run, SimAgent
    from tests.conftest import FAST_HASHING

    first = await aiohttp_server(create_app(settings, services=services))
    # another web process on the same database (its own services: the first one's close)
    own = build_services(settings, password_hashing=FAST_HASHING, clock=services.db.clock)
    second = await aiohttp_server(create_app(settings, services=own))
    urls = (f"http://127.0.0.1:{first.port}", f"http://127.0.0.1:{second.port}")
    api = Api(urls)
    sim = Run(Scenario((ChannelMix("chat", 60),), seconds=1, agents=1))
    agent = SimAgent("agent", world.tokens["agent"], urls, api, sim, random.Random(1))
    try:
        await agent.start()
        assert agent.connects == 1 and agent.attempts == 1  # on its own process
        await first.close()  # its sockets are closed with it
        async with asyncio.timeout(20):
            while not (agent.connects == 2 and agent.sio.connected):
                await asyncio.sleep(0.02)  # polling the client, bounded
        assert agent.urls[(agent.attempts - 1) % 2] == urls[1]  # where it connected
        async with asyncio.timeout(10):
            while agent.working:  # the resync after the reconnect
                await asyncio.gather(*agent.working, return_exceptions=True)
        assert sim.agent_errors == 0, sim.agent_error_samples
    finally:
        await agent.close()
        await api.close()
        await second.close()


async def test_a_chat_customer_whose_web_process_is_down_lands_on_the_next(aiohttp_server,
                                                                           settings, services,
                                                                           world):  # fmt: skip
    """As a widget behind a load balancer: the first web process refuses the connection, the
    chat starts on the next one."""
    from contact_center.loopback import free_port
    from contact_center.simulate.drivers import ChatSocketDriver
    from contact_center.simulate.model import Arrival, Outcome
    from contact_center.simulate.runner import Run

    srv = await aiohttp_server(create_app(settings, services=services))
    try:
        dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        target = Target((dead, f"http://127.0.0.1:{srv.port}"), "admin@test.example", PASSWORD,
                        origin=settings.public_base_url)  # fmt: skip
        scenario = Scenario((ChannelMix("chat", 60, 1.0, 0.2),), seconds=1, agents=1)
        sim = Run(scenario, tag="failover")
        driver = ChatSocketDriver(target, sim)
        outcome = Outcome(Arrival(0.0, 0, "chat", 1.0, 0.2))  # number 0: the dead one first
        await driver.contact(outcome)
    finally:
        await srv.close()
    assert outcome.error is None
    assert outcome.sent_at is not None and outcome.abandoned_at is not None  # nobody answered
    assert list(sim.by_ticket.values()) == [0]  # its chat was stored on the live process


async def test_a_ticket_assigned_without_an_offer_answered_is_worked(aiohttp_server, settings,
                                                                    services, world):  # fmt: skip
    """An accept whose answer is lost (or a transfer) still makes the ticket the agent's: the
    simulated agent works it from the ``assigned`` event, as a console shows it, instead of
    holding a unit of its capacity for good."""
    import asyncio
    import random

    from contact_center.simulate.model import Arrival, Outcome
    from contact_center.simulate.runner import REPLY, Api, Run, SimAgent
    from tests.conftest import inbound, sql

    srv = await aiohttp_server(create_app(settings, services=services))
    url, uid = f"http://127.0.0.1:{srv.port}", int(world.users["agent"]["id"])
    api = Api((url,))
    sim = Run(Scenario((ChannelMix("api", 60),), seconds=1, agents=1), tag="assigned")
    agent = SimAgent("agent", world.tokens["agent"], url, api, sim, random.Random(1))
    try:
        await agent.start()
        # a ticket of a queue the agent does not serve (never offered to it), then given to it
        _, made = await api.call("POST", "/api/v1/inbound", world.tokens["admin"],
                                 inbound("sim-assigned-0", queue="tech",
                                         subject="sim assigned 0"))  # fmt: skip
        tid = int(made["ticket_id"])
        outcome = sim.outcomes[0] = Outcome(Arrival(0.0, 0, "api", 0.2, None))
        await api.call("PATCH", f"/api/v1/tickets/{tid}", world.tokens["admin"],
                       {"assignee_id": uid})  # fmt: skip
        async with asyncio.timeout(10):
            while outcome.solved_at is None:
                await asyncio.sleep(0.02)  # polling the agent's record, bounded
        assert sim.by_ticket == {tid: 0}  # matched by the subject
        assert outcome.answered_at is not None and outcome.replied_at is not None
        rows = sql(services.db, "SELECT body_text FROM message WHERE ticket_id = :t"
                   " AND direction = 'out'", t=tid)  # fmt: skip
        assert [r[0] for r in rows] == [REPLY]
        status = sql(services.db, "SELECT status FROM ticket WHERE id = :t", t=tid)[0][0]
        assert status == "solved"
        assert sim.agent_errors == 0, sim.agent_error_samples
    finally:
        await agent.close()
        await api.close()
        await srv.close()


async def test_a_contact_the_desk_never_acknowledged_is_an_error_not_a_loss():
    """The soak counts as lost only what the desk acknowledged and did not store: a customer
    whose request died (a timeout) or was still waiting for its answer when the run ended
    has an error, whatever the driver itself caught."""
    import asyncio

    from contact_center.simulate.model import Arrival, Outcome
    from contact_center.simulate.runner import _customer

    class Driver:
        def __init__(self, behaviour: str) -> None:
            self.behaviour = behaviour

        async def contact(self, outcome: Outcome) -> None:
            outcome.sent_at = 0.0
            if self.behaviour == "timeout":
                raise TimeoutError  # aiohttp's total timeout: no ClientError
            if self.behaviour == "acked":
                outcome.acked_at = 0.1
            await asyncio.Event().wait()  # the answer (or the agent) never comes

    outcomes = {b: Outcome(Arrival(0.0, i, "api", 1.0, None))
                for i, b in enumerate(("timeout", "waiting", "acked"))}  # fmt: skip
    tasks = {b: asyncio.create_task(_customer(Driver(b), o)) for b, o in outcomes.items()}
    await asyncio.wait_for(asyncio.shield(tasks["timeout"]), 5)
    for b in ("waiting", "acked"):  # the end of the run
        tasks[b].cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    assert outcomes["timeout"].error == "api: TimeoutError()"
    assert outcomes["waiting"].error == "api: no answer by the end of the run"
    assert outcomes["acked"].error is None  # acknowledged: it must be stored
