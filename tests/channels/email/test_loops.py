"""RFC 3834 auto-reply rules, DSN detection and the Message-ID tokens (pure)."""

from __future__ import annotations

import pytest

from channels.email.loops import automation_reason
from channels.email.parse import parse_email
from channels.email.threading import ThreadKeys, references_of, subject_ticket
from tests.channels.email.conftest import fixture, mail

KEYS = ThreadKeys("secret-one", "example.test")


@pytest.mark.parametrize(
    ("headers", "sender", "automated"),
    [
        ({}, "ann@example.com", False),
        ({"auto-submitted": "no"}, "ann@example.com", False),
        ({"auto-submitted": "auto-replied"}, "ann@example.com", True),
        ({"auto-submitted": "auto-generated; owner-email=x@y"}, "ann@example.com", True),
        ({"precedence": "bulk"}, "ann@example.com", True),
        ({"precedence": "junk"}, "ann@example.com", True),
        ({"precedence": "list"}, "ann@example.com", True),
        ({"list-id": "<x.example.org>"}, "ann@example.com", True),
        ({"return-path": "<>"}, "ann@example.com", True),
        ({"return-path": "<ann@example.com>"}, "ann@example.com", False),
        ({"x-auto-response-suppress": "All"}, "ann@example.com", False),  # a request, not a mark
        ({}, "MAILER-DAEMON@example.com", True),
        ({}, "no-reply@shop.example", True),
    ],
)
def test_auto_reply_rules(headers, sender, automated):
    assert (automation_reason(headers, sender.lower()) is not None) is automated


@pytest.mark.parametrize(
    "name", ["auto_reply_ooo.eml", "bulk_list.eml", "null_return_path.eml", "dsn_hard_bounce.eml"]
)
def test_corpus_automated_mail_is_recognised(name):
    parsed = parse_email(fixture(name, RCPT="ann@example.com", ORIGINAL="<x@y>", TICKET=1))
    assert automation_reason(parsed.loop_headers, parsed.from_addr) is not None


def test_hard_and_soft_bounces_and_a_forwarded_one():
    ours = KEYS.message_id(7, 70)
    hard = parse_email(
        fixture("dsn_hard_bounce.eml", RCPT="ann@example.com", ORIGINAL=ours, TICKET=7)
    )
    assert hard.dsn is not None and hard.dsn.hard
    assert hard.dsn.original_message_id == ours
    assert hard.dsn.recipients[0].address == "ann@example.com"
    assert hard.dsn.recipients[0].status == "5.1.1"
    soft = parse_email(
        fixture("dsn_soft_delay.eml", RCPT="ann@example.com", ORIGINAL=ours, TICKET=7)
    )
    assert soft.dsn is not None and not soft.dsn.hard
    assert soft.dsn.original_message_id == ours
    assert parse_email(fixture("forwarded_bounce.eml")).dsn is None


def test_message_ids_verify_and_forgeries_do_not():
    ours = KEYS.message_id(1234, 99)
    assert ours.startswith("<cc.r99.t1234.") and ours.endswith("@example.test>")
    assert KEYS.verify(ours) == 1234
    assert not KEYS.is_auto(ours)
    assert KEYS.is_auto(KEYS.message_id(1234, 100, auto=True))
    forged = ours.replace(".t1234.", ".t1235.")
    assert KEYS.verify(forged) is None and KEYS.looks_ours(forged)
    assert ThreadKeys("another-secret", "example.test").verify(ours) is None
    assert len(KEYS.token(1)) == 24 and KEYS.token(1) != KEYS.token(2)


def test_references_order_in_reply_to_first_then_newest_reference_then_subject():
    t5, t6 = KEYS.message_id(5, 1), KEYS.message_id(6, 2)
    forged = KEYS.message_id(8, 3).replace(".t8.", ".t9.")
    raw = mail(
        subject="Re: [#42] help",
        headers={"In-Reply-To": t6, "References": f"<x@gmail.com> {t5} {forged} {t6}"},
    )
    refs = references_of(parse_email(raw), KEYS)
    assert refs.verified == (6, 5)
    assert refs.forged == (forged,)
    assert refs.foreign == ("<x@gmail.com>",)
    assert refs.subject_ticket == 42
    assert subject_ticket("RE: AW: [#7] x") == 7
    assert subject_ticket("no tag #7") is None
