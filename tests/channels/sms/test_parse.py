"""Pure parsing of Messaging webhooks: SMS, MMS, WhatsApp, keywords, status callbacks."""

from __future__ import annotations

import pytest

from channels.sms.parse import (
    Keyword,
    delivery_status,
    keyword_of,
    parse_message_status,
    parse_sms,
    signed_url,
)
from contact_center.errors import ValidationError
from tests.channels.twilio_fixtures import sms_params
from tickets.domain import Channel, DeliveryStatus


def test_an_sms_becomes_a_contact_of_the_sms_channel():
    got = parse_sms(sms_params("My parcel did not arrive", MessageSid="SM" + "a" * 32),
                    queue="billing")  # fmt: skip
    c = got.contact
    assert c.channel is Channel.SMS and c.external_id == "SM" + "a" * 32
    assert c.handle == "+14155550101" and c.body_text == "My parcel did not arrive"
    assert c.queue == "billing" and got.media == () and got.keyword is None


def test_whatsapp_media_and_profile_name():
    params = sms_params("", sender="whatsapp:+8613800138000", NumMedia="2",
                        MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
                        MediaContentType0="image/jpeg",
                        MediaUrl1="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2",
                        MediaContentType1="application/pdf", ProfileName="王小明",
                        WaId="8613800138000")  # fmt: skip
    got = parse_sms(params)
    assert got.contact.channel is Channel.WHATSAPP
    assert got.contact.handle == "whatsapp:+8613800138000"
    assert got.contact.customer_name == "王小明"
    assert [m.content_type for m in got.media] == ["image/jpeg", "application/pdf"]
    assert got.keyword is None  # WhatsApp has no carrier keywords


@pytest.mark.parametrize(
    ("body", "word"),
    [("STOP", Keyword.STOP), (" stop ", Keyword.STOP), ("Unsubscribe.", Keyword.STOP),
     ("STOPALL", Keyword.STOP), ("cancel", Keyword.STOP), ("START", Keyword.START),
     ("unstop", Keyword.START), ("Yes", Keyword.START), ("HELP", Keyword.HELP),
     ("info?", Keyword.HELP), ("please stop calling me", None), ("STOP IT", None), ("", None)],
)  # fmt: skip
def test_carrier_keywords_are_whole_messages(body, word):
    assert keyword_of(body) == word
    assert parse_sms(sms_params(body)).keyword == word


def test_a_keyword_with_media_is_a_message():
    params = sms_params("STOP", NumMedia="1", MediaUrl0="https://api.twilio.com/x",
                        MediaContentType0="image/png")  # fmt: skip
    assert parse_sms(params).keyword is None


@pytest.mark.parametrize("missing", ["MessageSid", "From"])
def test_missing_fields_are_refused(missing):
    params = sms_params("hi")
    del params[missing]
    with pytest.raises(ValidationError):
        parse_sms(params)


def test_a_sid_of_the_wrong_shape_is_refused():
    with pytest.raises(ValidationError):
        parse_sms(sms_params("hi", MessageSid="SM123"))


@pytest.mark.parametrize(
    ("twilio", "ours"),
    [("accepted", "queued"), ("queued", "queued"), ("sending", "sending"), ("sent", "sent"),
     ("delivered", "delivered"), ("read", "delivered"), ("undelivered", "failed"),
     ("failed", "failed"), ("canceled", "failed"), ("receiving", None), ("received", None)],
)  # fmt: skip
def test_twilio_statuses_map_to_delivery_states(twilio, ours):
    got = delivery_status(twilio)
    assert (got.value if got else None) == ours


def test_a_failed_status_carries_the_error():
    report = parse_message_status({"MessageSid": "SM" + "b" * 32, "MessageStatus": "undelivered",
                                   "ErrorCode": "30003"})  # fmt: skip
    assert report is not None and report.status is DeliveryStatus.FAILED
    assert report.error == "Twilio undelivered, error 30003"


def test_the_signed_url_comes_from_the_public_base_only():
    assert signed_url("https://desk.example.test/", "/webhooks/twilio/sms?a=1&b=%20") == (
        "https://desk.example.test/webhooks/twilio/sms?a=1&b=%20"
    )


def test_signature_check_with_the_library_semantics():
    from twilio.request_validator import RequestValidator

    from channels.sms.client import SignatureCheck

    check, url = SignatureCheck("secret"), "https://desk.example.test/webhooks/twilio/sms"
    params = {"Body": "hi", "From": "+14155550101"}
    good = RequestValidator("secret").compute_signature(url, params)
    assert check.valid(url, params, good)
    assert check.valid("https://desk.example.test:443/webhooks/twilio/sms", params, good)
    assert not check.valid(url, {**params, "Body": "ho"}, good)
    assert not check.valid(url, params, "")
    assert not check.valid(url, params, good, "key=k1,algorithm=HMAC_SHA3_512")
    sha256 = RequestValidator("secret").compute_signature(url, params, "HMAC_SHA256")
    assert check.valid(url, params, sha256, "algorithm=HMAC_SHA256")
