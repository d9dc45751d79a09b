"""The /wallboard page (no inline script, vendored client served) and the waiting index."""

from __future__ import annotations

import re

from contact_center.sla_waiting import Contact, WaitingIndex


async def test_wallboard_page_loads_only_own_scripts(client, world):
    cookie = {"Cookie": f"cc_session={world.tokens['supervisor']}"}
    resp = await client.get("/wallboard", headers=cookie)
    assert resp.status == 200
    html = await resp.text()
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    assert [body.strip() for _, body in scripts] == ["", ""]  # no inline code
    assert ['src="/static/vendor/socket.io.min.js"' in a for a, _ in scripts] == [True, False]
    assert 'src="/static/wallboard.js"' in scripts[1][0]
    for path in ("/static/vendor/socket.io.min.js", "/static/wallboard.js"):
        asset = await client.get(path)
        assert asset.status == 200, path
    vendored = await (await client.get("/static/vendor/socket.io.min.js")).text()
    assert vendored.startswith("/*!\n * Socket.IO v4.8.4")
    assert "<th>Waiting</th>" in html  # the user's language (en)


def test_waiting_index_counts_and_oldest_under_moves_and_pops():
    idx = WaitingIndex()
    idx.add(1, Contact(10.0, 1, "chat", 7))
    idx.add(2, Contact(5.0, 1, "chat", 7))
    idx.add(3, Contact(1.0, 2, "email", 8))
    assert idx.summary(lambda q, t: q == 1) == (2, 5.0)
    assert idx.summary(lambda q, t: True) == (3, 1.0)
    idx.pop(2)
    assert idx.summary(lambda q, t: q == 1) == (1, 10.0)
    idx.pop(3)
    idx.add(3, Contact(1.0, 1, "email", 7))  # moved to queue 1: its stale heap entry is ignored
    assert idx.summary(lambda q, t: q == 2) == (0, None)
    assert idx.summary(lambda q, t: t == 7) == (2, 1.0)
    for i in range(5000):
        idx.add(100 + i, Contact(100.0 + i, 1, "chat", 7))
        idx.pop(100 + i)
    assert len(idx) == 2 and idx.summary(lambda q, t: True) == (2, 1.0)
