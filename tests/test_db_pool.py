"""Pooled PostgreSQL connections the server has closed are replaced at checkout, without a
ping per checkout: a restarted or terminated backend costs the next unit of work nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from contact_center.db import Database, normalise_url

pytestmark = pytest.mark.postgres


def _backend_pid(db: Database) -> int:
    return int(db.read_sync(lambda c: c.execute(sa.text("select pg_backend_pid()")).scalar_one()))


def _terminate(url: str, pid: int) -> None:
    """End backend ``pid`` and wait until it has gone (its socket is closed by then)."""
    engine = sa.create_engine(normalise_url(url), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select pg_terminate_backend(:p)"), {"p": pid}).scalar()
        gone = sa.text("select count(*) from pg_stat_activity where pid = :p")
        while conn.execute(gone, {"p": pid}).scalar():  # a condition, not a timed wait
            conn.rollback()  # a fresh snapshot of pg_stat_activity each time
    engine.dispose()


@pytest.fixture
def pg_db(pg_template: str):
    db = Database(pg_template, pool_size=1)
    yield db
    db.close()


def test_a_unit_of_work_after_its_pooled_backend_was_terminated_runs_on_a_new_one(
    pg_db: Database, pg_template: str
) -> None:
    first = _backend_pid(pg_db)
    assert _backend_pid(pg_db) == first  # pooled: the same backend again
    _terminate(pg_template, first)
    second = _backend_pid(pg_db)  # no error: the dead connection was dropped at checkout
    assert second != first
    pg_db.write_sync(lambda uow: uow.session.execute(sa.text("select 1")).scalar_one())
    assert _backend_pid(pg_db) == second


def test_a_checkout_sends_nothing_to_the_server(pg_db: Database) -> None:
    """No ping: a unit of work runs only its own statements (the server counts them)."""
    seen: list[str] = []
    sa.event.listen(
        pg_db.engine, "before_cursor_execute", lambda *a: seen.append(a[2]), named=False
    )
    pg_db.read_sync(lambda c: c.execute(sa.text("select 1")).scalar_one())
    pg_db.read_sync(lambda c: c.execute(sa.text("select 2")).scalar_one())
    assert seen == ["select 1", "select 2"]
    assert pg_db.engine.pool._pre_ping is False  # the ping would go around this event


def _status(conn: sa.Connection) -> str:
    conn.execute(sa.text("select 1")).scalar_one()
    return conn.connection.dbapi_connection.info.transaction_status.name  # type: ignore[union-attr]


def test_a_read_sends_no_begin_or_commit_and_a_write_still_does(pg_db: Database) -> None:
    """Reads run in autocommit (each statement its own snapshot, as at READ COMMITTED inside a
    transaction); a write on the same pooled connection afterwards is one transaction again."""
    assert pg_db.read_sync(_status) == "IDLE"  # no transaction open after the statement
    assert pg_db.write_sync(lambda uow: _status(uow.session)) == "INTRANS"
    assert pg_db.read_sync(_status) == "IDLE"
    # a temporary table: the pooled connection's own (pool_size=1), gone when it closes, and
    # never in the session's shared database that other tests compare with the migrations
    pg_db.write_sync(lambda uow: uow.session.execute(sa.text("create temp table t_rb (n int)")))
    with pytest.raises(RuntimeError):
        pg_db.write_sync(lambda uow: (uow.session.execute(sa.text("insert into t_rb values (1)")),
                                      _raise()))  # fmt: skip
    assert pg_db.read_sync(lambda c: c.execute(sa.text("select count(*) from t_rb")).scalar()) == 0


def _raise() -> None:
    raise RuntimeError("the unit of work fails after its insert")
