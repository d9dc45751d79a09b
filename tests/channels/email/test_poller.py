"""The IMAP poller against a real Dovecot: exactly once, IDLE, restarts, UIDVALIDITY, limits."""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import replace

from sqlalchemy.exc import OperationalError

from channels.email.config import PROCESSED_KEYWORD
from contact_center.settings import Secret
from tests.channels.email.conftest import fixture, mail
from tickets.actions.ingest import ingest


def _count(desk, table, where="1=1", **params):
    return desk.rows(f'SELECT count(*) FROM "{table}" WHERE {where}', **params)[0][0]


async def test_mail_becomes_tickets_flagged_and_never_deleted(desk):
    raws = [mail(frm=f"c{i}@example.com", subject=f"Question {i}") for i in range(12)]
    await desk.append(*raws)
    await desk.drain()
    assert _count(desk, "ticket") == 12
    assert _count(desk, "message", "direction='in' AND channel='email'") == 12
    assert _count(desk, "emailreceipt", "outcome='ingested'") == 12
    session = await desk.imap()
    try:
        info = await session.select("INBOX")
        meta = await session.fetch_meta(list(range(1, 13)))
    finally:
        await session.close()
    assert info.exists == 12  # nothing deleted
    assert all({"\\Seen", PROCESSED_KEYWORD} <= m.flags for m in meta.values())
    ((validity, last),) = desk.rows("SELECT uidvalidity, last_uid FROM emailmailboxstate")
    assert (validity, last) == (info.uidvalidity, 12)


async def test_move_mode_moves_processed_mail(desk):
    box = replace(desk.box, processed_action="move", move_to="Processed")
    await desk.append(mail(), mail(frm="b@example.com"))
    await desk.drain(desk.poller(box))
    session = await desk.imap()
    try:
        assert (await session.select("INBOX")).exists == 0
        assert (await session.select("Processed")).exists == 2
    finally:
        await session.close()
    assert _count(desk, "ticket") == 2


async def test_failure_mid_batch_and_task_kill_then_restart_store_each_mail_once(desk):
    raws = [mail(frm=f"c{i}@example.com", msgid=f"<m{i}@example.com>") for i in range(25)]
    await desk.append(*raws)
    calls = 0

    def failing_ingest(*args, **kw):
        nonlocal calls
        calls += 1
        if calls == 14:  # batch 2 (batch_size 10), fourth mail: the database gives up
            raise OperationalError("INSERT", {}, Exception("disk I/O error"))
        return ingest(*args, **kw)

    backing_off = asyncio.Event()

    async def stop_at_backoff(_seconds: float) -> None:
        backing_off.set()
        await asyncio.Event().wait()

    poller = desk.poller(store=desk.store(ingest_fn=failing_ingest), sleep=stop_at_backoff)
    task = asyncio.create_task(poller.run())
    await asyncio.wait_for(backing_off.wait(), 10)
    task.cancel()  # and the process dies
    await asyncio.gather(task, return_exceptions=True)
    assert _count(desk, "message") == 10  # batch 1 committed, batch 2 rolled back entirely
    assert desk.rows("SELECT last_uid FROM emailmailboxstate")[0][0] == 10
    assert "disk I/O error" in (poller.status.last_error or "")

    # Restart, and this time kill the task as soon as one more batch is committed.
    first_batch = asyncio.Event()
    poller = desk.poller(on_batch=lambda _result: first_batch.set())
    task = asyncio.create_task(poller.run())
    await asyncio.wait_for(first_batch.wait(), 10)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    await desk.drain()  # a third life finishes the folder
    ids = [r[0] for r in desk.rows("SELECT external_id FROM message ORDER BY external_id")]
    assert sorted(ids) == sorted(f"<m{i}@example.com>" for i in range(25))
    assert _count(desk, "emailreceipt") == 25
    session = await desk.imap()
    try:
        await session.select("INBOX")
        unflagged = await session.search(f"UNKEYWORD {PROCESSED_KEYWORD}")
    finally:
        await session.close()
    assert unflagged == []  # mail stored before the kill was flagged on reconnect


async def test_idle_delivers_new_mail_within_two_seconds(desk):
    stored = asyncio.Event()
    poller = desk.poller(on_batch=lambda result: stored.set() if result.ticket_ids else None)
    task = asyncio.create_task(poller.run())
    try:
        await asyncio.wait_for(poller.caught_up.wait(), 10)  # next: IDLE
        started = time.monotonic()
        await desk.append(mail(subject="urgent"))
        await asyncio.wait_for(stored.wait(), 5)
        latency = time.monotonic() - started
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert latency < 2.0, latency
    assert _count(desk, "ticket", "subject='urgent'") == 1


async def test_polling_mode_when_idle_is_off(desk):
    ticks: asyncio.Queue[float] = asyncio.Queue()
    woken = asyncio.Event()

    async def fake_sleep(seconds: float) -> None:
        await ticks.put(seconds)
        await woken.wait()
        woken.clear()

    poller = desk.poller(replace(desk.box, idle=False, poll_seconds=60), sleep=fake_sleep)
    task = asyncio.create_task(poller.run())
    try:
        assert await asyncio.wait_for(ticks.get(), 10) == 60  # caught up, now "sleeping"
        await desk.append(mail(subject="polled"))
        poller.caught_up.clear()
        woken.set()
        await asyncio.wait_for(ticks.get(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert _count(desk, "ticket", "subject='polled'") == 1


async def test_uidvalidity_change_reads_again_without_duplicates(desk):
    box = replace(desk.box, folder="Support")
    first = [mail(frm=f"c{i}@example.com", msgid=f"<u{i}@example.com>") for i in range(3)]
    session = await desk.imap()
    await session.ensure_folder("Support")
    for raw in first:
        await session.append(raw, "Support")
    await desk.drain(desk.poller(box))
    assert _count(desk, "message") == 3
    old = desk.rows("SELECT uidvalidity FROM emailmailboxstate")[0][0]
    # The folder is recreated (new UIDVALIDITY) holding the same 3 mails plus 2 new ones.
    await session.select("INBOX")
    await session._ok("DELETE", session._imap.delete("Support"))
    await session.ensure_folder("Support")
    for raw in [*first, mail(msgid="<u3@example.com>"), mail(msgid="<u4@example.com>")]:
        await session.append(raw, "Support")
    await session.close()
    await desk.drain(desk.poller(box))
    assert _count(desk, "message") == 5
    assert desk.rows("SELECT uidvalidity FROM emailmailboxstate")[0][0] != old
    assert _count(desk, "emailreceipt", "outcome='duplicate'") == 3


async def test_reused_message_id_with_other_content_is_kept(desk):
    await desk.append(
        mail(frm="a@example.com", msgid="<same@example.com>", body="first"),
        mail(frm="a@example.com", msgid="<same@example.com>", body="second, different"),
        mail(frm="a@example.com", msgid="<same@example.com>", body="first"),  # true duplicate
    )
    await desk.drain()
    bodies = sorted(r[0] for r in desk.rows("SELECT body_text FROM message"))
    assert bodies == ["first", "second, different"]


async def test_one_mail_in_two_of_our_mailboxes_is_one_message(desk):
    other = replace(desk.box, name=desk.box.name + "-sales", user="sales-" + desk.box.user)
    raw = mail(frm="a@example.com", msgid="<both@example.com>", body="to support and sales")
    await desk.append(raw)
    session = await desk.imap(other)
    await session.append(b"Delivered-To: sales@example.test\r\n" + raw)
    await session.close()
    await desk.drain()
    await desk.drain(desk.poller(other))
    assert _count(desk, "message") == 1
    outcomes = sorted(r[0] for r in desk.rows("SELECT outcome FROM emailreceipt"))
    assert outcomes == ["duplicate", "ingested"]


async def test_oversized_and_malformed_mail_is_quarantined_with_raw_kept(desk):
    desk.config = replace(desk.config, max_bytes=4000)
    big = mail(frm="big@example.com", body="x" * 10_000)
    broken = fixture("malformed_no_sender.eml")
    await desk.append(big, broken, mail(frm="after@example.com", subject="still flowing"))
    await desk.drain()
    rows = desk.rows("SELECT uid, outcome, reason, raw_sha256 FROM emailreceipt ORDER BY uid")
    assert [r[1] for r in rows] == ["quarantined", "quarantined", "ingested"]
    assert "too large" in rows[0][2] and "sender" in rows[1][2]
    assert desk.svc.ingest_policy.blobs.get(rows[1][3]) == broken  # raw source kept
    assert b"big@example.com" in desk.svc.ingest_policy.blobs.get(rows[0][3])  # headers kept
    assert _count(desk, "ticket", "subject='still flowing'") == 1


async def test_server_side_disconnect_reconnects_with_backoff(desk, dovecot):
    delays: list[float] = []

    async def fast_sleep(seconds: float) -> None:
        delays.append(seconds)
        await asyncio.sleep(0)

    poller = desk.poller(sleep=fast_sleep)
    task = asyncio.create_task(poller.run())
    try:
        await asyncio.wait_for(poller.caught_up.wait(), 10)
        poller.caught_up.clear()
        subprocess.run(["doveadm", "-c", str(dovecot.conf), "kick", desk.box.user],
                       check=True, capture_output=True)  # fmt: skip
        await desk.append(mail(subject="after the drop"))
        await asyncio.wait_for(poller.caught_up.wait(), 10)
        while _count(desk, "ticket", "subject='after the drop'") == 0:
            await asyncio.wait_for(poller.caught_up.wait(), 10)
            poller.caught_up.clear()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert delays, "the poller should have backed off before reconnecting"
    assert poller.status.last_error is not None


async def test_wrong_password_is_an_auth_failure_and_keeps_retrying(desk):
    delays: list[float] = []
    stop = asyncio.Event()

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) >= 3:
            stop.set()
            await asyncio.Event().wait()

    poller = desk.poller(replace(desk.box, password=Secret("wrong")), sleep=sleep)
    task = asyncio.create_task(poller.run())
    try:
        await asyncio.wait_for(stop.wait(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert "login refused" in (poller.status.last_error or "")
    assert poller.status.failures == 3
    assert 0.5 <= delays[0] <= 1.0 and 2.0 <= delays[2] <= 4.0  # 1 s, 2 s, 4 s with jitter
