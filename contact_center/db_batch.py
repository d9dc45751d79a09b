"""Group commit for the single SQLite writer.

Actions queued from the event loop run on one thread, up to ``max_batch`` of them inside one
transaction, each in its own savepoint: an action that fails rolls back only its savepoint and
gets its own exception; the others commit together. One ``BEGIN IMMEDIATE``/``COMMIT`` and one
event-loop wake-up then serve the whole batch instead of one each. Atomicity per action is
unchanged; a failed commit fails every action of the batch (nothing of it was stored).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from contact_center.db import Database, EventRecord

__all__ = ["GroupCommitWriter"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Item:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    context: contextvars.Context = field(default_factory=contextvars.copy_context)


def _resolve(items: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for fut, ok, value in items:
        if fut.cancelled():
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)


class GroupCommitWriter:
    """The writer thread and its queue."""

    def __init__(self, db: Database, max_batch: int = 64) -> None:
        self._db = db
        self._max = max_batch
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0
        self.items = 0

    def submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> asyncio.Future[Any]:
        """Queue ``fn(uow, *args, **kwargs)``; the future resolves on the caller's loop."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="db-group-commit", daemon=True
                )
                self._thread.start()
        self._queue.put(_Item(fn, args, kwargs, loop, fut))
        return fut

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        with self._lock:
            thread = self._thread
            self._thread = None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self._max:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._execute(batch)
            if stop:
                return

    def _execute(self, batch: list[_Item]) -> None:
        from contact_center.db import UnitOfWork

        db = self._db
        outcomes: list[tuple[_Item, bool, Any]] = []
        published: list[EventRecord] = []
        outbox: list[int] = []
        try:
            with db.engine.begin() as conn:
                for item in batch:
                    uow = UnitOfWork(session=conn, now=db.clock())
                    savepoint = conn.begin_nested()
                    try:
                        result = item.context.run(item.fn, uow, *item.args, **item.kwargs)
                        uow.flush_log()
                        for hook in db.tx_hooks:
                            hook(uow)
                    except Exception as exc:  # noqa: BLE001  (handed to that caller)
                        savepoint.rollback()
                        outcomes.append((item, False, exc))
                        continue
                    savepoint.commit()
                    outcomes.append((item, True, result))
                    published.extend(uow.published)
                    outbox.extend(uow.outbox)
        except Exception as exc:
            log.exception("group commit of %d actions failed", len(batch))
            outcomes = [(item, False, exc) for item in batch]
            published, outbox = [], []
        self.batches += 1
        self.items += len(batch)
        if published and db.on_commit is not None:
            db.on_commit(published)
        if outbox and db.on_outbox is not None:
            db.on_outbox(outbox)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]]
        by_loop = defaultdict(list)
        for item, ok, value in outcomes:
            by_loop[item.loop].append((item.future, ok, value))
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, items)
            except RuntimeError:  # that loop is closed; nobody waits any more
                log.warning("a write finished after its event loop closed")
