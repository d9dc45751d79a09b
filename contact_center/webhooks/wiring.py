"""Connect the outbox to a database and a job queue, and the sweeper that re-wakes rows."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from contact_center.db import Database
from contact_center.webhooks.outbox import SubscriptionCache, due_deliveries, fan_out
from tickets.actions.messages import due_messages, waiting_messages

__all__ = ["install_outbox", "sweep_once", "sweeper"]

log = logging.getLogger(__name__)


def install_outbox(
    db: Database, cache: SubscriptionCache, wake: Callable[[Sequence[int]], None]
) -> None:
    """Write outbox rows in every transaction; after commit, ``wake`` gets their ids.

    The rows are committed when ``wake`` runs, so its failure (Redis down) must not fail the
    action that made them: it is logged, and the sweeper enqueues the rows later.
    """

    def safe_wake(ids: Sequence[int]) -> None:
        try:
            wake(ids)
        except Exception:
            log.warning("%d webhook deliveries not enqueued; the sweeper will retry", len(ids),
                        exc_info=True)  # fmt: skip

    db.tx_hooks.append(fan_out(cache))
    db.on_outbox = safe_wake


async def sweep_once(
    db: Database,
    enqueue: Callable[[int], Awaitable[None]],
    enqueue_message: Callable[[int], Awaitable[None]] | None = None,
    lost: Callable[[], Awaitable[bool]] | None = None,
) -> int:
    """Enqueue every due or abandoned webhook delivery (and outbound message); how many.

    When ``lost()`` says the job queue may have lost jobs (Redis came back empty), every
    message still waiting for its delivery is enqueued again at once instead of after the
    stuck window (a second job for a message sends nothing: ``begin_delivery``).
    """
    ids = await db.write(due_deliveries)
    for delivery_id in ids:
        await enqueue(delivery_id)
    count = len(ids)
    if enqueue_message is not None:
        if await _lost(lost):
            message_ids = await db.write(waiting_messages)
            if message_ids:
                log.warning("the job queue started empty: %d messages enqueued again",
                            len(message_ids))  # fmt: skip
        else:
            message_ids = await db.write(due_messages)
        for message_id in message_ids:
            await enqueue_message(message_id)
        count += len(message_ids)
    return count


async def _lost(lost: Callable[[], Awaitable[bool]] | None) -> bool:
    if lost is None:
        return False
    try:
        return await lost()
    except Exception:  # noqa: BLE001 - Redis unreachable now: a later sweep looks again
        return False


async def sweeper(
    db: Database,
    enqueue: Callable[[int], Awaitable[None]],
    interval: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    enqueue_message: Callable[[int], Awaitable[None]] | None = None,
    lost: Callable[[], Awaitable[bool]] | None = None,
) -> None:
    """Run :func:`sweep_once` forever (a backstop: jobs are enqueued at commit already)."""
    while not db.closed:
        with contextlib.suppress(Exception):
            try:
                await sweep_once(db, enqueue, enqueue_message, lost)
            except Exception:
                log.exception("webhook sweep failed")
                raise
        await sleep(interval)
