"""Parsing real-world mail (pure): CPython's corpus, Chinese/Japanese charsets, damage."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import test as cpython_tests

from channels.email.headers import decode_header_value
from channels.email.parse import ParseLimits, UnparseableMail, parse_email
from tests.channels.email.conftest import fixture, mail

CPYTHON_DATA = Path(os.path.dirname(cpython_tests.__file__)) / "test_email" / "data"
CPYTHON_CORPUS = sorted(CPYTHON_DATA.glob("msg_*.txt"))


@pytest.mark.skipif(not CPYTHON_CORPUS, reason="this Python has no test/test_email/data")
@pytest.mark.parametrize("path", CPYTHON_CORPUS, ids=lambda p: p.name)
def test_cpython_corpus_parses_or_is_cleanly_unparseable(path):
    raw = path.read_bytes()
    try:
        parsed = parse_email(raw)
    except UnparseableMail as err:
        reason = err.reason
        parsed = None
    if parsed is None:
        assert "sender" in reason
        return
    assert "@" in parsed.from_addr
    for value in (parsed.subject, parsed.from_name, *(a.filename for a in parsed.attachments)):
        assert not any(c in value for c in "\r\n\x00")
    assert "\x00" not in parsed.body_text
    assert len(parsed.content_hash) == 64


@pytest.mark.parametrize(
    ("name", "subject", "sender", "body_part", "language"),
    [
        ("gb2312_split_subject.eml", "关于朱镕基文集的发票问题", "王小明", "朱镕基文集", "zh"),
        ("big5_subject.eml", "查詢訂單狀態", "陳大文", "何時出貨", "zh"),
        ("gb18030_q_subject.eml", "退款申请𠀀", "", "订单号 20260302", "zh"),
        ("iso2022jp_subject.eml", "お問い合わせ：配送について", "山田太郎", "配送状況", "ja"),
        ("mixed_8bit_subject_no_msgid.eml", "Grüße aus München", "Müller", "äöü", None),
    ],
)
def test_asian_and_broken_charsets_decode(name, subject, sender, body_part, language):
    parsed = parse_email(fixture(name))
    assert parsed.subject == subject
    assert parsed.from_name == sender
    assert body_part in parsed.body_text
    assert parsed.language == language


def test_multibyte_character_split_across_encoded_words_is_joined():
    # GB2312 label on GBK text, 7 bytes in the first word: 镕 (GBK only) survives too.
    raw = fixture("gb2312_split_subject.eml")
    assert b"?=\r\n =?GB2312?B?" in raw
    assert parse_email(raw).subject == "关于朱镕基文集的发票问题"


def test_decoded_headers_never_carry_line_breaks():
    parsed = parse_email(fixture("header_injection.eml"))
    assert parsed.subject == "Invoice Bcc: attacker@evil.example"
    assert parsed.from_name == "Eve Bcc: x@evil.example"
    assert decode_header_value("=?utf-8?Q?a=0D=0Ab=00c?=") == "a b c"


def test_html_mail_keeps_inline_image_and_decoded_attachment_name():
    parsed = parse_email(fixture("html_inline_image_attachment.eml"))
    names = [a.filename for a in parsed.attachments]
    assert names == ["attachment-1.png", "发票.pdf"]
    assert parsed.attachments[0].content_type == "image/png"
    assert "<script>" in (parsed.body_html or "")  # stored only after ingest sanitises it
    assert parsed.body_text.startswith("See the screenshot:")


def test_attachment_over_the_limit_is_skipped_with_a_reason():
    parsed = parse_email(fixture("html_inline_image_attachment.eml"), ParseLimits(50, 20))
    assert [a.filename for a in parsed.attachments] == ["发票.pdf"]  # 16 bytes
    assert len(parsed.skipped) == 1 and parsed.skipped[0].startswith("attachment-1.png: ")


def test_malformed_mime_reads_what_it_can():
    parsed = parse_email(fixture("malformed_mime.eml"))
    assert parsed.subject == "First subject"  # duplicate header: the first one counts
    assert "Readable part with a NUL" in parsed.body_text
    assert "\x00" not in parsed.body_text
    assert parsed.date is None
    assert "CloseBoundaryNotFoundDefect" in parsed.defects


def test_no_sender_is_unparseable():
    with pytest.raises(UnparseableMail) as err:
        parse_email(fixture("malformed_no_sender.eml"))
    assert "sender" in err.value.reason


def test_thousand_nested_multiparts_do_not_crash():
    depth = 1000
    head = b"From: deep@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
    body = b""
    for i in range(depth):
        body += f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'.encode()
    body += b"Content-Type: text/plain\r\n\r\ninnermost\r\n"
    parsed = parse_email(head + body)  # the stdlib parser recurses; we fall back to headers
    assert parsed.from_addr == "deep@example.com"
    assert parsed.subject == "deep"
    assert parsed.body_text.startswith("[MIME structure unreadable (RecursionError)")
    assert parsed.defects and "MIME structure unreadable" in parsed.defects[0]


def test_two_megabyte_header_line_and_nul_bytes():
    raw = (
        b"From: big@example.com\r\nX-Long: "
        + b"a" * 2_000_000
        + b"\r\nSubject: x\x00y\r\n\r\nhi\r\n"
    )
    parsed = parse_email(raw)
    assert parsed.subject == "xy"
    assert parsed.body_text == "hi"


def test_content_hash_ignores_transport_headers_but_not_content():
    base = mail(msgid="<same@example.com>", body="one")
    relayed = b"Received: from mx2 by mx1; Mon, 2 Mar 2026\r\nDelivered-To: other@x\r\n" + base
    assert parse_email(base).content_hash == parse_email(relayed).content_hash
    other = mail(msgid="<same@example.com>", body="two")
    assert parse_email(base).content_hash != parse_email(other).content_hash


def test_message_ids_are_normalised_and_references_ordered():
    raw = mail(
        msgid="  <abc@x>  ", headers={"In-Reply-To": "<p@x>", "References": "<a@x>\r\n <b@x>"}
    )
    parsed = parse_email(raw)
    assert parsed.message_id == "<abc@x>"
    assert parsed.in_reply_to == ("<p@x>",)
    assert parsed.references == ("<a@x>", "<b@x>")
