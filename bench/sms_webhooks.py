"""Signed inbound SMS webhooks: ``POST /webhooks/twilio/sms`` against the real server on SQLite.

The real server (``contact-center serve``, a subprocess) runs on SQLite after ``migrate`` +
``demo --no-serve``, with Twilio configured (``CC_TWILIO_ACCOUNT_SID`` / ``_AUTH_TOKEN``,
``CC_PUBLIC_BASE_URL`` = the URL the load signs for). A bare aiohttp handler that parses the
same form posts and answers empty TwiML is the baseline (``python -m bench._load baseline``).

The load (:mod:`bench._load`: a separate process, 32 keep-alive connections, closed loop)
sends ``--warmup`` unmeasured and then ``--requests`` measured webhooks, field for field as
Twilio posts an SMS, each with its own ``X-Twilio-Signature`` computed by the twilio library
and an ``I-Twilio-Idempotency-Token``. About 30 % come from new numbers, the rest from earlier
ones (they thread into their open ticket), and ``--duplicates`` (2 %) are Twilio retries of an
earlier ``MessageSid`` with a new token. Every request has to verify, be stored (or be found a
duplicate) and get its TwiML answer.

Afterwards the database is counted: every distinct MessageSid stored exactly once
(``lost`` = distinct - stored, ``extra`` = stored - distinct), one customer per number, and no
response outside 2xx. ``python -m bench sms_webhooks [--requests N] [--warmup N]
[--concurrency C] [--duplicates F] [--no-baseline]``; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sqlite3
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._load import LoadResult, Server, drive, free_port
from bench.ingest import ROOT, _cli, _env

__all__ = ["main"]

CLI = str(Path(sys.executable).with_name("contact-center"))
PATH = "/webhooks/twilio/sms"
ACCOUNT_SID = "AC" + "b3" * 16
FORM = "application/x-www-form-urlencoded"

# SQLite targets on the 2-core reference machine (issue: Twilio channels).
TARGET_PER_S = 1000.0
TARGET_P99_MS = 50.0

_WORDS = ("order", "delivery", "refund", "parcel", "where", "is", "my", "please", "help",
          "today", "tracking", "number", "late", "again", "thanks", "when", "address")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Plan:
    """The webhooks of one run, in send order, signed for ``base``."""

    prefix: str
    bodies: list[bytes]
    headers: list[dict[str, str]]
    distinct: int
    numbers: int
    duplicates: int


def make_plan(n: int, base: str, token: str, new_share: float, dup_share: float, seed: int) -> Plan:
    """``n`` signed SMS webhooks for the server at ``base``."""
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(token)
    rng = random.Random(seed)
    prefix = secrets.token_hex(4)
    numbers: list[str] = []
    sent: list[dict[str, str]] = []
    bodies: list[bytes] = []
    headers: list[dict[str, str]] = []
    duplicates = 0
    url = base + PATH
    for i in range(n):
        if sent and rng.random() < dup_share:
            params = rng.choice(sent)  # Twilio retrying an earlier delivery
            duplicates += 1
        else:
            if not numbers or rng.random() < new_share:
                numbers.append(f"+1415{2_000_000 + len(numbers):07d}")
                number = numbers[-1]
            else:
                number = rng.choice(numbers)
            text = f"Hi, {rng.choice(_WORDS)} #{rng.randrange(10_000, 99_999)}:"
            while len(text) < 110:
                text += " " + rng.choice(_WORDS)
            sid = f"SM{prefix}{len(sent):024x}"
            params = {
                "ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid, "NumMedia": "0",
                "ToCity": "", "FromZip": "94105", "SmsSid": sid, "FromState": "CA",
                "SmsStatus": "received", "FromCity": "SAN FRANCISCO", "Body": text,
                "FromCountry": "US", "To": "+15005550006", "ToZip": "", "NumSegments": "1",
                "MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": number,
                "ApiVersion": "2010-04-01",
            }  # fmt: skip
            sent.append(params)
        bodies.append(urllib.parse.urlencode(params).encode())
        headers.append({"X-Twilio-Signature": validator.compute_signature(url, params),
                        "I-Twilio-Idempotency-Token": f"{prefix}-{i}"})  # fmt: skip
    return Plan(prefix, bodies, headers, len(sent), len(numbers), duplicates)


@dataclass(frozen=True, slots=True)
class Counts:
    """What the database holds for a plan."""

    messages: int
    customers: int


def _count(data_dir: Path, prefix: str) -> Counts:
    conn = sqlite3.connect(data_dir / "contact_center.db")
    try:
        messages = conn.execute("select count(*) from message where channel = 'sms' and "
                                "external_id like ?", (f"SM{prefix}%",)).fetchone()[0]  # fmt: skip
        customers = conn.execute(
            "select count(distinct customer_id) from customerhandle where kind = 'phone' and "
            "value like '+14152%'"
        ).fetchone()[0]
    finally:
        conn.close()
    return Counts(int(messages), int(customers))


@dataclass(frozen=True, slots=True)
class Run:
    """One server under load."""

    label: str
    load: LoadResult
    counts: Counts | None
    server_cpu_s: float


def run_real(args: argparse.Namespace) -> tuple[Run, Plan]:
    """Migrate, seed, serve with Twilio configured, load, count, stop."""
    with tempfile.TemporaryDirectory(prefix="cc-bench-sms-") as tmp:
        data_dir = Path(tmp)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        token = secrets.token_urlsafe(24)
        env = _env(data_dir, port, None)
        env.update(CC_TWILIO_ACCOUNT_SID=ACCOUNT_SID, CC_TWILIO_AUTH_TOKEN=token,
                   CC_TWILIO_API_BASE_URL="http://127.0.0.1:9")  # nothing is sent out  # fmt: skip
        plan = make_plan(args.requests + args.warmup, base, token, args.new_share,
                         args.duplicates, args.seed)  # fmt: skip
        _cli(env, "migrate")
        _cli(env, "demo", "--no-serve")
        log_path = data_dir / "server.log"
        with Server([CLI, "serve"], env=env, ready_url=f"{base}/healthz", cwd=ROOT,
                    log_path=log_path) as srv:  # fmt: skip
            cpu0 = srv.cpu_seconds()
            load = drive(f"{base}{PATH}", plan.bodies, concurrency=args.concurrency,
                         warmup=args.warmup, content_type=FORM,
                         request_headers=plan.headers)  # fmt: skip
            cpu = srv.cpu_seconds() - cpu0
            counts = _count(data_dir, plan.prefix)
            code = srv.stop()
            if load.non_2xx or code not in (0, None):
                print(f"[sqlite] server log tail:\n{srv.log_tail()}")
    return Run("sqlite", load, counts, round(cpu, 2)), plan


def run_baseline(plan: Plan, args: argparse.Namespace) -> Run:
    """The bare aiohttp form handler, same bodies and headers, same load."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
    argv = [sys.executable, "-m", "bench._load", "baseline", "--port", str(port)]
    with Server(argv, env=env, ready_url=f"{base}/healthz", cwd=ROOT) as srv:
        cpu0 = srv.cpu_seconds()
        load = drive(f"{base}{PATH}", plan.bodies, concurrency=args.concurrency,
                     warmup=args.warmup, content_type=FORM,
                     request_headers=plan.headers)  # fmt: skip
        cpu = srv.cpu_seconds() - cpu0
    return Run("baseline", load, None, round(cpu, 2))


def _cpu_ms(run: Run) -> float:
    return round(run.server_cpu_s * 1000 / run.load.sent, 3) if run.load.sent else 0.0


def _line(run: Run, plan: Plan) -> str:
    ld = run.load
    text = (
        f"{run.label:<9} {ld.per_s:8.0f} webhooks/s  p50 {ld.p50_ms:6.2f} ms  "
        f"p90 {ld.p90_ms:6.2f} ms  p99 {ld.p99_ms:6.2f} ms  max {ld.max_ms:7.2f} ms  "
        f"({ld.measured} measured of {ld.sent} in {ld.window_s:.2f} s; server CPU "
        f"{_cpu_ms(run):.2f} ms/req, client CPU {ld.client_cpu_s:.1f} s; statuses {ld.statuses}"
    )
    if ld.errors:
        text += f", transport errors {ld.errors}: {ld.error_samples}"
    text += ")"
    if run.counts is not None:
        c = run.counts
        text += (f"\n{'':<9} stored {c.messages} of {plan.distinct} distinct MessageSids "
                 f"({plan.duplicates} retries sent), {c.customers} customers for "
                 f"{plan.numbers} numbers")  # fmt: skip
    return text


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench sms_webhooks", description=__doc__)
    parser.add_argument("--requests", type=int, default=10_000, help="measured")
    parser.add_argument("--warmup", type=int, default=1_000, help="unmeasured, sent first")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--new-share", type=float, default=0.3)
    parser.add_argument("--duplicates", type=float, default=0.02, help="share of Twilio retries")
    parser.add_argument("--seed", type=int, default=20_261_203)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args(argv)
    if not (1 <= args.requests <= 1_000_000 and 0 <= args.warmup <= 100_000):
        parser.error("--requests 1..1,000,000, --warmup 0..100,000")
    if not 0 <= args.duplicates < 0.5:
        parser.error("--duplicates 0..0.5")
    started = time.perf_counter()
    print(f"sms_webhooks: {args.requests + args.warmup} signed webhooks ({args.warmup} warm-up), "
          f"{args.concurrency} connections")  # fmt: skip
    real, plan = run_real(args)
    print(_line(real, plan), flush=True)
    bl = None if args.no_baseline else run_baseline(plan, args)
    if bl is not None:
        print(_line(bl, plan), flush=True)
    ld = real.load
    counts = real.counts or Counts(0, 0)
    lost = max(0, plan.distinct - counts.messages)
    extra = max(0, counts.messages - plan.distinct)
    non_2xx = ld.non_2xx + (bl.load.non_2xx if bl else 0)
    ok = lost == 0 and extra == 0 and non_2xx == 0 and counts.customers == plan.numbers
    met = ok and ld.per_s >= TARGET_PER_S and ld.p99_ms < TARGET_P99_MS
    elapsed = time.perf_counter() - started
    print(
        f"ratio to bare aiohttp: {ld.per_s / bl.load.per_s:.2f}" if bl else "no baseline run",
        f"| lost {lost}, extra {extra}, non-2xx {non_2xx} | SQLite target >= "
        f"{TARGET_PER_S:.0f}/s and p99 < {TARGET_P99_MS:.0f} ms: {'met' if met else 'NOT met'} "
        f"| {elapsed:.0f} s",
    )
    result: dict[str, Any] = {
        "name": "sms_webhooks",
        "webhooks_per_s": ld.per_s,
        "p50_ms": ld.p50_ms,
        "p99_ms": ld.p99_ms,
        "max_ms": ld.max_ms,
        "baseline_per_s": bl.load.per_s if bl else None,
        "baseline_p99_ms": bl.load.p99_ms if bl else None,
        "ratio": round(ld.per_s / bl.load.per_s, 3) if bl else None,
        "lost": lost,
        "extra": extra,
        "non_2xx": non_2xx,
        "stored": counts.messages,
        "distinct": plan.distinct,
        "retries_sent": plan.duplicates,
        "customers": counts.customers,
        "numbers": plan.numbers,
        "server_cpu_ms": _cpu_ms(real),
        "requests": args.requests,
        "warmup": args.warmup,
        "concurrency": args.concurrency,
        "target_met": met,
        "seconds": round(elapsed, 1),
    }
    print(json.dumps(result))
    return 0 if ok else 1
