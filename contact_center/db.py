"""Database engines and the unit of work.

Actions are plain synchronous functions ``action(uow, ...)``: the same code runs in the web
process (on a small thread pool, so the event loop never blocks) and in RQ workers (which are
synchronous). On SQLite one writer thread serialises every write transaction (``BEGIN
IMMEDIATE``, WAL, so readers never wait); on PostgreSQL a pool of threads writes concurrently and
unique constraints with ``ON CONFLICT`` settle races.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import re
import select
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine

from contact_center.db_batch import GroupCommitWriter
from tickets.models import utcnow

__all__ = [
    "SYSTEM",
    "Actor",
    "Database",
    "EventRecord",
    "UnitOfWork",
    "fetch",
    "insert_ignore",
    "normalise_url",
]

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A committed event, as published on the bus."""

    id: int
    type: str
    ticket_id: int | None
    payload: dict[str, Any]
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (Socket.IO, Redis, webhooks)."""
        return {
            "id": self.id,
            "type": self.type,
            "ticket_id": self.ticket_id,
            "payload": self.payload,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Actor:
    """Who performs an action: ``user`` (with id), ``channel:<name>``, ``system`` or ``cli``."""

    kind: str
    user_id: int | None = None


SYSTEM = Actor("system")


@dataclass(slots=True)
class UnitOfWork:
    """One transaction: a session, the time it runs at, and the events and audit rows it made."""

    session: sa.Connection
    now: datetime
    _events: list[dict[str, Any]] = field(default_factory=list)
    _audit: list[dict[str, Any]] = field(default_factory=list)
    published: list[EventRecord] = field(default_factory=list)
    outbox: list[int] = field(default_factory=list)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.session.dialect.name

    def fetch(self, statement: Any, params: Mapping[str, Any] | None = None) -> Sequence[Any]:
        """Run a prebuilt (module-level) Core statement in this transaction; all its rows.

        Rows allow index and attribute access, like SQLAlchemy's. On SQLite the statement runs
        straight on the driver (see :func:`_fast_plan`), elsewhere through ``execute``.
        """
        return fetch(self.session, statement, params)

    def emit(self, type_: str, payload: dict[str, Any], ticket_id: int | None = None) -> None:
        """Record an event; it is stored with this transaction and published after commit."""
        self._events.append(
            {"type": type_, "ticket_id": ticket_id, "payload": payload, "created_at": self.now}
        )

    def audit(
        self,
        actor: Actor,
        action: str,
        target_type: str,
        target_id: int | None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Record who did what; stored with this transaction."""
        self._audit.append(
            {
                "actor_user_id": actor.user_id,
                "actor": actor.kind,
                "action": action,
                "target_type": target_type,
                "target_id": target_id,
                "detail": detail or {},
                "created_at": self.now,
            }
        )

    def flush_log(self) -> None:
        """Write pending events and audit rows (ids returned for events, in order).

        On PostgreSQL both kinds are one statement: the audit rows' multi-row insert rides
        along as a data-modifying ``WITH`` of the events' (:func:`_log_insert`), built once per
        row counts and run on the driver; on SQLite, where a statement is a function call
        rather than a round trip, one prebuilt insert per row on the driver is cheaper still.
        """
        from tickets.actions._statements import AUDIT_INSERT, EVENT_INSERT

        conn = self.session
        events, audit = self._events, self._audit
        if (
            conn.dialect.name == "postgresql"
            and events
            and audit
            and _same_keys(events)
            and _same_keys(audit)
        ):
            ids = _log_insert_rows(conn, events, audit)
        else:
            ids = _insert_log(conn, EVENT_INSERT, events, returning=True)
            _insert_log(conn, AUDIT_INSERT, audit, returning=False)
        for event_id, ev in zip(ids, events, strict=True):
            self.published.append(
                EventRecord(event_id, ev["type"], ev["ticket_id"], ev["payload"], ev["created_at"])
            )
        events.clear()
        audit.clear()


def _insert_log(
    conn: sa.Connection, prebuilt: Any, rows: list[dict[str, Any]], *, returning: bool
) -> list[int]:
    """One kind of log rows: on SQLite one prebuilt insert per row on the driver, elsewhere
    (or without a driver plan) one multi-row insert; with ``returning`` the new ids in order."""
    if not rows:
        return []
    if conn.dialect.name == "sqlite" and _fast_plan(conn, prebuilt, rows[0]) is not None:
        if returning:
            return [fetch(conn, prebuilt, row)[0][0] for row in rows]
        for row in rows:
            fetch(conn, prebuilt, row)
        return []
    return _insert_rows(conn, prebuilt, rows, returning=returning)


def _same_keys(rows: list[dict[str, Any]]) -> bool:
    """Whether ``rows`` fit one multi-row insert of :func:`_rows_insert`."""
    keys = rows[0].keys()
    return len(rows) <= _ROWS_MAX and all(r.keys() == keys for r in rows)


_ROWS_MAX = 16  # more rows in one unit of work (rare): SQLAlchemy's own multi-row insert


@functools.lru_cache(maxsize=64)
def _rows_insert(
    table: sa.Table, keys: tuple[str, ...], n: int, returning: bool, prefix: str = ""
) -> Any:
    """``INSERT INTO table (keys) VALUES (…), … (n rows) [RETURNING id]``, parameters named
    ``{prefix}{key}_{row}``: built once per shape, so it takes the driver path of :func:`fetch`."""
    rows = [
        {k: sa.bindparam(f"{prefix}{k}_{i}", type_=table.c[k].type) for k in keys} for i in range(n)
    ]
    statement = sa.insert(table).values(rows)
    return statement.returning(table.c.id) if returning else statement


def _rows_params(rows: list[dict[str, Any]], prefix: str = "") -> dict[str, Any]:
    return {f"{prefix}{k}_{i}": v for i, row in enumerate(rows) for k, v in row.items()}


def _sorted_ids(out: Sequence[Any]) -> list[int]:
    # ids come from the table's sequence row by row, in the order of VALUES: sorted, they are
    # the rows' ids in order whatever order RETURNING lists them in
    return sorted(int(r[0]) for r in out)


def _insert_rows(
    conn: sa.Connection, prebuilt: Any, rows: list[dict[str, Any]], *, returning: bool
) -> list[int]:
    """Insert ``rows`` (each with the same keys) in one statement; with ``returning`` (which
    ``prebuilt``, the one-row insert, must match) their new ids in row order, else []."""
    if not _same_keys(rows):
        result = conn.execute(prebuilt, rows)
        return [row[0] for row in result.all()] if returning else []
    statement = _rows_insert(prebuilt.table, tuple(rows[0]), len(rows), returning)
    out = fetch(conn, statement, _rows_params(rows))
    return _sorted_ids(out) if returning else []


@functools.lru_cache(maxsize=64)
def _log_insert(
    event_keys: tuple[str, ...], n_events: int, audit_keys: tuple[str, ...], n_audit: int
) -> Any:
    """``WITH a AS (INSERT INTO auditlog …) INSERT INTO event … RETURNING id``: one round trip
    for a unit of work's log. PostgreSQL runs a data-modifying ``WITH`` whether or not the
    main statement reads it, in the same snapshot and transaction."""
    from tickets.actions._statements import AUDIT_INSERT, EVENT_INSERT

    audit = _rows_insert(AUDIT_INSERT.table, audit_keys, n_audit, False, "a_")
    events = _rows_insert(EVENT_INSERT.table, event_keys, n_events, True, "e_")
    return events.add_cte(audit.cte("audit_rows"))


def _log_insert_rows(
    conn: sa.Connection, events: list[dict[str, Any]], audit: list[dict[str, Any]]
) -> list[int]:
    """Events and audit rows in one statement (PostgreSQL); the events' ids in row order."""
    statement = _log_insert(tuple(events[0]), len(events), tuple(audit[0]), len(audit))
    out = fetch(conn, statement, {**_rows_params(events, "e_"), **_rows_params(audit, "a_")})
    return _sorted_ids(out)


def insert_ignore(uow: UnitOfWork, table: sa.Table, values: dict[str, Any]) -> int | None:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING id``: the new id, or None on conflict.

    On PostgreSQL a conflicting insert waits for the other transaction and then does nothing,
    so concurrent duplicates settle without check-then-insert races.
    """
    from tickets.actions._statements import insert_ignore_statement

    rows = uow.fetch(insert_ignore_statement(table, uow.dialect), values)
    return int(rows[0][0]) if rows else None


# -- prebuilt statements straight on the driver (SQLite, psycopg) -----------------------------
#
# ``Connection.execute`` costs ~20 µs of Python per statement even for a prebuilt, cached
# statement (cache key, execution context, events, result metadata); the SQLite call itself
# costs ~1 µs. On the single SQLite writer that is most of an ingest; on PostgreSQL it is a
# third of the client's CPU per statement (170-190 µs through execute(), 117-138 µs here).
# So a prebuilt statement is compiled once per set of parameter names, with SQLAlchemy's own
# compiler, bind and result processors and scalar column defaults, and then runs on the DBAPI
# cursor (parameters by position for sqlite3, by name for psycopg): the same SQL and the same
# stored values, errors wrapped into the same SQLAlchemy exceptions. Anything the shortcut does
# not cover (other drivers, callable defaults, parameter-dependent SQL, no open transaction)
# goes through ``Connection.execute`` as before.


class _Plan:
    __slots__ = ("binds", "named", "processors", "returns", "row", "sql", "statement")

    def __init__(
        self,
        statement: Any,
        sql: str,
        binds: list[tuple[str, str | None, Any, Callable[[Any], Any] | None]],
        named: bool,
        returns: bool,
        row: Any,
        processors: list[Callable[[Any], Any] | None] | None,
    ) -> None:
        self.statement = statement
        self.sql = sql
        self.binds = binds  # (name in the SQL, key of the caller's params or None, value, proc)
        self.named = named  # parameters by name (psycopg's %(name)s), else by position (?)
        self.returns = returns
        self.row = row
        self.processors = processors


# the engines the shortcut knows: (dialect, driver) -> parameters by name (else by position)
_DRIVER_PARAMSTYLES = {("sqlite", "pysqlite"): False, ("postgresql", "psycopg"): True}

# (id(statement), id(dialect), parameter names) -> (statement, dialect, plan or None): the
# references keep both ids from being reused while the entry lives. One dialect per engine.
_PLANS: dict[tuple[int, int, tuple[str, ...]], tuple[Any, Any, _Plan | None]] = {}
_PLANS_MAX = 2_000


def _build_plan(conn: sa.Connection, statement: Any, names: tuple[str, ...]) -> _Plan | None:
    dialect = conn.dialect
    named = _DRIVER_PARAMSTYLES.get((dialect.name, dialect.driver))
    if named is None or dialect.paramstyle != ("pyformat" if named else "qmark"):
        return None
    try:
        is_insert = isinstance(statement, sa.Insert)
        compiled: Any = statement.compile(
            dialect=dialect, column_keys=list(names) if is_insert else None
        )
        if compiled.positional == named or compiled.escaped_bind_names or compiled.update_prefetch:
            return None
        defaults: dict[str, Any] = {}
        for col in compiled.insert_prefetch:
            if col.key in names:
                continue
            if col.default is None or not col.default.is_scalar:
                return None  # callable defaults may need the execution context
            defaults[col.key] = col.default.arg
        for key, bind in compiled.binds.items():
            if bind.expanding and key in names:
                return None  # the SQL would depend on the list's length
        state = compiled.construct_expanded_state(dict.fromkeys(names))
    except sa.exc.SQLAlchemyError:
        return None
    binds: list[tuple[str, str | None, Any, Callable[[Any], Any] | None]] = []
    processors_by_name = {**compiled._bind_processors, **state.processors}
    for key in state.parameters if named else state.positiontup or ():
        proc = processors_by_name.get(key)
        if isinstance(proc, tuple):
            return None  # tuple-typed parameters: leave them to execute()
        if key in names:
            bind = compiled.binds.get(key)
            if proc is not None and bind is not None and bind.type._type_affinity is sa.DateTime:
                proc = _memoised(proc, (type(bind.type), repr(bind.type), dialect.name))
            binds.append((key, key, None, proc))
            continue
        value = defaults[key] if key in defaults else state.parameters[key]
        binds.append((key, None, proc(value) if proc is not None else value, None))
    columns = compiled._result_columns
    row: Any = None
    processors: list[Callable[[Any], Any] | None] | None = None
    if columns:
        row = _row_type([c.keyname for c in columns])
        procs = [c.type._cached_result_processor(dialect, None) for c in columns]
        processors = procs if any(p is not None for p in procs) else None
    return _Plan(statement, state.statement, binds, named, bool(columns), row, processors)


_MEMOISED: dict[Any, Callable[[Any], Any]] = {}


def _memoised(proc: Callable[[Any], Any], kind: Any) -> Callable[[Any], Any]:
    """``proc`` remembering its last few results, shared by every column of the same ``kind``
    (type class, its arguments, dialect). For timestamps: an action stamps one ``now`` on a
    dozen columns, and formatting it for SQLite is the costliest bind conversion."""
    hit = _MEMOISED.get(kind)
    if hit is not None:
        return hit
    cache: dict[Any, Any] = {}

    def run(value: Any) -> Any:
        try:
            return cache[value]
        except KeyError:
            pass
        if len(cache) >= 64:
            cache.clear()
        out = cache[value] = proc(value)
        return out

    _MEMOISED[kind] = run
    return run


def _row_type(keys: list[str]) -> Any:
    """Rows with index and attribute access, like SQLAlchemy's ``Row``."""
    return namedtuple("Row", keys, rename=True)


def _fast_plan(conn: sa.Connection, statement: Any, params: Mapping[str, Any]) -> _Plan | None:
    """The driver-level plan for ``statement`` on this engine with these parameter names."""
    dialect = conn.dialect
    if (dialect.name, dialect.driver) not in _DRIVER_PARAMSTYLES:
        return None
    key = (id(statement), id(dialect), tuple(params))
    entry = _PLANS.get(key)
    if entry is None or entry[0] is not statement or entry[1] is not dialect:
        if len(_PLANS) > _PLANS_MAX:  # only prebuilt statements belong here; stay bounded
            _PLANS.clear()
        entry = _PLANS[key] = (statement, dialect, _build_plan(conn, statement, key[2]))
    return entry[2]


def fetch(
    conn: sa.Connection, statement: Any, params: Mapping[str, Any] | None = None
) -> Sequence[Any]:
    """Run a prebuilt Core statement on ``conn`` (inside its transaction); all its rows."""
    params = params or {}
    plan = _fast_plan(conn, statement, params) if conn.in_transaction() else None
    if plan is None:
        result = conn.execute(statement, params)
        return result.all() if result.returns_rows else []
    try:
        args: Any
        if plan.named:
            args = {
                name: value if key is None else (params[key] if proc is None else proc(params[key]))
                for name, key, value, proc in plan.binds
            }
        else:
            args = [
                value if key is None else (params[key] if proc is None else proc(params[key]))
                for _, key, value, proc in plan.binds
            ]
    except Exception as err:  # a bind processor refused a value, as execute() reports it
        raise sa.exc.StatementError(str(err), plan.sql, dict(params), err) from err
    raw = _driver_execute(conn, plan.sql, args, plan.returns)
    if plan.row is None:
        return []
    make = plan.row._make
    procs = plan.processors
    if procs is None:
        return [make(r) for r in raw]
    return [make([v if p is None else p(v) for p, v in zip(procs, r, strict=True)]) for r in raw]


def _driver_execute(conn: sa.Connection, sql: str, args: Any, returns: bool) -> list[Any]:
    dialect = conn.dialect
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, args)
        return list(cursor.fetchall()) if returns else []
    except Exception as err:  # a driver error, or a value the driver cannot adapt (psycopg
        # dumps JSON here): wrapped as execute() wraps it (DBAPIError, else StatementError)
        raise sa.exc.DBAPIError.instance(
            sql, args, err, dialect.loaded_dbapi.Error, dialect=dialect
        ) from err
    finally:
        cursor.close()


_SAVEPOINT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def _plain_savepoints(dialect: Any, *, driver: bool) -> None:
    """``SAVEPOINT``/``RELEASE``/``ROLLBACK TO`` as plain SQL on this engine's dialect.

    SQLAlchemy compiles a fresh clause for every uniquely named savepoint (~35 µs each, and the
    group-commit writer and ingest take two per contact). Same statements, no compilation: on
    the driver for SQLite, through ``exec_driver_sql`` (events, error handling) elsewhere.
    """
    plain = {
        "do_savepoint": "SAVEPOINT {}",
        "do_release_savepoint": "RELEASE SAVEPOINT {}",
        "do_rollback_to_savepoint": "ROLLBACK TO SAVEPOINT {}",
    }
    for method, template in plain.items():
        original = getattr(dialect, method)

        def run(
            connection: sa.Connection, name: str, _t: str = template, _o: Any = original
        ) -> None:
            if not _SAVEPOINT_NAME.fullmatch(name):
                _o(connection, name)
            elif driver:
                _driver_execute(connection, _t.format(name), (), False)
            else:
                connection.exec_driver_sql(_t.format(name))

        setattr(dialect, method, run)


def normalise_url(url: str) -> str:
    """Pick the drivers we ship: psycopg 3 for PostgreSQL, the stdlib for SQLite."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _sqlite_engine(url: str, *, immediate: bool, pool_size: int) -> Engine:
    engine = sa.create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=pool_size,
        max_overflow=0,
    )

    @sa_event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @sa_event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    _plain_savepoints(engine.dialect, driver=True)
    return engine


def _check_alive(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """Refuse a pooled connection the server has closed, without a round trip.

    An idle connection has nothing to read: when its socket is readable, the server has said
    goodbye (restart, ``pg_terminate_backend``, an idle timeout) and closed it. Raising
    ``DisconnectionError`` makes the pool drop it and connect anew. This replaces
    ``pool_pre_ping``, whose ping is a round trip and a query on the server at every checkout
    (about a tenth of the statements a contact costs); what neither notices, a connection lost
    mid-transaction, fails that transaction either way.
    """
    if dbapi_conn.closed:
        raise sa.exc.DisconnectionError("the pooled connection is closed")
    poll = select.poll()
    poll.register(dbapi_conn.fileno(), select.POLLIN)
    if poll.poll(0):
        raise sa.exc.DisconnectionError("the server closed the pooled connection")


class Database:
    """Engines plus the executors that run actions off the event loop."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 8,
        clock: Callable[[], datetime] = utcnow,
        on_commit: Callable[[Sequence[EventRecord]], None] | None = None,
        group_commit: bool = True,
    ) -> None:
        self.url = normalise_url(url)
        self.clock = clock
        self.on_commit = on_commit
        # Run inside every write transaction after its events are stored (the webhook outbox).
        self.tx_hooks: list[Callable[[UnitOfWork], None]] = []
        # Called after commit with the outbox row ids the transaction created.
        self.on_outbox: Callable[[Sequence[int]], None] | None = None
        self.closed = False
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            if self.url.startswith("sqlite:///") and self.url != "sqlite:///:memory:":
                from pathlib import Path

                Path(self.url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
            self.engine = _sqlite_engine(self.url, immediate=True, pool_size=1)
            self.read_engine = _sqlite_engine(self.url, immediate=False, pool_size=pool_size)
            writers = 1
        else:
            self.engine = sa.create_engine(self.url, pool_size=pool_size, max_overflow=2)
            sa_event.listen(self.engine, "checkout", _check_alive)
            _plain_savepoints(self.engine.dialect, driver=False)
            # reads in autocommit: no BEGIN and COMMIT round trips (a third of the
            # transactions of a contact are reads). At READ COMMITTED each statement of a
            # transaction takes its own snapshot anyway, so a read sees what it saw before.
            self.read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            writers = pool_size
        self._write_pool = ThreadPoolExecutor(writers, thread_name_prefix="db-write")
        self.group_commit = group_commit
        self._batcher = GroupCommitWriter(self)
        self._read_pool = ThreadPoolExecutor(pool_size, thread_name_prefix="db-read")

    # -- synchronous API (CLI, jobs, tests) -------------------------------------------------
    def write_sync(
        self,
        fn: Callable[Concatenate[UnitOfWork, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``fn(uow, ...)`` in one write transaction; publish its events after commit."""
        if self.closed:
            raise RuntimeError("database is closed")
        with self.engine.begin() as conn:
            uow = UnitOfWork(session=conn, now=self.clock())
            result = fn(uow, *args, **kwargs)
            uow.flush_log()
            for hook in self.tx_hooks:
                hook(uow)
        if uow.published and self.on_commit is not None:
            self.on_commit(uow.published)
        if uow.outbox and self.on_outbox is not None:
            self.on_outbox(uow.outbox)
        return result

    def read_sync(
        self, fn: Callable[Concatenate[sa.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``fn(session, ...)`` as a read: on PostgreSQL in autocommit (no BEGIN, no
        COMMIT; each statement sees what is committed when it starts, as it would at READ
        COMMITTED inside a transaction), on SQLite in a deferred transaction."""
        return self._read_on(self.read_engine, fn, *args, **kwargs)

    def stream_sync(
        self, fn: Callable[Concatenate[sa.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """:meth:`read_sync` in a transaction, for a read that streams rows through a server-side
        cursor (``yield_per``), which PostgreSQL keeps only inside a transaction."""
        return self._read_on(self.engine if not self.is_sqlite else self.read_engine,
                             fn, *args, **kwargs)  # fmt: skip

    def _read_on(
        self,
        engine: Engine,
        fn: Callable[Concatenate[sa.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        if self.closed:
            raise RuntimeError("database is closed")
        with engine.begin() as conn:
            return fn(conn, *args, **kwargs)

    # -- asynchronous API (web process) -------------------------------------------------------
    async def write(
        self,
        fn: Callable[Concatenate[UnitOfWork, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """:meth:`write_sync` off the event loop (grouped commits on SQLite)."""
        if self.is_sqlite and self.group_commit:
            if self.closed:
                raise RuntimeError("database is closed")
            result: T = await self._batcher.submit(fn, args, kwargs)
            return result
        loop = asyncio.get_running_loop()
        call = functools.partial(self.write_sync, fn, *args, **kwargs)
        ctx = contextvars.copy_context()
        return await loop.run_in_executor(self._write_pool, ctx.run, call)

    async def read(
        self, fn: Callable[Concatenate[sa.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """:meth:`read_sync` on the reader pool."""
        return await self._on_readers(functools.partial(self.read_sync, fn, *args, **kwargs))

    async def stream(
        self, fn: Callable[Concatenate[sa.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """:meth:`stream_sync` on the reader pool."""
        return await self._on_readers(functools.partial(self.stream_sync, fn, *args, **kwargs))

    async def _on_readers(self, call: Callable[[], T]) -> T:
        ctx = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._read_pool, ctx.run, call)

    def ping(self) -> bool:
        """True when the database answers."""
        with self.read_engine.connect() as conn:
            return conn.execute(sa.text("select 1")).scalar() == 1

    def close(self) -> None:
        """Stop the pools and dispose of the engines."""
        self.closed = True
        self._batcher.close()
        self._write_pool.shutdown(wait=True)
        self._read_pool.shutdown(wait=True)
        self.engine.dispose()
        if self.is_sqlite:
            self.read_engine.dispose()
