"""Small helpers shared by the web tests (not a test module)."""

from __future__ import annotations

import itertools
import time
from typing import Any

from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from tests.conftest import World, inbound

_seq = itertools.count(1)


def nxt() -> int:
    """A number unique within this test process."""
    return next(_seq)


async def new_ticket(
    client: Any,
    world: World,
    *,
    queue: str = "general",
    channel: str = "api",
    handle: str | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """Ingest one contact as admin (a new customer unless ``handle`` is given); the result."""
    n = nxt()
    body = inbound(f"web-{n}", handle=handle or f"cust{n}@example.com", channel=channel,
                   queue=queue, **kw)  # fmt: skip
    resp = await client.post("/api/v1/inbound", json=body, headers=world.auth("admin"))
    assert resp.status == 201, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def patch_ticket(
    client: Any, world: World, ticket_id: int, who: str, **changes: Any
) -> tuple[int, dict[str, Any]]:
    """PATCH a ticket as ``who``; (status, body)."""
    resp = await client.patch(f"/api/v1/tickets/{ticket_id}", json=changes,
                              headers=world.auth(who))  # fmt: skip
    return resp.status, await resp.json()


async def assign(client: Any, world: World, ticket_id: int, to: str, by: str = "admin") -> None:
    """Assign a ticket (must succeed)."""
    status, body = await patch_ticket(client, world, ticket_id, by,
                                      assignee_id=world.users[to]["id"])  # fmt: skip
    assert status == 200, body
    assert body["assignee_id"] == world.users[to]["id"]


def old_token(secret: str, user_id: int, version: int = 0, age: int = 10 * 24 * 3600) -> str:
    """A correctly signed token whose timestamp is ``age`` seconds old (past any TTL)."""

    class LongAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age

    return URLSafeTimedSerializer(secret, salt="cc-auth-token", signer=LongAgo).dumps(
        {"u": user_id, "v": version}
    )


def error_code(body: Any) -> str | None:
    """The ``error.code`` of a JSON error body, else None."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return str(code) if code is not None else None
    return None
