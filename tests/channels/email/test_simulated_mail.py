"""The simulator's email customers write real mail: an IMAP APPEND into the watched mailbox,
ingested by the app's IDLE poller, offered to a simulated agent, answered over SMTP."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

from contact_center.app import create_app
from contact_center.settings import Secret
from contact_center.simulate.model import ChannelMix, Scenario, arrivals, figures
from contact_center.simulate.runner import ImapBox, Target, run
from tests.channels.email.dovecot import PASSWORD
from tests.conftest import PASSWORD as STAFF_PASSWORD
from tests.conftest import sql


async def test_simulated_customers_email_through_imap(aiohttp_server, settings, services,
                                                      world, mailbox, smtp_sink):  # fmt: skip
    boxes = [{"name": "support", "host": mailbox.host, "port": mailbox.port, "user": mailbox.user,
              "password": PASSWORD, "tls": "none", "queue": "general",
              "address": mailbox.address}]  # fmt: skip
    configured = replace(settings, email_mailboxes=Secret(json.dumps(boxes)))
    srv = await aiohttp_server(create_app(configured, services=services))
    try:
        scenario = Scenario((ChannelMix("email", 3600, aht_seconds=0.5),), seconds=3, agents=2,
                            accept_delay_seconds=0.1, seed=3)  # fmt: skip
        plan = arrivals(scenario)
        assert plan
        imap = ImapBox(mailbox.host, mailbox.port, mailbox.user, PASSWORD, mailbox.address,
                       tls=False)  # fmt: skip
        target = Target((f"http://127.0.0.1:{srv.port}",), "admin@test.example", STAFF_PASSWORD,
                        queue="general", imap=imap)  # fmt: skip
        sim = await run(target, scenario, plan, drain_seconds=20, progress=None)
        # the last replies may still be on their way out (delivery jobs): wait for them, bounded
        async with asyncio.timeout(15):
            while len(smtp_sink.received) < len(plan):
                await asyncio.sleep(0.05)
    finally:
        await srv.close()
    outcomes = list(sim.outcomes.values())
    assert all(o.error is None for o in outcomes)
    f = figures(outcomes, 20, 5)
    assert f.offered == len(plan) and f.answered == len(plan)  # every mail became an offer
    subjects = {r[0] for r in sql(world.svc.db, "SELECT subject FROM ticket")}
    assert {f"sim {sim.tag} {o.arrival.number}" for o in outcomes} <= subjects
    assert len(smtp_sink.received) >= len(plan)  # the agents' replies went out as mail
