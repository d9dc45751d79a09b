"""Loops and bounces end to end: acknowledgements, RFC 3834 rules, own mail, DSNs."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa

from channels.email.acks import AckCourier
from channels.email.sender import EmailSender
from tests.channels.email.conftest import fixture, mail
from tickets.actions._common import TICKET

ANN = "Ann Customer <ann@example.com>"


@pytest.fixture
def acking(desk):
    desk.config = replace(desk.config, auto_ack=True)
    return desk


def _acks(desk):
    return [desk.sent(i) for i in range(len(desk.sink.received))]


def _close(desk, ticket_id):
    close = sa.update(TICKET).where(TICKET.c.id == ticket_id).values(status="closed")
    desk.svc.db.write_sync(lambda uow: uow.session.execute(close))


async def test_acknowledgement_in_chinese_with_ticket_number_and_loop_header(acking):
    await acking.append(fixture("gb2312_split_subject.eml"))
    await acking.drain()
    (ticket,) = acking.tickets()
    (ack,) = _acks(acking)
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["Subject"] == f"Re: [#{ticket}] 关于朱镕基文集的发票问题"
    assert ack["In-Reply-To"].strip() == "<gb2312-split-1@mail.example.cn>"
    assert acking.keys.is_auto(ack["Message-ID"])
    body = ack.get_content()
    assert "您好" in body and f"#{ticket}" in body
    assert acking.sink.received[0][1] == ["wang.xiaoming@example.cn"]
    status = acking.rows("SELECT delivery_status FROM message WHERE direction='out'")
    assert status[0][0] == "sent"
    first_response = acking.rows("SELECT first_response_at FROM ticket")[0][0]
    assert first_response is None  # an automatic acknowledgement is not an SLA response


async def test_english_acknowledgement_by_default(acking):
    await acking.append(mail(frm=ANN))
    await acking.drain()
    (ack,) = _acks(acking)
    assert "Thank you for contacting us" in ack.get_content()


@pytest.mark.parametrize(
    "raw",
    [
        fixture("auto_reply_ooo.eml"),
        fixture("bulk_list.eml"),
        fixture("null_return_path.eml"),
        mail(frm="no-reply@shop.example"),
        mail(frm="bot@example.com", headers={"Auto-Submitted": "auto-generated"}),
    ],
    ids=["auto-submitted", "bulk-list", "null-return-path", "no-reply", "auto-generated"],
)
async def test_no_acknowledgement_to_automatic_mail(acking, raw):
    await acking.append(raw)
    await acking.drain()
    assert len(acking.tickets()) == 1  # still a ticket: someone may need to look at it
    assert acking.sink.received == []


async def test_one_acknowledgement_per_sender_per_window(acking, clock):
    await acking.append(mail(frm=ANN, msgid="<a1@example.com>"))
    await acking.drain()
    _close(acking, acking.tickets()[-1])
    clock.advance(hours=23)
    await acking.append(mail(frm=ANN, msgid="<a2@example.com>"))
    await acking.drain()
    assert len(acking.tickets()) == 2 and len(acking.sink.received) == 1
    _close(acking, acking.tickets()[-1])
    clock.advance(hours=2)
    await acking.append(mail(frm=ANN, msgid="<a3@example.com>"))
    await acking.drain()
    assert len(acking.tickets()) == 3 and len(acking.sink.received) == 2


async def test_an_autoresponder_bot_cannot_start_a_loop(acking):
    """A bot that answers everything we send (and marks nothing) meets one acknowledgement."""
    await acking.append(mail(frm="bot@example.org", subject="Hello", msgid="<bot-0@example.org>"))
    for round_ in range(1, 6):
        await acking.drain()
        last = acking.sent(-1)
        await acking.append(
            mail(
                frm="bot@example.org",
                subject=f"Re: {last['Subject']}",
                msgid=f"<bot-{round_}@example.org>",
                headers={"In-Reply-To": last["Message-ID"]},
            )
        )
    await acking.drain()
    assert len(acking.sink.received) == 1
    assert len(acking.tickets()) == 1
    assert acking.rows("SELECT count(*) FROM message WHERE direction='in'")[0][0] == 6


async def test_mail_from_our_own_addresses_is_ignored(acking):
    await acking.append(
        mail(frm="Help Desk <support@example.test>", subject="Re: [#1] copy of our reply"),
        mail(frm="notifications@example.test", subject="daily report"),
    )
    await acking.drain()
    assert acking.tickets() == []
    outcomes = [r[0] for r in acking.rows("SELECT outcome FROM emailreceipt")]
    assert outcomes == ["ignored", "ignored"]
    assert acking.sink.received == []


async def test_hard_bounce_notes_the_ticket_and_marks_the_address(acking):
    await acking.append(mail(frm=ANN))
    await acking.drain()
    (ticket,) = acking.tickets()
    ours = (await acking.reply(ticket))["Message-ID"]
    sent_before = len(acking.sink.received)
    await acking.append(fixture("dsn_hard_bounce.eml", RCPT="ann@example.com", ORIGINAL=ours,
                                TICKET=ticket))  # fmt: skip
    await acking.drain()
    assert acking.tickets() == [ticket]  # no new ticket
    (note,) = acking.rows("SELECT body_text FROM message WHERE direction='note'")
    assert "Hard bounce" in note[0] and "5.1.1" in note[0] and "ann@example.com" in note[0]
    assert acking.rows("SELECT undeliverable FROM customerhandle")[0][0] in (True, 1)
    assert len(acking.sink.received) == sent_before  # nothing sent to the MTA
    assert acking.rows("SELECT outcome FROM emailreceipt ORDER BY id")[-1][0] == "bounce"


async def test_soft_bounce_is_a_note_only_and_a_forged_one_changes_nothing(acking):
    await acking.append(mail(frm=ANN))
    await acking.drain()
    (ticket,) = acking.tickets()
    ours = (await acking.reply(ticket))["Message-ID"]
    forged = ours.replace(acking.keys.token(ticket), "b" * 24)
    await acking.append(
        fixture("dsn_soft_delay.eml", RCPT="ann@example.com", ORIGINAL=ours, TICKET=ticket),
        fixture("dsn_hard_bounce.eml", RCPT="ann@example.com", ORIGINAL=forged, TICKET=ticket),
    )
    await acking.drain()
    notes = acking.rows("SELECT body_text FROM message WHERE direction='note'")
    assert len(notes) == 1 and "Delivery report" in notes[0][0] and "4.4.7" in notes[0][0]
    assert acking.rows("SELECT undeliverable FROM customerhandle")[0][0] in (False, 0)
    assert acking.tickets() == [ticket]
    kept = acking.rows("SELECT raw_sha256 FROM emailreceipt WHERE outcome='bounce'")
    assert len(kept) == 2 and all(r[0] for r in kept)  # raw reports are kept


async def test_forwarded_bounce_is_ordinary_mail(acking):
    await acking.append(fixture("forwarded_bounce.eml"))
    await acking.drain()
    assert len(acking.tickets()) == 1
    assert acking.rows("SELECT count(*) FROM message WHERE direction='in'")[0][0] == 1
    assert len(acking.sink.received) == 1  # a person wrote it: acknowledged


async def test_acknowledgement_refused_for_now_goes_back_to_the_job(acking):
    handed: list[int] = []

    async def enqueue(message_id: int) -> None:
        handed.append(message_id)

    acking.sink.handler.refuse = "451 4.7.1 greylisted, try again later"
    courier = AckCourier(acking.svc.db, EmailSender(acking.config, acking.keys), enqueue)
    await acking.append(mail(frm=ANN))
    await acking.drain(acking.poller(acks=courier))
    ((message_id, status, error),) = acking.rows(
        "SELECT id, delivery_status, delivery_error FROM message WHERE direction='out'"
    )
    assert status == "queued" and "451" in error
    assert handed == [message_id]  # deliver_message retries it (5 s, 30 s, 2 min, 10 min)
