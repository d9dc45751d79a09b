"""Shared fixtures: real SQLite and PostgreSQL databases, the app, users of every role."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient
from sqlmodel import SQLModel

from contact_center.app import build_services, create_app
from contact_center.auth import PasswordHashing
from contact_center.db import Actor, Database
from contact_center.keys import Services
from contact_center.migrate import migrate
from contact_center.settings import Secret, Settings
from tests.workers import RedisServer
from tickets.actions import admin

PG_ADMIN_URL = os.environ.get("CC_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
FAST_HASHING = PasswordHashing(time_cost=1, memory_cost=1024)
PASSWORD = "correct horse battery"


class Clock:
    """A settable clock for the data layer (no sleeps in tests)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def _pg_url(name: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database for this test session (dropped at the end)."""
    name = f"cc_test_{uuid.uuid4().hex[:10]}"
    _admin_sql(f'CREATE DATABASE "{name}"')
    url = _pg_url(name)
    db = Database(url, pool_size=1)
    migrate(db)
    db.close()
    yield url
    _admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin_sql(statement: str) -> None:
    engine = sa.create_engine(
        PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,
    )
    with engine.connect() as conn:
        conn.execute(sa.text(statement))
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file copied for each test."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(f"sqlite:///{path}", pool_size=1)
    migrate(db)
    db.close()  # the last connection closing checkpoints the WAL into the file
    assert not path.with_name(path.name + "-wal").exists()
    return path


def _truncate(url: str) -> None:
    engine = sa.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.pool.NullPool
    )
    names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated database of each kind."""
    if request.param == "sqlite":
        target = tmp_path / "cc.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("pg_template")
    _truncate(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh, migrated SQLite database only."""
    target = tmp_path / "cc.db"
    shutil.copy(sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def clock() -> Clock:
    """The injected clock."""
    return Clock()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Settings for one test."""
    return Settings(
        database_url=db_url,
        data_dir=tmp_path / "data",
        secret_key=Secret("test-secret-key-0123456789abcdef"),
        db_pool_size=8,
        rq_queue=f"cc-test-{uuid.uuid4().hex[:8]}",
        events_channel=f"cc-test-{uuid.uuid4().hex[:8]}",
        webhook_allow_cidrs="127.0.0.1/32",  # local test receivers (subscriptions opt in too)
    )


@pytest.fixture
async def services(settings: Settings, clock: Clock) -> AsyncIterator[Services]:
    """Services built like the app builds them, with fast hashing and the test clock.

    Async, so that its teardown is ordered after the app's own cleanup (an app built on these
    services closes them first; closing twice is harmless).
    """
    svc = build_services(settings, password_hashing=FAST_HASHING, clock=clock)
    yield svc
    svc.db.close()


@dataclass
class World:
    """Teams, queues and one user of each role (plus a second agent and a foreign team)."""

    svc: Services
    teams: dict[str, int]
    queues: dict[str, int]
    users: dict[str, dict[str, Any]]
    tokens: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        """Authorization header for a user."""
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def build_world(svc: Services) -> World:
    """Seed through actions, as the product would."""
    cli = Actor("cli")
    db = svc.db
    teams = {n: db.write_sync(admin.create_team, cli, n)["id"] for n in ("red", "blue")}
    sla = db.write_sync(admin.create_sla_policy, cli, {"name": "default"})
    queues = {}
    for name, team in (("general", "red"), ("billing", "red"), ("tech", "blue")):
        queues[name] = db.write_sync(
            admin.create_queue,
            cli,
            {"name": name, "team_id": teams[team], "sla_policy_id": sla["id"]},
        )["id"]
    pw = FAST_HASHING.hash(PASSWORD)
    spec = {
        "admin": ("admin", None, []),
        "supervisor": ("supervisor", "red", []),
        "agent": ("agent", "red", ["general", "billing"]),
        "agent2": ("agent", "red", ["general"]),
        "blue_agent": ("agent", "blue", ["tech"]),
        "blue_supervisor": ("supervisor", "blue", []),
    }
    users = {}
    for who, (role, team, qs) in spec.items():
        users[who] = db.write_sync(
            admin.create_user,
            cli,
            {
                "email": f"{who}@test.example",
                "name": who.title(),
                "password_hash": pw,
                "role": role,
                "team_id": teams[team] if team else None,
                "skills": {"billing": 3},
            },
            [queues[q] for q in qs],
        )
    tokens = {who: svc.signer.issue(u["id"], 0) for who, u in users.items()}
    return World(svc, teams, queues, users, tokens)


@pytest.fixture
def world(services: Services) -> World:
    """The seeded world on the test database."""
    return build_world(services)


@pytest.fixture
async def client(
    aiohttp_client: Callable[..., Any], settings: Settings, services: Services, world: World
) -> AsyncIterator[TestClient[Any, Any]]:
    """A test client of the real app on the test database."""
    app = create_app(settings, services=services)
    test_client = await aiohttp_client(app)
    yield test_client
    await test_client.close()  # app cleanup before the services fixture closes the database


def inbound(
    external_id: str, handle: str = "cust@example.com", channel: str = "email", **kw: Any
) -> dict[str, Any]:
    """A valid inbound body."""
    return {"external_id": external_id, "handle": handle, "channel": channel,
            "body": kw.pop("body", f"message {external_id}"), **kw}  # fmt: skip


async def until(condition: Callable[[], bool], timeout: float = 5.0, poll: float = 0.02) -> float:
    """Poll ``condition`` (every ``poll`` s) until it holds; the seconds it took. Raises after
    ``timeout`` seconds (a bound for a test that would otherwise hang, not a timing check)."""
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("condition not reached")
        await asyncio.sleep(poll)
    return time.monotonic() - t0


def count(db: Database, table: str, where: str = "1=1", **params: Any) -> int:
    """Rows in a table."""
    return int(sql(db, f'SELECT count(*) FROM "{table}" WHERE {where}', **params)[0][0])


async def applied(db: Database, *consumers: Any, timeout: float = 5) -> None:
    """Wait until each consumer (router, SLA service) has applied every committed event.

    It waits for the ids themselves, not for the newest one: on PostgreSQL ids can commit out
    of order, so a consumer can have applied event 52 while 50 is still on its way.
    """
    for consumer in consumers:
        since = consumer.handled.through
        ids = [int(r[0]) for r in sql(db, "SELECT id FROM event WHERE id > :n", n=since)]
        await asyncio.wait_for(consumer.handled.wait(ids), timeout)


def reads_of(monkeypatch: pytest.MonkeyPatch, db: Database, fn: Any) -> list[tuple[Any, ...]]:
    """The arguments of every ``db.read(fn, ...)`` from now on (each read still runs)."""
    calls: list[tuple[Any, ...]] = []
    read = db.read

    async def counting(f: Any, *args: Any, **kwargs: Any) -> Any:
        if f is fn:
            calls.append(args)
        return await read(f, *args, **kwargs)

    monkeypatch.setattr(db, "read", counting)
    return calls


def wait_until_blocked(db_url: str, worker: Any) -> None:
    """Return once a backend of this PostgreSQL database waits for a lock (or ``worker``, a
    thread, has ended): the second of two racing transactions is then queued behind the
    first."""
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as watch:
        while (
            worker.is_alive()
            and not watch.execute(
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname ="
                " current_database()"
            ).fetchall()
        ):
            watch.execute("SELECT pg_sleep(0.01)")


def sql(db: Database, statement: str, **params: Any) -> list[Any]:
    """Rows of a read-only statement (on the read engine, so the writer is never held)."""
    with db.read_engine.connect() as conn:
        return list(conn.execute(sa.text(statement), params).all())


__all__ = [
    "PASSWORD",
    "REDIS_URL",
    "Clock",
    "World",
    "applied",
    "build_world",
    "count",
    "inbound",
    "reads_of",
    "replace",
    "sql",
    "wait_until_blocked",
]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A ``redis-server`` of the test's own on a free port (never the shared one): the test
    may stop it and start it again, empty."""
    from tests.channels.email.dovecot import free_port

    server = RedisServer(free_port(), tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _collect_garbage_per_test() -> Iterator[None]:
    """Leaked connections or files surface in the test that leaked them, not a later one."""
    yield
    import gc

    gc.collect()
