"""The REST pieces the console uses: file downloads (scoped, never inline), the directory."""

from __future__ import annotations

import base64

from tests.web._helpers import new_ticket

SVG = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"


def _file(name: str, data: bytes, kind: str = "image/svg+xml") -> dict[str, str]:
    return {"filename": name, "content_type": kind, "data_base64": base64.b64encode(data).decode()}


async def test_attachments_download_as_files_within_scope_only(client, world):
    red = await new_ticket(client, world, queue="general", attachments=[_file("évil.svg", SVG)])
    blue = await new_ticket(client, world, queue="tech", attachments=[_file("b.txt", b"x")])
    aid = red["attachment_ids"][0]
    resp = await client.get(f"/api/v1/tickets/{red['ticket_id']}/attachments/{aid}",
                            headers=world.auth("agent"))  # fmt: skip
    assert resp.status == 200 and await resp.read() == SVG
    assert resp.headers["Content-Type"] == "application/octet-stream"
    assert resp.headers["Content-Disposition"] == (
        "attachment; filename=\"_vil.svg\"; filename*=UTF-8''%C3%A9vil.svg")  # fmt: skip
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    bad = [
        (red["ticket_id"], blue["attachment_ids"][0], "admin"),  # another ticket's file
        (blue["ticket_id"], blue["attachment_ids"][0], "agent"),  # out of the agent's scope
        (red["ticket_id"], 999_999, "admin"),
    ]
    for tid, att, who in bad:
        resp = await client.get(f"/api/v1/tickets/{tid}/attachments/{att}", headers=world.auth(who))
        assert resp.status == 404, (tid, att, who)
        assert (await resp.json())["error"]["code"] == "not_found"


async def test_directory_lists_whom_each_role_may_transfer_to(client, world):
    got = {}
    for who in ("agent", "supervisor", "admin", "blue_supervisor"):
        resp = await client.get("/api/v1/console/directory", headers=world.auth(who))
        assert resp.status == 200
        got[who] = await resp.json()
    assert got["agent"]["can_transfer"] is False and got["agent"]["agents"] == []
    assert {q["name"] for q in got["agent"]["queues"]} == {"general", "billing"}
    assert {a["name"] for a in got["supervisor"]["agents"]} == {"Agent", "Agent2"}
    assert {q["name"] for q in got["supervisor"]["queues"]} == {"general", "billing"}
    assert {a["name"] for a in got["blue_supervisor"]["agents"]} == {"Blue_Agent"}
    assert {a["name"] for a in got["admin"]["agents"]} == {"Agent", "Agent2", "Blue_Agent"}
    assert len(got["admin"]["queues"]) == 3


async def test_console_page_speaks_the_users_language_with_no_inline_code(client, world):
    import json
    import re

    resp = await client.patch(f"/api/v1/users/{world.users['agent2']['id']}",
                              json={"language": "zh"}, headers=world.auth("admin"))  # fmt: skip
    assert resp.status == 200
    pages = {}
    for who in ("agent", "agent2"):
        resp = await client.get("/console", headers={"Cookie": f"cc_session={world.tokens[who]}"})
        pages[who] = await resp.text()
    for who, accept in (("agent", "Accept (A)"), ("agent2", "接受 (A)")):
        html = pages[who]
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
        executable = [b.strip() for a, b in scripts if 'type="application/json"' not in a]
        assert executable == ["", ""]  # the vendored client and console.js, nothing inline
        raw = next(b for a, b in scripts if 'id="console-data"' in a)
        assert "<" not in raw  # tojson escapes what could end the script element
        data = json.loads(raw)
        assert data["text"]["accept"] == accept and data["user"]["role"] == "agent"
        assert "{customer_name}" in data["canned"][0]["body"]
