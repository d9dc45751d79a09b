"""Backups: round trip on both engines, refusals before any write, scheduler, CLI, app wiring."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from contact_center.app import build_services, create_app
from contact_center.backup import backup_dir, create_backup, restore_backup
from contact_center.backup_scheduler import (
    BACKUPS,
    BackupScheduler,
    list_archives,
    prune_backups,
)
from contact_center.db import Actor, Database
from contact_center.errors import BackupError
from contact_center.migrate import migrate
from contact_center.settings import Settings
from tests.conftest import FAST_HASHING, _admin_sql, _pg_url, build_world, count
from tickets.actions import ingest
from tickets.contact import InboundAttachment, InboundContact
from tickets.domain import Channel
from tickets.models import EmailReceipt

ROOT = Path(__file__).resolve().parents[1]
API = Actor("test")
PDF = b"%PDF-1.4 \xe5\x8f\x91\xe7\xa5\xa8 " + bytes(range(256)) * 40
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)
RAW_MAIL = "From: x@example.com\r\nSubject: =?utf-8?b?5Z6D5Zy+?=\r\n\r\n垃圾".encode()


def _contact(ext: str, handle: str, **kw: Any) -> InboundContact:
    channel = kw.pop("channel", Channel.EMAIL)
    return InboundContact(channel=channel, external_id=ext, handle=handle, **kw)


def seed(svc: Any) -> None:
    """Users, queues (the world) plus tickets with Chinese text and attachments, via ingest."""
    build_world(svc)
    contacts = [
        _contact("m1", "wang@example.cn", customer_name="王小明", subject="发票问题",
                 body_text="你好，我的发票金额不对。请帮忙核对 🙏", language="zh",
                 attachments=(InboundAttachment("发票.pdf", "application/pdf", PDF),)),
        _contact("m2", "wang@example.cn", body_text="附件是截图。",
                 attachments=(InboundAttachment("截图.png", "image/png", PNG),
                              InboundAttachment("发票-副本.pdf", "application/pdf", PDF))),
        _contact("s1", "+14155550123", channel=Channel.SMS, body_text="Where is my order?"),
        _contact("c1", "visitor-42", channel=Channel.CHAT, body_text="<b>hi</b> there",
                 customer_name="Ann"),
    ]  # fmt: skip
    for c in contacts:
        svc.db.write_sync(ingest, c, svc.ingest_policy, API)
    raw = svc.ingest_policy.blobs.put(RAW_MAIL)  # a quarantined mail's source, kept as a blob
    svc.db.write_sync(_receipt, raw)
    svc.ingest_policy.blobs.put(b"an unreferenced blob is carried along too")


def _receipt(uow: Any, raw_sha256: str) -> None:
    values = {"mailbox": "support", "uidvalidity": 7, "uid": 1, "content_hash": raw_sha256,
              "outcome": "quarantined", "raw_sha256": raw_sha256,
              "received_at": uow.now}  # fmt: skip
    uow.session.execute(sa.insert(EmailReceipt.__table__), values)


def _engine(url: str) -> sa.Engine:
    url = url.replace("postgresql://", "postgresql+psycopg://")
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def dump_tables(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, ordered by primary key (reflected, so nothing is missed)."""
    engine = _engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    out = {}
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            order = list(table.primary_key.columns) or list(table.columns)
            rows = conn.execute(sa.select(table).order_by(*order))
            out[table.name] = [dict(r._mapping) for r in rows]
    engine.dispose()
    return out


def blob_bytes(data_dir: Path) -> dict[str, bytes]:
    """Every file of the blob store, by name."""
    root = data_dir / "attachments"
    return {p.parent.name + p.name: p.read_bytes() for p in root.glob("??/*")}


@pytest.fixture
def target(db_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty restore target of the same engine (PostgreSQL: an existing, empty database)."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'cc.db'}"
        return
    name = f"cc_restore_{uuid.uuid4().hex[:10]}"
    _admin_sql(f'CREATE DATABASE "{name}"')
    yield _pg_url(name)
    _admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_backup_then_restore_into_an_empty_target_is_identical(
    services, settings, clock, target, tmp_path
):
    seed(services)
    before = dump_tables(settings.database_url)
    assert len(before["attachment"]) == 3 and len(before["message"]) == 4
    blobs_before = blob_bytes(settings.data_dir)
    assert {PDF, PNG, RAW_MAIL} < set(blobs_before.values()) and len(blobs_before) == 4

    archive = create_backup(settings, services.db, now=clock.now)
    assert archive == backup_dir(settings) / "cc-backup-20260302T090000Z.tar.gz"
    assert archive.stat().st_mode & 0o077 == 0  # customer data: owner only
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest["format"] == 1 and manifest["schema_revision"]
    assert manifest["tables"] == {name: len(rows) for name, rows in before.items()}
    assert len([f for f in manifest["files"] if f.startswith("attachments/")]) == 4
    assert count(services.db, "auditlog", "action='backup.create'") == 1

    fresh = tmp_path / "fresh-data"
    report = restore_backup(settings, archive, target_url=target, data_dir=fresh)
    assert report.tables["message"] == 4 and report.attachments == 3  # referenced blobs
    assert "verified" in report.summary()

    after = dump_tables(target)
    assert set(after) == set(before)
    for name, rows in before.items():
        if name == "auditlog":
            kept = [r for r in after[name] if r["action"] != "backup.restore"]
            assert kept == rows
            assert len(after[name]) == len(rows) + 1  # the restore's own audit row
        else:
            assert after[name] == rows, name
    assert blob_bytes(fresh) == blobs_before
    assert any("发票金额" in r["body_text"] for r in after["message"])
    assert {r["filename"] for r in after["attachment"]} == {"发票.pdf", "截图.png", "发票-副本.pdf"}


def _members(archive: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(archive) as tar:
        return [(m, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]


def _write(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def _flip(data: bytes, at: int | None = None) -> bytes:
    i = len(data) // 2 if at is None else at
    return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]


def _special(name: str, kind: bytes, link: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info, b""


def _evil(name: str) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), b"owned"


def corruptions(archive: Path, out: Path) -> Iterator[tuple[str, Path, str]]:
    """(what, damaged archive, expected error) for each way an archive can be wrong."""
    members = _members(archive)
    names = [m.name for m, _ in members]
    db_i = next(i for i, n in enumerate(names) if n.startswith("database/"))
    blob_i = next(i for i, n in enumerate(names) if n.startswith("attachments/"))

    def variant(tag: str, change: Callable[[list[Any]], None]) -> Path:
        copy = list(members)
        change(copy)
        return _write(out / f"{tag}.tar.gz", copy)

    def set_at(i: int, fn: Callable[[bytes], bytes]) -> Callable[[list[Any]], None]:
        return lambda m: m.__setitem__(i, (m[i][0], fn(m[i][1])))

    yield "db byte", variant("db", set_at(db_i, _flip)), r"database/.* does not match the manifest"
    yield "blob byte", variant("blob", set_at(blob_i, _flip)), r"does not match the manifest"
    yield "no manifest", variant("nomani", lambda m: m.pop()), r"manifest\.json is missing"
    yield "no blob", variant("noblob", lambda m: m.pop(blob_i)), r"members missing"
    yield "../evil", variant("dotdot", lambda m: m.insert(0, _evil("../evil"))), "path traversal"
    yield "abs", variant("abs", lambda m: m.insert(0, _evil("/etc/cron.d/evil"))), "path traversal"
    yield "deep", variant("deep", lambda m: m.append(_evil("attachments/../../x"))), "traversal"
    link = _special(names[blob_i], tarfile.SYMTYPE, "/etc/passwd")
    yield "symlink", variant("sym", lambda m: m.__setitem__(blob_i, link)), "link, not a regular"
    dev = _special("attachments/00/" + "0" * 62, tarfile.CHRTYPE)
    yield "device", variant("dev", lambda m: m.append(dev)), "not a regular file"
    extra = _evil("attachments/ab/" + "c" * 62)
    yield "unlisted", variant("extra", lambda m: m.insert(0, extra)), "not in the manifest"
    raw = archive.read_bytes()
    (out / "trunc.tar.gz").write_bytes(raw[: len(raw) // 2])
    yield "truncated", out / "trunc.tar.gz", r"not a readable archive|missing"
    (out / "rot.tar.gz").write_bytes(_flip(raw, len(raw) - 40))
    yield "bit rot", out / "rot.tar.gz", r"not a readable archive|does not match"
    (out / "empty.tar.gz").write_bytes(b"")
    yield "empty file", out / "empty.tar.gz", r"not a readable archive|missing"
    bad_json = [(i, b"{not json") if i.name == "manifest.json" else (i, d) for i, d in members]
    yield "bad manifest", _write(out / "badjson.tar.gz", bad_json), "manifest.json is malformed"
    plain = gzip.compress(b"just some text")
    (out / "plain.tar.gz").write_bytes(plain)
    yield "not a tar", out / "plain.tar.gz", r"not a readable archive|missing"


def _target_untouched(url: str, data_dir: Path) -> None:
    if url.startswith("sqlite"):
        assert not Path(url[len("sqlite:///") :]).exists()
    else:
        assert dump_tables(url) == {}
    assert not (data_dir / "attachments").exists()


def test_damaged_archives_are_refused_before_anything_is_written(
    services, settings, clock, target, tmp_path
):
    seed(services)
    archive = create_backup(settings, services.db, now=clock.now)
    out = tmp_path / "bad"
    out.mkdir()
    fresh = tmp_path / "fresh-data"
    seen = []
    for what, bad, expected in corruptions(archive, out):
        with pytest.raises(BackupError, match=expected) as err:
            restore_backup(settings, bad, target_url=target, data_dir=fresh)
        assert err.value.code == "backup_invalid"
        _target_untouched(target, fresh)
        seen.append(what)
    assert len(seen) == 15
    with pytest.raises(BackupError, match="no such file"):
        restore_backup(settings, tmp_path / "nope.tar.gz", target_url=target, data_dir=fresh)
    # the intact archive still restores into the same, untouched target
    report = restore_backup(settings, archive, target_url=target, data_dir=fresh)
    assert report.tables["attachment"] == 3


def test_non_empty_target_is_refused_and_force_overwrites(
    services, settings, clock, target, tmp_path
):
    seed(services)
    archive = create_backup(settings, services.db, now=clock.now)
    before = dump_tables(settings.database_url)
    with pytest.raises(BackupError, match=r"not empty.*--force"):
        restore_backup(settings, archive, data_dir=tmp_path / "d")  # the live, seeded database
    assert dump_tables(settings.database_url) == before

    restore_backup(settings, archive, target_url=target, data_dir=tmp_path / "d")
    with pytest.raises(BackupError, match="not empty"):
        restore_backup(settings, archive, target_url=target, data_dir=tmp_path / "d")
    report = restore_backup(settings, archive, target_url=target, data_dir=tmp_path / "d",
                            force=True)  # fmt: skip
    assert report.tables["message"] == 4
    assert [r for r in dump_tables(target)["auditlog"] if r["action"] == "backup.restore"]


def test_a_migrated_but_empty_target_is_accepted(services, settings, clock, target, tmp_path):
    seed(services)
    archive = create_backup(settings, services.db, now=clock.now)
    empty = Database(target, pool_size=1)
    migrate(empty)
    empty.close()
    report = restore_backup(settings, archive, target_url=target, data_dir=tmp_path / "d")
    assert report.tables["ticket"] == 3


@pytest.mark.postgres
def test_a_sqlite_archive_is_not_restored_into_postgresql(sqlite_url, pg_template, tmp_path, clock):
    s = Settings(database_url=sqlite_url, data_dir=tmp_path / "data")
    db = Database(sqlite_url, pool_size=1, clock=clock)
    archive = create_backup(s, db, now=clock.now)
    db.close()
    with pytest.raises(BackupError, match="sqlite database; restoring it into postgresql"):
        restore_backup(s, archive, target_url=pg_template, data_dir=tmp_path / "x")


async def test_backup_while_writes_happen_is_consistent(
    services, settings, clock, target, tmp_path
):
    build_world(services)
    stop = asyncio.Event()
    started = [asyncio.Event() for _ in range(3)]

    async def writer(n: int) -> int:
        i, last = 0, False
        while not last:
            last = stop.is_set()  # one more write after the backup returned: surely not in it
            c = _contact(f"w{n}-{i}", f"p{n}@example.com", body_text=f"消息 {i}")
            await services.db.write(ingest, c, services.ingest_policy, API)
            i += 1
            if i == 4:
                started[n].set()
        return i

    writers = [asyncio.create_task(writer(n)) for n in range(3)]
    await asyncio.gather(*(e.wait() for e in started))  # writes are flowing
    try:
        archive = await asyncio.to_thread(create_backup, settings, services.db, now=clock.now)
    finally:
        stop.set()
    written = sum(await asyncio.gather(*writers))
    report = await asyncio.to_thread(
        restore_backup, settings, archive, target_url=target, data_dir=tmp_path / "d"
    )
    restored = report.tables["message"]
    assert 12 <= restored <= written - 3
    check = Database(target, pool_size=1)
    try:  # every message came with its event and audit row: the snapshot is transactional
        assert count(check, "event", "type='message.created'") == restored
        assert count(check, "auditlog", "action='contact.ingested'") == restored
        assert count(check, "message", "ticket_id NOT IN (SELECT id FROM ticket)") == 0
    finally:
        check.close()


@pytest.fixture
def sqlite_settings(sqlite_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=sqlite_url, data_dir=tmp_path / "data", backup_retention_days=3)


async def test_scheduler_makes_one_file_a_day_and_prunes(sqlite_settings, clock, tmp_path):
    db = Database(sqlite_settings.database_url, pool_size=1, clock=clock)
    sched = BackupScheduler(sqlite_settings, db)
    dest = backup_dir(sqlite_settings)
    dest.mkdir(parents=True)
    (dest / "notes.txt").write_text("keep me")
    (dest / "cc-backup-old.tar.gz").write_text("not our name pattern")
    clock.now = datetime(2026, 3, 1, 1, 30, tzinfo=UTC)
    try:
        assert await sched.tick(clock.now) is None  # before 02:00 UTC
        clock.now = clock.now.replace(hour=2, minute=0)
        first = await sched.tick(clock.now)
        assert first is not None and first.name == "cc-backup-20260301T020000Z.tar.gz"
        clock.advance(hours=5)
        assert await sched.tick(clock.now) is None  # one a day
        for _day in range(6):
            clock.advance(days=1)
            assert await sched.tick(clock.now) is not None
        assert count(db, "auditlog", "action='backup.create' AND actor='system'") == 7
    finally:
        db.close()
    days = [when.date().isoformat() for when, _ in list_archives(dest)]
    assert days == ["2026-03-05", "2026-03-06", "2026-03-07"]  # retention: 3 days
    assert (dest / "notes.txt").exists() and (dest / "cc-backup-old.tar.gz").exists()


async def test_scheduler_loop_with_injected_clock_and_sleep(sqlite_settings, clock):
    db = Database(sqlite_settings.database_url, pool_size=1, clock=clock)
    clock.now = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    end = clock.now + timedelta(days=5)
    naps: list[float] = []

    class Done(Exception):
        pass

    async def fake_sleep(seconds: float) -> None:
        naps.append(seconds)
        clock.advance(seconds=seconds)
        if clock.now >= end:
            raise Done

    sched = BackupScheduler(replace(sqlite_settings, backup_retention_days=0), db,
                            sleep=fake_sleep)  # fmt: skip
    try:
        with pytest.raises(Done):
            await sched.run()
    finally:
        db.close()
    made = list_archives(backup_dir(sqlite_settings))
    assert [w.strftime("%d %H:%M") for w, _ in made] == [f"0{d} 02:00" for d in range(1, 6)]
    assert max(naps) <= 3600 and sched.last == made[-1][1]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_failing_daily_backup_is_logged_retried_and_leaves_nothing(
    services, settings, caplog
):
    seed(services)
    for lost in (settings.data_dir / "attachments").glob("??/*"):
        lost.unlink()  # the disk lost the attachment files
    naps: list[float] = []

    class Done(Exception):
        pass

    async def fake_sleep(seconds: float) -> None:
        naps.append(seconds)
        raise Done

    sched = BackupScheduler(settings, services.db, sleep=fake_sleep)
    with pytest.raises(Done):
        await sched.run()
    assert naps == [900] and "attachment files are missing" in (sched.last_error or "")
    assert "daily backup failed" in caplog.text
    assert [p.name for p in backup_dir(settings).iterdir()] == [".lock"]  # no partial archive


def test_prune_keeps_the_newest_and_only_touches_our_files(tmp_path):
    now = datetime(2026, 3, 20, 12, tzinfo=UTC)
    for day in (1, 2, 10):
        (tmp_path / f"cc-backup-202603{day:02d}T020000Z.tar.gz").write_bytes(b"x")
    assert prune_backups(tmp_path, 0, now) == []
    removed = prune_backups(tmp_path, 3, now)
    assert sorted(p.name[10:18] for p in removed) == ["20260301", "20260302"]
    assert [p.name for p in tmp_path.iterdir()] == ["cc-backup-20260310T020000Z.tar.gz"]
    assert prune_backups(tmp_path / "missing", 3, now) == []


async def test_serve_runs_the_daily_backup_and_stops_cleanly(
    aiohttp_client, settings, services, clock
):
    assert BACKUPS not in create_app(settings, services=services)
    on = replace(settings, backup_daily=True)
    svc = build_services(on, password_hashing=FAST_HASHING, clock=clock)
    app = create_app(on, services=svc)
    client = await aiohttp_client(app)
    sched = app[BACKUPS]
    await asyncio.wait_for(sched.ticked.wait(), 60)  # the clock says 09:00, past 02:00: due
    assert sched.last_error is None and sched.last is not None and sched.last.is_file()
    await client.close()  # cancels the loop; the database closes after it


def test_settings_turn_daily_backups_on_for_serve_only():
    assert Settings().backup_daily is False
    env = Settings.from_env({})
    assert env.backup_daily is True and env.backup_hour_utc == 2
    assert env.backup_retention_days == 14
    assert Settings.from_env({"CC_BACKUP_DAILY": "false"}).backup_daily is False
    s = Settings.from_env({"CC_BACKUP_DIR": "/srv/backups", "CC_DATA_DIR": "/srv/cc"})
    assert backup_dir(s) == Path("/srv/backups")
    assert backup_dir(Settings.from_env({"CC_DATA_DIR": "/srv/cc"})) == Path("/srv/cc/backups")


def _cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
    base.update(CC_LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-m", "contact_center.cli", *args], env=base,
                          cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip


def test_cli_backup_and_restore_fail_loudly(tmp_path, clock):
    src = tmp_path / "src"
    assert _cli(tmp_path, "migrate", CC_DATA_DIR=str(src)).returncode == 0
    src_settings = Settings(database_url=f"sqlite:///{src / 'contact_center.db'}", data_dir=src)
    svc = build_services(src_settings, password_hashing=FAST_HASHING, clock=clock)
    seed(svc)
    svc.db.close()
    made = _cli(tmp_path, "backup", "--dir", str(tmp_path / "out"), CC_DATA_DIR=str(src))
    assert made.returncode == 0, made.stderr
    archive = Path(made.stdout.strip())
    assert archive.parent == tmp_path / "out" and archive.is_file()

    dst = tmp_path / "dst"
    ok = _cli(tmp_path, "restore", str(archive), CC_DATA_DIR=str(dst))
    assert ok.returncode == 0, ok.stderr
    assert "verified" in ok.stdout and "message" in ok.stdout
    again = _cli(tmp_path, "restore", str(archive), CC_DATA_DIR=str(dst))
    assert again.returncode == 1 and "not empty" in again.stderr
    members = _members(archive)
    bad = _write(tmp_path / "bad.tar.gz", [(i, _flip(d)) if i.name.startswith("database/")
                                            else (i, d) for i, d in members])  # fmt: skip
    refused = _cli(tmp_path, "restore", str(bad), CC_DATA_DIR=str(tmp_path / "other"))
    assert refused.returncode == 1 and "does not match the manifest" in refused.stderr
    assert not (tmp_path / "other" / "contact_center.db").exists()
    broken = _cli(tmp_path, "backup", CC_DATA_DIR=str(tmp_path / "nothing-here"))
    assert broken.returncode == 1 and "does not exist" in broken.stderr
    check = Database(f"sqlite:///{dst / 'contact_center.db'}", pool_size=1)
    assert count(check, "attachment") == 3 and count(check, "auditlog", "actor='cli'") >= 1
    check.close()


@pytest.mark.postgres
def test_cli_backup_on_postgresql_keeps_the_password_out_of_sight(pg_template, tmp_path):
    url = pg_template.replace("postgres@", "postgres:pw-s3cret-123@")  # trust auth ignores it
    made = _cli(tmp_path, "backup", "--dir", str(tmp_path), CC_DATABASE_URL=url,
                CC_DATA_DIR=str(tmp_path / "data"))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "pw-s3cret-123" not in made.stdout + made.stderr
    with tarfile.open(made.stdout.strip()) as tar:
        assert "database/postgres.dump" in tar.getnames()
    gone = _cli(tmp_path, "backup", CC_DATABASE_URL=_pg_url("no_such_db_here"),
                CC_DATA_DIR=str(tmp_path / "data"))  # fmt: skip
    assert gone.returncode != 0 and "no_such_db_here" in gone.stderr
