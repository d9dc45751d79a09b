"""Demo data: two teams, eight agents, queues, SLA policies and tickets in English and Chinese."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from contact_center.auth import PasswordHashing
from contact_center.db import Actor, Database, UnitOfWork
from tickets.actions import IngestPolicy, admin, ingest
from tickets.actions._common import USER
from tickets.contact import InboundContact
from tickets.domain import Channel

__all__ = ["DEMO_PASSWORD", "DemoLogin", "seed_demo"]

DEMO_PASSWORD = "demo-password"  # noqa: S105  (printed for the demo; never used outside it)
CLI = Actor("cli")


@dataclass(frozen=True, slots=True)
class DemoLogin:
    """A login to print."""

    email: str
    name: str
    role: str


_AGENTS = [
    # name, email, team, skills, language
    ("Alice Walker", "alice", "Billing", {"billing": 5, "lang:en": 5}, "en"),
    ("Bob Martin", "bob", "Billing", {"billing": 3, "technical": 2, "lang:en": 5}, "en"),
    ("Li Na", "lina", "Billing", {"billing": 4, "lang:zh": 5, "lang:en": 3}, "zh"),
    ("Wang Wei", "wangwei", "Billing", {"billing": 2, "lang:zh": 5}, "zh"),
    ("Carol Chen", "carol", "Technical", {"technical": 5, "lang:en": 5, "lang:zh": 4}, "en"),
    ("David Kim", "david", "Technical", {"technical": 4, "lang:en": 5}, "en"),
    ("Zhang Min", "zhangmin", "Technical", {"technical": 3, "lang:zh": 5}, "zh"),
    ("Eve Novak", "eve", "Technical", {"technical": 2, "billing": 2, "lang:en": 4}, "en"),
]

_CONTACTS = [
    (Channel.EMAIL, "maria@example.com", "Maria Lopez", "Invoice charged twice",
     "Hello, my invoice INV-2291 was charged twice this month.", "billing", "en"),
    (Channel.CHAT, "visitor-7f3a", "Tom", "", "Hi, the app crashes when I upload a photo.",
     "technical", "en"),
    (Channel.SMS, "+14155550123", "", "", "Is my order #5531 shipped yet?", "billing", "en"),
    (Channel.EMAIL, "wang.fang@example.cn", "王芳", "发票金额有误",
     "您好，我的发票金额比合同多了两百元，请帮忙核对。谢谢！", "billing", "zh"),
    (Channel.WHATSAPP, "+8613800138000", "陈先生", "", "你好，软件登录时一直提示密码错误。",
     "technical", "zh"),
    (Channel.VOICE, "+442079460958", "James Brown", "Call from +44 20 7946 0958",
     "Inbound call: caller asked about upgrading the plan.", "billing", "en"),
    (Channel.API, "crm-4711", "ACME GmbH", "Integration error",
     "Webhook deliveries to our endpoint fail with HTTP 500 since 09:00.", "technical", "en"),
    (Channel.CHAT, "visitor-91bc", "小李", "", "请问你们支持微信支付吗？", "billing", "zh"),
]  # fmt: skip


def _already_seeded(uow: UnitOfWork) -> bool:
    return uow.session.execute(sa.select(USER.c.id).limit(1)).first() is not None


def seed_demo(db: Database, policy: IngestPolicy, hashing: PasswordHashing) -> list[DemoLogin]:
    """Create the demo data once; returns the logins (password :data:`DEMO_PASSWORD`)."""
    if db.write_sync(_already_seeded):
        return _logins(db)
    pw = hashing.hash(DEMO_PASSWORD)
    live = db.write_sync(
        admin.create_sla_policy,
        CLI,
        {"name": "Live: answer in 20 s", "answer_seconds": 20, "first_response_seconds": None},
    )
    asyn = db.write_sync(
        admin.create_sla_policy,
        CLI,
        {
            "name": "Async: respond in 1 day",
            "answer_seconds": None,
            "first_response_seconds": 86400,
        },
    )
    teams = {n: db.write_sync(admin.create_team, CLI, n)["id"] for n in ("Billing", "Technical")}
    # every queue keeps both promises: chat and voice get the live policy, the rest the async one
    queues = {}
    for qname, qteam, qskill in (("general", "Billing", None), ("billing", "Billing", "billing"),
                                 ("technical", "Technical", "technical"),
                                 ("chat", "Billing", None)):  # fmt: skip
        queues[qname] = db.write_sync(
            admin.create_queue,
            CLI,
            {
                "name": qname,
                "team_id": teams[qteam],
                "required_skills": {qskill: 1} if qskill else {},
                "sla_policy_id": asyn["id"],
                "live_sla_policy_id": live["id"],
            },
        )["id"]
    users: list[tuple[str, str, str, str | None, dict[str, int], str, list[int]]] = [
        ("Ada Admin", "admin", "admin", None, {}, "en", [])
    ]
    users += [("Sam Supervisor", "sam", "supervisor", "Billing", {}, "en", [])]
    users += [("Zhou Jie", "zhoujie", "supervisor", "Technical", {}, "zh", [])]
    for agent_name, agent_login, agent_team, agent_skills, agent_lang in _AGENTS:
        qs = [queues["general"], queues["chat"], queues[agent_team.lower()]]
        users.append((agent_name, agent_login, "agent", agent_team, agent_skills, agent_lang, qs))
    for name, login, role, team, skills, lang, queue_ids in users:
        db.write_sync(
            admin.create_user,
            CLI,
            {
                "email": f"{login}@demo.test",
                "name": name,
                "password_hash": pw,
                "role": role,
                "team_id": teams[team] if team else None,
                "skills": skills,
                "capacity": {"chat": 3, "voice": 1, "sms": 5, "email": 10},
                "language": lang,
            },
            queue_ids,
        )
    for i, (channel, handle, name, subject, body, queue, lang) in enumerate(_CONTACTS):
        contact = InboundContact(
            channel=channel,
            external_id=f"demo-{i}",
            handle=handle,
            customer_name=name,
            subject=subject,
            body_text=body,
            language=lang,
            queue="chat" if channel is Channel.CHAT else queue,
            required_skills={f"lang:{lang}": 1},
        )
        db.write_sync(ingest, contact, policy, Actor("demo"))
    return _logins(db)


def _logins(db: Database) -> list[DemoLogin]:
    def read(session: sa.Connection) -> list[DemoLogin]:
        rows = session.execute(
            sa.select(USER.c.email, USER.c.name, USER.c.role).order_by(USER.c.id)
        )
        return [DemoLogin(r[0], r[1], r[2]) for r in rows]

    return db.read_sync(read)
