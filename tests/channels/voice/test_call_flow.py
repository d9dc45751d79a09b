"""Calls end to end: signed Voice webhooks in Twilio's order, the real router and SLA service,
a real python-socketio agent console, and Twilio's REST API played by the stub.

Time moves only through the injected clock; what the caller hears comes from the live board.
"""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from typing import Any

import sqlalchemy as sa

from channels.voice import CALL_CONNECTOR
from tests.channels.twilio_fixtures import ACCOUNT_SID, PUBLIC, call_params
from tests.conftest import applied, count, sql
from tests.console._agents import AgentClient
from tickets.actions._common import TICKET

VOICE = "/webhooks/twilio/voice"
STATUS = "/webhooks/twilio/status"


async def _settle(services: Any) -> None:
    """Every committed event applied by the router and by the SLA service."""
    await applied(services.db, services.routing, services.sla)


def _xml(text: str) -> ET.Element:
    """Parse TwiML the desk produced (our own output, not untrusted input)."""
    return ET.fromstring(text)  # noqa: S314


def _path(url: str | None) -> str:
    assert url is not None and url.startswith(PUBLIC), url
    return url[len(PUBLIC) :]


def _base(params: dict[str, str]) -> dict[str, str]:
    keep = ("AccountSid", "CallSid", "From", "To", "Caller", "Called", "Direction", "ApiVersion")
    return {k: params[k] for k in keep if k in params}


async def _call(hooks: Any, **kw: str) -> tuple[dict[str, str], int, ET.Element]:
    params = call_params(**kw)
    status, xml = await hooks.post(VOICE, params)
    assert status == 200, xml
    root = _xml(xml)
    enqueue = root.find("Enqueue")
    assert enqueue is not None, xml
    found = re.search(r"[?&]t=(\d+)", enqueue.get("waitUrl", ""))
    assert found is not None
    return params, int(found.group(1)), root


def _call_row(db: Any, sid: str) -> Any:
    return sql(db, "SELECT state, agent_id, ticket_id FROM voicecall WHERE call_sid = :s", s=sid)[0]


def _ticket(db: Any, tid: int) -> Any:
    """The ticket row, with real datetimes (through the table's column types)."""
    return db.read_sync(
        lambda conn: conn.execute(sa.select(TICKET).where(TICKET.c.id == tid)).one()
    )


def _totals(services: Any) -> dict[str, Any]:
    totals: dict[str, Any] = services.sla.snapshot(None, everything=True)["totals"]
    return totals


async def _console(desk: Any, world: Any, who: str = "agent") -> AgentClient:
    c = AgentClient(who, world.tokens[who])
    await c.connect(desk.port)
    await c.wait_for("snapshot")
    ack = await c.call("presence", {"presence": "available"})
    assert ack["ok"], ack
    return c


async def _offered(hooks: Any, services: Any, agent: AgentClient) -> tuple[dict[str, str], int]:
    """A call comes in and is offered to ``agent`` (available, the only one)."""
    await _settle(services)
    params, tid, _ = await _call(hooks)
    await agent.wait_for("offer", lambda d: d["ticket_id"] == tid)
    return params, tid


async def test_a_call_is_queued_offered_accepted_connected_and_completed(
    desk, hooks, services, stub, world, clock
):
    agent = await _console(desk, world)
    agent_id = world.users["agent"]["id"]
    try:
        await _settle(services)
        params, tid, root = await _call(hooks)
        say, enqueue = root.find("Say"), root.find("Enqueue")
        assert (
            say is not None and say.get("language") == "en-US" and "Thank you" in (say.text or "")
        )
        assert enqueue is not None and enqueue.text == "cc-voice"
        wait_path, action = _path(enqueue.get("waitUrl")), _path(enqueue.get("action"))
        assert _ticket(services.db, tid).channel == "voice"
        await agent.wait_for("offer", lambda d: d["ticket_id"] == tid)
        await _settle(services)
        # while the agent decides, the caller hears their place in line (no voicemail yet)
        status, hold = await hooks.post(wait_path, {**_base(params), "QueuePosition": "1",
                                                    "QueueTime": "5", "AvgQueueTime": "0",
                                                    "CurrentQueueSize": "1"})  # fmt: skip
        assert status == 200 and "You are number 1 in line" in hold
        assert "<Gather" not in hold and "<Play>https://desk.example.test/static/hold.mp3" in hold
        clock.advance(seconds=7)
        ack = await agent.call("accept", {"ticket_id": tid})
        assert ack["ok"] is True, ack
        # the router's accept is the answer: 7 s after the call came in
        t = _ticket(services.db, tid)
        assert t.assignee_id == agent_id
        assert (t.first_answer_at - t.created_at).total_seconds() == 7.0
        answered = sql(services.db, "SELECT payload FROM event WHERE type = 'ticket.answered'")
        assert len(answered) == 1
        # the call is redirected to the agent's Twilio Client through the REST API
        updates = await stub.wait_for(lambda: [u for u in stub.call_updates
                                               if u["call_sid"] == params["CallSid"]])  # fmt: skip
        twiml = _xml(updates[0]["Twiml"])
        dial = twiml.find("Dial")
        assert dial is not None and dial.findtext("Client") == f"agent-{agent_id}"
        await desk.app[CALL_CONNECTOR].drain()
        assert _call_row(services.db, params["CallSid"])[:2] == ("connected", agent_id)
        await _settle(services)
        totals = _totals(services)
        assert totals["answered_today"] == 1 and totals["asa_seconds"] == 7.0
        # Twilio tells the queue's action the call was redirected: nothing more to do there
        status, xml = await hooks.post(action, {**_base(params), "QueueResult": "redirected",
                                                "QueueTime": "7"})  # fmt: skip
        assert status == 200 and "<Response />" in xml
        # they talk for 95 s; the agent's leg ends and so does the call
        clock.advance(seconds=95)
        status, xml = await hooks.post(_path(dial.get("action")), {
            **_base(params), "DialCallStatus": "completed", "DialCallDuration": "95"})  # fmt: skip
        assert status == 200 and "<Hangup />" in xml
        assert _call_row(services.db, params["CallSid"])[0] == "completed"
        t = _ticket(services.db, tid)
        assert t.status == "solved" and t.solved_at is not None
        # the call's own status callbacks, late and out of order, change nothing
        for call_status in ("completed", "in-progress", "ringing"):
            status, _ = await hooks.post(STATUS, {**_base(params), "CallStatus": call_status,
                                                  "CallDuration": "102"})  # fmt: skip
            assert status == 204
        assert _call_row(services.db, params["CallSid"])[0] == "completed"
        await _settle(services)
        totals = _totals(services)
        assert totals["abandoned_today"] == 0 and totals["aht_seconds"] == 95.0
        await agent.wait_for("assigned", lambda d: d["ticket"]["id"] == tid)
    finally:
        await agent.close()


async def test_a_caller_hanging_up_in_queue_is_an_abandon(desk, hooks, services, stub, clock):
    params, tid, root = await _call(hooks)
    enqueue = root.find("Enqueue")
    assert enqueue is not None
    clock.advance(seconds=30)
    status, xml = await hooks.post(_path(enqueue.get("action")), {
        **_base(params), "QueueResult": "hangup", "QueueTime": "30"})  # fmt: skip
    assert status == 200 and "<Response />" in xml
    assert _call_row(services.db, params["CallSid"])[0] == "abandoned"
    t = _ticket(services.db, tid)
    assert t.status == "closed" and t.first_answer_at is None and t.closed_at is not None
    # the status callback that follows changes nothing
    status, _ = await hooks.post(STATUS, {**_base(params), "CallStatus": "completed"})
    assert status == 204 and _call_row(services.db, params["CallSid"])[0] == "abandoned"
    await _settle(services)
    totals = _totals(services)
    assert (totals["abandoned_today"], totals["answered_today"], totals["waiting"]) == (1, 0, 0)
    assert stub.call_updates == []


async def test_a_hang_up_while_an_agent_is_offered_the_call_cancels_the_offer(
    desk, hooks, services, stub, world, clock
):
    agent = await _console(desk, world)
    try:
        params, tid = await _offered(hooks, services, agent)
        clock.advance(seconds=3)
        # the status callback comes before the queue's action this time
        status, _ = await hooks.post(STATUS, {**_base(params), "CallStatus": "completed"})
        assert status == 204
        ended = await agent.wait_for("offer.ended", lambda d: d["ticket_id"] == tid)
        assert ended["outcome"] == "cancelled"
        ack = await agent.call("accept", {"ticket_id": tid})
        assert ack["ok"] is False and ack["error"]["code"] == "offer_not_open"
        assert _ticket(services.db, tid).status == "closed"
        assert _call_row(services.db, params["CallSid"])[0] == "abandoned"
        assert count(services.db, "offer", "outcome IS NULL") == 0
        await _settle(services)
        assert _totals(services)["abandoned_today"] == 1
        assert stub.call_updates == []
    finally:
        await agent.close()


async def test_the_wait_tells_place_and_expected_wait_from_live_figures(
    desk, hooks, services, stub, world, clock
):
    agent = await _console(desk, world)
    try:
        # one call of 120 s today gives the handle time; a second one keeps the agent busy
        first, tid1 = await _offered(hooks, services, agent)
        assert (await agent.call("accept", {"ticket_id": tid1}))["ok"]
        await stub.wait_for(lambda: stub.call_updates)
        await desk.app[CALL_CONNECTOR].drain()
        clock.advance(seconds=120)
        dial = _xml(stub.call_updates[0]["Twiml"]).find("Dial")
        assert dial is not None
        status, _ = await hooks.post(_path(dial.get("action")),
                                     {**_base(first), "DialCallStatus": "completed"})  # fmt: skip
        assert status == 200
        _, tid2 = await _offered(hooks, services, agent)
        assert (await agent.call("accept", {"ticket_id": tid2}))["ok"]
        _, tid3, _ = await _call(hooks)
        clock.advance(seconds=1)
        fourth, tid4, root = await _call(hooks)
        await _settle(services)
        enqueue = root.find("Enqueue")
        assert enqueue is not None
        status, hold = await hooks.post(_path(enqueue.get("waitUrl")), {
            **_base(fourth), "QueuePosition": "9", "QueueTime": "1"})  # fmt: skip
        assert status == 200
        # second in line, no free place, one staffed place, 120 s handle time: 2 * 120 s
        assert "You are number 2 in line. Your expected wait is about 4 minutes." in hold
    finally:
        await agent.close()
    assert len({tid1, tid2, tid3, tid4}) == 4


async def test_voicemail_after_the_wait_becomes_an_async_ticket(desk, hooks, services, stub, clock):
    params, tid, root = await _call(hooks, sender="+8613800138000")
    say, enqueue = root.find("Say"), root.find("Enqueue")
    assert say is not None and say.get("language") == "zh-CN"
    assert enqueue is not None
    wait_path, action = _path(enqueue.get("waitUrl")), _path(enqueue.get("action"))
    assert "lang=zh" in wait_path and _ticket(services.db, tid).language == "zh"
    _, hold = await hooks.post(wait_path, {**_base(params), "QueueTime": "30"})
    assert "<Gather" not in hold
    clock.advance(seconds=61)
    _, hold = await hooks.post(wait_path, {**_base(params), "QueueTime": "61"})
    gather = _xml(hold).find("Gather")
    assert gather is not None and "如需留言" in (gather.findtext("Say") or "")
    assert _path(gather.get("action")) == wait_path
    _, xml = await hooks.post(wait_path, {**_base(params), "QueueTime": "63", "Digits": "1"})
    assert "<Leave />" in xml
    _, xml = await hooks.post(action, {**_base(params), "QueueResult": "leave", "QueueTime": "63"})
    record = _xml(xml).find("Record")
    assert record is not None and record.get("transcribe") == "true"
    assert _call_row(services.db, params["CallSid"])[0] == "voicemail"
    assert _ticket(services.db, tid).status == "closed"
    audio = b"ID3\x04\x00audio-bytes" * 100
    rec_sid, rec_url = stub.add_recording(audio)
    status, xml = await hooks.post(_path(record.get("action")), {
        **_base(params), "RecordingSid": rec_sid, "RecordingUrl": rec_url,
        "RecordingDuration": "12", "RecordingStatus": "completed"})  # fmt: skip
    assert status == 200 and "<Hangup />" in xml and "谢谢" in xml
    await services.jobs.drain()
    query = (
        "SELECT m.id, m.ticket_id, t.channel, t.subject, t.status, t.first_response_due_at"
        " FROM message m JOIN ticket t ON t.id = m.ticket_id WHERE m.external_id = :e"
    )
    (vm,) = sql(services.db, query, e=rec_sid)
    assert vm.channel == "sms" and vm.subject == "Voicemail from +8613800138000"
    assert vm.first_response_due_at is not None  # an async promise, not the 20 s answer
    files = sql(services.db, "SELECT filename, content_type, size FROM attachment "
                             "WHERE message_id = :m", m=vm.id)  # fmt: skip
    assert [tuple(f) for f in files] == [("voicemail-1.mp3", "audio/mpeg", len(audio))]
    status, _ = await hooks.post(_path(record.get("transcribeCallback")), {
        **_base(params), "TranscriptionSid": "TR" + "7" * 32, "RecordingSid": rec_sid,
        "TranscriptionStatus": "completed", "TranscriptionText": "请给我回电话",
        "RecordingUrl": rec_url})  # fmt: skip
    assert status == 204
    rows = sql(services.db, "SELECT ticket_id, body_text FROM message WHERE external_id = :e",
               e="TR" + "7" * 32)  # fmt: skip
    assert rows[0][0] == vm.ticket_id and rows[0][1].endswith("请给我回电话")
    await _settle(services)
    assert _totals(services)["abandoned_today"] == 1  # the live call was never answered


async def test_an_agent_who_does_not_pick_up_sends_the_call_back_to_the_queue(
    desk, hooks, services, stub, world, clock
):
    agent = await _console(desk, world)
    try:
        params, tid = await _offered(hooks, services, agent)
        assert (await agent.call("accept", {"ticket_id": tid}))["ok"]
        (update,) = await stub.wait_for(lambda: stub.call_updates)
        await desk.app[CALL_CONNECTOR].drain()
        dial = _xml(update["Twiml"]).find("Dial")
        assert dial is not None
        clock.advance(seconds=20)
        status, xml = await hooks.post(_path(dial.get("action")), {
            **_base(params), "DialCallStatus": "no-answer"})  # fmt: skip
        assert status == 200 and "the agent could not take your call" in xml
        assert _xml(xml).find("Enqueue") is not None
        assert _call_row(services.db, params["CallSid"])[:2] == ("queued", None)
        assert _ticket(services.db, tid).assignee_id is None
        offers = await agent.wait_for(
            "offer",
            lambda d: d["ticket_id"] == tid and d["offer_id"] != agent.seen("offer")[0]["offer_id"],
        )
        assert offers["ticket_id"] == tid  # the router offers the call again
    finally:
        await agent.close()


async def test_a_call_that_cannot_be_redirected_waits_again(desk, hooks, services, stub, world):
    agent = await _console(desk, world)
    try:
        params, tid = await _offered(hooks, services, agent)
        stub.ended_calls.add(params["CallSid"])  # Twilio: "Call is not in-progress"
        assert (await agent.call("accept", {"ticket_id": tid}))["ok"]
        await stub.wait_for(lambda: any(r.status == 400 for r in stub.requests))
        connector = desk.app[CALL_CONNECTOR]
        await connector.drain()
        assert connector.outcomes[tid] == "requeued"
        assert _call_row(services.db, params["CallSid"])[:2] == ("queued", None)
        assert _ticket(services.db, tid).assignee_id is None
    finally:
        await agent.close()


async def test_twilio_retrying_the_incoming_webhook_opens_one_ticket(hooks, services):
    params = call_params()
    results = await asyncio.gather(*(hooks.post(VOICE, params) for _ in range(5)))
    assert [s for s, _ in results] == [200] * 5
    tickets = {re.search(r"t=(\d+)", x).group(1) for _, x in results}  # type: ignore[union-attr]
    assert len(tickets) == 1
    assert count(services.db, "voicecall") == 1 and count(services.db, "ticket") == 1


async def test_two_calls_of_one_customer_are_two_tickets(hooks, services):
    _, a, _ = await _call(hooks, sender="+14155550177")
    _, b, _ = await _call(hooks, sender="+14155550177")
    assert a != b and count(services.db, "customer") == 1


async def test_voice_replies_go_out_as_sms(desk, hooks, services, stub, world):
    import aiohttp

    _, tid, _ = await _call(hooks, sender="+14155550188")
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"http://127.0.0.1:{desk.port}/api/v1/tickets/{tid}/replies",
                               json={"body": "Sorry we missed you"},
                               headers=world.auth("admin"))  # fmt: skip
        assert resp.status == 201
    await services.jobs.drain()
    assert [(m["to"], m["body"]) for m in stub.messages] == [("+14155550188",
                                                              "Sorry we missed you")]  # fmt: skip
    assert stub.account_sid == ACCOUNT_SID


async def test_an_agent_with_a_phone_number_takes_calls_on_it(desk, hooks, services, stub, world):
    import aiohttp

    uid = world.users["agent"]["id"]
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{desk.port}/api/v1/users/{uid}"
        bad = await http.patch(url, json={"phone": "030 123456"}, headers=world.auth("admin"))
        assert bad.status == 400
        resp = await http.patch(url, json={"phone": "+4930123456"}, headers=world.auth("admin"))
        assert resp.status == 200 and (await resp.json())["phone"] == "+4930123456"
    agent = await _console(desk, world)
    try:
        params, tid = await _offered(hooks, services, agent)
        assert (await agent.call("accept", {"ticket_id": tid}))["ok"]
        (update,) = await stub.wait_for(lambda: stub.call_updates)
        dial = _xml(update["Twiml"]).find("Dial")
        assert dial is not None and dial.findtext("Number") == "+4930123456"
        assert update["call_sid"] == params["CallSid"]
    finally:
        await agent.close()
