"""Login throttling counts the client's address: behind our proxies the one they name."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.conftest import PASSWORD


@pytest.fixture
def proxies() -> str:
    """CC_TRUSTED_PROXIES of a test: nginx on this machine (parametrize to change)."""
    return "127.0.0.1"


@pytest.fixture
def settings(settings, proxies):  # the shared settings, behind our proxy
    return replace(settings, trusted_proxies=proxies)


async def _login(client: Any, email: str, forwarded_for: str) -> int:
    resp = await client.post("/api/v1/login", json={"email": email, "password": "wrong"},
                             headers={"X-Forwarded-For": forwarded_for})  # fmt: skip
    return int(resp.status)


async def test_each_client_behind_the_proxy_has_its_own_login_limit(client, world):
    # ten failures from one client on ten accounts: that address is throttled ...
    assert [await _login(client, f"guess{i}@test.example", "198.51.100.7")
            for i in range(10)] == [401] * 10  # fmt: skip
    assert await _login(client, "guess10@test.example", "198.51.100.7") == 429
    # ... a client that forges a header left of the proxy's entry is still that address ...
    assert await _login(client, "guess11@test.example", "192.0.2.1, 198.51.100.7") == 429
    # ... and every other customer behind the same proxy still logs in
    assert await _login(client, "guess12@test.example", "198.51.100.8") == 401
    resp = await client.post("/api/v1/login",
                             json={"email": "agent@test.example", "password": PASSWORD},
                             headers={"X-Forwarded-For": "198.51.100.8"})  # fmt: skip
    assert resp.status == 200


@pytest.mark.parametrize("proxies", [""])
async def test_without_trusted_proxies_a_forwarded_header_changes_nothing(client, world):
    codes = [await _login(client, f"g{i}@test.example", f"198.51.100.{i}") for i in range(11)]
    assert codes == [401] * 10 + [429]  # a new X-Forwarded-For per try is no way around it
