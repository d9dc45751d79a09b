"""Client CPU of the actions one contact makes, in-process, on SQLite and PostgreSQL.

The soak counts the CPU of a whole contact, but its run-to-run noise on a shared machine
(±5-10 %) hides a change worth a few percent. This one measures the desk's own side of the
actions a contact goes through, one at a time, with ``time.process_time`` (this process's
CPU: Python, SQLAlchemy, the driver; not the server's): a token check (``load_auth_user``), an
agent's ticket read (``get_ticket``, the agent scope with its queue list), a reply
(``post_message``), solving the ticket (``update_ticket``) and the delivery job's two
transactions (``begin_delivery`` + ``record_delivery``). Each runs ``--n`` (400) times on
tickets ingested beforehand, after a warm-up of 20.

Baseline in the same run: a write transaction of one ``SELECT 1`` (``Database.write_sync``:
checkout, the statement, ``COMMIT``); ``ratio`` = an action's µs / the baseline's, which makes
runs on a machine of changing speed comparable.

To compare two versions of the desk, run this file with the other checkout first on the path:
``PYTHONPATH=../old python bench/actions.py`` (this file imports only the desk's modules).
``python -m bench actions [--n N] [--no-pg] [--pg-url URL]``; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from contact_center.auth import load_auth_user
from contact_center.db import SYSTEM, Database
from contact_center.migrate import migrate
from tickets.actions import admin, ingest
from tickets.actions.ingest import IngestPolicy
from tickets.actions.messages import begin_delivery, post_message, record_delivery
from tickets.actions.tickets import update_ticket
from tickets.blobs import BlobStore
from tickets.contact import InboundContact
from tickets.domain import Channel, Role
from tickets.queries import Viewer, get_ticket

__all__ = ["main"]

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
WARMUP = 20
_ONE = sa.text("select 1")


def _seed(db: Database, blobs: BlobStore, tickets: int) -> tuple[Viewer, list[int]]:
    """A team, two queues, an agent of both, and ``tickets`` email tickets assigned to them."""
    team = db.write_sync(admin.create_team, SYSTEM, "bench")["id"]
    sla = db.write_sync(admin.create_sla_policy, SYSTEM, {"name": "bench"})["id"]
    queues = [
        db.write_sync(
            admin.create_queue, SYSTEM, {"name": n, "team_id": team, "sla_policy_id": sla}
        )["id"]
        for n in ("general", "billing")
    ]
    agent = db.write_sync(
        admin.create_user,
        SYSTEM,
        {"email": "bench@example.test", "name": "Bench Agent", "password_hash": "x",
         "role": "agent", "team_id": team},
        queues,
    )["id"]  # fmt: skip
    policy = IngestPolicy(blobs=blobs)
    boss = Viewer(0, Role.ADMIN)
    ids = []
    for i in range(tickets):
        contact = InboundContact(
            channel=Channel.EMAIL,
            external_id=f"<b{i}@bench>",
            handle=f"c{i}@example.test",
            body_text="where is my parcel?",
        )
        tid = db.write_sync(ingest, contact, policy).ticket_id
        db.write_sync(update_ticket, boss, tid, {"assignee_id": agent})
        ids.append(tid)
    return Viewer(agent, Role.AGENT, team, frozenset(queues)), ids


def _time(run: Callable[[int], Any], items: list[int]) -> float:
    """µs of this process's CPU per call of ``run`` over ``items`` (after a warm-up)."""
    for item in items[:WARMUP]:
        run(item)
    measured = items[WARMUP:]
    start = time.process_time()
    for item in measured:
        run(item)
    return round((time.process_time() - start) / len(measured) * 1e6, 1)


def _measure(url: str, n: int, data: Path) -> dict[str, Any]:
    db = Database(url, pool_size=2)
    try:
        migrate(db)
        blobs = BlobStore(data / "attachments")
        viewer, tickets = _seed(db, blobs, n + WARMUP)
        replies: list[int] = []
        with db.engine.connect() as conn:  # the server warms up too: plans, caches
            conn.execute(sa.text("select count(*) from ticket")).scalar()
        figures = {
            "select_1_transaction": _time(
                lambda _: db.write_sync(lambda uow: uow.session.execute(_ONE).scalar()), tickets
            ),
            "token_check": _time(lambda _: db.read_sync(load_auth_user, viewer.user_id), tickets),
            "get_ticket": _time(lambda t: db.read_sync(get_ticket, viewer, t), tickets),
            "reply": _time(
                lambda t: replies.append(
                    db.write_sync(post_message, viewer, t, "on its way").message_id
                ),
                tickets,
            ),
            "solve": _time(
                lambda t: db.write_sync(update_ticket, viewer, t, {"status": "solved"}), tickets
            ),
        }

        def deliver(message_id: int) -> None:
            out = db.write_sync(begin_delivery, message_id, blobs)
            assert out is not None, message_id
            db.write_sync(record_delivery, message_id, f"<r{message_id}@bench>", "sent")

        figures["delivery"] = _time(deliver, replies)
    finally:
        db.close()
    base = figures["select_1_transaction"]
    return {
        "us": figures,
        "ratio": {k: round(v / base, 2) for k, v in figures.items() if k != "select_1_transaction"},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench actions")
    parser.add_argument("--n", type=int, default=400, help="measured calls of each action")
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--pg-url", default=PG_ADMIN_URL, help="an existing database to admin")
    args = parser.parse_args(argv)
    out: dict[str, Any] = {"name": "actions", "n": args.n}
    with tempfile.TemporaryDirectory() as tmp:
        out["sqlite"] = _measure(f"sqlite:///{tmp}/bench.db", args.n, Path(tmp))
        if not args.no_pg:
            name = f"cc_bench_actions_{uuid.uuid4().hex[:8]}"
            admin_engine = sa.create_engine(
                args.pg_url.replace("postgresql://", "postgresql+psycopg://"),
                isolation_level="AUTOCOMMIT",
                poolclass=sa.pool.NullPool,
            )
            with admin_engine.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            try:
                base, _, _ = args.pg_url.rpartition("/")
                out["postgresql"] = _measure(f"{base}/{name}", args.n, Path(tmp))
            finally:
                with admin_engine.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin_engine.dispose()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
