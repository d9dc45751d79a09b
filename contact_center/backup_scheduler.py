"""Daily backups inside the web process, and retention.

One archive a day: from ``CC_BACKUP_HOUR_UTC`` on, if today (UTC) has no archive yet, the
scheduler writes one (on a thread, never on the event loop) and prunes archives older than
``CC_BACKUP_RETENTION_DAYS``. Time and sleep are injected; tests call :meth:`tick` directly or
drive :meth:`run` with a fake sleep. On by default for ``serve`` (``CC_BACKUP_DAILY``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web

from contact_center.backup import backup_dir, create_backup
from contact_center.backup_archive import ARCHIVE_RE
from contact_center.db import SYSTEM, Database
from contact_center.keys import SERVICES
from contact_center.settings import Settings

__all__ = ["BACKUPS", "BackupScheduler", "install_backups", "list_archives", "prune_backups"]

log = logging.getLogger("contact_center.backup")


def list_archives(dest_dir: Path) -> list[tuple[datetime, Path]]:
    """Our archives in ``dest_dir`` (by name pattern only), oldest first, with their times."""
    if not dest_dir.is_dir():
        return []
    found = []
    for path in dest_dir.iterdir():
        match = ARCHIVE_RE.match(path.name)
        if match and path.is_file():
            when = datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            found.append((when, path))
    return sorted(found)


def prune_backups(dest_dir: Path, keep_days: int, now: datetime) -> list[Path]:
    """Delete archives older than ``keep_days`` days; return what was deleted.

    Only files named like our archives are touched, the newest archive is always kept (so a
    long outage of backups never leaves zero), and ``keep_days < 1`` keeps everything.
    """
    archives = list_archives(dest_dir)
    if keep_days < 1 or not archives:
        return []
    cutoff = now.astimezone(UTC).date() - timedelta(days=keep_days)
    removed = []
    for when, path in archives[:-1]:
        if when.date() <= cutoff:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


class BackupScheduler:
    """Makes the day's backup once it is due; :meth:`run` is the long-lived loop."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        retry_seconds: float = 900,
        max_sleep_seconds: float = 3600,
    ) -> None:
        if not 0 <= settings.backup_hour_utc <= 23:
            raise ValueError(f"CC_BACKUP_HOUR_UTC must be 0..23, not {settings.backup_hour_utc}")
        self.settings = settings
        self.db = db
        self.dest = backup_dir(settings)
        self.clock = clock or db.clock
        self.sleep = sleep
        self.retry_seconds = retry_seconds
        self.max_sleep_seconds = max_sleep_seconds
        self.last: Path | None = None
        self.last_error: str | None = None
        self.ticked = asyncio.Event()  # set after every attempt (lets a test wait, not sleep)
        self._inflight: asyncio.Future[Path | None] | None = None

    def due(self, now: datetime) -> bool:
        """Past today's hour and no archive for today yet (blocking: lists the directory)."""
        now = now.astimezone(UTC)
        if now.hour < self.settings.backup_hour_utc:
            return False
        return all(when.date() != now.date() for when, _ in list_archives(self.dest))

    def run_once(self, now: datetime) -> Path | None:
        """The blocking part of a tick: back up if due, then prune. Runs on a thread."""
        self.dest.mkdir(mode=0o700, parents=True, exist_ok=True)
        with (self.dest / ".lock").open("a") as lock:
            try:  # two processes sharing the directory: one backs up, the other skips
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return None
            if not self.due(now):
                return None
            path = create_backup(self.settings, self.db, now=now, dest_dir=self.dest, actor=SYSTEM)
            removed = prune_backups(self.dest, self.settings.backup_retention_days, now)
        if removed:
            log.info("pruned %d old backups", len(removed))
        return path

    async def tick(self, now: datetime) -> Path | None:
        """Back up if due at ``now``; the new archive, or None when nothing was due."""
        fut = asyncio.ensure_future(asyncio.to_thread(self.run_once, now))
        self._inflight = fut
        try:
            path = await asyncio.shield(fut)  # a cancelled loop still lets the copy finish
        except asyncio.CancelledError:
            raise
        except Exception as err:
            self.last_error = str(err)
            self.ticked.set()
            raise
        if path is not None:
            self.last, self.last_error = path, None
        self.ticked.set()
        return path

    def seconds_until_next(self, now: datetime) -> float:
        """How long to sleep: until today's or tomorrow's hour, at most ``max_sleep_seconds``."""
        now = now.astimezone(UTC)
        at = now.replace(hour=self.settings.backup_hour_utc, minute=0, second=0, microsecond=0)
        if now >= at:
            at += timedelta(days=1)
        return min((at - now).total_seconds(), self.max_sleep_seconds)

    async def run(self) -> None:
        """Tick, sleep, repeat; a failure is logged and retried after ``retry_seconds``."""
        while True:
            now = self.clock()
            delay = self.seconds_until_next(now)
            try:
                path = await self.tick(now)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("daily backup failed; retrying in %d s", self.retry_seconds)
                delay = self.retry_seconds
            else:
                if path is not None:
                    log.info("daily backup written to %s", path)
            await self.sleep(delay)

    async def wait_idle(self) -> None:
        """Wait for a backup still running on its thread (shutdown must not close the DB)."""
        if self._inflight is not None and not self._inflight.done():
            with contextlib.suppress(Exception):
                await self._inflight


BACKUPS: web.AppKey[BackupScheduler] = web.AppKey("backups", BackupScheduler)


async def _backup_ctx(app: web.Application) -> AsyncIterator[None]:
    scheduler = app[BACKUPS]
    task = asyncio.create_task(scheduler.run(), name="daily-backup")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await scheduler.wait_idle()


def install_backups(app: web.Application) -> BackupScheduler:
    """Attach the daily scheduler to ``app`` (one ``cleanup_ctx``; the clock is the DB's)."""
    svc = app[SERVICES]
    scheduler = BackupScheduler(svc.settings, svc.db)
    app[BACKUPS] = scheduler
    app.cleanup_ctx.append(_backup_ctx)
    return scheduler
