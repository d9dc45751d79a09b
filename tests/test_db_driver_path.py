"""Prebuilt statements straight on the driver (``contact_center.db.fetch``), on SQLite and on
PostgreSQL (psycopg): the same SQL, the same stored and returned values, and the same
SQLAlchemy errors as ``Connection.execute`` — only less Python per statement."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from contact_center.db import _fast_plan, fetch, normalise_url
from tickets.actions._statements import MESSAGE_BY_ID, TICKET_BY_ID


@pytest.fixture
def table(db_url: str):
    """A scratch table with the column kinds the desk uses, on a fresh engine."""
    engine = sa.create_engine(normalise_url(db_url))
    meta = sa.MetaData()
    t = sa.Table(
        f"driver_path_{uuid.uuid4().hex[:8]}",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(40), nullable=False, unique=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True)),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("kind", sa.String(10), nullable=False, default="plain"),
    )
    meta.create_all(engine)
    try:
        yield engine, t
    finally:
        meta.drop_all(engine)
        engine.dispose()


def _insert(t: sa.Table) -> sa.Insert:
    return sa.insert(t).returning(t.c.id, t.c.kind)


def test_the_driver_path_stores_and_returns_what_execute_does(table):
    engine, t = table
    at = datetime(2026, 12, 2, 8, 30, 15, 123456, tzinfo=UTC)
    by_name = sa.select(t).where(t.c.name == sa.bindparam("name"))
    row = {"name": "fast", "count": 3, "at": at, "data": {"k": [1, "two", None]}}
    with engine.begin() as conn:
        ins = _insert(t)
        assert _fast_plan(conn, ins, row) is not None  # both engines take the driver path
        assert _fast_plan(conn, by_name, {"name": "x"}) is not None
        new_id, kind = fetch(conn, ins, row)[0]
        conn.execute(ins, {**row, "name": "slow"})
        fast = fetch(conn, by_name, {"name": "fast"})
        slow = conn.execute(by_name, {"name": "slow"}).all()
    assert kind == "plain"  # the scalar column default was applied
    assert fast[0].id == new_id and fast[0].name == "fast"
    assert [tuple(r)[2:] for r in fast] == [tuple(r)[2:] for r in slow]  # count .. kind
    assert fast[0].at.astimezone(UTC) == at and fast[0].data == {"k": [1, "two", None]}
    with engine.begin() as conn:
        assert fetch(conn, by_name, {"name": "none"}) == []


def test_driver_errors_come_as_sqlalchemy_errors_and_lose_nothing(table):
    engine, t = table
    ins = _insert(t)
    row = {"name": "once", "count": 1, "at": None, "data": {}}
    with engine.begin() as conn:
        fetch(conn, ins, row)
    with engine.begin() as conn:
        with pytest.raises(sa.exc.IntegrityError) as err:
            fetch(conn, ins, {**row, "count": 2})
        assert t.name in str(err.value)  # the statement is in the error, as execute() has it
        conn.rollback()
    with engine.begin() as conn, pytest.raises(sa.exc.StatementError, match="JSON serializable"):
        fetch(conn, ins, {**row, "name": "bad", "data": {1, 2}})  # a set is not JSON
    with engine.connect() as conn:
        stored = conn.execute(sa.select(t.c.name, t.c.count)).all()
    assert stored == [("once", 1)]


def _take_the_driver_path(db_url: str, statements: list, writes: list) -> None:
    """Each of ``statements`` (reads and guarded updates) has a driver plan and finds nothing
    with these ids; each of ``writes`` has a plan (not run)."""
    engine = sa.create_engine(normalise_url(db_url))
    try:
        with engine.begin() as conn:
            for statement, params in statements:
                assert _fast_plan(conn, statement, params) is not None, statement
                assert fetch(conn, statement, params) == []  # nothing with these ids yet
            for statement, params in writes:
                assert _fast_plan(conn, statement, params) is not None, statement
            conn.rollback()
    finally:
        engine.dispose()


def test_the_offers_and_accepts_statements_take_the_driver_path(db_url: str):
    """Making and accepting an offer runs prebuilt statements on the driver on both engines;
    none of them falls back to ``execute`` (which would still be right, only slower)."""
    from tickets.actions import routing

    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    statements = [
        (TICKET_BY_ID, {"tid": 1}),
        (routing._TICKET_LOCKED, {"tid": 1}),
        (routing._OPEN_OFFER, {"tid": 1, "aid": 2}),
        (routing._DECIDE, {"oid": 3, "outcome": "accepted", "now": now}),
    ] + [
        (routing._assign(opens, answers), {"tid": 1, "aid": 2, "now": now})
        for opens in (False, True)
        for answers in (False, True)
    ]
    insert = {"ticket_id": 1, "agent_id": 2, "created_at": now, "expires_at": now}
    dialect = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    _take_the_driver_path(db_url, statements, [(routing._OFFER_INSERT[dialect], insert)])


def test_the_statements_of_a_reply_an_update_and_a_delivery_take_the_driver_path(db_url: str):
    """The statements built once for a ticket read, a token check, a reply, a solve and a
    delivery job run on the driver on both engines (execute would be right, only slower)."""
    from contact_center import auth
    from contact_center.db import _rows_insert
    from tickets import queries
    from tickets.actions import messages, routing, tickets
    from tickets.actions._common import EVENT

    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    statements = [
        (queries._TICKET_IN_SCOPE["all", False], {"tid": 1}),
        (queries._TICKET_IN_SCOPE["mine", True], {"tid": 1, "scope_user": 2}),
        (queries._TICKET_IN_SCOPE["team", False], {"tid": 1, "scope_user": 2, "scope_team": 3}),
        (auth._USER, {"uid": 1}),
        (auth._QUEUES_OF, {"uid": 1}),
        (messages._BY_CLIENT_KEY, {"tid": 1, "key": "k"}),
        (MESSAGE_BY_ID, {"mid": 1}),
        (messages._DELIVERY_OF, {"mid": 1}),
        (messages._HANDLE, {"cid": 1, "kind": "email"}),
        (messages._REFS, {"tid": 1}),
        (messages._TAKE, {"mid": 1, "was": "queued", "until": now}),
        (messages._TAKE_LEASED, {"mid": 1, "was": "sending", "lease": now, "until": now}),
        (routing._CANCEL, {"tid": 1, "now": now}),
        (tickets._USER, {"uid": 1}),
    ]
    keys = ("type", "ticket_id", "payload", "created_at")  # three events of a unit of work
    rows = {
        f"{k}_{i}": v for i in range(3) for k, v in zip(keys, ("t", None, {}, now), strict=True)
    }
    writes = [(_rows_insert(EVENT, keys, 3, True), rows)]
    if db_url.startswith("postgresql"):  # events and audit rows in one statement
        from contact_center.db import _log_insert

        audit_keys = ("actor_user_id", "actor", "action", "target_type", "target_id", "detail",
                      "created_at")  # fmt: skip
        audit_row = (None, "system", "y", "ticket", 1, {}, now)
        log = {f"e_{k}": v for k, v in rows.items()} | {
            f"a_{k}_0": v for k, v in zip(audit_keys, audit_row, strict=True)
        }
        writes.append((_log_insert(keys, 3, audit_keys, 1), log))
    _take_the_driver_path(db_url, statements, writes)


@pytest.mark.parametrize(("events", "audits"), [(1, 1), (3, 3), (2, 0), (0, 2), (2, 5), (16, 16),
                                                (17, 17), (16, 17)])  # fmt: skip
def test_a_unit_of_works_events_get_their_own_ids_in_order(db_url: str, events: int, audits: int):
    """Events and audit rows go in as one multi-row insert each, on PostgreSQL as one statement
    (the driver path, up to 16 rows; SQLAlchemy's beyond); each published event carries the id
    of its own stored row, and every audit row is stored."""
    from contact_center.db import SYSTEM, Database
    from tickets.actions._common import AUDIT, EVENT

    db = Database(db_url, pool_size=1)
    try:

        def work(uow):
            for i in range(events):
                uow.emit(f"test.e{i}", {"n": i, "text": "中文"}, ticket_id=i)
            for i in range(audits):
                uow.audit(SYSTEM, f"test.a{i}", "ticket", i, {"n": i})
            return uow.published

        published = db.write_sync(work)
        assert [e.type for e in published] == [f"test.e{i}" for i in range(events)]
        ids = [e.id for e in published]
        assert ids == sorted(ids) and len(set(ids)) == events
        with db.engine.connect() as conn:
            ev = EVENT.c
            stored = {
                r.id: (r.type, r.ticket_id, r.payload)
                for r in conn.execute(sa.select(ev.id, ev.type, ev.ticket_id, ev.payload))
            }
            stored_audits = conn.execute(
                sa.select(AUDIT.c.action, AUDIT.c.target_id).order_by(AUDIT.c.id)
            ).all()
        for e in published:
            assert stored[e.id] == (e.type, e.ticket_id, e.payload)
        assert [tuple(a) for a in stored_audits] == [(f"test.a{i}", i) for i in range(audits)]
    finally:
        db.close()
