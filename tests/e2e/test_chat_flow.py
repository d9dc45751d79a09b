"""The three pages in a real browser: a customer chats on the demo page, an agent answers in the
console, a supervisor watches the wallboard move; hostile names and messages never run.

Every wait is for a condition in the page (Playwright's auto-waiting ``expect``), never a sleep.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.conftest import sql
from tests.e2e.conftest import login, new_page, screenshot

XSS_NAME = "<img src=x onerror=alert('name')>Ann"
XSS_BODY = "<script>alert('body')</script><img src=x onerror=alert('img')> my invoice is wrong"


def _open_widget(page, desk, path="/chat/demo"):
    page.goto(desk.url + path)
    page.locator("[data-cc=launcher]").click()
    return page.locator("[data-cc=panel]")


def _start_chat(page, name, body, email=""):
    page.locator("[data-cc=start-form] input[name=name]").fill(name)
    if email:
        page.locator("[data-cc=start-form] input[name=email]").fill(email)
    page.locator("[data-cc=start-form] textarea").fill(body)
    page.locator("[data-cc=start-form] button[type=submit]").click()


def _accept_offer_of(agent, customer_name):
    """Accept the offer whose customer is ``customer_name`` with the keyboard (R rejects the
    first offer, A accepts it), rejecting any other chat offered before it."""
    ours = agent.locator("[data-testid=offer]", has_text=customer_name)
    expect(ours).to_be_visible()
    expect(ours.locator("[data-testid=offer-countdown]")).to_have_text(re.compile(r"\d+ s left"))
    while agent.locator("[data-testid=offer]").first.get_attribute("data-ticket-id") != (
        ours.get_attribute("data-ticket-id")
    ):
        before = agent.locator("[data-testid=offer]").count()
        agent.keyboard.press("r")
        expect(agent.locator("[data-testid=offer]")).to_have_count(before - 1)
    tid = int(ours.get_attribute("data-ticket-id") or 0)
    agent.keyboard.press("a")
    expect(agent.locator(f"[data-testid=ticket][data-ticket-id='{tid}']")).to_be_visible()
    return tid


def test_customer_chats_agent_answers_wallboard_moves(browser, desk, dialogs):
    board = new_page(browser, dialogs, locale="en-US", viewport={"width": 1400, "height": 900})
    login(board, desk, "sam", then="/wallboard")
    expect(board.locator("#wb-status")).to_have_text("Live")
    expect(board.locator("[data-testid=wb-answered]")).to_have_text("0")
    expect(board.locator("[data-testid=wb-sl-today]")).to_have_text("–")

    customer = new_page(browser, dialogs, locale="en-US")
    panel = _open_widget(customer, desk)
    expect(panel.locator("[data-cc=offline]")).to_be_visible()  # nobody is available yet

    agent = new_page(browser, dialogs, locale="en-US", viewport={"width": 1400, "height": 900})
    login(agent, desk, "alice")
    expect(agent.locator("[data-testid=conn]")).to_have_text("Live")
    agent.select_option("[data-testid=presence]", "available")
    expect(panel.locator("[data-cc=prechat]")).to_be_visible()  # pushed: an agent is free now

    _start_chat(customer, XSS_NAME, XSS_BODY, email="ann@example.com")
    mine = panel.locator("[data-cc=messages] li.cc-me")
    expect(mine.first).to_contain_text("my invoice is wrong")
    expect(mine.first).to_have_attribute("data-id", re.compile(r"\d+"))
    expect(panel.locator("[data-cc=queue]")).to_contain_text(
        re.compile("number 1 in line|Connecting")
    )

    tid = _accept_offer_of(agent, XSS_NAME)
    expect(panel.locator("[data-cc=joined]")).to_have_text("Alice joined the chat.")
    conv = agent.locator("[data-testid=conversation]")
    expect(conv.locator("[data-testid=message]").first).to_contain_text(XSS_BODY)
    expect(agent.locator("[data-testid=customer-name]")).to_have_text(XSS_NAME)
    expect(agent.locator("[data-testid=customer-tickets]")).to_contain_text(f"#{tid} · chat")
    # canned response with placeholders, then the visitor sees it live
    agent.select_option("[data-testid=canned]", index=1)
    expect(agent.locator("[data-testid=reply-body]")).to_have_value(
        re.compile(r"^Hi <img, this is Alice\. How can I help you today\?")
    )
    agent.locator("[data-testid=reply-body]").fill("Hello! I am checking your invoice now.")
    agent.locator("[data-testid=reply-body]").press("Control+Enter")
    reply = panel.locator("[data-cc=messages] li.cc-agent")
    expect(reply).to_contain_text("Hello! I am checking your invoice now.")
    expect(reply.locator(".cc-who")).to_have_text("Alice")
    # the visitor has seen it: the console says so; the visitor types, the agent sees it
    expect(conv.locator("li.msg.out .meta")).to_contain_text("Read")
    customer.locator("[data-cc=input]").fill("thanks")
    expect(agent.locator("[data-testid=typing]")).to_have_text("typing…")
    customer.locator("[data-cc=input]").press("Enter")
    expect(conv.locator("li.msg.in", has_text="thanks")).to_be_visible()
    # an internal note never reaches the visitor
    agent.check("input[name=mode][value=note]")
    agent.locator("[data-testid=reply-body]").fill("VIP customer, refund approved")
    agent.locator("[data-testid=send]").click()
    expect(conv.locator("li.msg.note", has_text="refund approved")).to_be_visible()

    # the wallboard moved: one answered (within 20 s), service level 100 %
    expect(board.locator("[data-testid=wb-answered]")).to_have_text("1")
    expect(board.locator("[data-testid=wb-sl-today]")).to_have_text("100.0 %")
    expect(board.locator("[data-testid=wb-sl-today]").locator("..")).to_have_class(
        re.compile("wb-ok")
    )
    expect(board.locator("#wb-queues tr[data-queue=chat]")).to_be_visible()

    screenshot(customer, "chat-demo.png")
    screenshot(agent, "console.png")
    screenshot(board, "wallboard.png")
    agent.set_viewport_size({"width": 390, "height": 844})
    expect(agent.locator("[data-testid=reply-body]")).to_be_visible()
    screenshot(agent, "console-phone.png")

    assert panel.locator("[data-cc=messages]").inner_text().count("refund approved") == 0
    assert dialogs.seen == [], dialogs.seen  # no payload ever ran, on any page
    rows = sql(desk.services.db, "SELECT status, assignee_id FROM ticket WHERE id = :t", t=tid)
    assert rows[0][0] == "open"
