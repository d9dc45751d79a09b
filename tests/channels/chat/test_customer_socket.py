"""The /customer namespace against the running app: visitors, agents, rooms, abandon, resync.

Real python-socketio clients for visitors and agents, the real router and SLA service, on
SQLite and PostgreSQL. Nothing sleeps: every step waits for the event or row it expects.
"""

from __future__ import annotations

import asyncio

import pytest

from channels.chat.parse import identity_hash
from contact_center.settings import Secret
from contact_center.sla_live import epoch
from tests.channels.chat._visitors import Refused, Visitor, cid
from tests.conftest import applied, count, sql


async def _settle(services) -> None:
    """Every committed event applied by the router and the SLA service."""
    await applied(services.db, services.routing, services.sla)


async def _start(v: Visitor, body: str = "Hello, my invoice is wrong", **kw) -> dict:
    ack = await v.call("start", {"client_id": cid(), "name": kw.pop("name", "Ann"),
                                 "body": body, **kw})  # fmt: skip
    assert ack["ok"] is True, ack
    return ack


async def _answered(v: Visitor, agent, body: str = "Hi Ann, I am on it") -> int:
    """Start a chat, let the agent accept it; the ticket id."""
    ack = await _start(v)
    tid = ack["ticket_id"]
    await agent.wait_for("offer", lambda d: d["ticket_id"] == tid)
    assert (await agent.call("accept", {"ticket_id": tid}))["ok"]
    await v.wait_for("agent", lambda d: d["ticket_id"] == tid)
    return int(tid)


async def test_a_visitor_chats_and_the_agent_answers_live(server, services, agent, chat_world):
    v = Visitor()
    welcome = await v.connect(server.port, lang="en-GB")
    assert welcome["status"] == {"online": True, "reason": None}
    assert welcome["ticket"] is None and welcome["messages"] == []
    assert welcome["visitor_id"].startswith("v-") and welcome["verified"] is False
    ack = await _start(v, email="ann@example.com")
    tid = ack["ticket_id"]
    assert ack["message"]["from"] == "me" and ack["message"]["body"].startswith("Hello")
    line = await v.wait_for("queue")
    assert (line["ticket_id"], line["position"], line["waiting"]) == (tid, 1, 1)
    row = sql(services.db, "SELECT channel, language, status FROM ticket WHERE id = :t", t=tid)
    assert tuple(row[0]) == ("chat", "en", "new")
    # the pre-chat form is a note for the agent; the address does not become a handle
    notes = sql(services.db, "SELECT body_text FROM message WHERE ticket_id = :t AND "
                             "direction = 'note'", t=tid)  # fmt: skip
    assert "ann@example.com" in notes[0][0] and "not verified" in notes[0][0]
    assert count(services.db, "customerhandle", "value = 'ann@example.com'") == 0
    offer = await agent.wait_for("offer", lambda d: d["ticket_id"] == tid)
    assert offer["ticket"]["language"] == "en"
    assert (await agent.call("accept", {"ticket_id": tid}))["ok"]
    joined = await v.wait_for("agent")
    assert joined == {"event_id": joined["event_id"], "ticket_id": tid, "name": "Agent"}
    # typing both ways (not stored)
    assert (await v.call("typing", {"typing": True})) == {"ok": True, "sent": True}
    assert (await agent.wait_for("typing")) == {"ticket_id": tid, "typing": True}
    assert (await agent.call("typing", {"ticket_id": tid, "typing": True}))["ok"]
    assert (await v.wait_for("typing")) == {"ticket_id": tid, "typing": True}
    # the agent's reply reaches the visitor's socket; a resend is stored once
    key = cid()
    sent = await agent.call("reply", {"ticket_id": tid, "body": "Hi Ann, I am on it",
                                      "client_id": key})  # fmt: skip
    assert sent["ok"], sent
    again = await agent.call("reply", {"ticket_id": tid, "body": "Hi Ann, I am on it",
                                       "client_id": key})  # fmt: skip
    assert again["message_id"] == sent["message_id"]
    got = await v.wait_for("message", lambda d: d["message"]["from"] == "agent")
    assert got["message"]["body"] == "Hi Ann, I am on it" and got["message"]["author"] == "Agent"
    assert "author_user_id" not in got["message"]
    assert count(services.db, "message", "ticket_id = :t AND direction = 'out'", t=tid) == 1
    # the console hears every message of its ticket; read marks travel both ways
    more = await v.call("message", {"client_id": cid(), "body": "Thanks!"})
    heard = await agent.wait_for("message", lambda d: d["message"]["direction"] == "in")
    assert heard["message"]["id"] == more["message"]["id"]
    assert heard["message"]["body_text"] == "Thanks!"
    marked = await v.call("read", {"message_id": sent["message_id"]})
    assert marked == {"ok": True, "moved": True}
    read = await agent.wait_for("read")
    assert read["ticket_id"] == tid and read["message_id"] == sent["message_id"]
    first_in = ack["message"]["id"]
    assert (await agent.call("read", {"ticket_id": tid, "message_id": first_in}))["moved"]
    assert (await v.wait_for("read"))["message_id"] == first_in
    # delivered by the job through the chat's sender
    await _settle(services)
    await agent.wait_for("message", lambda d: d["message"]["id"] == sent["message_id"])
    await v.close()


async def test_a_message_sent_twice_is_stored_once(server, services, agent):
    v = Visitor()
    await v.connect(server.port)
    first = await _start(v)
    key = cid()
    a = await v.call("message", {"client_id": key, "body": "Second line"})
    b = await v.call("message", {"client_id": key, "body": "Second line"})
    assert a["ok"] and b["ok"] and b["duplicate"] is True
    assert a["message"]["id"] == b["message"]["id"] and a["message"]["client_id"] == key
    n = count(services.db, "message", "ticket_id = :t AND direction = 'in'", t=first["ticket_id"])
    assert n == 2
    await v.close()


async def test_a_visitor_never_sees_another_visitors_conversation(server, services, agent):
    alice, mallory = Visitor(), Visitor()
    await alice.connect(server.port)
    tid = await _answered(alice, agent)
    alice_id = alice.seen("welcome")[-1]["visitor_id"]
    # a made-up or foreign token is not a way in: the server names a new visitor
    for token in (alice_id, alice.token[:-3] + "abc", "x" * 40):
        w = await mallory.connect(server.port, visitor_token=token)
        assert w["visitor_id"] != alice_id and w["messages"] == [] and w["ticket"] is None
        await mallory.disconnect()
    await mallory.connect(server.port)
    # no request names a room or a ticket of someone else
    assert (await mallory.call("read", {"message_id": 1}))["ok"] is False
    assert (await mallory.call("leave"))["error"]["code"] == "invalid_request"
    sent = await agent.call("reply", {"ticket_id": tid, "body": "secret for Alice",
                                      "client_id": cid()})  # fmt: skip
    await alice.wait_for("message", lambda d: d["message"]["id"] == sent["message_id"])
    await _settle(services)
    assert mallory.seen("message") == [] and mallory.seen("agent") == []
    # Alice's own token brings her conversation back
    await alice.disconnect()
    w = await alice.connect(server.port, visitor_token=alice.token)
    assert w["visitor_id"] == alice_id and w["ticket"]["id"] == tid
    assert [m["body"] for m in w["messages"]][-1] == "secret for Alice"
    await alice.close()
    await mallory.close()


@pytest.mark.parametrize("chat_overrides", [{"chat_identity_secret": Secret("site-secret-123")}])
async def test_verified_identity_brings_history_and_nothing_else(server, agent):
    good = {"customer_id": "cust-42", "hash": identity_hash("site-secret-123", "cust-42")}
    phone = Visitor()
    w = await phone.connect(server.port, identity=good)
    assert w["verified"] is True and w["visitor_id"] == "id:cust-42"
    await _start(phone, body="From my phone")
    await phone.close()
    laptop = Visitor()
    w = await laptop.connect(server.port, identity=good)
    assert [m["body"] for m in w["messages"]] == ["From my phone"]
    await laptop.close()
    for bad in (
        {"customer_id": "cust-42", "hash": "0" * 64},
        {"customer_id": "cust-43", "hash": good["hash"]},
        {"customer_id": "cust-42"},
    ):
        with pytest.raises(Refused) as refused:
            await Visitor().connect(server.port, identity=bad)
        assert refused.value.args[0]["code"] == "invalid_request", bad


async def test_identity_claims_are_refused_when_verification_is_off(server):
    claim = {"customer_id": "cust-42", "hash": identity_hash("guess", "cust-42")}
    with pytest.raises(Refused) as refused:
        await Visitor().connect(server.port, identity=claim)
    assert refused.value.args[0]["message"] == "verified identity is not enabled"


async def test_nobody_available_means_offline_and_an_email_ticket(server, services, chat_world):
    v = Visitor()
    w = await v.connect(server.port, lang="zh-CN")
    assert w["lang"] == "zh-CN" and w["status"] == {"online": False, "reason": "no_agents"}
    bad = await v.call("offline", {"client_id": cid(), "name": "王芳", "body": "请回电"})
    assert bad["ok"] is False and "email" in bad["error"]["fields"]
    ack = await v.call("offline", {"client_id": cid(), "name": "王芳", "email": "Fang@Example.cn",
                                   "body": "请问发票什么时候开？", "lang": "zh-CN"})  # fmt: skip
    assert ack["ok"] is True
    row = sql(services.db, "SELECT t.channel, t.language, h.kind, h.value FROM ticket t "
              "JOIN customerhandle h ON h.customer_id = t.customer_id WHERE t.id = :t",
              t=ack["ticket_id"])  # fmt: skip
    assert tuple(row[0]) == ("email", "zh-CN", "email", "fang@example.cn")
    await v.close()


async def test_an_agent_going_available_turns_the_widget_online(server, chat_world):
    v = Visitor()
    w = await v.connect(server.port)
    assert w["status"]["online"] is False
    from tests.console._agents import AgentClient

    a = AgentClient("agent", chat_world.tokens["agent"])
    await a.connect(server.port)
    await a.call("presence", {"presence": "available"})
    assert (await v.wait_for("status", lambda s: s["online"])) == {"online": True, "reason": None}
    await a.close()
    await v.close()


async def test_leaving_unanswered_is_an_abandon_on_the_board(server, services, agent):
    v = Visitor()
    await v.connect(server.port)
    ack = await _start(v)
    tid = ack["ticket_id"]
    await agent.wait_for("offer", lambda d: d["ticket_id"] == tid)
    left = await v.call("leave")
    assert left == {"ok": True, "ticket_id": tid, "outcome": "abandoned"}
    ended = await agent.wait_for("offer.ended", lambda d: d["ticket_id"] == tid)
    assert ended["outcome"] == "cancelled" and ended["reason"] == "customer_left"
    assert (await v.wait_for("ended"))["status"] == "closed"
    await _settle(services)
    row = sql(services.db, "SELECT status, assignee_id FROM ticket WHERE id = :t", t=tid)
    assert tuple(row[0]) == ("closed", None)
    queue_id = sql(services.db, "SELECT queue_id FROM ticket WHERE id = :t", t=tid)[0][0]
    assert ack["ticket_id"] == tid
    board = services.sla.board.figures(epoch(services.sla.now()), queue_id=queue_id)
    assert board["abandoned_today"] == 1 and board["waiting"] == 0
    assert count(services.db, "auditlog", "action = 'chat.abandoned'") == 1
    await v.close()


@pytest.mark.parametrize("chat_overrides", [{"chat_abandon_seconds": 0}])
async def test_a_waiting_visitor_who_vanishes_has_abandoned(server, services):
    v = Visitor()
    await v.connect(server.port)
    tid = (await _start(v))["ticket_id"]
    left = asyncio.Event()

    async def watch(ev) -> None:
        if ev.type == "chat.left" and ev.ticket_id == tid:
            left.set()

    services.bus.subscribe(watch)
    await v.close()
    await asyncio.wait_for(left.wait(), 10)
    assert sql(services.db, "SELECT status FROM ticket WHERE id = :t", t=tid)[0][0] == "closed"
    assert count(services.db, "auditlog", "action = 'chat.abandoned'") == 1


async def test_answered_chats_survive_a_disconnect_and_resync_what_was_missed(
    server, services, agent
):
    v = Visitor()
    await v.connect(server.port)
    tid = await _answered(v, agent)
    last = sql(services.db, "SELECT max(id) FROM message WHERE ticket_id = :t", t=tid)[0][0]
    token = v.token
    await v.disconnect()
    missed = await agent.call("reply", {"ticket_id": tid, "body": "while you were away",
                                        "client_id": cid()})  # fmt: skip
    assert missed["ok"]
    await _settle(services)
    w = await v.connect(server.port, visitor_token=token, last_message_id=last)
    assert w["resync"] is True and w["ticket"]["id"] == tid
    assert [m["body"] for m in w["messages"]] == ["while you were away"]
    assert sql(services.db, "SELECT status FROM ticket WHERE id = :t", t=tid)[0][0] == "open"
    await v.close()


async def test_queue_positions_move_as_the_line_moves(server, services):
    a, b = Visitor(), Visitor()
    await a.connect(server.port)
    await b.connect(server.port)
    ta = (await _start(a))["ticket_id"]
    await a.wait_for("queue", lambda q: q["ticket_id"] == ta)
    second = await _start(b)
    behind = await b.wait_for("queue", lambda q: q["ticket_id"] == second["ticket_id"])
    assert behind["position"] == 2 and behind["waiting"] == 2
    assert behind["state"] == "waiting" and behind["expected_wait_seconds"] is None  # no agent
    assert (await a.call("leave"))["outcome"] == "abandoned"
    moved = await b.wait_for("queue", lambda q: q["position"] == 1)
    assert moved["ticket_id"] == second["ticket_id"] and moved["waiting"] == 1
    assert ta != second["ticket_id"]
    await a.close()
    await b.close()


@pytest.mark.parametrize("chat_overrides", [{"chat_messages_per_minute": 6}])
async def test_floods_are_refused(server):
    v = Visitor()
    await v.connect(server.port)
    await _start(v)
    answers = [await v.call("message", {"client_id": cid(), "body": f"spam {i}"})
               for i in range(8)]  # fmt: skip
    refused = [a for a in answers if not a["ok"]]
    assert refused and all(a["error"]["code"] == "rate_limited" for a in refused)
    too_long = await v.call("message", {"client_id": cid(), "body": "x" * 5001})
    assert too_long["ok"] is False
    await v.close()


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.mark.parametrize("chat_overrides", [{"chat_attachment_max_bytes": 1000}])
async def test_attachments_have_type_and_size_limits(server, services):
    v = Visitor()
    await v.connect(server.port)
    tid = (await _start(v))["ticket_id"]
    ok = await v.call("attachment", {"client_id": cid(), "filename": "../../shot.png",
                                     "content_type": "image/png", "data": PNG})  # fmt: skip
    assert ok["ok"], ok
    assert ok["message"]["attachments"] == [
        {"filename": "shot.png", "content_type": "image/png", "size": len(PNG)}]  # fmt: skip
    for name, kind, data, code in (
        ("x.svg", "image/svg+xml", b"<svg onload=alert(1)>", "invalid_request"),
        ("x.png", "image/png", b"<html>not a png</html>", "invalid_request"),
        ("big.png", "image/png", PNG + b"\x00" * 2000, "payload_too_large"),
    ):
        ack = await v.call("attachment", {"client_id": cid(), "filename": name,
                                          "content_type": kind, "data": data})  # fmt: skip
        assert ack["ok"] is False and ack["error"]["code"] == code, (name, ack)
    stored = sql(services.db, "SELECT count(*) FROM attachment a JOIN message m "
                 "ON m.id = a.message_id WHERE m.ticket_id = :t", t=tid)  # fmt: skip
    assert stored[0][0] == 1
    await v.close()


async def _starts(port: int, n: int, forwarded_for: str) -> list[bool]:
    """``n`` visitors, each opening a chat, all behind one forwarded address."""
    outcomes = []
    for i in range(n):
        v = Visitor()
        await v.connect(port, headers={"X-Forwarded-For": forwarded_for})
        ack = await v.call("start", {"client_id": cid(), "name": f"V{i}", "body": "hello"})
        outcomes.append(bool(ack["ok"]) or ack["error"]["code"] != "rate_limited")
        await v.close()
    return outcomes


@pytest.mark.parametrize("chat_overrides", [{"trusted_proxies": "127.0.0.1"}])
async def test_behind_our_proxy_each_client_address_has_its_own_limit(server):
    assert await _starts(server.port, 6, "198.51.100.7") == [True] * 5 + [False]
    assert await _starts(server.port, 1, "192.0.2.9, 198.51.100.7") == [False]  # forged left
    assert await _starts(server.port, 1, "198.51.100.8") == [True]


@pytest.mark.parametrize("chat_overrides", [{"chat_unlimited_addresses": "127.0.0.1"}])
async def test_an_unlimited_address_may_open_many_chats(server):
    # a load test from one machine (contact-center simulate); forwarded headers are not trusted
    assert await _starts(server.port, 8, "198.51.100.7") == [True] * 8


async def test_without_trusted_proxies_every_visitor_here_shares_the_peer_limit(server):
    first = await _starts(server.port, 3, "198.51.100.1")
    assert first + await _starts(server.port, 3, "198.51.100.2") == [True] * 5 + [False]
