"""The client address behind our own proxies (CC_TRUSTED_PROXIES), and only behind them."""

from __future__ import annotations

import pytest

from contact_center.clientaddr import Networks, client_address
from contact_center.settings import Settings

PROXIES = Networks.parse("127.0.0.1, 10.0.0.0/8, fd00::/8")


def test_a_peer_that_is_not_our_proxy_is_the_client_whatever_it_forwards():
    assert client_address("203.0.113.9", "198.51.100.1", PROXIES) == "203.0.113.9"
    assert client_address("203.0.113.9", None, Networks()) == "203.0.113.9"
    assert client_address("127.0.0.1", "198.51.100.1", Networks()) == "127.0.0.1"
    assert client_address(None, None, PROXIES) == "?"


def test_behind_our_proxies_the_right_most_untrusted_entry_is_the_client():
    assert client_address("127.0.0.1", "198.51.100.1", PROXIES) == "198.51.100.1"
    # a client that writes its own header only adds entries to the left: they are ignored
    assert client_address("127.0.0.1", "1.2.3.4, 198.51.100.1", PROXIES) == "198.51.100.1"
    # two of our proxies in a row (10.0.0.5 forwarded to 127.0.0.1)
    assert client_address("127.0.0.1", "1.2.3.4, 198.51.100.1, 10.0.0.5", PROXIES) == (
        "198.51.100.1"
    )
    assert client_address("::ffff:127.0.0.1", "2001:db8::7", PROXIES) == "2001:db8::7"
    assert client_address("fd00::1", "[2001:db8::8]", PROXIES) == "[2001:db8::8]"


def test_a_malformed_entry_stops_at_the_last_good_address():
    assert client_address("127.0.0.1", "nonsense", PROXIES) == "127.0.0.1"
    assert client_address("127.0.0.1", "198.51.100.1, junk, 10.0.0.5", PROXIES) == "10.0.0.5"
    assert client_address("127.0.0.1", "10.0.0.6, 10.0.0.5", PROXIES) == "10.0.0.6"


def test_networks_refuse_bad_entries_by_name():
    assert "198.51.100.3" in Networks.parse("198.51.100.0/24")
    assert "junk" not in Networks.parse("198.51.100.0/24")
    assert not Networks.parse(" , ")
    with pytest.raises(ValueError, match=r"'10\.0\.0\.0/33' is not an address or a network"):
        Networks.parse("127.0.0.1, 10.0.0.0/33")
    with pytest.raises(ValueError, match="CC_TRUSTED_PROXIES"):
        Settings.from_env({"CC_TRUSTED_PROXIES": "nginx"})
    with pytest.raises(ValueError, match="CC_CHAT_UNLIMITED_ADDRESSES"):
        Settings.from_env({"CC_CHAT_UNLIMITED_ADDRESSES": "1.2.3"})
