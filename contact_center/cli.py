"""``contact-center``: serve, lead, demo, migrate, create-user, worker, backup, restore, ..."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from contact_center.settings import Settings

__all__ = ["main"]


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as err:
        print(f"configuration error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def _logging(settings: Settings) -> None:
    from contact_center.logging import configure_logging

    configure_logging(settings.log_level, json_lines=settings.log_json,
                      secrets=settings.secret_values())  # fmt: skip


def use_event_loop(settings: Settings) -> None:
    """Run the process's asyncio code on uvloop (libuv: the same work for less CPU than the
    standard loop) unless ``CC_EVENT_LOOP=asyncio``."""
    if settings.event_loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _serve(settings: Settings) -> None:
    from aiohttp import web

    from contact_center.app import create_app

    use_event_loop(settings)
    web.run_app(
        create_app(settings), host=settings.host, port=settings.port, access_log=None, print=None
    )


def cmd_lead(settings: Settings) -> int:
    """Contend to lead the router (scaled-out deployments: ``contact_center/lead.py``)."""
    from aiohttp import web

    from contact_center.lead import create_leader_app

    use_event_loop(settings)
    try:
        app = create_leader_app(settings)
    except ValueError as err:
        print(f"configuration error: {err}", file=sys.stderr)
        return 2
    web.run_app(app, host=settings.host, port=settings.port, access_log=None, print=None)
    return 0


def cmd_migrate(settings: Settings) -> int:
    """Bring the schema to the newest revision."""
    from contact_center.db import Database
    from contact_center.migrate import migrate

    db = Database(settings.database_url, pool_size=1)
    migrate(db)
    db.close()
    print("database is at the newest schema revision")
    return 0


def cmd_demo(settings: Settings, serve: bool) -> int:
    """Migrate, seed the demo data, print logins and URLs, then serve."""
    from contact_center.app import build_services
    from contact_center.demo import DEMO_PASSWORD, seed_demo
    from contact_center.migrate import migrate

    svc = build_services(settings)
    migrate(svc.db)
    logins = seed_demo(svc.db, svc.ingest_policy, svc.passwords)
    svc.db.close()
    base = settings.public_base_url.rstrip("/")
    print(f"\nContact center demo at {base}\n")
    print(f"  agent console   {base}/console")
    print(f"  wallboard       {base}/wallboard   (supervisors, admins)")
    print(f"  chat demo       {base}/chat/demo   (a customer's view: open it in another window)")
    print(f"  API             {base}/api/v1/openapi.json")
    print(f"  health          {base}/healthz\n")
    print(f"  logins (password: {DEMO_PASSWORD})")
    for login in logins:
        print(f"    {login.role:<11} {login.email:<24} {login.name}")
    print(flush=True)
    if serve:
        _serve(settings)
    return 0


def cmd_create_user(settings: Settings, args: argparse.Namespace) -> int:
    """Create a user; the password is read from stdin or prompted, never from argv."""
    from contact_center.auth import PasswordHashing
    from contact_center.db import Actor, Database
    from contact_center.errors import ServiceDeskError
    from tickets.actions import admin

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
    if len(password) < 10:
        print("password must have at least 10 characters", file=sys.stderr)
        return 2
    db = Database(settings.database_url, pool_size=1)
    try:
        user = db.write_sync(
            admin.create_user,
            Actor("cli"),
            {
                "email": args.email,
                "name": args.name or args.email,
                "role": args.role,
                "password_hash": PasswordHashing().hash(password),
            },
        )
    except ServiceDeskError as err:
        print(f"error: {err.message}", file=sys.stderr)
        return 1
    finally:
        db.close()
    print(f"created {user['role']} {user['email']} (id {user['id']})")
    return 0


def cmd_worker(settings: Settings, burst: bool) -> int:
    """Run an RQ worker on the configured queue (needs CC_REDIS_URL)."""
    if not settings.redis_url:
        print("the worker needs CC_REDIS_URL (without it jobs run inside serve)", file=sys.stderr)
        return 2
    from redis import Redis
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from contact_center.jobs import load_job_modules

    load_job_modules(settings.job_modules)
    conn = Redis.from_url(settings.redis_url)
    return supervise_worker(
        lambda: SimpleWorker([settings.rq_queue], connection=conn, serializer=JSONSerializer),
        burst=burst, logging_level=settings.log_level,
    )  # fmt: skip


def supervise_worker(
    make: Callable[[], Any], *, burst: bool, logging_level: str,
    sleep: Callable[[float], None] = time.sleep, max_backoff: float = 10.0,
) -> int:  # fmt: skip
    """Run RQ workers one after another until one is asked to stop (SIGTERM/SIGINT) or, in
    burst mode, finishes.

    RQ's work loop quits on an error it does not handle, and its teardown then raises when
    Redis is gone: a Redis restart while a job was running would end the worker process. Here
    a new worker starts instead, after a backoff of 0.5 s doubling up to ``max_backoff``; the
    job the dead loop held is re-run by RQ's abandoned-job cleanup or, for our jobs, by the
    database outboxes' sweeps.
    """
    import logging
    import signal

    from redis.exceptions import RedisError

    log = logging.getLogger("contact_center.worker")
    backoff = 0.5
    while True:
        worker, started = make(), time.monotonic()
        try:
            worker.work(burst=burst, with_scheduler=True, logging_level=logging_level)
        except RedisError as err:
            log.warning("RQ worker lost Redis (%s): starting a new one", type(err).__name__)
        else:
            if burst or getattr(worker, "_shutdown_requested_date", None) is not None:
                return 0
            log.warning("RQ worker loop ended on an error: starting a new one")
        if time.monotonic() - started > 60:  # it had been working: a fresh failure
            backoff = 0.5
        # RQ's signal handlers belong to the worker that ended: a stop while we wait exits
        before = {sig: signal.signal(sig, _exit_now) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            sleep(backoff)
        finally:
            for sig, handler in before.items():
                signal.signal(sig, handler)
        backoff = min(backoff * 2, max_backoff)


def _exit_now(signum: int, frame: object) -> None:
    raise SystemExit(0)


def cmd_backup(settings: Settings, dest: str | None) -> int:
    """Write one backup archive now and print its path."""
    from datetime import UTC, datetime
    from pathlib import Path

    from contact_center.backup import create_backup
    from contact_center.db import Database
    from contact_center.errors import ServiceDeskError

    db = Database(settings.database_url, pool_size=1)
    try:
        path = create_backup(
            settings, db, now=datetime.now(UTC), dest_dir=Path(dest) if dest else None
        )
    except ServiceDeskError as err:
        print(f"backup failed: {err.message}", file=sys.stderr)
        return 1
    finally:
        db.close()
    print(path)
    return 0


def cmd_restore(settings: Settings, archive: str, force: bool) -> int:
    """Verify an archive, restore it into the configured (empty) database, verify again."""
    from pathlib import Path

    from contact_center.backup import restore_backup
    from contact_center.errors import ServiceDeskError

    try:
        report = restore_backup(settings, Path(archive), force=force)
    except ServiceDeskError as err:
        print(f"restore failed: {err.message}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


def cmd_webhooks_replay(settings: Settings, subscription: int | None, delivery: int | None) -> int:
    """Put deliveries back in the outbox; a running server's sweeper sends them."""
    from datetime import timedelta

    from contact_center.db import Actor, Database
    from contact_center.errors import ServiceDeskError
    from contact_center.webhooks import outbox

    db = Database(settings.database_url, pool_size=1)
    try:
        ids = db.write_sync(outbox.replay, Actor("cli"), delivery_id=delivery,
                            subscription_id=subscription, due_in=timedelta(0))  # fmt: skip
    except ServiceDeskError as err:
        print(f"error: {err.message}", file=sys.stderr)
        return 1
    finally:
        db.close()
    print(f"re-queued {len(ids)} deliveries; the server's sweeper sends them within "
          f"{settings.webhook_sweep_seconds} s")  # fmt: skip
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="contact-center", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the web server")
    sub.add_parser("lead", help="contend to lead the router and SLA timers (needs Redis)")
    demo = sub.add_parser("demo", help="migrate, seed demo data, print logins, serve")
    demo.add_argument("--no-serve", action="store_true", help="seed and print, then exit")
    sub.add_parser("migrate", help="upgrade the database schema")
    cu = sub.add_parser("create-user", help="create a user")
    cu.add_argument("--email", required=True)
    cu.add_argument("--name", default="")
    cu.add_argument("--role", choices=["agent", "supervisor", "admin"], default="agent")
    cu.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    wk = sub.add_parser("worker", help="run an RQ worker")
    wk.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    bk = sub.add_parser("backup", help="write a backup archive (database + attachments)")
    bk.add_argument("--dir", default=None, help="where to write it (default CC_BACKUP_DIR)")
    rs = sub.add_parser("restore", help="verify and restore a backup into an empty database")
    rs.add_argument("file", help="the cc-backup-*.tar.gz archive")
    rs.add_argument("--force", action="store_true", help="overwrite a database that has rows")
    sim = sub.add_parser("simulate", help="drive a running deployment with simulated traffic")
    from contact_center.simulate.cli import add_arguments as simulate_arguments

    simulate_arguments(sim)
    wh = sub.add_parser("webhooks", help="webhook outbox maintenance")
    wh_sub = wh.add_subparsers(dest="webhooks_command", required=True)
    rp = wh_sub.add_parser("replay", help="re-queue dead-lettered (or one named) deliveries")
    target = rp.add_mutually_exclusive_group(required=True)
    target.add_argument("--subscription", type=int, help="every dead delivery of this webhook")
    target.add_argument("--delivery", type=int, help="this one delivery, whatever its state")
    args = parser.parse_args(argv)
    settings = _settings()
    _logging(settings)
    if args.command == "serve":
        _serve(settings)
        return 0
    if args.command == "lead":
        return cmd_lead(settings)
    if args.command == "demo":
        return cmd_demo(settings, serve=not args.no_serve)
    if args.command == "migrate":
        return cmd_migrate(settings)
    if args.command == "create-user":
        return cmd_create_user(settings, args)
    if args.command == "backup":
        return cmd_backup(settings, args.dir)
    if args.command == "restore":
        return cmd_restore(settings, args.file, args.force)
    if args.command == "simulate":
        from contact_center.simulate.cli import run_command

        return run_command(args, settings.public_base_url)
    if args.command == "webhooks":
        return cmd_webhooks_replay(settings, args.subscription, args.delivery)
    return cmd_worker(settings, args.burst)


if __name__ == "__main__":
    sys.exit(main())
