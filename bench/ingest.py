"""Inbound contact ingest over HTTP: ``POST /api/v1/inbound`` against the real server.

The real server (``contact-center serve``, a subprocess) runs on SQLite and then on a fresh
PostgreSQL database, each after ``migrate`` + ``demo --no-serve`` (queues, SLA policies) +
``create-user`` (the integration account whose bearer token the load uses). A bare aiohttp
server with one JSON POST handler (parse the same body, answer 201) is the baseline.

A load generator in a separate process (:mod:`bench._load`: aiohttp client, 32 keep-alive
connections, closed loop) sends ``--warmup`` (1,000) unmeasured and then ``--requests``
(10,000) measured contacts to each: email contacts with unique external ids and ~200-byte
bodies, ~30 % from new customers and the rest from earlier customers, which thread into their
open ticket. Throughput is measured contacts / measured window; latencies are client-side.

Afterwards the database is counted: every sent external id must be stored exactly once
(``lost = sent - stored``), one customer per distinct handle, one ticket per customer, and
no response may be outside 2xx. ``python -m bench ingest [--requests N] [--warmup N]
[--concurrency C] [--no-pg] [--pg-url URL]``; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._load import LoadResult, Server, drive, free_port

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).with_name("contact-center"))
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_DB = "cc_bench_ingest"
PG_URL = f"postgresql://postgres@127.0.0.1:5432/{PG_DB}"
USER_EMAIL = "ingest-bench@example.test"

# SQLite targets on the 2-core reference machine (docs/performance.md).
TARGET_PER_S = 1000.0
TARGET_P99_MS = 50.0

_WORDS = (
    "order",
    "invoice",
    "delivery",
    "refund",
    "account",
    "password",
    "login",
    "parcel",
    "address",
    "payment",
    "card",
    "subscription",
    "plan",
    "upgrade",
    "cancel",
    "shipped",
    "tracking",
    "number",
    "reference",
    "broken",
    "screen",
    "app",
    "crash",
    "photo",
    "upload",
    "update",
    "please",
    "thanks",
    "help",
    "urgent",
    "yesterday",
    "today",
    "week",
    "again",
    "still",
)


@dataclass(frozen=True, slots=True)
class Plan:
    """The contacts of one run, in send order."""

    prefix: str
    bodies: list[bytes]
    customers: int  # distinct handles


def make_plan(n: int, new_share: float, seed: int) -> Plan:
    """``n`` email contacts: ``new_share`` from new customers, the rest from earlier ones."""
    rng = random.Random(seed)
    prefix = f"bench-{secrets.token_hex(4)}"
    handles: list[str] = []
    bodies: list[bytes] = []
    for i in range(n):
        if not handles or rng.random() < new_share:
            handle = f"customer{len(handles)}.{prefix}@example.com"
            handles.append(handle)
        else:
            handle = rng.choice(handles)
        text = f"Hello, about {rng.choice(_WORDS)} #{rng.randrange(10_000, 99_999)}: "
        while len(text) < 190:
            text += rng.choice(_WORDS) + " "
        contact = {
            "external_id": f"<{prefix}-{i}@mail.example.com>",
            "channel": "email",
            "handle": handle,
            "name": f"Customer {handle.split('.', 1)[0][8:]}",
            "subject": f"Question about my {rng.choice(_WORDS)}",
            "body": text.strip() + ".",
        }
        bodies.append(json.dumps(contact).encode())
    return Plan(prefix, bodies, len(handles))


def _env(data_dir: Path, port: int, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
    env.update(
        CC_DATA_DIR=str(data_dir),
        CC_PORT=str(port),
        CC_HOST="127.0.0.1",
        CC_LOG_LEVEL="WARNING",
        CC_SECRET_KEY=secrets.token_urlsafe(32),
        CC_BACKUP_DAILY="false",
        CC_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
    )
    if database_url:
        env["CC_DATABASE_URL"] = database_url
    return env


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    subprocess.run(
        [CLI, *args],
        env=env,
        cwd=ROOT,
        input=stdin,
        text=True,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=120,
    )


def _login(base: str, email: str, password: str) -> str:
    req = urllib.request.Request(  # noqa: S310 (loopback URL built here)
        f"{base}/api/v1/login",
        data=json.dumps({"email": email, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
        return str(json.loads(resp.read())["token"])


@dataclass(frozen=True, slots=True)
class Counts:
    """What the database holds for a plan."""

    messages: int
    customers: int
    tickets: int


_COUNT_SQL = (
    "select count(*) from message where channel = 'email' and external_id like {p}",
    "select count(*) from customerhandle where kind = 'email' and value like {h}",
    "select count(distinct t.id) from ticket t join customerhandle h"
    " on h.customer_id = t.customer_id where h.kind = 'email' and h.value like {h}",
)


def _count(database_url: str | None, data_dir: Path, prefix: str) -> Counts:
    like_p, like_h = f"<{prefix}-%", f"%.{prefix}@example.com"
    if database_url is None:
        conn = sqlite3.connect(data_dir / "contact_center.db")
        try:
            got = [
                conn.execute(
                    q.format(p="?", h="?"), (like_p,) if "{p}" in q else (like_h,)
                ).fetchone()[0]
                for q in _COUNT_SQL
            ]
        finally:
            conn.close()
    else:
        import psycopg

        with psycopg.connect(database_url) as pg:
            got = [
                pg.execute(
                    q.format(p="%s", h="%s"),
                    (like_p,) if "{p}" in q else (like_h,),
                ).fetchone()[0]  # type: ignore[index]
                for q in _COUNT_SQL
            ]
    return Counts(*(int(x) for x in got))


def _recreate_pg() -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as pg:
        pg.execute(f'drop database if exists "{PG_DB}" with (force)')
        pg.execute(f'create database "{PG_DB}"')


@dataclass(frozen=True, slots=True)
class ServerRun:
    """One server under load, and what it stored."""

    label: str
    load: LoadResult
    counts: Counts | None
    server_cpu_s: float
    setup_s: float

    def lost(self) -> int:
        return 0 if self.counts is None else self.load.sent - self.counts.messages


def run_real(
    label: str, plan: Plan, args: argparse.Namespace, database_url: str | None
) -> ServerRun:
    """Migrate, seed, create the user, serve, load, count, stop."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"cc-bench-ingest-{label}-") as tmp:
        data_dir = Path(tmp)
        port = free_port()
        env = _env(data_dir, port, database_url)
        base = f"http://127.0.0.1:{port}"
        _cli(env, "migrate")
        _cli(env, "demo", "--no-serve")  # queues ("general" with its SLA policy), teams
        password = secrets.token_urlsafe(18)
        _cli(
            env,
            "create-user",
            "--email",
            USER_EMAIL,
            "--role",
            "agent",
            "--password-stdin",
            stdin=password + "\n",
        )
        log_path = data_dir / "server.log"
        with Server([CLI, "serve"], env=env, ready_url=f"{base}/healthz", cwd=ROOT,
                    log_path=log_path) as srv:  # fmt: skip
            token = _login(base, USER_EMAIL, password)
            setup = time.perf_counter() - t0
            cpu0 = srv.cpu_seconds()
            load = drive(
                f"{base}/api/v1/inbound",
                plan.bodies,
                concurrency=args.concurrency,
                warmup=args.warmup,
                headers={"Authorization": f"Bearer {token}"},
            )
            cpu = srv.cpu_seconds() - cpu0
            counts = _count(database_url, data_dir, plan.prefix)
            code = srv.stop()
            if load.non_2xx or code not in (0, None):
                print(f"[{label}] server log tail:\n{srv.log_tail()}")
    return ServerRun(label, load, counts, round(cpu, 2), round(setup, 2))


def run_baseline(plan: Plan, args: argparse.Namespace) -> ServerRun:
    """The bare aiohttp handler, same bodies, same load."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
    argv = [sys.executable, "-m", "bench._load", "baseline", "--port", str(port)]
    t0 = time.perf_counter()
    with Server(argv, env=env, ready_url=f"{base}/healthz", cwd=ROOT) as srv:
        setup = time.perf_counter() - t0
        cpu0 = srv.cpu_seconds()
        load = drive(
            f"{base}/api/v1/inbound",
            plan.bodies,
            concurrency=args.concurrency,
            warmup=args.warmup,
        )
        cpu = srv.cpu_seconds() - cpu0
    return ServerRun("baseline", load, None, round(cpu, 2), round(setup, 2))


def _cpu_ms(run: ServerRun) -> float:
    """Server CPU (all threads) per request over the whole load, warm-up included."""
    return round(run.server_cpu_s * 1000 / run.load.sent, 3) if run.load.sent else 0.0


def _line(run: ServerRun) -> str:
    ld = run.load
    cpu_ms = _cpu_ms(run)
    text = (
        f"{run.label:<9} {ld.per_s:8.0f} contacts/s  p50 {ld.p50_ms:6.2f} ms  "
        f"p90 {ld.p90_ms:6.2f} ms  p99 {ld.p99_ms:6.2f} ms  max {ld.max_ms:7.2f} ms  "
        f"({ld.measured} measured of {ld.sent} in {ld.window_s:.2f} s; "
        f"server CPU {cpu_ms:.2f} ms/req, client CPU {ld.client_cpu_s:.1f} s; "
        f"statuses {ld.statuses}"
    )
    if ld.errors:
        text += f", transport errors {ld.errors}: {ld.error_samples}"
    text += ")"
    if run.counts is not None:
        c = run.counts
        text += (
            f"\n{'':<9} stored {c.messages}/{ld.sent} messages (lost {run.lost()}), "
            f"{c.customers} customers, {c.tickets} tickets; setup {run.setup_s:.1f} s"
        )
    return text


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench ingest", description=__doc__)
    parser.add_argument("--requests", type=int, default=10_000, help="measured per server")
    parser.add_argument("--warmup", type=int, default=1_000, help="unmeasured, sent first")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--new-share", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=20_260_302)
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--no-baseline", action="store_true", help="skip the aiohttp baseline")
    args = parser.parse_args(argv)
    if not (1 <= args.requests <= 1_000_000 and 0 <= args.warmup <= 100_000):
        parser.error("--requests 1..1,000,000, --warmup 0..100,000")
    total = args.requests + args.warmup
    started = time.perf_counter()

    runs: dict[str, ServerRun] = {}
    plan = make_plan(total, args.new_share, args.seed)
    print(
        f"ingest: {total} email contacts per server ({args.warmup} warm-up), "
        f"{plan.customers} customers, {args.concurrency} connections, "
        f"mean body {sum(len(json.loads(b)['body']) for b in plan.bodies) / total:.0f} B"
    )
    runs["sqlite"] = run_real("sqlite", plan, args, None)
    print(_line(runs["sqlite"]), flush=True)
    if not args.no_pg:
        _recreate_pg()
        pg_plan = make_plan(total, args.new_share, args.seed)
        runs["postgres"] = run_real("postgres", pg_plan, args, PG_URL)
        print(_line(runs["postgres"]), flush=True)
    if not args.no_baseline:
        runs["baseline"] = run_baseline(plan, args)
        print(_line(runs["baseline"]), flush=True)

    sq = runs["sqlite"].load
    pg = runs["postgres"].load if "postgres" in runs else None
    bl = runs["baseline"].load if "baseline" in runs else None
    lost = sum(r.lost() for r in runs.values())
    non_2xx = sum(r.load.non_2xx for r in runs.values())
    ok = lost == 0 and non_2xx == 0 and sq.per_s >= TARGET_PER_S and sq.p99_ms < TARGET_P99_MS
    elapsed = time.perf_counter() - started
    print(
        f"ratio to bare aiohttp: {sq.per_s / bl.per_s:.2f}" if bl else "no baseline run",
        f"| lost {lost}, non-2xx {non_2xx} | SQLite target >= {TARGET_PER_S:.0f}/s and "
        f"p99 < {TARGET_P99_MS:.0f} ms: {'met' if ok else 'NOT met'} | {elapsed:.0f} s",
    )
    result: dict[str, Any] = {
        "name": "ingest",
        "contacts_per_s": sq.per_s,
        "p50_ms": sq.p50_ms,
        "p99_ms": sq.p99_ms,
        "pg_contacts_per_s": pg.per_s if pg else None,
        "pg_p50_ms": pg.p50_ms if pg else None,
        "pg_p99_ms": pg.p99_ms if pg else None,
        "baseline_per_s": bl.per_s if bl else None,
        "baseline_p99_ms": bl.p99_ms if bl else None,
        "ratio": round(sq.per_s / bl.per_s, 3) if bl else None,
        "lost": lost,
        "sqlite_lost": runs["sqlite"].lost(),
        "pg_lost": runs["postgres"].lost() if "postgres" in runs else None,
        "non_2xx": non_2xx,
        "server_cpu_ms": _cpu_ms(runs["sqlite"]),
        "pg_server_cpu_ms": _cpu_ms(runs["postgres"]) if "postgres" in runs else None,
        "requests": args.requests,
        "warmup": args.warmup,
        "sent": sum(r.load.sent for r in runs.values() if r.counts is not None),
        "concurrency": args.concurrency,
        "customers": plan.customers,
        "target_met": ok,
        "seconds": round(elapsed, 1),
    }
    print(json.dumps(result))
    return 0 if lost == 0 and non_2xx == 0 else 1
