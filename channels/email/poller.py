"""The IMAP poller: one task per mailbox, IDLE where offered, polling otherwise.

Loop: connect → SELECT → compare UIDVALIDITY with the stored one (a change voids the stored
mark; the folder is read again and Message-ID dedupe drops what is known) → finish marking
mail committed before a crash → fetch ``UID mark+1:*`` in batches (sizes first, so mail over
``CC_EMAIL_MAX_BYTES`` is never downloaded) → parse off the event loop → store the batch and
move the mark in one transaction → flag (``\\Seen $CcProcessed``) or move the batch, never
delete → IDLE (or sleep) → repeat. Errors reconnect with exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from channels.email.acks import AckCourier
from channels.email.client import ImapSession, MailMeta
from channels.email.config import PROCESSED_KEYWORD, MailboxConfig
from channels.email.parse import ParseLimits, UnparseableMail, parse_email
from channels.email.store import Batch, BatchResult, FetchedMail, MailStore, load_state
from contact_center.db import Database
from contact_center.errors import ChannelAuthFailed, ChannelError, ChannelUnavailable

__all__ = ["MailboxPoller", "PollerStatus"]

log = logging.getLogger(__name__)
Connect = Callable[..., Awaitable[ImapSession]]
_FETCH_BYTES = 8 * 1024 * 1024  # download at most this much per FETCH command


@dataclass(slots=True)
class PollerStatus:
    """What an operator (or a health check) wants to know about one mailbox."""

    connected: bool = False
    idle: bool = False
    uidvalidity: int | None = None
    mark: int = 0
    stored: int = 0
    quarantined: int = 0
    failures: int = 0
    last_error: str | None = None
    last_batch_at: datetime | None = None


def _parse(uid: int, raw: bytes, limits: ParseLimits) -> FetchedMail:
    try:
        return FetchedMail(uid, raw, parse_email(raw, limits))
    except UnparseableMail as err:
        return FetchedMail(uid, raw, None, err.reason)
    except Exception as err:  # a parser bug must not stop the mailbox (logged with traceback)
        log.exception("parser failed on uid %d", uid)
        return FetchedMail(uid, raw, None, f"parser error: {type(err).__name__}")


class MailboxPoller:
    """Keeps one mailbox drained into tickets until cancelled."""

    def __init__(
        self,
        box: MailboxConfig,
        store: MailStore,
        db: Database,
        *,
        acks: AckCourier | None = None,
        connect: Connect = ImapSession.open,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_batch: Callable[[BatchResult], None] | None = None,
        backoff: tuple[float, float] = (1.0, 300.0),
    ) -> None:
        self.box = box
        self.store = store
        self.db = db
        self.status = PollerStatus()
        self.caught_up = asyncio.Event()
        self._acks = acks
        self._connect = connect
        self._sleep = sleep
        self._on_batch = on_batch
        self._backoff = backoff
        self._limits = ParseLimits(
            attachment_max_bytes=store.config.attachment_max_bytes,
            max_attachments=store.policy.max_attachments,
        )

    async def run(self) -> None:
        """Forever: a session, and after any failure a reconnect with backoff."""
        while True:
            try:
                await self._session()
            except ChannelAuthFailed as err:
                self._failed(err, level=logging.ERROR)
            except ChannelError as err:
                self._failed(err, level=logging.WARNING)
            except Exception as err:  # keep polling; the log has the traceback
                log.exception("email poller %s: unexpected error", self.box.name)
                self._failed(err, level=logging.DEBUG)
            base, cap = self._backoff
            delay = min(cap, base * 2 ** min(self.status.failures - 1, 16))
            await self._sleep(delay * random.uniform(0.5, 1.0))

    def _failed(self, err: Exception, *, level: int) -> None:
        self.status.connected = self.status.idle = False
        self.status.failures += 1
        self.status.last_error = str(err)[:300]
        self.caught_up.clear()
        log.log(level, "email poller %s: %s (attempt %d)", self.box.name, err, self.status.failures)

    async def _session(self) -> None:
        box = self.box
        session = await self._connect(
            box.host, box.port, tls=box.tls, user=box.user,
            password=box.password.reveal(), limit=box.timeout_seconds,
        )  # fmt: skip
        try:
            info = await session.select(box.folder)
            if box.processed_action == "move" and box.move_to:
                await session.ensure_folder(box.move_to)
            state = await self.db.read(load_state, box.name)
            if state is not None and state[0] != info.uidvalidity:
                log.warning("email %s: UIDVALIDITY changed; reading the folder again", box.name)
            self.status.mark = state[1] if state is not None and state[0] == info.uidvalidity else 0
            self.status.uidvalidity = info.uidvalidity
            self.status.connected = True
            await self._reconcile(session)
            use_idle = box.idle and session.has("IDLE")
            while True:
                stored = False
                while await self._drain(session):
                    stored = True
                if self._acks is not None:
                    await self._acks.flush()
                if stored:  # progress: a server that drops us after each batch is still read
                    self.status.failures = 0
                self.caught_up.set()
                self.status.idle = use_idle
                if use_idle:
                    await session.wait_for_mail(box.idle_seconds)
                else:
                    await self._sleep(box.poll_seconds)
                self.status.idle = False
                # Healthy again only after a full drain AND a wait that ended normally: a server
                # that accepts the session but kills every IDLE must not be redialled at 1 s.
                self.status.failures = 0
        finally:
            self.status.connected = False
            await session.close()

    async def _reconcile(self, session: ImapSession) -> None:
        """Flag or move mail that was stored before a crash but not yet marked on the server."""
        mark = self.status.mark
        if mark <= 0:
            return
        if self.box.processed_action == "move":
            leftovers = await session.search(f"UID 1:{mark}")
        else:
            leftovers = await session.search(f"UID 1:{mark} UNKEYWORD {PROCESSED_KEYWORD}")
        leftovers = [u for u in leftovers if u <= mark]
        if leftovers:
            await self._mark_processed(session, leftovers)

    async def _mark_processed(self, session: ImapSession, uids: list[int]) -> None:
        if self.box.processed_action == "move" and self.box.move_to:
            await session.move(uids, self.box.move_to)
        else:
            await session.add_flags(uids, f"\\Seen {PROCESSED_KEYWORD}")

    async def _drain(self, session: ImapSession) -> bool:
        """Store everything above the mark; True when something was found."""
        await session.noop()  # without a sync, mail appended meanwhile is not searchable yet
        uids = [
            u for u in await session.search(f"UID {self.status.mark + 1}:*") if u > self.status.mark
        ]
        size = self.box.batch_size
        for start in range(0, len(uids), size):
            await self._batch(session, uids[start : start + size])
        return bool(uids)

    async def _download(self, session: ImapSession, meta: dict[int, MailMeta]) -> dict[int, bytes]:
        limit = self.store.config.max_bytes
        raws: dict[int, bytes] = {}
        group: list[int] = []
        total = 0
        for uid in sorted(u for u, m in meta.items() if m.size <= limit):
            if group and total + meta[uid].size > _FETCH_BYTES:
                raws.update(await session.fetch(group))
                group, total = [], 0
            group.append(uid)
            total += meta[uid].size
        if group:
            raws.update(await session.fetch(group))
        return raws

    async def _batch(self, session: ImapSession, chunk: list[int]) -> None:
        todo = await session.fetch_meta(chunk)  # UIDs expunged meanwhile are simply absent
        raws = await self._download(session, todo)
        big = [u for u, m in todo.items() if m.size > self.store.config.max_bytes]
        heads = await session.fetch(big, "BODY.PEEK[HEADER]") if big else {}
        missing = [u for u in todo if u not in raws and u not in heads]
        if missing:  # never move the mark over mail we did not get: retry the batch
            raise ChannelUnavailable(f"IMAP FETCH returned nothing for UIDs {missing[:5]}")
        mails = await asyncio.to_thread(self._parse_all, todo, raws, heads)
        batch = Batch(
            self.box.name, self.status.uidvalidity or 0, max(chunk), mails, self.box.queue
        )
        result = await self.db.write(self.store.store_batch, batch)
        self.status.mark = max(chunk)
        self.status.last_batch_at = self.db.clock()
        outcomes = list(result.outcomes.values())
        self.status.stored += outcomes.count("ingested")
        self.status.quarantined += outcomes.count("quarantined")
        if todo:
            await self._mark_processed(session, sorted(todo))
        if self._acks is not None:
            await self._acks.submit(result.acks)
        if self._on_batch is not None:
            self._on_batch(result)

    def _parse_all(
        self, todo: dict[int, MailMeta], raws: dict[int, bytes], heads: dict[int, bytes]
    ) -> tuple[FetchedMail, ...]:
        out: list[FetchedMail] = []
        limit = self.store.config.max_bytes
        for uid in sorted(todo):
            if uid in raws:
                out.append(_parse(uid, raws[uid], self._limits))
            else:
                reason = f"too large: {todo[uid].size} bytes, limit {limit}; headers kept"
                out.append(FetchedMail(uid, heads.get(uid, b""), None, reason))
        return tuple(out)
