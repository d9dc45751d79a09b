"""Signatures match the Standard Webhooks vector; the SSRF guard refuses internal targets
unless the operator allow-lists them; Retry-After parsing."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime

import pytest

from contact_center.errors import ValidationError
from contact_center.settings import Settings
from contact_center.webhooks.delivery import parse_retry_after
from contact_center.webhooks.signing import new_secret, sign, signature_header, verify
from contact_center.webhooks.ssrf import AllowList, check_url, is_public, resolve_allowed


def test_standard_webhooks_published_vector():
    sig = sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
               1614265330, b'{"test": 2432232314}')  # fmt: skip
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_rotation_header_carries_both_and_verify_rejects_tampering():
    old, new = new_secret(), new_secret()
    header = signature_header([new, old], "msg_1", 1000, b"{}")
    assert verify(old, "msg_1", 1000, b"{}", header, now=1000)
    assert verify(new, "msg_1", 1000, b"{}", header, now=1000)
    assert not verify(new, "msg_1", 1000, b'{"x":1}', header, now=1000)
    assert not verify(new, "msg_1", 1000, b"{}", header, now=1000 + 301)
    assert not verify(new_secret(), "msg_1", 1000, b"{}", header, now=1000)


INTERNAL = [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0",  # noqa: S104  (an address to refuse, not one we bind to)
    "224.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "2002:7f00:1::",
    "2001:0:4136:e378:8000:63bf:80ff:fffe", "64:ff9b::a00:1",
]  # fmt: skip


@pytest.mark.parametrize("ip", INTERNAL)
def test_internal_addresses_are_not_public(ip):
    assert not is_public(ipaddress.ip_address(ip))


@pytest.mark.parametrize("ip", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are(ip):
    assert is_public(ipaddress.ip_address(ip))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "2130706433", "0x7f.1", "0177.0.0.1",
                                  "[::1]", "[::ffff:7f00:1]"])  # fmt: skip
def test_resolution_refuses_loopback_in_any_spelling(host):
    _, h, port = check_url(f"http://{host}:8080/x")
    with pytest.raises(ValidationError) as err:
        resolve_allowed(h, port, allow_private=False)
    assert err.value.fields["url"] in ("private address", "forbidden address")


def _refusal(host: str, **kw) -> str:
    with pytest.raises(ValidationError) as err:
        resolve_allowed(host, 80, **kw)
    return err.value.fields["url"]


def _dns(answers: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        return answers[host.lower()]

    return resolve


LOCAL = AllowList.parse("127.0.0.1/32, 10.20.0.0/16, fd12:3456::/48, crm.internal")


def test_private_needs_the_operator_allow_list_and_the_subscription():
    assert _refusal("127.0.0.1", allow_private=True) == "not allow-listed"  # no operator list
    assert _refusal("127.0.0.1", allow_private=False, allow=LOCAL) == "private address"
    assert str(resolve_allowed("127.0.0.1", 80, allow_private=True, allow=LOCAL)) == "127.0.0.1"
    assert _refusal("10.21.0.1", allow_private=True, allow=LOCAL) == "not allow-listed"
    assert str(resolve_allowed("fd12:3456::7", 80, allow_private=True, allow=LOCAL)) == (
        "fd12:3456::7"
    )
    mapped = _dns({"v6.test": ["::ffff:127.0.0.1"]})
    assert resolve_allowed("v6.test", 80, allow_private=True, allow=LOCAL, resolve=mapped)


def test_allow_listed_host_names_match_the_url_host_not_the_address():
    dns = _dns({"crm.internal": ["10.99.0.5"], "other.internal": ["10.99.0.5"]})
    ok = resolve_allowed("CRM.internal", 80, allow_private=True, allow=LOCAL, resolve=dns)
    assert str(ok) == "10.99.0.5"
    assert _refusal("other.internal", allow_private=True, allow=LOCAL, resolve=dns) == (
        "not allow-listed"
    )


@pytest.mark.parametrize("answer", [
    ["169.254.169.254"], ["fd00:ec2::254"], ["fe80::1"], ["::ffff:169.254.169.254"],
    ["127.0.0.1", "169.254.1.1"],
])  # fmt: skip
def test_metadata_and_link_local_are_refused_whatever_is_allowed(answer):
    dns = _dns({"crm.internal": answer})
    wide = AllowList.parse("crm.internal, 127.0.0.0/8")
    assert _refusal("crm.internal", allow_private=True, allow=wide, resolve=dns) == (
        "forbidden address"
    )


def test_every_answer_is_checked_and_bad_answers_are_errors():
    mixed = _dns({"mixed.test": ["93.184.216.34", "10.99.0.1"]})
    assert _refusal("mixed.test", allow_private=True, allow=LOCAL, resolve=mixed) == (
        "not allow-listed"
    )
    assert _refusal("x.test", allow_private=True, resolve=_dns({"x.test": []})) == "dns"
    assert _refusal("x.test", allow_private=True, resolve=_dns({"x.test": ["nonsense"]})) == "dns"
    assert _refusal("no-such-host.invalid", allow_private=False) == "dns"


@pytest.mark.parametrize(("entry", "says"), [
    ("10.0.0.5/8", "host bits set"), ("10.0.0.0/33", "neither a CIDR"),
    ("not a host", "neither a CIDR"), ("2130706433", "neither a CIDR"),
    ("0.0.0.0/0", "overlaps 169.254.0.0/16"), ("169.254.169.254", "overlaps"),
    ("::/0", "overlaps fe80::/10"), ("fd00:ec2::/32", "overlaps fd00:ec2::254"),
])  # fmt: skip
def test_a_bad_allow_list_entry_stops_the_start_with_its_reason(entry, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        AllowList.parse(f"127.0.0.1, {entry}")
    with pytest.raises(ValueError, match="CC_WEBHOOK_ALLOW_CIDRS"):
        Settings.from_env({"CC_WEBHOOK_ALLOW_CIDRS": entry})


def test_the_allow_list_defaults_to_empty_and_ignores_blank_entries():
    assert not AllowList.parse(Settings().webhook_allow_cidrs)
    parsed = AllowList.parse(" 10.1.0.0/16 ,, [::1], Hooks.Example.")
    assert [str(n) for n in parsed.networks] == ["10.1.0.0/16", "::1/128"]
    assert parsed.hosts == {"hooks.example"}


@pytest.mark.parametrize(("value", "seconds"), [
    ("120", 120.0), (" 7 ", 7.0), ("Mon, 02 Mar 2026 09:10:00 GMT", 600.0),
    ("Mon, 02 Mar 2026 08:00:00 GMT", 0.0), ("soon", None), ("", None), (None, None),
])  # fmt: skip
def test_retry_after_takes_seconds_or_an_http_date(value, seconds):
    assert parse_retry_after(value, datetime(2026, 3, 2, 9, 0, tzinfo=UTC)) == seconds


@pytest.mark.parametrize("url", ["ftp://example.com/x", "javascript:alert(1)", "http://user:pw@example.com/",
                                 "http:///nohost", "http://example.com:99999/"])  # fmt: skip
def test_bad_urls(url):
    with pytest.raises(ValidationError):
        check_url(url)
