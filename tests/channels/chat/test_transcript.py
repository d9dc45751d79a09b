"""A transcript on request: through the job and the real email sender to a real SMTP server."""

from __future__ import annotations

import asyncio
from email import message_from_bytes, policy
from typing import Any

import pytest

from contact_center.loopback import free_port
from tests.channels.chat._visitors import Visitor, cid
from tests.conftest import count
from tests.smtp_server import ClosingController


class Sink:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.mail: list[tuple[list[str], bytes]] = []
        self.arrived = asyncio.Event()
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mail.append((list(envelope.rcpt_tos), envelope.content))
        self.loop.call_soon_threadsafe(self.arrived.set)
        return "250 OK"


@pytest.fixture
async def sink():
    s = Sink(asyncio.get_running_loop())
    s.port = free_port()
    controller = ClosingController(s, hostname="127.0.0.1", port=s.port)
    controller.start()
    yield s
    controller.stop()


@pytest.fixture
def chat_overrides(sink):
    """The app sends mail through the sink."""
    return {"smtp_host": "127.0.0.1", "smtp_port": sink.port, "smtp_tls": "none",
            "email_from": "Help Desk <help@example.test>"}  # fmt: skip


async def test_a_visitor_gets_the_transcript_by_email(sink, server, services, agent):
    v = Visitor()
    await v.connect(server.port, lang="zh-CN")
    ack = await v.call("start", {"client_id": cid(), "name": "王芳", "body": "你好，发票的问题"})
    tid = ack["ticket_id"]
    await agent.wait_for("offer", lambda d: d["ticket_id"] == tid)
    await agent.call("accept", {"ticket_id": tid})
    await agent.call("reply", {"ticket_id": tid, "body": "您好，我来看看", "client_id": cid()})
    await agent.call("reply", {"ticket_id": tid, "body": "ok", "client_id": cid()})
    bad = await v.call("transcript", {"email": "not an address"})
    assert bad["ok"] is False and bad["error"]["code"] == "invalid_request"
    sent = await v.call("transcript", {"email": "Fang@Example.cn"})
    assert sent == {"ok": True, "ticket_id": tid}
    await asyncio.wait_for(sink.arrived.wait(), 10)
    rcpt, raw = sink.mail[0]
    assert rcpt == ["fang@example.cn"]
    mail = message_from_bytes(raw, policy=policy.default)
    text = mail.get_content()
    assert "聊天记录" in str(mail["Subject"]) and "你好，发票的问题" in text
    assert "您好，我来看看" in text and "Pre-chat" not in text  # notes never leave
    for _ in range(2):
        assert (await v.call("transcript", {"email": "fang@example.cn"}))["ok"]
    refused = await v.call("transcript", {"email": "fang@example.cn"})
    assert refused["ok"] is False and refused["error"]["code"] == "rate_limited"
    assert count(services.db, "event", "type = 'chat.transcript' AND ticket_id = :t", t=tid) == 3
    await v.close()
