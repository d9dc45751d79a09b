"""The chat channel's pure parts: forms, language, identity, files, limits, tokens, waits."""

from __future__ import annotations

import pytest

from channels.chat.limits import RateLimiter
from channels.chat.parse import (
    AttachmentForm,
    OfflineForm,
    StartForm,
    browser_language,
    chat_contact,
    check_attachment,
    identity_handle,
    identity_hash,
    offline_contact,
    parse_form,
    verified_handle,
)
from channels.chat.tokens import Visitor, VisitorTokens
from channels.chat.transcript import format_transcript
from contact_center.errors import PayloadTooLarge, ValidationError
from tickets.domain import Channel, HandleKind


@pytest.mark.parametrize(("tag", "lang"), [
    ("zh-CN", "zh-CN"), ("zh", "zh-CN"), ("zh-Hans-CN", "zh-CN"), ("ZH-tw", "zh-CN"),
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"), ("en-GB,zh;q=0.5", "en"), ("de", "en"),
    ("zhx", "en"), ("", "en"), (None, "en"),
])  # fmt: skip
def test_language_comes_from_the_browser(tag, lang):
    assert browser_language(tag) == lang


def test_forms_trim_validate_and_refuse_unknown_fields():
    form = parse_form(StartForm, {"client_id": "abcdefgh12", "name": "  Ann ", "body": " hi ",
                                  "email": "Ann@Example.COM"})  # fmt: skip
    assert (form.name, form.body, form.email) == ("Ann", "hi", "ann@example.com")
    assert parse_form(StartForm, {"client_id": "abcdefgh12", "name": "A", "body": "x",
                                  "email": ""}).email is None  # fmt: skip
    for bad in (None, [], {"client_id": "short", "name": "A", "body": "x"},
                {"client_id": "abcdefgh12", "name": "", "body": "x"},
                {"client_id": "abcdefgh12", "name": "A", "body": "   "},
                {"client_id": "abcdefgh12", "name": "A", "body": "x", "email": "nope"},
                {"client_id": "abcdefgh12", "name": "A", "body": "x", "role": "agent"},
                {"client_id": "abc/../defgh", "name": "A", "body": "x"}):  # fmt: skip
        with pytest.raises(ValidationError):
            parse_form(StartForm, bad)
    with pytest.raises(ValidationError) as err:
        parse_form(OfflineForm, {"client_id": "abcdefgh12", "name": "A", "body": "x"})
    assert "email" in err.value.fields


def test_contacts_go_through_ingest_shapes():
    c = chat_contact("v-abc", "abcdefgh12", "hello", queue="chat", name="Ann", language="en")
    assert c.channel is Channel.CHAT and c.handle_kind is HandleKind.CHAT
    assert c.external_id == "v-abc:abcdefgh12" and c.customer_name == "Ann"
    form = parse_form(OfflineForm, {"client_id": "abcdefgh12", "name": "王芳", "lang": "zh",
                                    "email": "f@example.cn", "body": "请回复\n谢谢"})  # fmt: skip
    off = offline_contact("v-abc", form, queue=None)
    assert off.channel is Channel.EMAIL and off.handle == "f@example.cn"
    assert off.subject == "请回复" and off.language == "zh-CN"
    assert off.external_id == "chat-offline:v-abc:abcdefgh12"


def test_identity_is_an_hmac_of_the_customer_id():
    h = identity_hash("s3cret", "cust-42")
    assert len(h) == 64
    assert verified_handle("s3cret", {"customer_id": "cust-42", "hash": h.upper()}) == "id:cust-42"
    assert identity_handle("ann@example.com").startswith("idh:")  # not a valid handle verbatim
    for secret, claim in (("s3cret", {"customer_id": "cust-43", "hash": h}),
                          ("other", {"customer_id": "cust-42", "hash": h}),
                          ("", {"customer_id": "cust-42", "hash": h}),
                          ("s3cret", {"customer_id": "cust-42"}),
                          ("s3cret", "cust-42")):  # fmt: skip
        with pytest.raises(ValidationError):
            verified_handle(secret, claim)


def _file(name: str, kind: str, data: bytes) -> AttachmentForm:
    return AttachmentForm(client_id="abcdefgh12", filename=name, content_type=kind, data=data)


def test_attachments_must_be_what_they_claim_and_small():
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 10
    ok = check_attachment(_file("C:\\Users\\ann\\shot\x07.png", "IMAGE/PNG", png), 100)
    assert (ok.filename, ok.content_type) == ("shot.png", "image/png")
    assert check_attachment(_file("a.webp", "image/webp", b"RIFF\0\0\0\0WEBPVP8 "), 100)
    assert check_attachment(_file("n.txt", "text/plain", "你好".encode()), 100)
    for form in (_file("a.svg", "image/svg+xml", b"<svg/>"), _file("a.html", "text/html", b"<b>"),
                 _file("a.png", "image/png", b"GIF89a..."), _file("a.txt", "text/plain", b"\xff"),
                 _file("a.webp", "image/webp", b"RIFF\0\0\0\0AVI "),
                 _file("e.png", "image/png", b"")):  # fmt: skip
        with pytest.raises(ValidationError):
            check_attachment(form, 100)
    with pytest.raises(PayloadTooLarge):
        check_attachment(_file("big.png", "image/png", png + b"\x00" * 100), 100)


def test_rate_limiter_refills_with_explicit_time():
    lim = RateLimiter(per_minute=60, burst=3, max_keys=2)
    assert [lim.allow("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert lim.allow("a", 1.0) is True and lim.allow("a", 1.0) is False  # one a second
    assert lim.allow("b", 0.0) and lim.allow("c", 0.0)  # "a" is forgotten (LRU bound)
    assert [lim.allow("a", 1.0) for _ in range(4)] == [True, True, True, False]
    with pytest.raises(ValueError):
        RateLimiter(0, 1)


def test_visitor_tokens_are_signed_names():
    tokens = VisitorTokens("key-one")
    v = tokens.new_visitor()
    assert v.handle.startswith("v-") and len(v.handle) > 20 and not v.verified
    assert tokens.read(tokens.issue(v)) == v
    assert tokens.read(tokens.issue(Visitor("id:c1", True))) == Visitor("id:c1", True)
    assert tokens.new_visitor() != v
    for bad in (None, "", 42, "x" * 600, tokens.issue(v)[:-2] + "zz",
                VisitorTokens("key-two").issue(v)):  # fmt: skip
        assert tokens.read(bad) is None
    assert VisitorTokens("key-one", ttl_seconds=-1).read(tokens.issue(v)) is None  # expired


def test_transcript_text_is_plain_and_localised():
    text = format_transcript([("09:00", "您", "你好\n<b>x</b>", ["a.png"])], "zh-CN")
    assert text.startswith("以下是") and "[09:00] 您:\n  你好\n  <b>x</b>\n  (文件: a.png)" in text
