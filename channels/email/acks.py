"""Acknowledgements of one batch go out together, over one SMTP connection.

The store creates each acknowledgement already taken for delivery (``sending``, with a lease,
as ``begin_delivery`` leaves a message) and hands its description to the poller, which
passes the batch here after the commit. They are built, sent on one connection and recorded
with ``record_delivery`` (never leaving a final state) in one transaction. What fails with a
retryable error goes back to ``queued`` and to the ``deliver_message`` job (with retries);
what a crash loses is re-queued by the outbox sweeper when the lease runs out. One batch is
delivered at a time by one worker task, beside the ingest of the next ones (a few batches
may wait; a slow MTA slows ingest down only when that backlog is full).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from email.message import EmailMessage

from channels.base import OutboundMessage
from channels.email.client import smtp_send_batch
from channels.email.sender import EmailSender
from contact_center.db import Database, UnitOfWork
from contact_center.errors import ChannelError
from tickets.actions.messages import record_delivery

__all__ = ["AckCourier"]

log = logging.getLogger(__name__)
Enqueue = Callable[[int], Awaitable[None]]


def _record_all(
    uow: UnitOfWork, results: list[tuple[int, str | None, ChannelError | None]]
) -> None:
    for message_id, external_id, error in results:
        if error is None:
            record_delivery(uow, message_id, external_id, "sent")
        else:
            status = "queued" if error.retryable else "failed"
            record_delivery(uow, message_id, None, status, str(error))


def _requeue(uow: UnitOfWork, message_ids: list[int]) -> None:
    for message_id in message_ids:
        record_delivery(uow, message_id, None, "queued", "acknowledgement batch failed")


class AckCourier:
    """Delivers acknowledgement messages batch by batch (or through the job without SMTP)."""

    def __init__(
        self,
        db: Database,
        sender: EmailSender | None,
        enqueue: Enqueue | None,
        *,
        backlog: int = 10,
    ) -> None:
        self.db = db
        self.sender = sender
        self._enqueue = enqueue
        # Batches wait here for the one worker; a slow MTA holds ingest back only when full.
        self._queue: asyncio.Queue[list[OutboundMessage]] = asyncio.Queue(backlog)
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, acks: list[OutboundMessage]) -> None:
        """Queue a batch for delivery (waits only while ``backlog`` batches are pending)."""
        if not acks:
            return
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work(), name="email-acks")
        await self._queue.put(acks)

    async def flush(self) -> None:
        """Wait until every queued batch has been delivered (or handed to the job)."""
        if self._worker is not None and not self._worker.done():
            await self._queue.join()

    async def close(self, grace: float = 10.0) -> None:
        """Deliver what is queued for up to ``grace`` seconds, then stop (the sweeper re-queues
        whatever was left once its lease runs out)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self.flush()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    async def _work(self) -> None:
        while True:
            acks = await self._queue.get()
            try:
                await self._deliver(acks)
            finally:
                self._queue.task_done()

    async def _hand_to_job(self, message_ids: list[int]) -> None:
        if self._enqueue is not None:
            for message_id in message_ids:
                await self._enqueue(message_id)

    async def _deliver(self, acks: list[OutboundMessage]) -> None:
        ids = [a.message_id for a in acks]
        try:
            if self.sender is None or self.sender.smtp is None:
                raise ChannelError("no SMTP sender configured")
            built: list[tuple[int, str, EmailMessage, str]] = []
            results: list[tuple[int, str | None, ChannelError | None]] = []
            for out in acks:
                try:
                    mime, msgid = self.sender.build(out)
                except ChannelError as err:
                    results.append((out.message_id, None, err))
                    continue
                built.append((out.message_id, msgid, mime, out.to_handle.strip().lower()))
            items = [(mime, self.sender.config.from_addr, [to]) for _, _, mime, to in built]
            errors = await smtp_send_batch(self.sender.smtp, items) if items else []
            for (mid, msgid, _, _), failure in zip(built, errors, strict=True):
                results.append((mid, msgid, failure))
            await self.db.write(_record_all, results)
        except Exception:  # the ids are safe in the outbox: the job or the sweeper sends them
            log.exception("acknowledgement batch failed; handing it to the deliver_message job")
            try:
                await self.db.write(_requeue, ids)
            except Exception:  # still leased: the sweeper re-queues them when the lease ends
                log.exception("could not re-queue acknowledgements %s", ids)
                return
            await self._hand_to_job(ids)
            return
        await self._hand_to_job(
            [mid for mid, _, err in results if err is not None and err.retryable]
        )
