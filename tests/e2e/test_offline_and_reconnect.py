"""The widget when nobody can answer (offline form → email ticket), and a dropped network in
the middle of a conversation (nothing lost, nothing twice)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.conftest import sql
from tests.e2e.conftest import login, new_page, screenshot
from tests.e2e.test_chat_flow import _accept_offer_of, _open_widget, _start_chat


def test_offline_mode_leaves_a_message_for_email_follow_up(browser, desk, dialogs):
    customer = new_page(browser, dialogs, locale="zh-CN")
    panel = _open_widget(customer, desk)
    offline = panel.locator("[data-cc=offline]")
    expect(offline).to_be_visible()
    expect(offline.locator("h2")).to_have_text("我们暂时不在线")  # the browser's language
    form = panel.locator("[data-cc=offline-form]")
    form.locator("input[name=name]").fill("李华")
    form.locator("input[name=email]").fill("li.hua@example.cn")
    form.locator("textarea").fill("请问发票什么时候开？")
    form.locator("button[type=submit]").click()
    done = panel.locator("[data-cc=offline-done]")
    expect(done).to_be_visible()
    expect(done).to_contain_text("电子邮件")
    screenshot(customer, "chat-offline.png")
    rows = sql(desk.services.db,
               "SELECT t.channel, t.language, t.status, h.value FROM ticket t "
               "JOIN customerhandle h ON h.customer_id = t.customer_id "
               "WHERE h.value = 'li.hua@example.cn'")  # fmt: skip
    assert [tuple(r) for r in rows] == [("email", "zh-CN", "new", "li.hua@example.cn")]
    assert dialogs.seen == []


def test_a_dropped_network_loses_and_duplicates_nothing(browser, desk, dialogs):
    agent = new_page(browser, dialogs, locale="en-US", viewport={"width": 1300, "height": 900})
    login(agent, desk, "bob")
    agent.select_option("[data-testid=presence]", "available")
    cctx_page = new_page(browser, dialogs, locale="en-US")
    panel = _open_widget(cctx_page, desk)
    expect(panel.locator("[data-cc=prechat]")).to_be_visible()
    _start_chat(cctx_page, "Rita", "My parcel never arrived")
    tid = _accept_offer_of(agent, "Rita")
    expect(panel.locator("[data-cc=joined]")).to_be_visible()
    conv = agent.locator("[data-testid=conversation]")

    cctx_page.context.set_offline(True)
    expect(panel.locator("[data-cc=conn]")).to_have_text("Reconnecting…")
    # while the visitor is away: the agent answers, the visitor writes (kept in the outbox)
    agent.locator("[data-testid=reply-body]").fill("Sorry about that, I am checking the tracking.")
    agent.locator("[data-testid=send]").click()
    expect(conv.locator("li.msg.out", has_text="tracking")).to_be_visible()
    cctx_page.locator("[data-cc=input]").fill("Are you still there?")
    cctx_page.locator("[data-cc=input]").press("Enter")
    expect(panel.locator("li.cc-me", has_text="still there")).to_contain_text("Sending…")

    cctx_page.context.set_offline(False)
    expect(panel.locator("[data-cc=conn]")).to_have_text("Online", timeout=20_000)
    expect(panel.locator("li.cc-agent", has_text="tracking")).to_have_count(1)
    expect(panel.locator("li.cc-me", has_text="still there")).to_have_attribute(
        "data-id", re.compile(r"\d+"))  # fmt: skip
    expect(conv.locator("li.msg.in", has_text="still there")).to_have_count(1)
    stored = sql(desk.services.db, "SELECT count(*) FROM message WHERE ticket_id = :t AND "
                 "body_text = 'Are you still there?'", t=tid)  # fmt: skip
    assert stored[0][0] == 1
    assert panel.locator("li.cc-me", has_text="still there").count() == 1
    assert dialogs.seen == []
