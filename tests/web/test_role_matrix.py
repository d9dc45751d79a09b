"""The role matrix: every route of the app, called as every role, answers exactly as listed.

``EXPECTED`` is the contract, one explicit row per (method, route template) of the running
app. A route added without a row, or a row whose route is gone, fails
``test_matrix_covers_every_route``. Every protected route must also refuse invalid, expired,
foreign-key and revoked tokens (header and cookie) with 401.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from contact_center.auth import TokenSigner
from contact_center.keys import ENDPOINTS
from contact_center.settings import Secret, Settings
from tests.channels.twilio_fixtures import ACCOUNT_SID, TOKEN, call_params, sms_params
from tests.conftest import PASSWORD, World, inbound
from tests.twilio_stub import Webhooks, new_sid
from tests.web._helpers import error_code, new_ticket, nxt, old_token

ROLES = ("anon", "agent", "supervisor", "admin")


def _all(status: int) -> dict[str, int]:
    return dict.fromkeys(ROLES, status)


PUBLIC = _all(200)
STAFF = {"anon": 401, "agent": 200, "supervisor": 200, "admin": 200}
STAFF_201 = {"anon": 401, "agent": 201, "supervisor": 201, "admin": 201}
SUPERVISORS = {"anon": 401, "agent": 403, "supervisor": 200, "admin": 200}
ADMIN = {"anon": 401, "agent": 403, "supervisor": 403, "admin": 200}
ADMIN_201 = {"anon": 401, "agent": 403, "supervisor": 403, "admin": 201}
# Twilio webhooks: no login (bearer tokens are ignored), an X-Twilio-Signature instead. Every
# role gets in with a valid signature; a missing or bad one is 403 for everybody
# (tests/channels/sms/test_webhooks.py::test_signature_matrix).
TWILIO_SIGNED = _all(200)
TWILIO_SIGNED_204 = _all(204)

# (METHOD, route template as aiohttp's resource.canonical) -> role -> exact status
EXPECTED: dict[tuple[str, str], dict[str, int]] = {
    ("POST", "/api/v1/login"): PUBLIC,
    ("GET", "/api/v1/me"): STAFF,
    ("PUT", "/api/v1/me/presence"): STAFF,
    ("GET", "/api/v1/tickets"): STAFF,
    ("GET", "/api/v1/tickets/{id}"): STAFF,
    ("PATCH", "/api/v1/tickets/{id}"): STAFF,
    ("POST", "/api/v1/tickets/{id}/replies"): STAFF_201,
    ("POST", "/api/v1/tickets/{id}/notes"): STAFF_201,
    ("GET", "/api/v1/tickets/{id}/attachments/{attachment_id}"): STAFF,
    ("GET", "/api/v1/console/directory"): STAFF,
    ("GET", "/api/v1/customers/{id}"): STAFF,
    ("POST", "/api/v1/customers/{id}/merge"): SUPERVISORS,
    ("GET", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users"): ADMIN_201,
    ("PATCH", "/api/v1/users/{id}"): ADMIN,
    ("GET", "/api/v1/teams"): ADMIN,
    ("POST", "/api/v1/teams"): ADMIN_201,
    ("PATCH", "/api/v1/teams/{id}"): ADMIN,
    ("DELETE", "/api/v1/teams/{id}"): ADMIN,
    ("GET", "/api/v1/queues"): ADMIN,
    ("POST", "/api/v1/queues"): ADMIN_201,
    ("PATCH", "/api/v1/queues/{id}"): ADMIN,
    ("DELETE", "/api/v1/queues/{id}"): ADMIN,
    ("GET", "/api/v1/sla-policies"): ADMIN,
    ("POST", "/api/v1/sla-policies"): ADMIN_201,
    ("PATCH", "/api/v1/sla-policies/{id}"): ADMIN,
    ("DELETE", "/api/v1/sla-policies/{id}"): ADMIN,
    ("GET", "/api/v1/audit"): ADMIN,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/metrics"): ADMIN,
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("GET", "/api/v1/wallboard"): SUPERVISORS,
    ("GET", "/api/v1/reports/sla"): SUPERVISORS,
    ("GET", "/api/v1/reports/sla.csv"): SUPERVISORS,
    ("GET", "/api/v1/reports/service-level.svg"): SUPERVISORS,
    ("GET", "/api/v1/webhooks"): ADMIN,
    ("POST", "/api/v1/webhooks"): ADMIN_201,
    ("PATCH", "/api/v1/webhooks/{id}"): ADMIN,
    ("DELETE", "/api/v1/webhooks/{id}"): ADMIN,
    ("POST", "/api/v1/webhooks/{id}/rotate-secret"): ADMIN,
    ("GET", "/api/v1/webhooks/{id}/deliveries"): ADMIN,
    ("POST", "/api/v1/webhooks/{id}/replay"): ADMIN,
    ("POST", "/api/v1/webhook-deliveries/{id}/replay"): ADMIN,
    ("POST", "/api/v1/inbound"): STAFF_201,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): _all(303),  # form login: redirect to /console with a session cookie
    ("POST", "/logout"): STAFF,
    ("GET", "/console"): {"anon": 303, "agent": 200, "supervisor": 200, "admin": 200},
    ("GET", "/wallboard"): {"anon": 303, "agent": 403, "supervisor": 200, "admin": 200},
    ("GET", "/static"): PUBLIC,
    ("HEAD", "/static"): PUBLIC,
    # the chat widget is public by design: visitors are authorised by the /customer namespace
    ("GET", "/chat/widget.js"): PUBLIC,
    ("GET", "/chat/widget.css"): PUBLIC,
    ("GET", "/chat/demo"): PUBLIC,
    ("POST", "/webhooks/twilio/sms"): TWILIO_SIGNED,
    ("POST", "/webhooks/twilio/status"): TWILIO_SIGNED_204,
    ("POST", "/webhooks/twilio/voice"): TWILIO_SIGNED,
    ("POST", "/webhooks/twilio/voice/wait"): TWILIO_SIGNED,
    ("POST", "/webhooks/twilio/voice/queue"): TWILIO_SIGNED,
    ("POST", "/webhooks/twilio/voice/dial"): TWILIO_SIGNED,
    ("POST", "/webhooks/twilio/voice/recording"): TWILIO_SIGNED,
    ("POST", "/webhooks/twilio/voice/transcription"): TWILIO_SIGNED_204,
    # Engine.IO transport: public; the Socket.IO namespaces authorise at connect
    ("GET", "/socket.io/"): PUBLIC,
    ("OPTIONS", "/socket.io/"): PUBLIC,
    ("HEAD", "/socket.io/"): _all(405),
    ("POST", "/socket.io/"): _all(400),  # no such session
}


@dataclass
class Req:
    """One concrete request for a route."""

    path: str
    json: Any = None
    form: dict[str, str] | None = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


Prep = Callable[[Any, World, str], Awaitable[Req]]


def fixed(path: str, json: Any = None, **kw: Any) -> Prep:
    async def prep(client: Any, world: World, role: str) -> Req:
        return Req(path, json, **kw)

    return prep


def fresh(path: str, make: Callable[[int], Any]) -> Prep:
    """A body built from a fresh number (names that must be unique)."""

    async def prep(client: Any, world: World, role: str) -> Req:
        return Req(path, make(nxt()))

    return prep


def own_credentials(role: str) -> dict[str, str]:
    who = "agent" if role == "anon" else role
    return {"email": f"{who}@test.example", "password": PASSWORD}


async def _api_login(client: Any, world: World, role: str) -> Req:
    return Req("/api/v1/login", own_credentials(role))


async def _form_login(client: Any, world: World, role: str) -> Req:
    return Req("/login", form=own_credentials(role))


def on_ticket(suffix: str, json: Any = None) -> Prep:
    """A fresh unassigned ticket in queue general: in scope for agent, supervisor and admin."""

    async def prep(client: Any, world: World, role: str) -> Req:
        t = await new_ticket(client, world)
        return Req(f"/api/v1/tickets/{t['ticket_id']}{suffix}", json)

    return prep


async def _attachment(client: Any, world: World, role: str) -> Req:
    files = [{"filename": "a.txt", "content_type": "text/plain", "data_base64": "aGk="}]
    t = await new_ticket(client, world, attachments=files)
    return Req(f"/api/v1/tickets/{t['ticket_id']}/attachments/{t['attachment_ids'][0]}")


async def _customer(client: Any, world: World, role: str) -> Req:
    t = await new_ticket(client, world)
    return Req(f"/api/v1/customers/{t['customer_id']}")


async def _merge(client: Any, world: World, role: str) -> Req:
    a, b = await new_ticket(client, world), await new_ticket(client, world)
    return Req(f"/api/v1/customers/{a['customer_id']}/merge", {"merge_id": b["customer_id"]})


async def _patch_user(client: Any, world: World, role: str) -> Req:
    return Req(f"/api/v1/users/{world.users['agent2']['id']}", {"name": f"Agent Two {nxt()}"})


def on_new(kind: str, change: Callable[[int], Any] | None = None) -> Prep:
    """A fresh, unused team, queue or SLA policy (created by the admin) and a change for it."""

    async def prep(client: Any, world: World, role: str) -> Req:
        n = nxt()
        resp = await client.post(f"/api/v1/{kind}", headers=world.auth("admin"),
                                 json={"name": f"rm-{kind[:5]}-{n}"})  # fmt: skip
        assert resp.status == 201, await resp.text()
        made = await resp.json()
        return Req(f"/api/v1/{kind}/{made['id']}", None if change is None else change(n))

    return prep


async def _webhook(client: Any, world: World, events: list[str] | None = None) -> int:
    resp = await client.post("/api/v1/webhooks", headers=world.auth("admin"),
                             json={"url": "http://127.0.0.1:9/hook", "allow_private": True,
                                   "event_types": events or ["team.created"]})  # fmt: skip
    assert resp.status == 201, await resp.text()
    return int((await resp.json())["id"])


def on_webhook(suffix: str, json: Any = None) -> Prep:
    async def prep(client: Any, world: World, role: str) -> Req:
        return Req(f"/api/v1/webhooks/{await _webhook(client, world)}{suffix}", json)

    return prep


async def _delivery(client: Any, world: World, role: str) -> Req:
    sub = await _webhook(client, world, ["customer.created"])
    await new_ticket(client, world)
    resp = await client.get(f"/api/v1/webhooks/{sub}/deliveries", headers=world.auth("admin"))
    items = (await resp.json())["items"]
    assert items, "a subscribed event must leave a delivery row"
    return Req(f"/api/v1/webhook-deliveries/{items[0]['id']}/replay")


async def _inbound(client: Any, world: World, role: str) -> Req:
    n = nxt()
    return Req("/api/v1/inbound", inbound(f"rm-in-{n}", handle=f"in{n}@example.com",
                                          channel="api"))  # fmt: skip


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Twilio configured, so that its webhooks are routes of the app (without it: 404)."""
    return replace(settings, twilio_account_sid=ACCOUNT_SID, twilio_auth_token=Secret(TOKEN),
                   twilio_api_base_url="http://127.0.0.1:9")  # fmt: skip


def twilio(path: str, make: Callable[[], dict[str, str]]) -> Prep:
    """A webhook signed as Twilio signs it, for the app's public URL of ``path``."""

    async def prep(client: Any, world: World, role: str) -> Req:
        params = make()
        signer = Webhooks("", world.svc.settings.public_base_url, TOKEN)
        url = world.svc.settings.public_base_url + path
        return Req(path, form=params, headers={"X-Twilio-Signature": signer.signature(url, params)})

    return prep


def _call_event(**extra: str) -> Callable[[], dict[str, str]]:
    return lambda: call_params(f"+1415555{nxt() % 10_000:04d}", **extra)


PREP: dict[tuple[str, str], Prep] = {
    ("POST", "/api/v1/login"): _api_login,
    ("GET", "/api/v1/me"): fixed("/api/v1/me"),
    ("PUT", "/api/v1/me/presence"): fixed("/api/v1/me/presence", {"presence": "away"}),
    ("GET", "/api/v1/tickets"): fixed("/api/v1/tickets"),
    ("GET", "/api/v1/tickets/{id}"): on_ticket(""),
    ("PATCH", "/api/v1/tickets/{id}"): on_ticket("", {"priority": 3}),
    ("POST", "/api/v1/tickets/{id}/replies"): on_ticket("/replies", {"body": "hello"}),
    ("POST", "/api/v1/tickets/{id}/notes"): on_ticket("/notes", {"body": "internal"}),
    ("GET", "/api/v1/tickets/{id}/attachments/{attachment_id}"): _attachment,
    ("GET", "/api/v1/console/directory"): fixed("/api/v1/console/directory"),
    ("GET", "/api/v1/customers/{id}"): _customer,
    ("POST", "/api/v1/customers/{id}/merge"): _merge,
    ("GET", "/api/v1/users"): fixed("/api/v1/users"),
    ("POST", "/api/v1/users"): fresh("/api/v1/users", lambda n: {
        "email": f"new{n}@test.example", "name": "New", "password": PASSWORD}),
    ("PATCH", "/api/v1/users/{id}"): _patch_user,
    ("GET", "/api/v1/teams"): fixed("/api/v1/teams"),
    ("POST", "/api/v1/teams"): fresh("/api/v1/teams", lambda n: {"name": f"team{n}"}),
    ("PATCH", "/api/v1/teams/{id}"): on_new("teams", lambda n: {"name": f"renamed{n}"}),
    ("DELETE", "/api/v1/teams/{id}"): on_new("teams"),
    ("GET", "/api/v1/queues"): fixed("/api/v1/queues"),
    ("POST", "/api/v1/queues"): fresh("/api/v1/queues", lambda n: {"name": f"queue{n}"}),
    ("PATCH", "/api/v1/queues/{id}"): on_new("queues", lambda n: {"default_priority": 3}),
    ("DELETE", "/api/v1/queues/{id}"): on_new("queues"),
    ("GET", "/api/v1/sla-policies"): fixed("/api/v1/sla-policies"),
    ("POST", "/api/v1/sla-policies"): fresh("/api/v1/sla-policies", lambda n: {"name": f"p{n}"}),
    ("PATCH", "/api/v1/sla-policies/{id}"): on_new("sla-policies",
                                                   lambda n: {"answer_seconds": 30}),
    ("DELETE", "/api/v1/sla-policies/{id}"): on_new("sla-policies"),
    ("GET", "/api/v1/audit"): fixed("/api/v1/audit"),
    ("GET", "/healthz"): fixed("/healthz"),
    ("GET", "/metrics"): fixed("/metrics"),
    ("GET", "/api/v1/openapi.json"): fixed("/api/v1/openapi.json"),
    ("GET", "/api/v1/wallboard"): fixed("/api/v1/wallboard"),
    ("GET", "/api/v1/reports/sla"): fixed("/api/v1/reports/sla?start=2026-03-01&end=2026-03-02"),
    ("GET", "/api/v1/reports/sla.csv"): fixed(
        "/api/v1/reports/sla.csv?start=2026-03-01&end=2026-03-02"
    ),
    ("GET", "/api/v1/reports/service-level.svg"): fixed(
        "/api/v1/reports/service-level.svg?day=2026-03-02"
    ),
    ("GET", "/api/v1/webhooks"): fixed("/api/v1/webhooks"),
    ("POST", "/api/v1/webhooks"): fixed("/api/v1/webhooks", {
        "url": "http://127.0.0.1:9/hook", "event_types": ["team.created"],
        "allow_private": True}),
    ("PATCH", "/api/v1/webhooks/{id}"): on_webhook("", {"description": "changed"}),
    ("DELETE", "/api/v1/webhooks/{id}"): on_webhook(""),
    ("POST", "/api/v1/webhooks/{id}/rotate-secret"): on_webhook("/rotate-secret"),
    ("GET", "/api/v1/webhooks/{id}/deliveries"): on_webhook("/deliveries"),
    ("POST", "/api/v1/webhooks/{id}/replay"): on_webhook("/replay"),
    ("POST", "/api/v1/webhook-deliveries/{id}/replay"): _delivery,
    ("POST", "/api/v1/inbound"): _inbound,
    ("GET", "/login"): fixed("/login"),
    ("POST", "/login"): _form_login,
    ("POST", "/logout"): fixed("/logout"),
    ("GET", "/console"): fixed("/console"),
    ("GET", "/wallboard"): fixed("/wallboard"),
    ("GET", "/static"): fixed("/static/console.css"),
    ("HEAD", "/static"): fixed("/static/console.css"),
    ("GET", "/chat/widget.js"): fixed("/chat/widget.js"),
    ("GET", "/chat/widget.css"): fixed("/chat/widget.css"),
    ("GET", "/chat/demo"): fixed("/chat/demo"),
    ("POST", "/webhooks/twilio/sms"): twilio("/webhooks/twilio/sms",
                                             lambda: sms_params(f"hello {nxt()}")),
    ("POST", "/webhooks/twilio/status"): twilio("/webhooks/twilio/status", lambda: {
        "MessageSid": new_sid("SM"), "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID}),
    ("POST", "/webhooks/twilio/voice"): twilio("/webhooks/twilio/voice", _call_event()),
    ("POST", "/webhooks/twilio/voice/wait"): twilio("/webhooks/twilio/voice/wait?t=1&lang=en",
                                                    _call_event(QueueTime="3")),
    ("POST", "/webhooks/twilio/voice/queue"): twilio("/webhooks/twilio/voice/queue?t=1&lang=en",
                                                     _call_event(QueueResult="hangup")),
    ("POST", "/webhooks/twilio/voice/dial"): twilio("/webhooks/twilio/voice/dial?t=1&lang=en",
                                                    _call_event(DialCallStatus="completed")),
    ("POST", "/webhooks/twilio/voice/recording"): twilio(
        "/webhooks/twilio/voice/recording?t=1&lang=en",
        _call_event(RecordingSid=new_sid("RE"), RecordingUrl="", RecordingDuration="0")),
    ("POST", "/webhooks/twilio/voice/transcription"): twilio(
        "/webhooks/twilio/voice/transcription", lambda: call_params(
            TranscriptionSid=new_sid("TR"), RecordingSid=new_sid("RE"),
            TranscriptionStatus="completed", TranscriptionText=f"call me back {nxt()}")),
    ("GET", "/socket.io/"): fixed("/socket.io/?EIO=4&transport=polling"),
    ("OPTIONS", "/socket.io/"): fixed("/socket.io/?EIO=4&transport=polling"),
    ("HEAD", "/socket.io/"): fixed("/socket.io/?EIO=4&transport=polling"),
    ("POST", "/socket.io/"): fixed("/socket.io/?EIO=4&transport=polling&sid=nosuchsession",
                                   raw=b"40"),
}  # fmt: skip

PROTECTED = sorted(k for k, v in EXPECTED.items() if v["anon"] == 401)


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, template) of every route the router serves, HEAD and static included."""
    return {(r.method, r.resource.canonical) for r in app.router.routes()}


def _short(body: Any) -> str:
    text = repr(body)
    return text if len(text) <= 160 else text[:157] + "..."


async def call(client: Any, method: str, req: Req, headers: dict[str, str]) -> tuple[int, Any]:
    """Send one request; (status, JSON body or None)."""
    kw: dict[str, Any] = {"headers": {**req.headers, **headers}, "allow_redirects": False}
    if req.form is not None:
        kw["data"] = req.form
    elif req.raw is not None:
        kw["data"] = req.raw
    elif req.json is not None:
        kw["json"] = req.json
    resp = await client.request(method, req.path, **kw)
    raw = await resp.read()
    body = None
    if resp.content_type == "application/json" and raw:
        body = await resp.json()
    return resp.status, body


async def test_matrix_covers_every_route(client):
    routes = app_routes(client.app)
    missing = sorted(routes - EXPECTED.keys())
    stale = sorted(EXPECTED.keys() - routes)
    assert not missing, f"routes with no role-matrix entry (add them to EXPECTED): {missing}"
    assert not stale, f"role-matrix entries whose route no longer exists: {stale}"
    assert PREP.keys() == EXPECTED.keys(), sorted(PREP.keys() ^ EXPECTED.keys())
    # the registry's declared roles agree with the table (None = public or own scheme)
    for ep in client.app[ENDPOINTS]:
        row = EXPECTED[(ep.method, ep.path)]
        if ep.roles is None:
            assert row["anon"] != 401 or ep.path == "/metrics", (ep.method, ep.path)
        else:
            allowed = {r.value for r in ep.roles}
            for role in ("agent", "supervisor", "admin"):
                assert (row[role] != 403) == (role in allowed), (ep.method, ep.path, role)


async def test_every_route_answers_each_role_as_listed(client, world):
    mismatches = []
    for (method, template), expected in sorted(EXPECTED.items()):
        for role in ROLES:
            req = await PREP[(method, template)](client, world, role)
            headers = {} if role == "anon" else world.auth(role)
            status, body = await call(client, method, req, headers)
            if status != expected[role]:
                mismatches.append(f"{method} {template} as {role}: {status} != {expected[role]}"
                                  f" ({_short(body)})")  # fmt: skip
            elif status in (401, 403) and template != "/socket.io/":
                want = "unauthorized" if status == 401 else "forbidden"
                if error_code(body) != want:
                    mismatches.append(f"{method} {template} as {role}: body {_short(body)}")
    assert not mismatches, "\n".join(mismatches)


async def _revoked_admin_token(client: Any, world: World) -> str:
    """A second admin who logs in, then is deactivated by the first."""
    n = nxt()
    resp = await client.post("/api/v1/users", headers=world.auth("admin"),
                             json={"email": f"admin{n}@test.example", "name": "Admin Two",
                                   "password": PASSWORD, "role": "admin"})  # fmt: skip
    assert resp.status == 201, await resp.text()
    uid = (await resp.json())["id"]
    resp = await client.post(
        "/api/v1/login", json={"email": f"admin{n}@test.example", "password": PASSWORD}
    )
    token = (await resp.json())["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    resp = await client.get("/api/v1/users", headers=bearer)
    assert resp.status == 200, "the new admin's token must work before revocation"
    resp = await client.patch(f"/api/v1/users/{uid}", json={"active": False},
                              headers=world.auth("admin"))  # fmt: skip
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["active"] is False
    return str(token)


async def test_protected_routes_refuse_bad_expired_and_revoked_tokens(client, world):
    secret = world.svc.settings.secret_key.reveal()
    admin_id = world.users["admin"]["id"]
    revoked = await _revoked_admin_token(client, world)
    tokens = {
        "garbage": ("not-a-token", "invalid token"),
        "tampered": (world.tokens["admin"][:-2] + "xx", "invalid token"),
        "expired": (old_token(secret, admin_id), "token expired"),
        "other key": (TokenSigner("some-other-secret-key-0123456789", 3600).issue(admin_id, 0),
                      "invalid token"),
        "old version": (world.svc.signer.issue(admin_id, 7), "session revoked"),
        "revoked": (revoked, "session revoked"),
    }  # fmt: skip
    failures = []
    for method, template in PROTECTED:
        req = await PREP[(method, template)](client, world, "admin")
        variants: list[tuple[str, dict[str, str], str | None]] = [
            ("basic scheme", {"Authorization": "Basic YWRtaW46eA=="}, None),
            ("empty bearer", {"Authorization": "Bearer "}, None),
        ]
        for name, (token, message) in tokens.items():
            variants.append((name, {"Authorization": f"Bearer {token}"}, message))
            variants.append((f"{name} cookie", {"Cookie": f"cc_session={token}",
                                                "X-Requested-With": "test"}, message))  # fmt: skip
        for name, headers, message in variants:
            status, body = await call(client, method, req, headers)
            if status != 401 or error_code(body) != "unauthorized":
                failures.append(f"{method} {template} with {name}: {status} {_short(body)}")
            elif message is not None and body["error"]["message"] != message:
                failures.append(f"{method} {template} with {name}: message {_short(body)}")
        # the same request with the real admin token is not refused (the 401s are the tokens')
        status, _ = await call(client, method, req, world.auth("admin"))
        if status in (401, 403):
            failures.append(f"{method} {template} refuses even a valid admin token: {status}")
    assert not failures, "\n".join(failures)


async def test_console_page_with_bad_credentials_redirects_to_login(client, world):
    secret = world.svc.settings.secret_key.reveal()
    expired = old_token(secret, world.users["agent"]["id"])
    for headers in (
        {"Authorization": "Bearer nope"},
        {"Authorization": f"Bearer {expired}"},
        {"Cookie": f"cc_session={expired}"},
        {"Cookie": "cc_session=nope"},
    ):
        resp = await client.get("/console", headers=headers, allow_redirects=False)
        assert resp.status == 303, headers
        assert resp.headers["Location"] == "/login"
    resp = await client.get("/console", headers={"Cookie": f"cc_session={world.tokens['agent']}"},
                            allow_redirects=False)  # fmt: skip
    assert resp.status == 200
    assert "Agent" in await resp.text()


async def test_methods_and_paths_outside_the_table_are_json_errors(client, world):
    # no HEAD is registered for API GET routes: aiohttp answers 405, rendered as our JSON error
    resp = await client.request("HEAD", "/api/v1/me", headers=world.auth("admin"))
    assert resp.status == 405
    resp = await client.delete("/api/v1/tickets", headers=world.auth("admin"))
    assert resp.status == 405
    assert error_code(await resp.json()) == "method_not_allowed"
    resp = await client.get("/api/v1/nothing-here", headers=world.auth("admin"))
    assert resp.status == 404
    assert error_code(await resp.json()) == "not_found"
    # the static route serves its directory only
    for path in ("/static/../pyproject.toml", "/static/%2e%2e/%2e%2e/pyproject.toml",
                 "/static/nope.css"):  # fmt: skip
        resp = await client.get(path)
        assert resp.status in (403, 404), path
        assert "[project]" not in await resp.text()
