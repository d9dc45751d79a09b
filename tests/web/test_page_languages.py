"""Every page in English and Simplified Chinese: the user's setting first, else the browser."""

from __future__ import annotations

import re
from typing import Any

import pytest

from agent_console.console_data import CANNED, CONSOLE_TEXT
from agent_console.pages import TEXT as PAGE_TEXT
from agent_console.wallboard import TEXT as WALLBOARD_TEXT
from channels.chat import DEMO_TEXT

CJK = re.compile(r"[\u4e00-\u9fff]")
TABLES = {"pages": PAGE_TEXT, "console": CONSOLE_TEXT, "wallboard": WALLBOARD_TEXT,
          "chat demo": DEMO_TEXT}  # fmt: skip


def _zh(table: dict[str, Any]) -> Any:
    """The Chinese half of a table (the chat keys it by its BCP 47 tag)."""
    return table["zh"] if "zh" in table else table["zh-CN"]


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_string_has_both_languages(name):
    table = TABLES[name]
    en, zh = table["en"], _zh(table)
    assert set(en) == set(zh), f"{name}: keys only in one language: {set(en) ^ set(zh)}"
    untranslated = [k for k, v in zh.items() if en[k] and not CJK.search(v) and v == en[k]]
    # a few strings are the same in both (a unit, "SLA", "ID"): at most one in ten
    assert len(untranslated) * 10 <= len(zh), f"{name}: not translated: {untranslated}"


def test_canned_responses_exist_in_both_languages():
    assert len(CANNED["en"]) == len(CANNED["zh"]) > 0
    assert all(CJK.search(str(c)) for c in CANNED["zh"])


async def _page(client: Any, path: str, accept: str, token: str | None = None) -> str:
    headers = {"Accept-Language": accept}
    if token:
        headers["Cookie"] = f"cc_session={token}"
    resp = await client.get(path, headers=headers, allow_redirects=False)
    assert resp.status == 200, (path, resp.status)
    return str(await resp.text())


def _lang(html: str) -> str:
    found = re.search(r'<html lang="([^"]+)"', html)
    assert found, "no <html lang>"
    return found.group(1)


async def test_pages_follow_the_browser_for_visitors(client):
    for path, zh_word in (("/login", "登录"), ("/chat/demo", _zh(DEMO_TEXT)["title"])):
        en = await _page(client, path, "en-GB,en;q=0.8")
        zh = await _page(client, path, "zh-CN,zh;q=0.9,en;q=0.5")
        assert _lang(en) == "en" and zh_word not in en, path
        assert _lang(zh).startswith("zh") and zh_word in zh, path


async def test_the_users_setting_beats_the_browser(client, world):
    resp = await client.patch(f"/api/v1/users/{world.users['supervisor']['id']}",
                              json={"language": "zh"}, headers=world.auth("admin"))  # fmt: skip
    assert resp.status == 200
    sup = world.tokens["supervisor"]
    for path, text in (("/console", PAGE_TEXT["zh"]["console"]),
                       ("/wallboard", WALLBOARD_TEXT["zh"]["wallboard"])):  # fmt: skip
        html = await _page(client, path, "en-US", sup)
        assert _lang(html) == "zh" and text in html, path
    # the console's own strings travel in its page data, in the user's language
    assert CONSOLE_TEXT["zh"][next(iter(CONSOLE_TEXT["zh"]))] in await _page(
        client, "/console", "en-US", sup
    )
    # an English-speaking user on a Chinese browser gets English
    html = await _page(client, "/console", "zh-CN", world.tokens["agent"])
    assert _lang(html) == "en" and PAGE_TEXT["en"]["console"] in html
