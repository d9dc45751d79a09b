"""The simulator's SMS and voice customers through the desk's signed Twilio webhooks: the real
app with Twilio configured, agents on real sockets, Twilio's REST API played by the stub (the
desk redirects each answered call through it)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from channels.sms.webhook import TWILIO
from channels.voice.calls import FINAL_STATES
from contact_center.settings import Secret, Settings
from contact_center.simulate.drivers import (
    ApiDriver,
    TwilioSmsDriver,
    TwilioVoiceDriver,
    driver_for,
)
from contact_center.simulate.model import ChannelMix, Scenario, arrivals
from contact_center.simulate.report import summary
from contact_center.simulate.runner import Api, Run, Target, run
from tests.channels.twilio_fixtures import ACCOUNT_SID, OUR_NUMBER, PUBLIC, TOKEN, desk, stub
from tests.conftest import PASSWORD, count, sql
from tests.twilio_stub import TwilioStub

__all__ = ["desk", "stub"]  # the shared fixtures this module uses


@pytest.fixture
def settings(settings: Settings, stub: TwilioStub) -> Settings:
    """Twilio against the stub (the agents' replies on SMS and call tickets go out as SMS)."""
    return replace(settings, public_base_url=PUBLIC, twilio_account_sid=ACCOUNT_SID,
                   twilio_auth_token=Secret(TOKEN), twilio_api_base_url=stub.base_url,
                   twilio_sms_from=OUR_NUMBER)  # fmt: skip


def _target(desk: Any, token: str) -> Target:
    return Target((f"http://127.0.0.1:{desk.port}",), "admin@test.example", PASSWORD,
                  twilio_token=token, public_url=PUBLIC,
                  twilio_number=OUR_NUMBER, twilio_account_sid=ACCOUNT_SID)  # fmt: skip


async def test_sms_and_calls_come_through_signed_webhooks_and_calls_end(desk, services, stub):
    scenario = Scenario(
        (ChannelMix("sms", 2700, aht_seconds=1.0),
         ChannelMix("voice", 5400, aht_seconds=1.0, patience_seconds=0.6)),
        seconds=5, agents=2, accept_delay_seconds=0.2, seed=3,
    )  # fmt: skip
    plan = arrivals(scenario)
    sms = [a for a in plan if a.channel == "sms"]
    calls = [a for a in plan if a.channel == "voice"]
    assert len(sms) >= 2 and len(calls) >= 4
    sim = await run(_target(desk, TOKEN), scenario, plan, drain_seconds=20, progress=None)
    outcomes = list(sim.outcomes.values())
    assert len(outcomes) == len(plan)
    assert [o.error for o in outcomes if o.error is not None] == []
    assert desk.app[TWILIO].rejected == 0
    # every text is one SMS ticket with the one inbound message, offered and taken by an agent
    assert count(services.db, "ticket", "channel = 'sms'") == len(sms)
    per_ticket = sql(services.db, "SELECT count(*) FROM message WHERE channel = 'sms' AND "
                                  "direction = 'in' GROUP BY ticket_id")  # fmt: skip
    assert sorted(r[0] for r in per_ticket) == [1] * len(sms)
    assert all(o.answered_at is not None for o in outcomes if o.arrival.channel == "sms")
    # calls: some answered, some hung up in the queue; every call's row is final
    voice = summary(scenario, outcomes)["voice"]["figures"]
    assert voice.answered > 0 and voice.abandoned > 0
    assert voice.answered + voice.abandoned == len(calls)
    rows = {r.ticket_id: r for r in sql(services.db, "SELECT ticket_id, call_sid, state, "
                                                     "agent_id FROM voicecall")}  # fmt: skip
    assert len(rows) == len(calls) and all(r.state in FINAL_STATES for r in rows.values())
    number = {n: t for t, n in sim.by_ticket.items()}
    answered = [rows[number[o.arrival.number]] for o in outcomes
                if o.arrival.channel == "voice" and o.answered_at is not None]  # fmt: skip
    assert answered and all(r.state == "completed" and r.agent_id for r in answered)
    assert any(r.state == "abandoned" for r in rows.values())
    # the desk put the answered calls through to their agents with Twilio's REST API
    redirected = {u["call_sid"] for u in stub.call_updates}
    assert redirected and redirected <= {r.call_sid for r in rows.values() if r.agent_id}


async def test_a_webhook_signed_with_a_wrong_token_is_refused_and_counted_as_an_error(
    desk, services
):
    scenario = Scenario(
        (ChannelMix("sms", 7200, aht_seconds=1.0),
         ChannelMix("voice", 7200, aht_seconds=1.0, patience_seconds=5.0)),
        seconds=2, agents=1, accept_delay_seconds=0.2, seed=5,
    )  # fmt: skip
    plan = arrivals(scenario)
    assert {a.channel for a in plan} == {"sms", "voice"}
    target = _target(desk, "not-the-desk-s-token")
    sim = await run(target, scenario, plan, drain_seconds=10, progress=None)
    outcomes = list(sim.outcomes.values())
    assert len(outcomes) == len(plan)
    assert all(o.error is not None and ": 403 " in o.error for o in outcomes), outcomes
    assert desk.app[TWILIO].rejected == len(plan)  # the desk refused each one ...
    assert count(services.db, "ticket", "channel IN ('sms', 'voice')") == 0  # ... storing nothing
    assert count(services.db, "voicecall") == 0
    figures = summary(scenario, outcomes)
    assert sum(f["figures"].errors for f in figures.values()) == len(plan)


async def test_the_twilio_drivers_only_with_a_token():
    sim = Run(Scenario((ChannelMix("sms", 1),), seconds=1, agents=1), tag="1")
    api = Api(("http://127.0.0.1:9",))
    try:
        plain = Target(("http://127.0.0.1:9",), "a@b.c", "pw")
        signed = replace(plain, twilio_token=TOKEN, public_url=PUBLIC)
        for channel in ("sms", "whatsapp", "voice"):
            assert isinstance(driver_for(channel, api, "admin", plain, sim), ApiDriver)
        assert isinstance(driver_for("sms", api, "admin", signed, sim), TwilioSmsDriver)
        assert isinstance(driver_for("whatsapp", api, "admin", signed, sim), TwilioSmsDriver)
        assert isinstance(driver_for("voice", api, "admin", signed, sim), TwilioVoiceDriver)
        assert isinstance(driver_for("api", api, "admin", signed, sim), ApiDriver)
        assert TOKEN not in repr(signed)
    finally:
        await api.close()
