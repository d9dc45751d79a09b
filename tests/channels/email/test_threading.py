"""Replies thread by verified reference or ``[#N]`` only for participants (real Dovecot + SMTP)."""

from __future__ import annotations

import sqlalchemy as sa

from tests.channels.email.conftest import fixture, mail
from tickets.actions._common import TICKET

ANN = "Ann Customer <ann@example.com>"
OUTLOOK_ID = "<DB9PR08MB6588A1C2B3D4E5F6@DB9PR08MB6588.eurprd08.prod.outlook.com>"


def _ticket_of(desk, external_id):
    return desk.rows("SELECT ticket_id FROM message WHERE external_id = :e", e=external_id)[0][0]


async def _solved_ticket_with_reply(desk, clock):
    """Ann's ticket A with our reply, solved more than the reopen window ago; then ticket B."""
    await desk.append(mail(frm=ANN, msgid="<first@example.com>"))
    await desk.drain()
    (a,) = desk.tickets()
    ours = (await desk.reply(a))["Message-ID"]
    solve = sa.update(TICKET).where(TICKET.c.id == a).values(status="solved", solved_at=clock.now)
    desk.svc.db.write_sync(lambda uow: uow.session.execute(solve))
    clock.advance(days=8)  # past the 7-day reopen window: new mail from Ann opens a new ticket
    await desk.append(mail(frm=ANN, subject="Another thing", msgid="<second@example.com>"))
    await desk.drain()
    b = _ticket_of(desk, "<second@example.com>")
    assert b != a
    return a, b, ours


async def test_outgoing_reply_has_a_signed_message_id_and_a_reference_chain(desk):
    await desk.append(mail(frm=ANN, msgid="<first@example.com>"))
    await desk.drain()
    (ticket,) = desk.tickets()
    out = await desk.reply(ticket)
    ours = out["Message-ID"]
    assert desk.keys.verify(ours) == ticket
    assert out["In-Reply-To"] == "<first@example.com>"
    assert out["References"] == "<first@example.com>"
    assert out["Subject"] == f"Re: [#{ticket}] Printer on floor 3 is broken"
    assert out["Reply-To"] == "support@example.test"
    assert out["From"] == "Help Desk <support@example.test>"
    assert "Auto-Submitted" not in out
    row = desk.rows("SELECT external_id, delivery_status FROM message WHERE direction='out'")
    assert [tuple(r) for r in row] == [(ours, "sent")]

    await desk.append(
        fixture(
            "outlook_reply.eml",
            TICKET=ticket,
            IN_REPLY_TO=ours,
            REFERENCES=f"<first@example.com> {ours}",
        )
    )
    await desk.drain()
    second = await desk.reply(ticket)
    assert second["Message-ID"] not in (ours, None)
    assert second["In-Reply-To"].strip() == OUTLOOK_ID
    assert second["References"].split() == ["<first@example.com>", ours, OUTLOOK_ID]
    assert desk.rows("SELECT count(*) FROM ticket")[0][0] == 1
    (html,) = desk.rows("SELECT body_html FROM message WHERE external_id = :e", e=OUTLOOK_ID)[0]
    assert "onerror" not in html and "<style" not in html  # sanitised on ingest


async def test_references_and_subject_tag_pick_the_right_ticket(desk, clock):
    a, _b, ours = await _solved_ticket_with_reply(desk, clock)
    await desk.append(
        fixture("outlook_reply.eml", TICKET=a, IN_REPLY_TO=ours, REFERENCES=ours),
        fixture("gmail_reply_references_only.eml", TICKET=a, REFERENCES=ours),
        mail(frm=ANN, subject=f"Re: [#{a}] one more detail", msgid="<tagged@example.com>"),
    )
    await desk.drain()
    assert _ticket_of(desk, OUTLOOK_ID) == a  # In-Reply-To, and the solved ticket reopens
    assert _ticket_of(desk, "<CAF8z+Jn7rXk9Yq4W2Q@mail.gmail.com>") == a  # References only
    assert _ticket_of(desk, "<tagged@example.com>") == a  # [#N] beats "latest open ticket"
    assert desk.rows("SELECT status FROM ticket WHERE id = :a", a=a)[0][0] == "open"
    assert len(desk.tickets()) == 2


async def test_spoofed_references_never_append_to_someone_elses_ticket(desk, clock):
    a, _b, ours = await _solved_ticket_with_reply(desk, clock)
    forged = ours.replace(f".t{a}.", f".t{a + 1}.")
    fake_token = ours.replace(desk.keys.token(a), "a" * 24)
    await desk.append(
        mail(frm="mallory@evil.example", subject="Re: hi", msgid="<m1@evil.example>",
             headers={"In-Reply-To": ours, "References": ours}),  # genuine id, not a participant
        mail(frm="mallory@evil.example", subject=f"Re: [#{a}]", msgid="<m2@evil.example>"),
        mail(frm="trudy@evil.example", subject="x", msgid="<t1@evil.example>",
             headers={"In-Reply-To": forged}),
        mail(frm=ANN, subject="x", msgid="<ann-forged@example.com>",
             headers={"In-Reply-To": fake_token}),
    )  # fmt: skip
    await desk.drain()
    for external_id in ("<m1@evil.example>", "<m2@evil.example>", "<t1@evil.example>"):
        assert _ticket_of(desk, external_id) != a
    assert _ticket_of(desk, "<m1@evil.example>") == _ticket_of(desk, "<m2@evil.example>")
    reasons = dict(desk.rows("SELECT header_message_id, reason FROM emailreceipt"))
    assert "not a participant" in reasons["<m1@evil.example>"]
    assert "forged reference" in reasons["<t1@evil.example>"]
    assert "forged reference" in reasons["<ann-forged@example.com>"]
    inbound = desk.rows("SELECT author_user_id, direction FROM message WHERE direction != 'out'")
    assert all(r[0] is None and r[1] == "in" for r in inbound)  # never an agent action


async def test_header_injection_through_a_decoded_subject_goes_nowhere(desk):
    await desk.append(fixture("header_injection.eml"))
    await desk.drain()
    (ticket,) = desk.tickets()
    subject = desk.rows("SELECT subject FROM ticket")[0][0]
    assert "\r" not in subject and "\n" not in subject
    out = await desk.reply(ticket)
    _sender, rcpts, raw = desk.sink.received[-1]
    assert rcpts == ["eve@example.com"]
    assert out.get_all("Subject") == [f"Re: [#{ticket}] Invoice Bcc: attacker@evil.example"]
    assert out.get_all("Bcc") is None
    assert b"\nBcc:" not in raw and b"\rBcc:" not in raw


async def test_chinese_charsets_make_readable_tickets(desk):
    await desk.append(
        fixture("gb2312_split_subject.eml"),
        fixture("big5_subject.eml"),
        fixture("iso2022jp_subject.eml"),
    )
    await desk.drain()
    subjects = sorted(r[0] for r in desk.rows("SELECT subject FROM ticket"))
    assert subjects == sorted(
        ["关于朱镕基文集的发票问题", "查詢訂單狀態", "お問い合わせ：配送について"]
    )
    names = sorted(r[0] for r in desk.rows("SELECT name FROM customer"))
    assert names == sorted(["王小明", "陳大文", "山田太郎"])
    assert desk.rows("SELECT language FROM customer WHERE name='王小明'")[0][0] == "zh"


async def test_attachments_are_stored_and_oversized_ones_noted(desk):
    await desk.append(fixture("html_inline_image_attachment.eml"))
    await desk.drain()
    rows = desk.rows("SELECT filename, content_type, size FROM attachment ORDER BY id")
    assert [(r[0], r[1]) for r in rows] == [
        ("attachment-1.png", "image/png"),
        ("发票.pdf", "application/pdf"),
    ]
    html = desk.rows("SELECT body_html FROM message")[0][0]
    assert "<script" not in html and "javascript:" not in html and 'src="cid:shot@x"' in html
