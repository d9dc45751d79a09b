"""Who sees which tickets and customers; list filters; cursor pagination.

Scope: admin all; supervisor their team's tickets plus any assigned to them; agent tickets
assigned to them plus unassigned tickets of their queues. Anything else is 404, exactly like
an id that does not exist.
"""

from __future__ import annotations

import base64
from typing import Any

from tests.conftest import World
from tests.web._helpers import assign, new_ticket, patch_ticket

NO_SUCH_ID = 987654


async def _scenario(client: Any, world: World) -> dict[str, dict[str, Any]]:
    """Tickets spread over queues, teams and assignees (one customer each)."""
    t = {
        "general": await new_ticket(client, world, queue="general"),
        "billing": await new_ticket(client, world, queue="billing"),
        "tech": await new_ticket(client, world, queue="tech"),
        "general_agent": await new_ticket(client, world, queue="general"),
        "general_agent2": await new_ticket(client, world, queue="general"),
        "billing_supervisor": await new_ticket(client, world, queue="billing"),
        "tech_agent": await new_ticket(client, world, queue="tech"),
        "tech_supervisor": await new_ticket(client, world, queue="tech"),
        "tech_blue_agent": await new_ticket(client, world, queue="tech"),
    }
    await assign(client, world, t["general_agent"]["ticket_id"], "agent")
    await assign(client, world, t["general_agent2"]["ticket_id"], "agent2", by="supervisor")
    await assign(client, world, t["billing_supervisor"]["ticket_id"], "supervisor")
    # an admin may assign across teams: these are visible to the red assignee through "mine"
    await assign(client, world, t["tech_agent"]["ticket_id"], "agent")
    await assign(client, world, t["tech_supervisor"]["ticket_id"], "supervisor")
    await assign(client, world, t["tech_blue_agent"]["ticket_id"], "blue_agent",
                 by="blue_supervisor")  # fmt: skip
    return t


VISIBLE = {
    "agent": {"general", "billing", "general_agent", "tech_agent"},
    "agent2": {"general", "general_agent2"},
    "blue_agent": {"tech", "tech_blue_agent"},
    "supervisor": {"general", "billing", "general_agent", "general_agent2",
                   "billing_supervisor", "tech_supervisor"},
    "blue_supervisor": {"tech", "tech_agent", "tech_supervisor", "tech_blue_agent"},
}  # fmt: skip


async def _list_ids(client: Any, world: World, who: str, query: str = "") -> list[int]:
    resp = await client.get(f"/api/v1/tickets?limit=200{query}", headers=world.auth(who))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["next_cursor"] is None
    return [item["id"] for item in body["items"]]


async def test_each_role_lists_exactly_its_scope(client, world):
    t = await _scenario(client, world)
    ids = {name: v["ticket_id"] for name, v in t.items()}
    everything = set(ids.values())
    assert set(await _list_ids(client, world, "admin")) == everything
    for who, names in VISIBLE.items():
        listed = await _list_ids(client, world, who)
        assert len(listed) == len(set(listed)), f"{who}: duplicates in {listed}"
        expected = {ids[n] for n in names}
        assert set(listed) == expected, (
            who,
            sorted(n for n, i in ids.items() if i in set(listed) ^ expected),
        )


async def test_out_of_scope_ticket_is_indistinguishable_from_a_missing_one(client, world):
    t = await _scenario(client, world)
    for who, names in {**VISIBLE, "admin": set(t)}.items():
        missing = await client.get(f"/api/v1/tickets/{NO_SUCH_ID}", headers=world.auth(who))
        assert missing.status == 404
        missing_body = await missing.json()
        assert missing_body["error"]["code"] == "not_found"
        for name, ticket in t.items():
            resp = await client.get(f"/api/v1/tickets/{ticket['ticket_id']}",
                                    headers=world.auth(who))  # fmt: skip
            if name in names:
                assert resp.status == 200, (who, name)
                detail = await resp.json()
                assert detail["id"] == ticket["ticket_id"]
                assert detail["messages"][0]["direction"] == "in"
            else:
                assert resp.status == 404, (who, name)
                assert await resp.json() == missing_body, (who, name)


async def test_out_of_scope_ticket_cannot_be_changed_or_answered(client, world):
    t = await _scenario(client, world)
    tid = t["tech"]["ticket_id"]
    missing = await client.patch(f"/api/v1/tickets/{NO_SUCH_ID}", json={"priority": 1},
                                 headers=world.auth("agent"))  # fmt: skip
    missing_body = await missing.json()
    assert missing.status == 404
    for who in ("agent", "supervisor"):
        status, body = await patch_ticket(client, world, tid, who, priority=1)
        assert (status, body) == (404, missing_body), who
        for kind in ("replies", "notes"):
            resp = await client.post(f"/api/v1/tickets/{tid}/{kind}", json={"body": "x"},
                                     headers=world.auth(who))  # fmt: skip
            assert resp.status == 404, (who, kind)
            assert await resp.json() == missing_body
    # nothing happened to the ticket
    resp = await client.get(f"/api/v1/tickets/{tid}", headers=world.auth("admin"))
    detail = await resp.json()
    assert detail["priority"] != 1
    assert [m["direction"] for m in detail["messages"]] == ["in"]


async def test_customer_360_is_scoped_like_its_tickets(client, world):
    t = await _scenario(client, world)
    for who, names in {**VISIBLE, "admin": set(t)}.items():
        missing = await client.get(f"/api/v1/customers/{NO_SUCH_ID}", headers=world.auth(who))
        assert missing.status == 404
        missing_body = await missing.json()
        assert missing_body["error"]["code"] == "not_found"
        for name, ticket in t.items():
            resp = await client.get(f"/api/v1/customers/{ticket['customer_id']}",
                                    headers=world.auth(who))  # fmt: skip
            if name in names:
                assert resp.status == 200, (who, name)
                view = await resp.json()
                assert [x["id"] for x in view["tickets"]] == [ticket["ticket_id"]]
            else:
                assert resp.status == 404, (who, name)
                assert await resp.json() == missing_body, (who, name)


async def test_customer_360_shows_only_the_tickets_in_scope(client, world):
    handle = "both@example.com"
    red = await new_ticket(client, world, queue="general", channel="email", handle=handle)
    blue = await new_ticket(client, world, queue="tech", channel="api", handle=handle)
    assert red["customer_id"] == blue["customer_id"]
    cid = red["customer_id"]
    seen = {}
    for who in ("admin", "agent", "supervisor", "blue_agent", "blue_supervisor"):
        resp = await client.get(f"/api/v1/customers/{cid}", headers=world.auth(who))
        assert resp.status == 200, who
        seen[who] = {x["id"] for x in (await resp.json())["tickets"]}
    assert seen["admin"] == {red["ticket_id"], blue["ticket_id"]}
    assert seen["agent"] == seen["supervisor"] == {red["ticket_id"]}
    assert seen["blue_agent"] == seen["blue_supervisor"] == {blue["ticket_id"]}
    # agent2 serves general too: sees the red one; a queue-less agent sees nothing
    resp = await client.get(f"/api/v1/customers/{cid}", headers=world.auth("agent2"))
    assert {x["id"] for x in (await resp.json())["tickets"]} == {red["ticket_id"]}


async def test_list_filters(client, world):
    t = await _scenario(client, world)
    ids = {name: v["ticket_id"] for name, v in t.items()}
    email = await new_ticket(client, world, queue="general", channel="email")
    ids["email"] = email["ticket_id"]
    status, _ = await patch_ticket(client, world, ids["billing"], "admin", status="pending")
    assert status == 200

    async def names(who: str, query: str) -> set[str]:
        got = set(await _list_ids(client, world, who, query))
        return {n for n, i in ids.items() if i in got}

    # unassigned tickets are new; assigning opened the others; billing went pending
    assert await names("admin", "&status=new") == {"general", "tech", "email"}
    assert await names("admin", "&status=pending") == {"billing"}
    assert await names("admin", "&status=new&status=pending") == {
        "general", "tech", "email", "billing"}  # fmt: skip
    assert await names("admin", f"&queue_id={world.queues['billing']}") == {
        "billing", "billing_supervisor"}  # fmt: skip
    assert await names("admin", "&channel=email") == {"email"}
    assert await names("admin", f"&assignee_id={world.users['agent']['id']}") == {
        "general_agent", "tech_agent"}  # fmt: skip
    assert await names("admin", "&unassigned=true") == {"general", "billing", "tech", "email"}
    assert await names("admin", f"&customer_id={t['tech']['customer_id']}") == {"tech"}
    # filters narrow the caller's scope, never widen it
    assert await names("agent", f"&queue_id={world.queues['tech']}") == {"tech_agent"}
    assert await names("agent", "&unassigned=true") == {"general", "billing", "email"}
    assert await names("agent", f"&assignee_id={world.users['agent2']['id']}") == set()
    assert await names("supervisor", "&unassigned=true&channel=api") == {"general", "billing"}
    # invalid filters are 400 naming the parameter
    for query, name in (("&status=bogus", "status"), ("&queue_id=abc", "queue_id"),
                        ("&channel=fax", "channel"), ("&limit=0", "limit"),
                        ("&limit=201", "limit"), ("&colour=red", "colour")):  # fmt: skip
        resp = await client.get(f"/api/v1/tickets?{query[1:]}", headers=world.auth("admin"))
        assert resp.status == 400, query
        body = await resp.json()
        assert body["error"]["code"] == "invalid_request"
        assert any(k.split(".")[0] == name for k in body["error"]["fields"]), (query, body)


async def test_cursor_pagination_has_no_duplicates_or_gaps(client, world):
    created = [(await new_ticket(client, world))["ticket_id"] for _ in range(7)]
    pages: list[list[int]] = []
    cursor = None
    while True:
        query = "limit=3" + (f"&cursor={cursor}" if cursor else "")
        resp = await client.get(f"/api/v1/tickets?{query}", headers=world.auth("agent"))
        assert resp.status == 200
        body = await resp.json()
        pages.append([item["id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 5, "pagination does not end"
    assert [len(p) for p in pages] == [3, 3, 1]
    flat = [i for p in pages for i in p]
    assert flat == sorted(created, reverse=True)  # newest first, each once, none missing
    # filters hold across pages
    resp = await client.get("/api/v1/tickets?limit=3&channel=email", headers=world.auth("agent"))
    assert await resp.json() == {"items": [], "next_cursor": None}


async def test_bad_cursor_is_400(client, world):
    await new_ticket(client, world)
    foreign = base64.urlsafe_b64encode(b"x:5").decode()
    for cursor in ("garbage!!", "dDphYmM", foreign, "%F0%9F%98%80", "a" * 101):
        resp = await client.get(f"/api/v1/tickets?cursor={cursor}", headers=world.auth("admin"))
        assert resp.status == 400, cursor
        body = await resp.json()
        assert body["error"]["code"] == "invalid_request"
        assert "cursor" in body["error"]["fields"], cursor
