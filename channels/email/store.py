"""One transaction per fetched batch: messages, receipts and the mailbox's UID high-water mark.

Because the mark moves in the same transaction as the messages, a crash before the commit
redoes the whole batch and a crash after it skips the batch: never a duplicate, never a gap.
Ingest is idempotent by (``email``, Message-ID) on top, and a different mail reusing a
Message-ID is kept under ``<id>#<content hash>``. One bad mail never stops a batch: it is
quarantined (receipt with the reason, raw source kept in the blob store).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError

from channels.base import OutboundMessage
from channels.email.config import EmailConfig
from channels.email.loops import automation_reason
from channels.email.parse import ParsedEmail
from channels.email.records import (
    ACTOR,
    RECEIPT,
    add_bounce_note,
    create_ack,
    resolve_thread,
)
from channels.email.threading import ThreadKeys, references_of
from contact_center.db import UnitOfWork
from contact_center.errors import ChannelError
from tickets.actions._common import QUEUE
from tickets.actions.ingest import IngestPolicy, IngestResult, ingest
from tickets.contact import InboundContact
from tickets.domain import Channel
from tickets.models import EmailMailboxState

__all__ = ["Batch", "BatchResult", "FetchedMail", "MailStore", "load_state"]

log = logging.getLogger(__name__)
STATE = cast(sa.Table, EmailMailboxState.__table__)  # type: ignore[attr-defined]
IngestFn = Callable[..., IngestResult]


@dataclass(frozen=True, slots=True)
class FetchedMail:
    """One downloaded mail: parsed, or the reason it could not be (``raw`` is kept then)."""

    uid: int
    raw: bytes
    parsed: ParsedEmail | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """Mail of one mailbox fetched together; ``last_uid`` is the mark after it."""

    mailbox: str
    uidvalidity: int
    last_uid: int
    mails: tuple[FetchedMail, ...]
    queue: str | None = None


@dataclass(slots=True)
class BatchResult:
    """What the batch did, per UID, and the acknowledgements to deliver after commit."""

    outcomes: dict[int, str] = field(default_factory=dict)
    acks: list[OutboundMessage] = field(default_factory=list)
    ticket_ids: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Outcome:
    outcome: str
    reason: str | None = None
    message_id: int | None = None
    ticket_id: int | None = None
    keep_raw: bool = False
    ack: OutboundMessage | None = None


def _rollback_to(uow: UnitOfWork, savepoint: Any) -> None:
    """Roll back ``savepoint`` and any savepoint a failed action left open inside it."""
    while (current := uow.session.get_nested_transaction()) is not None:
        current.rollback()
        if current is savepoint:
            return


def load_state(session: Any, mailbox: str) -> tuple[int, int] | None:
    """(uidvalidity, last_uid) stored for a mailbox, or None before its first batch."""
    row = session.execute(
        sa.select(STATE.c.uidvalidity, STATE.c.last_uid).where(STATE.c.mailbox == mailbox)
    ).first()
    return None if row is None else (int(row[0]), int(row[1]))


class MailStore:
    """Turns batches of fetched mail into tickets (the email channel's write path)."""

    def __init__(
        self,
        config: EmailConfig,
        keys: ThreadKeys,
        policy: IngestPolicy,
        *,
        ingest_fn: IngestFn = ingest,
    ) -> None:
        self.config = config
        self.keys = keys
        self.policy = policy
        self._ingest = ingest_fn

    # -- the batch -------------------------------------------------------------------------
    def store_batch(self, uow: UnitOfWork, batch: Batch) -> BatchResult:
        """Store every mail of ``batch`` above the stored mark and move the mark (one tx)."""
        if (
            batch.queue is not None
            and uow.session.execute(
                sa.select(QUEUE.c.id).where(QUEUE.c.name == batch.queue)
            ).first()
            is None
        ):
            raise ChannelError(f"email mailbox {batch.mailbox!r}: no queue named {batch.queue!r}")
        floor = self._claim(uow, batch)
        mails = [m for m in batch.mails if m.uid > floor]
        known = self._known(uow, mails)
        result = BatchResult(outcomes={m.uid: "skipped" for m in batch.mails if m.uid <= floor})
        receipts = []
        for mail in mails:
            done = self._guarded(uow, batch, mail, known)
            receipts.append(self._receipt(uow, batch, mail, done))
            result.outcomes[mail.uid] = done.outcome
            if done.ack is not None:
                result.acks.append(done.ack)
            if done.ticket_id is not None and done.outcome == "ingested":
                result.ticket_ids.append(done.ticket_id)
        if receipts:
            dialect = postgresql if uow.dialect == "postgresql" else sqlite
            uow.session.execute(dialect.insert(RECEIPT).on_conflict_do_nothing(), receipts)
        return result

    def _known(self, uow: UnitOfWork, mails: list[FetchedMail]) -> dict[str, str]:
        """Content hashes of stored mail sharing a Message-ID with this batch (one query)."""
        ids = {m.parsed.message_id for m in mails if m.parsed and m.parsed.message_id}
        if not ids:
            return {}
        rows = uow.session.execute(
            sa.select(RECEIPT.c.header_message_id, RECEIPT.c.content_hash).where(
                RECEIPT.c.header_message_id.in_(ids), RECEIPT.c.message_id.is_not(None)
            )
        ).all()
        return {r[0]: r[1] for r in rows}

    def _claim(self, uow: UnitOfWork, batch: Batch) -> int:
        """Lock the mailbox row, move its mark; returns the UID below which mail is done."""
        query = sa.select(STATE.c.uidvalidity, STATE.c.last_uid).where(
            STATE.c.mailbox == batch.mailbox
        )
        if uow.dialect == "postgresql":
            query = query.with_for_update()
        row = uow.session.execute(query).first()
        values = {
            "uidvalidity": batch.uidvalidity,
            "last_uid": batch.last_uid,
            "updated_at": uow.now,
        }
        if row is None:
            dialect = postgresql if uow.dialect == "postgresql" else sqlite
            insert = dialect.insert(STATE).values(mailbox=batch.mailbox, **values)
            created = uow.session.execute(
                insert.on_conflict_do_nothing().returning(STATE.c.mailbox)
            ).first()
            if created is None:
                return self._claim(uow, batch)  # another poller created it just now
            return 0
        floor = int(row.last_uid) if int(row.uidvalidity) == batch.uidvalidity else 0
        values["last_uid"] = max(floor, batch.last_uid)
        uow.session.execute(
            sa.update(STATE).where(STATE.c.mailbox == batch.mailbox).values(**values)
        )
        return floor

    def _guarded(
        self, uow: UnitOfWork, batch: Batch, mail: FetchedMail, known: dict[str, str]
    ) -> _Outcome:
        # Each mail in its own savepoint; its events and audit rows go with it on failure.
        marks = (len(uow._events), len(uow._audit))
        savepoint = uow.session.begin_nested()
        try:
            done = self._mail(uow, batch, mail, known)
        except (OperationalError, InterfaceError):
            _rollback_to(uow, savepoint)
            raise  # the database itself is in trouble: redo the whole batch later
        except Exception as err:  # noqa: BLE001 - one bad mail must not wedge the mailbox
            _rollback_to(uow, savepoint)
            del uow._events[marks[0] :], uow._audit[marks[1] :]
            log.warning("email uid %d in %s quarantined: %s", mail.uid, batch.mailbox, err)
            reason = getattr(err, "message", None) or f"{type(err).__name__}: {err}"
            return _Outcome("quarantined", str(reason)[:480], keep_raw=True)
        savepoint.commit()
        return done

    def _receipt(
        self, uow: UnitOfWork, batch: Batch, mail: FetchedMail, done: _Outcome
    ) -> dict[str, Any]:
        parsed = mail.parsed
        keep = done.keep_raw or parsed is None or bool(parsed.defects)
        values = {
            "mailbox": batch.mailbox,
            "uidvalidity": batch.uidvalidity,
            "uid": mail.uid,
            "header_message_id": parsed.message_id if parsed else None,
            "content_hash": parsed.content_hash if parsed else hashlib.sha256(mail.raw).hexdigest(),
            "size": len(mail.raw),
            "outcome": done.outcome,
            "reason": done.reason[:500] if done.reason else None,
            "raw_sha256": self.policy.blobs.put(mail.raw) if keep else None,
            "message_id": done.message_id,
            "ticket_id": done.ticket_id,
            "received_at": uow.now,
        }
        return values

    # -- one mail --------------------------------------------------------------------------
    def _mail(
        self, uow: UnitOfWork, batch: Batch, mail: FetchedMail, known: dict[str, str]
    ) -> _Outcome:
        parsed = mail.parsed
        if parsed is None:
            return _Outcome("quarantined", mail.error or "unreadable", keep_raw=True)
        if parsed.dsn is not None:
            noted = add_bounce_note(uow, self.keys, parsed.dsn)
            if noted is None:
                return _Outcome("bounce", "report about mail we did not send", keep_raw=True)
            summary = parsed.dsn.summary()[:480]
            return _Outcome("bounce", summary, noted[1], noted[0], keep_raw=True)
        if parsed.from_addr in self.config.own_addresses:
            return _Outcome("ignored", f"from our own address {parsed.from_addr}", keep_raw=True)
        thread = resolve_thread(uow, references_of(parsed, self.keys), parsed.from_addr)
        external_id = self._external_id(parsed, known)
        contact = self._contact(batch, parsed, external_id, thread.ticket_id)
        result = self._ingest(uow, contact, self.policy, ACTOR)
        if parsed.message_id is not None and not result.duplicate:
            known.setdefault(parsed.message_id, parsed.content_hash)
        done = _Outcome(
            "duplicate" if result.duplicate else "ingested",
            thread.note,
            result.message_id,
            result.ticket_id,
        )
        wants_ack = result.created_ticket and self.config.auto_ack and self.config.smtp is not None
        if wants_ack and automation_reason(parsed.loop_headers, parsed.from_addr) is None:
            done.ack = create_ack(
                uow,
                self.keys,
                ticket_id=result.ticket_id,
                address=parsed.from_addr,
                name=parsed.from_name,
                inbound_id=external_id,
                language=parsed.language,
                window=self.config.auto_ack_window,
            )
        return done

    @staticmethod
    def _external_id(parsed: ParsedEmail, known: dict[str, str]) -> str:
        if parsed.message_id is None:
            return f"<sha256.{parsed.content_hash}>"
        seen = known.get(parsed.message_id)
        if seen is not None and seen != parsed.content_hash:
            return f"{parsed.message_id}#{parsed.content_hash[:16]}"  # same id, different mail
        return parsed.message_id

    def _contact(
        self, batch: Batch, parsed: ParsedEmail, external_id: str, hint: int | None
    ) -> InboundContact:
        body = parsed.body_text
        if parsed.skipped:
            body += "\n\n[attachments not stored: " + "; ".join(parsed.skipped) + "]"
        return InboundContact(
            channel=Channel.EMAIL,
            external_id=external_id,
            handle=parsed.from_addr,
            body_text=body,
            body_html=parsed.body_html,
            subject=parsed.subject,
            customer_name=parsed.from_name,
            language=parsed.language,
            queue=batch.queue,
            attachments=parsed.attachments,
            ticket_hint=hint,
            received_at=parsed.date,
            metadata={"mailbox": batch.mailbox, "to": list(parsed.to), "cc": list(parsed.cc)},
        )
