"""The REST API and pages end to end: sessions, replies and delivery, ticket changes,
customers, validation, OpenAPI, health, metrics and response headers."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from typing import Any

import openapi_spec_validator
import pytest

from channels import build_senders
from contact_center.app import build_services, create_app
from contact_center.jobs import InProcessJobs, JobContext
from contact_center.keys import ENDPOINTS, SERVICES
from tests.conftest import FAST_HASHING, PASSWORD, World, inbound, sql
from tests.web._helpers import error_code, new_ticket, nxt, patch_ticket

HEX32 = re.compile(r"^[0-9a-f]{32}$")


async def _login(client: Any, email: str, password: str) -> tuple[int, dict[str, Any]]:
    resp = await client.post("/api/v1/login", json={"email": email, "password": password})
    return resp.status, await resp.json()


async def _audit(client: Any, world: World, action: str) -> list[dict[str, Any]]:
    resp = await client.get(f"/api/v1/audit?action={action}", headers=world.auth("admin"))
    assert resp.status == 200
    items: list[dict[str, Any]] = (await resp.json())["items"]
    return items


async def _detail(client: Any, world: World, ticket_id: int, who: str = "admin") -> Any:
    resp = await client.get(f"/api/v1/tickets/{ticket_id}", headers=world.auth(who))
    assert resp.status == 200, await resp.text()
    return await resp.json()


def _first_response_at(world: World, ticket_id: int) -> Any:
    return sql(world.svc.db, "SELECT first_response_at FROM ticket WHERE id = :id",
               id=ticket_id)[0][0]  # fmt: skip


# --- login, throttling, audit -------------------------------------------------------------


async def test_login_returns_a_working_token(client, world):
    status, body = await _login(client, "Agent@Test.Example", PASSWORD)
    assert status == 200, body
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == world.svc.settings.token_ttl_seconds
    assert body["user"] == {"id": world.users["agent"]["id"], "name": "Agent", "role": "agent"}
    resp = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert resp.status == 200
    me = await resp.json()
    assert (me["id"], me["role"], me["email"]) == (world.users["agent"]["id"], "agent",
                                                   "agent@test.example")  # fmt: skip
    assert me["queue_ids"] == sorted([world.queues["general"], world.queues["billing"]])


async def test_wrong_password_and_unknown_email_are_the_same_401(client, world):
    s1, wrong = await _login(client, "agent@test.example", "not the password")
    s2, unknown = await _login(client, "nobody@test.example", PASSWORD)
    resp = await client.patch(f"/api/v1/users/{world.users['agent2']['id']}",
                              json={"active": False}, headers=world.auth("admin"))  # fmt: skip
    assert resp.status == 200
    s3, inactive = await _login(client, "agent2@test.example", PASSWORD)
    assert s1 == s2 == s3 == 401
    assert wrong == unknown == inactive == {
        "error": {"code": "unauthorized", "message": "wrong email or password"}}  # fmt: skip
    assert "token" not in wrong


async def test_login_is_throttled_after_ten_failures_even_with_the_right_password(client, world):
    for _ in range(9):
        assert (await _login(client, "agent@test.example", "wrong password"))[0] == 401
    # a success before the limit clears the count
    assert (await _login(client, "agent@test.example", PASSWORD))[0] == 200
    for i in range(10):
        status, _ = await _login(client, "agent@test.example", "wrong password")
        assert status == 401, i
    status, body = await _login(client, "agent@test.example", PASSWORD)
    assert status == 429
    assert error_code(body) == "rate_limited"
    assert "token" not in body
    resp = await client.post("/login", data={"email": "agent@test.example", "password": PASSWORD},
                             allow_redirects=False)  # fmt: skip
    assert resp.status == 429
    assert "Set-Cookie" not in resp.headers
    assert "Too many attempts" in await resp.text()


async def test_logins_are_audited_without_the_password(client, world):
    assert (await _login(client, "agent@test.example", PASSWORD))[0] == 200
    assert (await _login(client, "agent@test.example", "the wrong one"))[0] == 401
    assert (await _login(client, "ghost@test.example", "the wrong one"))[0] == 401
    ok = await _audit(client, world, "auth.login")
    failed = await _audit(client, world, "auth.login_failed")
    assert [(r["actor_user_id"], r["target_id"], r["detail"]["email"]) for r in ok] == [
        (world.users["agent"]["id"], world.users["agent"]["id"], "agent@test.example")
    ]
    assert [(r["actor"], r["detail"]["email"]) for r in failed] == [
        ("anonymous", "ghost@test.example"), ("anonymous", "agent@test.example")]  # fmt: skip
    text = json.dumps(ok + failed)
    assert PASSWORD not in text
    assert "the wrong one" not in text


# --- cookie sessions and the console --------------------------------------------------------


async def _cookie_login(client: Any, who: str) -> tuple[str, str]:
    """Form login; (token, raw Set-Cookie header). The client's jar is emptied again."""
    resp = await client.post("/login", data={"email": f"{who}@test.example",
                                             "password": PASSWORD},
                             allow_redirects=False)  # fmt: skip
    assert resp.status == 303, await resp.text()
    assert resp.headers["Location"] == "/console"
    raw = resp.headers["Set-Cookie"]
    client.session.cookie_jar.clear()
    token = resp.cookies["cc_session"].value
    return token, raw


async def test_form_login_sets_a_strict_httponly_cookie_and_renders_escaped_tickets(client, world):
    mine = await new_ticket(client, world, queue="general", subject="<script>alert(1)</script>")
    other = await new_ticket(client, world, queue="tech", subject="Blue team only")
    token, raw = await _cookie_login(client, "agent")
    attrs = {a.strip().split("=")[0].lower(): a.strip() for a in raw.split(";")}
    assert "httponly" in attrs
    assert attrs["samesite"].lower() == "samesite=strict"
    assert attrs["path"] == "Path=/"
    assert "secure" not in attrs  # public_base_url is http:// in tests
    resp = await client.get("/console", headers={"Cookie": f"cc_session={token}"},
                            allow_redirects=False)  # fmt: skip
    assert resp.status == 200
    assert resp.content_type == "text/html"
    html = await resp.text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    assert f"<td>{mine['ticket_id']}</td>" in html
    assert "Blue team only" not in html
    assert f"<td>{other['ticket_id']}</td>" not in html
    # a wrong password re-renders the form with the error, and sets no cookie
    resp = await client.post("/login", data={"email": "agent@test.example", "password": "nope"},
                             allow_redirects=False)  # fmt: skip
    assert resp.status == 401
    assert "Set-Cookie" not in resp.headers
    assert "Wrong email or password." in await resp.text()


async def test_cookie_requests_that_change_state_need_x_requested_with(client, world):
    t = await new_ticket(client, world)
    token, _ = await _cookie_login(client, "agent")
    cookie = {"Cookie": f"cc_session={token}"}
    path = f"/api/v1/tickets/{t['ticket_id']}"
    resp = await client.get(path, headers=cookie)
    assert resp.status == 200  # safe methods need no extra header
    resp = await client.patch(path, json={"priority": 4}, headers=cookie)
    assert resp.status == 401
    assert error_code(await resp.json()) == "unauthorized"
    assert (await _detail(client, world, t["ticket_id"]))["priority"] != 4
    resp = await client.patch(
        path, json={"priority": 4}, headers={**cookie, "X-Requested-With": "XMLHttpRequest"}
    )
    assert resp.status == 200
    assert (await resp.json())["priority"] == 4
    # logout (cookie + header) expires the cookie
    resp = await client.post("/logout", headers=cookie)
    assert resp.status == 401
    resp = await client.post("/logout", headers={**cookie, "X-Requested-With": "x"})
    assert resp.status == 200
    expired = resp.cookies["cc_session"]
    assert expired.value == ""
    assert expired["max-age"] == "0"


# --- replies, notes and delivery -------------------------------------------------------------


class RecordingJobs(InProcessJobs):
    """The in-process runner with a no-op sleep; records what was enqueued and slept."""

    def __init__(self, context: JobContext) -> None:
        self.slept: list[float] = []
        self.enqueued: list[tuple[str, tuple[Any, ...]]] = []

        async def no_sleep(seconds: float) -> None:
            self.slept.append(seconds)

        super().__init__(context, sleep=no_sleep)

    async def enqueue(self, name: str, *args: Any) -> None:
        self.enqueued.append((name, args))
        await super().enqueue(name, *args)


@pytest.fixture
def jobs(client) -> RecordingJobs:
    """Swap the app's job runner for one that never really waits between retries."""
    svc = client.app[SERVICES]
    runner = RecordingJobs(
        JobContext(db=svc.db, settings=svc.settings, blobs=svc.ingest_policy.blobs,
                   senders=build_senders(svc.settings))
    )  # fmt: skip
    svc.jobs = runner
    return runner


async def test_reply_on_api_ticket_is_stored_answered_and_sent(client, world, jobs, clock):
    t = await new_ticket(client, world, channel="api")
    tid = t["ticket_id"]
    assert _first_response_at(world, tid) is None
    resp = await client.post(f"/api/v1/tickets/{tid}/replies", json={"body": "We are on it"},
                             headers=world.auth("agent"))  # fmt: skip
    assert resp.status == 201
    created = await resp.json()
    assert created["ticket_id"] == tid
    # the customer's client reads it from the desk: delivered as it is stored, no job
    assert jobs.enqueued == []
    first = _first_response_at(world, tid)
    assert first is not None
    audit = await _audit(client, world, "message.delivery")
    assert [r["detail"]["status"] for r in audit if r["target_id"] == created["message_id"]] == [
        "sent"]  # fmt: skip
    delivery = sql(world.svc.db, "SELECT payload FROM event WHERE type = 'message.delivery'")
    assert [json.loads(p) if isinstance(p, str) else p for (p,) in delivery] == [
        {"id": created["message_id"], "status": "sent", "error": None}]  # fmt: skip
    await jobs.drain()
    detail = await _detail(client, world, tid)
    out = [m for m in detail["messages"] if m["id"] == created["message_id"]]
    assert len(out) == 1
    assert out[0]["direction"] == "out"
    assert out[0]["body_text"] == "We are on it"
    assert out[0]["author_user_id"] == world.users["agent"]["id"]
    assert out[0]["delivery_status"] == "sent"
    assert detail["status"] == "open"  # answering a new ticket opens it
    assert jobs.slept == []
    # a later reply does not move the first response time
    clock.advance(minutes=30)
    resp = await client.post(f"/api/v1/tickets/{tid}/replies", json={"body": "Done"},
                             headers=world.auth("agent"))  # fmt: skip
    assert resp.status == 201
    assert _first_response_at(world, tid) == first


async def test_reply_on_email_ticket_fails_after_retries_without_a_sender(client, world, jobs):
    assert "email" not in build_senders(world.svc.settings)  # no SMTP configured in tests
    t = await new_ticket(client, world, channel="email")
    resp = await client.post(
        f"/api/v1/tickets/{t['ticket_id']}/replies",
        json={"body": "Hello by mail"},
        headers=world.auth("agent"),
    )
    assert resp.status == 201
    mid = (await resp.json())["message_id"]
    assert _first_response_at(world, t["ticket_id"]) is not None
    await jobs.drain()
    assert jobs.slept == [5, 30, 120, 600]  # every retry interval of deliver_message, not waited
    status, error = sql(world.svc.db, "SELECT delivery_status, delivery_error FROM message "
                        "WHERE id = :id", id=mid)[0]  # fmt: skip
    assert status == "failed"
    assert "not configured" in error
    audit = await _audit(client, world, "message.delivery")
    assert [r["detail"]["status"] for r in audit if r["target_id"] == mid] == [
        "failed", "queued", "queued", "queued", "queued"]  # newest first  # fmt: skip


async def test_notes_are_stored_but_never_delivered(client, world, jobs):
    t = await new_ticket(client, world, channel="api")
    tid = t["ticket_id"]
    resp = await client.post(f"/api/v1/tickets/{tid}/notes", json={"body": "VIP, be nice"},
                             headers=world.auth("agent"))  # fmt: skip
    assert resp.status == 201
    mid = (await resp.json())["message_id"]
    await jobs.drain()
    assert jobs.enqueued == []
    detail = await _detail(client, world, tid)
    note = next(m for m in detail["messages"] if m["id"] == mid)
    assert note["direction"] == "note"
    assert note["delivery_status"] not in ("queued", "sending", "sent", "delivered", "failed")
    assert detail["status"] == "new"  # a note is not an answer
    assert _first_response_at(world, tid) is None
    assert [r for r in await _audit(client, world, "message.delivery")
            if r["target_id"] == mid] == []  # fmt: skip


def _messages_out(world: World, ticket_id: int) -> list[tuple[Any, ...]]:
    return sql(world.svc.db, "SELECT id, direction, body_text, author_user_id FROM message "
               "WHERE ticket_id = :t AND direction <> 'in' ORDER BY id", t=ticket_id)  # fmt: skip


async def test_a_reply_posted_again_with_its_idempotency_key_is_stored_and_sent_once(
    client, world, jobs
):
    t = await new_ticket(client, world, channel="email")
    tid, url = t["ticket_id"], f"/api/v1/tickets/{t['ticket_id']}/replies"
    key = {"Idempotency-Key": "reply-7f3a-retry"}
    # the caller lost the first answer and sends twice more, the two at the same time
    first = await client.post(url, json={"body": "On its way"},
                              headers={**world.auth("agent"), **key})  # fmt: skip
    assert first.status == 201, await first.text()
    assert "Idempotent-Replayed" not in first.headers
    stored = await first.json()
    again = await asyncio.gather(*(
        client.post(url, json={"body": "On its way"}, headers={**world.auth("agent"), **key})
        for _ in range(2)
    ))  # fmt: skip
    for resp in again:
        assert resp.status == 201
        assert resp.headers["Idempotent-Replayed"] == "true"
        assert await resp.json() == stored
    rows = _messages_out(world, tid)
    assert [(r[1], r[2]) for r in rows] == [("out", "On its way")]
    assert jobs.enqueued == [("deliver_message", (stored["message_id"],))]
    # the same key for another message is refused, and writes nothing
    for kind, body in (("replies", "Something else"), ("notes", "On its way")):
        resp = await client.post(f"/api/v1/tickets/{tid}/{kind}", json={"body": body},
                                 headers={**world.auth("agent"), **key})  # fmt: skip
        assert resp.status == 409, kind
        assert (await resp.json())["error"]["fields"] == {
            "client_key": f"message {stored['message_id']} has it"}  # fmt: skip
    # keys are the caller's own: another user's same key is another reply
    resp = await client.post(url, json={"body": "On its way"},
                             headers={**world.auth("admin"), **key})  # fmt: skip
    assert resp.status == 201
    assert (await resp.json())["message_id"] != stored["message_id"]
    assert len(_messages_out(world, tid)) == 2
    # the key is the message's, not the channel id: the sent email's Message-ID goes there
    assert sql(world.svc.db, "SELECT external_id FROM message WHERE id = :id",
               id=stored["message_id"])[0][0] is None  # fmt: skip


@pytest.mark.parametrize("bad", ["", "x" * 129, "has space", "caf\u00e9"])
async def test_a_bad_idempotency_key_is_400_and_stores_nothing(client, world, jobs, bad):
    t = await new_ticket(client, world, channel="api")
    headers = {**world.auth("agent"), "Idempotency-Key": bad}
    resp = await client.post(f"/api/v1/tickets/{t['ticket_id']}/replies", json={"body": "Hi"},
                             headers=headers)  # fmt: skip
    assert resp.status == 400
    assert (await resp.json())["error"]["fields"] == {"Idempotency-Key": "invalid"}
    assert _messages_out(world, t["ticket_id"]) == []
    assert jobs.enqueued == []


async def test_empty_or_closed_ticket_replies_are_refused(client, world, jobs):
    t = await new_ticket(client, world)
    tid = t["ticket_id"]
    for body in ({"body": ""}, {"body": "   "}, {}):
        resp = await client.post(f"/api/v1/tickets/{tid}/replies", json=body,
                                 headers=world.auth("agent"))  # fmt: skip
        assert resp.status == 400, body
        assert "body" in (await resp.json())["error"]["fields"]
    for status in ("solved", "closed"):
        assert (await patch_ticket(client, world, tid, "agent", status=status))[0] == 200
    resp = await client.post(f"/api/v1/tickets/{tid}/replies", json={"body": "late"},
                             headers=world.auth("agent"))  # fmt: skip
    assert resp.status == 400
    assert (await resp.json())["error"]["fields"] == {"ticket": "closed tickets are read-only"}
    assert jobs.enqueued == []


# --- ticket changes -------------------------------------------------------------------------


async def test_status_transitions(client, world):
    tid = (await new_ticket(client, world))["ticket_id"]
    steps = [("closed", 400), ("pending", 200), ("new", 400), ("open", 200), ("solved", 200),
             ("pending", 400), ("open", 200), ("solved", 200), ("closed", 200), ("open", 400),
             ("solved", 400)]  # fmt: skip
    current = "new"
    for target, expected in steps:
        status, body = await patch_ticket(client, world, tid, "agent", status=target)
        assert status == expected, (current, target, body)
        if expected == 400:
            assert body["error"]["code"] == "invalid_request"
            assert body["error"]["fields"] == {"status": "transition not allowed"}
            assert (await _detail(client, world, tid))["status"] == current
        else:
            assert body["status"] == target
            current = target
    row = sql(world.svc.db, "SELECT solved_at, closed_at FROM ticket WHERE id = :id", id=tid)[0]
    assert row[0] is not None and row[1] is not None
    # an unchanged status is not a transition; null is no status
    assert (await patch_ticket(client, world, tid, "agent", status="closed"))[0] == 200
    status, body = await patch_ticket(client, world, tid, "agent", status=None)
    assert (status, body["error"]["fields"]) == (400, {"status": "may not be null"})


async def test_priority_bounds(client, world):
    tid = (await new_ticket(client, world))["ticket_id"]
    for value in (0, 4):
        status, body = await patch_ticket(client, world, tid, "agent", priority=value)
        assert (status, body["priority"]) == (200, value)
    for value in (-1, 5, 100, "high", None, 2.5):
        status, body = await patch_ticket(client, world, tid, "agent", priority=value)
        assert status == 400, value
        assert "priority" in body["error"]["fields"], value
    assert (await _detail(client, world, tid))["priority"] == 4


async def test_agent_takes_own_queue_tickets_but_assigns_nobody_else(client, world):
    agent, agent2 = world.users["agent"]["id"], world.users["agent2"]["id"]
    general = (await new_ticket(client, world, queue="general"))["ticket_id"]
    billing = (await new_ticket(client, world, queue="billing"))["ticket_id"]
    other = (await new_ticket(client, world, queue="general"))["ticket_id"]
    status, body = await patch_ticket(client, world, general, "agent", assignee_id=agent)
    assert status == 200
    assert (body["assignee_id"], body["status"]) == (agent, "open")
    status, body = await patch_ticket(client, world, other, "agent", assignee_id=agent2)
    assert status == 403
    assert error_code(body) == "forbidden"
    assert (await _detail(client, world, other))["assignee_id"] is None
    # agent2 does not serve billing: the ticket is out of scope, so it does not exist for them
    status, body = await patch_ticket(client, world, billing, "agent2", assignee_id=agent2)
    assert status == 404
    assert (await _detail(client, world, billing))["assignee_id"] is None
    # agents cannot move tickets between queues
    status, body = await patch_ticket(client, world, billing, "agent",
                                      queue_id=world.queues["general"])  # fmt: skip
    assert status == 403
    assert (await _detail(client, world, billing))["queue_id"] == world.queues["billing"]
    # an agent releases their own ticket; then it is back in the queue for agent2
    status, body = await patch_ticket(client, world, general, "agent", assignee_id=None)
    assert (status, body["assignee_id"]) == (200, None)
    status, body = await patch_ticket(client, world, general, "agent2", assignee_id=agent2)
    assert (status, body["assignee_id"]) == (200, agent2)
    # ... and out of scope for the agent who released it
    assert (await patch_ticket(client, world, general, "agent", assignee_id=None))[0] == 404


async def test_supervisor_assigns_within_own_team_only(client, world):
    tid = (await new_ticket(client, world, queue="general"))["ticket_id"]
    status, body = await patch_ticket(client, world, tid, "supervisor",
                                      assignee_id=world.users["agent2"]["id"])  # fmt: skip
    assert (status, body["assignee_id"]) == (200, world.users["agent2"]["id"])
    status, body = await patch_ticket(client, world, tid, "supervisor",
                                      assignee_id=world.users["blue_agent"]["id"])  # fmt: skip
    assert status == 403
    assert error_code(body) == "forbidden"
    status, body = await patch_ticket(client, world, tid, "supervisor", assignee_id=987654)
    assert status == 400
    assert "assignee_id" in body["error"]["fields"]
    assert (await _detail(client, world, tid))["assignee_id"] == world.users["agent2"]["id"]
    # the blue supervisor cannot even see the red ticket
    status, _ = await patch_ticket(client, world, tid, "blue_supervisor",
                                   assignee_id=world.users["blue_agent"]["id"])  # fmt: skip
    assert status == 404
    # changes are audited with the acting user
    rows = await _audit(client, world, "ticket.update")
    assert any(r["target_id"] == tid and r["actor_user_id"] == world.users["supervisor"]["id"]
               and r["detail"].get("assignee_id") == world.users["agent2"]["id"]
               for r in rows)  # fmt: skip


# --- customers ------------------------------------------------------------------------------


async def test_supervisor_merges_customers_and_their_tickets_move(client, world):
    a = await new_ticket(client, world, handle="first@example.com")
    b = await new_ticket(client, world, handle="second@example.com")
    tech = await new_ticket(client, world, queue="tech", handle="blue@example.com")
    path = f"/api/v1/customers/{a['customer_id']}/merge"
    resp = await client.post(path, json={"merge_id": tech["customer_id"]},
                             headers=world.auth("supervisor"))  # fmt: skip
    assert resp.status == 404  # the blue customer is out of the red supervisor's scope
    resp = await client.post(path, json={"merge_id": a["customer_id"]},
                             headers=world.auth("supervisor"))  # fmt: skip
    assert resp.status == 400
    assert "merge_id" in (await resp.json())["error"]["fields"]
    resp = await client.post(path, json={"merge_id": b["customer_id"]},
                             headers=world.auth("supervisor"))  # fmt: skip
    assert resp.status == 200, await resp.text()
    view = await resp.json()
    assert view["id"] == a["customer_id"]
    assert {t["id"] for t in view["tickets"]} == {a["ticket_id"], b["ticket_id"]}
    assert {h["value"] for h in view["handles"]} == {"first@example.com", "second@example.com"}
    assert (await _detail(client, world, b["ticket_id"]))["customer_id"] == a["customer_id"]
    resp = await client.get(f"/api/v1/customers/{b['customer_id']}",
                            headers=world.auth("supervisor"))  # fmt: skip
    assert resp.status == 404
    # new contacts from the merged handle land on the kept customer
    again = await new_ticket(client, world, handle="second@example.com", channel="email")
    assert again["customer_id"] == a["customer_id"]
    assert any(r["target_id"] == a["customer_id"] and r["detail"]["merged_id"] == b["customer_id"]
               for r in await _audit(client, world, "customer.merge"))  # fmt: skip


async def test_customer_360_spans_channels(client, world):
    by_mail = await new_ticket(client, world, channel="email", handle="Multi@Example.com")
    by_api = await new_ticket(client, world, channel="api", handle="multi@example.com",
                              handle_kind="email")  # fmt: skip
    by_sms = await new_ticket(client, world, channel="sms", handle="+14155550123")
    by_voice = await new_ticket(client, world, channel="voice", handle="+1 415-555-0123")
    assert by_mail["customer_id"] == by_api["customer_id"]
    assert by_sms["customer_id"] == by_voice["customer_id"]
    assert by_mail["customer_id"] != by_sms["customer_id"]
    for pair, channels in (((by_mail, by_api), ["api", "email"]),
                           ((by_sms, by_voice), ["sms", "voice"])):  # fmt: skip
        resp = await client.get(f"/api/v1/customers/{pair[0]['customer_id']}",
                                headers=world.auth("agent"))  # fmt: skip
        assert resp.status == 200
        view = await resp.json()
        assert view["channels"] == channels
        assert {t["id"] for t in view["tickets"]} == {p["ticket_id"] for p in pair}
        assert {t["channel"] for t in view["tickets"]} == set(channels)
        assert all(t["messages"] and t["messages"][0]["direction"] == "in"
                   for t in view["tickets"])  # fmt: skip
    resp = await client.get(f"/api/v1/customers/{by_sms['customer_id']}",
                            headers=world.auth("admin"))  # fmt: skip
    assert [(h["kind"], h["value"]) for h in (await resp.json())["handles"]] == [
        ("phone", "+14155550123")
    ]


# --- validation -----------------------------------------------------------------------------


async def test_unknown_fields_are_rejected_by_name(client, world):
    tid = (await new_ticket(client, world))["ticket_id"]
    cases = [
        ("PATCH", f"/api/v1/tickets/{tid}", {"priority": 1, "colour": "red"}, "colour"),
        ("POST", f"/api/v1/tickets/{tid}/replies", {"body": "x", "cc": "a@b.c"}, "cc"),
        ("POST", "/api/v1/inbound", {**inbound(f"v-{nxt()}"), "spam": 1}, "spam"),
        ("POST", "/api/v1/login", {"email": "a@b.c", "password": "x", "remember": True},
         "remember"),
        ("PUT", "/api/v1/me/presence", {"presence": "away", "mood": "good"}, "mood"),
    ]  # fmt: skip
    for method, path, body, field in cases:
        resp = await client.request(method, path, json=body, headers=world.auth("admin"))
        assert resp.status == 400, path
        err = (await resp.json())["error"]
        assert err["code"] == "invalid_request"
        assert field in err["fields"], (path, err)
    assert (await _detail(client, world, tid))["priority"] != 1


async def test_malformed_bodies_are_400(client, world):
    tid = (await new_ticket(client, world))["ticket_id"]
    path = f"/api/v1/tickets/{tid}"
    auth = world.auth("agent")
    cases = [
        ({"Content-Type": "text/plain"}, b'{"priority": 1}', "wrong content type"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"priority=1",
         "wrong content type"),
        ({}, None, "wrong content type"),
        ({"Content-Type": "application/json"}, b'{"priority": 1', "invalid JSON"),
        ({"Content-Type": "application/json"}, b"\xff\xfe{}", "invalid JSON"),
        ({"Content-Type": "application/json"}, b"[" * 100_000 + b"]" * 100_000, "invalid JSON"),
    ]  # fmt: skip
    for headers, data, why in cases:
        resp = await client.patch(path, data=data, headers={**auth, **headers})
        assert resp.status == 400, (headers, why)
        err = (await resp.json())["error"]
        assert err["code"] == "invalid_request"
        assert err["fields"] == {"body": why}
    for data in (b"[]", b"null", b'"x"', b""):
        resp = await client.patch(
            path, data=data, headers={**auth, "Content-Type": "application/json"}
        )
        assert resp.status == 400, data
        assert (await resp.json())["error"]["code"] == "invalid_request"


async def test_body_over_the_limit_is_413(aiohttp_client, settings, world, clock):
    small = replace(settings, request_max_bytes=2048)
    app = create_app(small, services=build_services(small, password_hashing=FAST_HASHING,
                                                    clock=clock))  # fmt: skip
    client = await aiohttp_client(app)
    auth = world.auth("admin")
    resp = await client.post("/api/v1/inbound", json=inbound("small", channel="api"),
                             headers=auth)  # fmt: skip
    assert resp.status == 201
    resp = await client.post("/api/v1/inbound", headers=auth,
                             json=inbound("big", channel="api", body="x" * 4096))  # fmt: skip
    assert resp.status == 413
    assert error_code(await resp.json()) == "payload_too_large"
    resp = await client.post("/login", data={"email": "a@b.c", "password": "p" * 4096},
                             allow_redirects=False)  # fmt: skip
    assert resp.status == 413
    resp = await client.get("/api/v1/tickets", headers=auth)
    assert [t["subject"] for t in (await resp.json())["items"]] == ["message small"]


async def test_bad_ids_in_paths_are_json_404(client, world):
    t = await new_ticket(client, world)
    assert t["ticket_id"] == 1 and t["customer_id"] == 1  # so a non-ASCII "1" could hit it
    bad = ["abc", "-1", "1.5", "0x1", "1e3", "99999999999999999999", "%C2%B2", "%D9%A1",
           "%EF%BC%91", "%20%31"]  # fmt: skip
    templates = [("GET", "/api/v1/tickets/{}"), ("PATCH", "/api/v1/tickets/{}"),
                 ("GET", "/api/v1/customers/{}"), ("PATCH", "/api/v1/users/{}"),
                 ("DELETE", "/api/v1/webhooks/{}")]  # fmt: skip
    for method, template in templates:
        for raw in bad:
            kw = {"json": {}} if method == "PATCH" else {}
            resp = await client.request(method, template.format(raw), headers=world.auth("admin"),
                                        **kw)  # fmt: skip
            assert resp.status == 404, (method, template, raw, await resp.text())
            assert resp.content_type == "application/json"
            assert error_code(await resp.json()) == "not_found"


# --- OpenAPI, health, metrics ---------------------------------------------------------------


async def _openapi(client: Any) -> dict[str, Any]:
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    doc: dict[str, Any] = await resp.json()
    return doc


async def test_openapi_lists_every_api_endpoint_with_its_roles(client):
    doc = await _openapi(client)
    assert doc["openapi"].startswith("3.1")
    listed = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    endpoints = [ep for ep in client.app[ENDPOINTS] if not ep.page]
    assert listed == {(ep.method, ep.path) for ep in endpoints}
    assert not listed & {("GET", "/login"), ("POST", "/login"), ("GET", "/console")}
    for ep in endpoints:
        op = doc["paths"][ep.path][ep.method.lower()]
        if ep.roles is None:
            assert op["security"] == [] and op["x-auth"] == ep.auth, ep.path
            assert "x-roles" not in op
        else:
            assert op["x-roles"] == sorted(r.value for r in ep.roles), ep.path
            assert op["security"], ep.path
        if ep.body is not None:
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"]
    assert doc["paths"]["/api/v1/users"]["get"]["x-roles"] == ["admin"]
    assert doc["paths"]["/api/v1/customers/{id}/merge"]["post"]["x-roles"] == [
        "admin", "supervisor"]  # fmt: skip


async def test_openapi_document_is_valid_openapi_3_1(client):
    doc = await _openapi(client)
    openapi_spec_validator.validate(doc)  # raises on an invalid document
    text = json.dumps(doc)
    assert "#/$defs/" not in text  # every reference resolves inside components


async def test_healthz_and_metrics(client, world):
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "not configured"},
    }
    resp = await client.post(
        "/login", data={"email": "agent@test.example", "password": PASSWORD}, allow_redirects=False
    )
    assert resp.status == 303
    client.session.cookie_jar.clear()
    resp = await client.get("/metrics", headers=world.auth("admin"))
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    text = await resp.text()
    assert "# TYPE cc_http_requests_total counter" in text
    assert 'cc_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    # redirects are counted as what they are, not as server errors
    assert 'cc_http_requests_total{method="POST",route="/login",status="303"} 1.0' in text
    assert 'status="500"' not in text


async def test_the_event_streams_lag_is_measured_and_an_overload_logged(client, world, clock,
                                                                         caplog):  # fmt: skip
    import logging
    from datetime import timedelta

    from contact_center.db import EventRecord

    svc = client.app[SERVICES]
    lag = svc.metrics.event_lag

    def observed() -> float:
        return next(s.value for s in lag.collect()[0].samples if s.name.endswith("_count"))

    async def dispatched(n: float) -> None:
        async with asyncio.timeout(5):
            while observed() < n:
                await asyncio.sleep(0.01)  # the bus dispatches on this loop

    def stale(i: int, seconds: float) -> EventRecord:
        return EventRecord(id=10_000 + i, type="test.stale", ticket_id=None, payload={},
                           created_at=clock() - timedelta(seconds=seconds))  # fmt: skip

    base = observed()
    with caplog.at_level(logging.WARNING, logger="contact_center.http"):
        svc.bus.publish([stale(0, 0.002), stale(1, 20), stale(2, 30)])
        await dispatched(base + 3)
        clock.advance(minutes=1)
        svc.bus.publish([stale(3, 40)])
        await dispatched(base + 4)
    buckets = {s.labels["le"]: s.value for s in lag.collect()[0].samples
               if s.name.endswith("_bucket")}  # fmt: skip
    assert buckets["0.01"] - buckets.get("0.005", 0) >= 1  # the fresh one
    assert buckets["60.0"] - buckets["15.0"] == 3  # the three stale ones
    warnings = [r.getMessage() for r in caplog.records if "behind" in r.getMessage()]
    # once for the first stale one, not for the next a moment later, again a minute later
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("event stream 20.0 s behind") and "10001" in warnings[0]
    assert warnings[1].startswith("event stream 40.0 s behind")
    text = await (await client.get("/metrics", headers=world.auth("admin"))).text()
    assert "# TYPE cc_event_lag_seconds histogram" in text


# --- response headers -----------------------------------------------------------------------


def _assert_security_headers(resp: Any) -> None:
    h = resp.headers
    assert "frame-ancestors 'none'" in h["Content-Security-Policy"], resp.url
    assert "default-src 'self'" in h["Content-Security-Policy"]
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["X-Frame-Options"] == "DENY"
    assert HEX32.match(h["X-Request-Id"]) or h["X-Request-Id"] == "given-id"


async def test_security_headers_on_json_html_errors_and_redirects(client, world):
    t = await new_ticket(client, world)
    cases = [
        ("GET", "/api/v1/me", world.auth("agent"), 200, "application/json"),
        ("GET", f"/api/v1/tickets/{t['ticket_id']}", world.auth("agent"), 200,
         "application/json"),
        ("GET", "/api/v1/me", {}, 401, "application/json"),
        ("GET", "/api/v1/users", world.auth("agent"), 403, "application/json"),
        ("GET", "/api/v1/nope", {}, 404, "application/json"),
        ("GET", "/login", {}, 200, "text/html"),
        ("GET", "/console", world.auth("agent"), 200, "text/html"),
        ("GET", "/console", {}, 303, None),
        ("GET", "/static/console.css", {}, 200, "text/css"),
    ]  # fmt: skip
    for method, path, headers, status, ctype in cases:
        resp = await client.request(method, path, headers=headers, allow_redirects=False)
        assert resp.status == status, path
        if ctype is not None:
            assert resp.content_type == ctype, path
        _assert_security_headers(resp)


async def test_request_id_is_echoed_when_sane_and_replaced_when_not(client, world):
    for given in ("given-id", "abc.DEF_123-x", "a" * 64):
        resp = await client.get("/healthz", headers={"X-Request-Id": given})
        assert resp.headers["X-Request-Id"] == given
    seen = set()
    for given in ("bad id", "a" * 65, "x\u00e9", "<script>", "a/b", "", None):
        headers = {} if given is None else {"X-Request-Id": given}
        resp = await client.get("/api/v1/me", headers=headers)  # errors get one too
        assert resp.status == 401
        rid = resp.headers["X-Request-Id"]
        assert HEX32.match(rid), (given, rid)
        seen.add(rid)
    assert len(seen) == 7  # a fresh id each time
