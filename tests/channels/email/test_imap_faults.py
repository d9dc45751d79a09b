"""IMAP servers that misbehave: the poller times out, backs off, reconnects, loses nothing.

The poller reads the real Dovecot through :class:`FaultyImap`, a relay that can be switched to
misbehave (the only fake server in these tests, for faults Dovecot will not produce on demand).
Each case: three mails are read through the healthy relay; then the relay drops the session
and answers the next two sessions wrongly while three more mails arrive at Dovecot; then it
heals. The backoff sleep is injected (no waiting); the IMAP timeouts are real but short.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from channels.email.config import PROCESSED_KEYWORD
from channels.email.store import BatchResult
from tests.channels.email.conftest import Desk, mail
from tests.channels.email.imapfault import FaultyImap

# fault → (idle_seconds, what the poller reports). A long IDLE proves the BYE is acted on at
# once instead of at the next IDLE renewal; a frozen IDLE is found at the renewal's DONE.
CASES = {
    "silent": (60.0, "timed out"),
    "bye_in_idle": (60.0, "IMAP server said BYE during IDLE"),
    "bye_for_idle": (60.0, "IMAP IDLE timed out"),
    "frozen_idle": (0.3, "IMAP IDLE timed out: no answer to DONE"),
}


async def _uidvalidity(desk: Desk) -> int:
    session = await desk.imap()
    try:
        return (await session.select("INBOX")).uidvalidity
    finally:
        await session.close()


async def _unmarked(desk: Desk) -> list[int]:
    session = await desk.imap()
    try:
        await session.select("INBOX")
        return await session.search(f"UNKEYWORD {PROCESSED_KEYWORD}")
    finally:
        await session.close()


@pytest.mark.parametrize(("fault", "idle_seconds", "reported"),
                         [(k, *v) for k, v in CASES.items()], ids=list(CASES))  # fmt: skip
async def test_faulty_server_times_out_backs_off_and_loses_nothing(
    desk, fault, idle_seconds, reported
):
    relay = await FaultyImap((desk.box.host, desk.box.port), await _uidvalidity(desk)).start()
    box = replace(desk.box, port=relay.port, idle_seconds=idle_seconds, timeout_seconds=0.3)
    first = [mail(frm=f"c{i}@example.com", msgid=f"<f{i}@example.com>") for i in range(3)]
    later = [mail(frm=f"c{i}@example.com", msgid=f"<f{i}@example.com>") for i in range(3, 6)]
    delays: list[float] = []
    errors: list[str | None] = []
    stored: list[int] = []
    all_stored = asyncio.Event()

    async def backoff(seconds: float) -> None:  # the poller's sleep: recorded, never waited
        delays.append(seconds)
        errors.append(poller.status.last_error)
        if len(delays) == 3:  # the server is back after two bad sessions, with new mail
            await desk.append(*later)
            relay.heal()

    def on_batch(result: BatchResult) -> None:
        stored.extend(result.ticket_ids)
        if len(stored) == 6:
            all_stored.set()

    await desk.append(*first)
    poller = desk.poller(box, sleep=backoff, on_batch=on_batch)
    task = asyncio.create_task(poller.run())
    try:
        await asyncio.wait_for(poller.caught_up.wait(), 10)  # read through the healthy relay
        assert len(stored) == 3
        relay.fail(fault)
        await asyncio.wait_for(all_stored.wait(), 20)
        await asyncio.wait_for(poller.caught_up.wait(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await relay.close()

    assert relay.faulty_sessions == 2
    assert "connection lost" in (errors[0] or ""), errors  # noticed at once, not at a timeout
    assert all(reported in (e or "") for e in errors[1:]), errors
    # Exponential backoff (1 s, 2 s, 4 s, jitter 0.5-1): a bad server is not hammered.
    assert len(delays) == 3, delays
    assert 0.5 <= delays[0] <= 1 and 1 <= delays[1] <= 2 and 2 <= delays[2] <= 4, delays
    assert poller.status.failures == 0  # healthy again after the drain

    ids = sorted(r[0] for r in desk.rows("SELECT external_id FROM message"))
    assert ids == sorted(f"<f{i}@example.com>" for i in range(6))  # each mail once
    assert len(desk.tickets()) == 6
    assert desk.rows("SELECT count(*) FROM emailreceipt")[0][0] == 6
    assert desk.rows("SELECT last_uid FROM emailmailboxstate")[0][0] == 6
    assert await _unmarked(desk) == []  # and every one is flagged on the server
