"""Soak and faults: the scaled-out deployment under mixed traffic for a bounded time.

``contact_center.cluster`` starts its own Redis, a fresh PostgreSQL database, two web processes,
two router leaders and ``--workers`` (3) RQ workers on loopback. ``contact_center.simulate``
then runs ``--agents`` (300) simulated agents (Socket.IO clients, spread over both web
processes; a reconnect goes to the next one, as behind a load balancer) and
Poisson arrivals at ``--rate`` (50) contacts per second in all, mixed over chat and voice
(live, with patience) and email, SMS and API (async), for ``--minutes`` (15). Every
``--sample`` seconds it records each server process's resident memory; from the first contact
to the end of the drain it counts the CPU seconds of every part (``cpu_s``: each cluster process,
PostgreSQL, the cluster's Redis, the simulator) and divides them by the contacts
(``cpu_ms_per_contact``): two cores carry at most 2,000 / ``cpu_ms_per_contact_all`` contacts/s.

With ``--faults`` it kills the router leader at a quarter of the run (another must lead within
5 s), a web process at half (its agents reconnect to the other) and restarts Redis at three
quarters (service continues).

SMS and voice customers come through the desk's signed Twilio webhooks (the simulator signs
them with the cluster's auth token); the desk's REST calls (replies, putting calls through to
agents) go to the Twilio-API stub of the tests, served in this process. ``--no-twilio`` sends
them through the API instead.

The desk's email replies go to an SMTP server in this process (aiosmtpd; ``--no-smtp``: none).
Afterwards the database is counted: every contact sent is stored exactly once (``lost``,
``duplicated``); every reply an agent got a 201 for is stored once and, once deliveries settle
(up to 60 s), sent once: ``replies`` compares the rows with what the SMTP server and the Twilio
stub received. The figures are the simulator's (offer latency from arrival to the agent's
``offer`` event, service level, abandons; p99 per minute). ``python -m bench soak [--minutes M]
[--rate R] [--agents N] [--workers W] [--faults] [--keep DIR] [--set CC_NAME=VALUE ...]``
(``--keep``: the cluster's logs and one line per contact in ``DIR/outcomes.jsonl``; ``--set``: a
setting for every cluster process, to compare two configurations on the same machine, e.g.
``--set CC_EVENT_LOOP=asyncio``); the last line printed is one JSON object.
Baseline in the same run: the first minute's p99 offer latency and memory, against which the
last minute's are compared (``ratio`` = last-minute p99 / first-minute p99: about 1 when
steady); and, before the cluster starts, the machine's own speed
(``machine_baseline_per_s``: the bare aiohttp baseline of ``bench sms_webhooks``), without
which two soaks on a shared machine cannot be compared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

from bench._load import percentile
from contact_center.cluster import Cluster, ClusterConfig
from contact_center.loopback import free_port
from contact_center.simulate.model import ChannelMix, Outcome, Scenario, arrivals, figures
from contact_center.simulate.runner import REPLY, Target, run, run_on_uvloop

__all__ = ["main"]

SHARES = {"chat": 0.3, "voice": 0.1, "email": 0.2, "sms": 0.2, "api": 0.2}
TWILIO_SID = "AC" + "5a" * 16
TWILIO_TOKEN = "soak-twilio-auth-token"  # noqa: S105 - the cluster's own, on loopback


_REPLY_ROWS = (
    "SELECT ticket_id, channel, delivery_status, external_id FROM message"
    " WHERE direction = 'out' AND body_text = %s"
)


def _settle(database_url: str, seconds: float) -> None:
    """Until no reply is waiting for its delivery (queued, sending), at most ``seconds``."""
    import psycopg

    deadline = time.monotonic() + seconds
    with psycopg.connect(database_url, autocommit=True) as pg:
        while time.monotonic() < deadline:
            rows = pg.execute(_REPLY_ROWS, (REPLY,)).fetchall()
            if not any(r[2] in ("queued", "sending") for r in rows):
                return
            time.sleep(1)


async def _drive(target: Target, scenario: Scenario, plan: list[Any], stub: Any,
                 database_url: str, started: threading.Event) -> Any:  # fmt: skip
    """The simulation, with the Twilio-API stub (if any) serving while it runs and while the
    replies' deliveries settle afterwards."""
    if stub is not None:
        await stub.start(stub.port)
    try:
        sim = await run(target, scenario, plan, drain_seconds=90, on_started=started.set)
        await asyncio.to_thread(_settle, database_url, 60.0)
        return sim
    finally:
        if stub is not None:
            await stub.close()


class MailSink:
    """The SMTP server the desk's email replies go to (aiosmtpd, in its own thread): it keeps
    the recipient and Message-ID of every message it accepts."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.port = free_port()
        self.received: list[tuple[str, str]] = []  # (recipient, Message-ID)
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        from email.parser import BytesHeaderParser

        head = BytesHeaderParser().parsebytes(envelope.content)
        for rcpt in envelope.rcpt_tos:
            self.received.append((str(rcpt).lower(), str(head.get("Message-ID", ""))))
        return "250 OK"


def _rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (``/proc/PID/stat``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


def _postgres_pids() -> list[int]:
    """Every PostgreSQL server process (the cluster's database shares the local server)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


class Sampler(threading.Thread):
    """Resident memory of every cluster process, every ``every`` seconds, and the CPU time
    each part spends (cluster processes by name, PostgreSQL, the cluster's Redis, this
    process: the simulator with its Twilio stub and SMTP sink)."""

    def __init__(self, cluster: Cluster, every: float) -> None:
        super().__init__(daemon=True)
        self.cluster, self.every = cluster, every
        self.samples: list[tuple[float, dict[str, int]]] = []
        self.stop_event = threading.Event()
        self.t0 = time.monotonic()
        # CPU seconds by (part, pid) at the mark and now: a killed process keeps what it used
        self._cpu_mark: dict[tuple[str, int], float] = {}
        self._cpu_now: dict[tuple[str, int], float] = {}
        self._cpu_lock = threading.Lock()  # this thread and the caller both read and add

    def _cpu_parts(self) -> dict[tuple[str, int], float]:
        pids = [(n, p.pid) for n, p in list(self.cluster.procs.items())]
        pids += [("postgres", pid) for pid in _postgres_pids()]
        if self.cluster.redis is not None:
            pids.append(("redis", self.cluster.redis.pid))
        parts = {k: cpu for k in pids if (cpu := _cpu_s(k[1])) is not None}
        parts[("simulator", os.getpid())] = time.process_time()
        return parts

    def mark(self) -> None:
        """Start counting CPU from now (the first contact)."""
        parts = self._cpu_parts()
        with self._cpu_lock:
            self._cpu_mark, self._cpu_now = parts, dict(parts)

    def _cpu_update(self) -> None:
        parts = self._cpu_parts()
        with self._cpu_lock:
            if self._cpu_mark:  # counting only from the mark
                self._cpu_now.update(parts)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds each part spent since the mark (a process born since counts from 0)."""
        self._cpu_update()
        spent: dict[str, float] = {}
        with self._cpu_lock:
            for (part, pid), now in self._cpu_now.items():
                spent[part] = spent.get(part, 0.0) + now - self._cpu_mark.get((part, pid), 0.0)
        return {k: round(v, 1) for k, v in sorted(spent.items())}

    def run(self) -> None:
        while not self.stop_event.is_set():
            snap = {n: rss for n, p in list(self.cluster.procs.items())
                    if (rss := _rss_kib(p.pid)) is not None}  # fmt: skip
            self.samples.append((time.monotonic() - self.t0, snap))
            self._cpu_update()
            self.stop_event.wait(self.every)


def _faults(cluster: Cluster, seconds: float, log: list[dict[str, Any]],
            go: threading.Event) -> threading.Thread:  # fmt: skip
    """The faults, timed from ``go`` (set as the first contact is due: the setup before it
    takes as long as the machine needs)."""

    def act() -> None:
        go.wait()
        t0 = time.monotonic()

        def at(fraction: float) -> None:
            time.sleep(max(0.0, t0 + seconds * fraction - time.monotonic()))

        at(0.25)
        leader = cluster.leader()
        if leader is not None:
            cluster.kill(leader)
            killed = time.monotonic()
            while cluster.leader() in (None, leader) and time.monotonic() - killed < 30:
                time.sleep(0.05)
            log.append({"fault": "leader killed", "name": leader,
                        "takeover_s": round(time.monotonic() - killed, 2),
                        "new_leader": cluster.leader()})  # fmt: skip
            cluster.start_process(leader)
        at(0.5)
        cluster.kill("web1")
        log.append({"fault": "web1 killed", "at_s": round(time.monotonic() - t0, 1)})
        time.sleep(5)
        cluster.start_process("web1")
        at(0.75)
        cluster.stop_redis()
        cluster.start_redis()
        log.append({"fault": "redis restarted", "at_s": round(time.monotonic() - t0, 1)})

    thread = threading.Thread(target=act, daemon=True)
    thread.start()
    return thread


def _count(cluster: Cluster, tag: str) -> tuple[int, set[int], int]:
    """Inbound rows stored for the run, the arrival numbers they belong to, and tickets."""
    import psycopg

    # every driver marks its contact with the arrival number: in the external id (API:
    # sim-TAG-N; chat: <visitor>:sim-TAG-N; email: the Message-ID) or the first line of the
    # body (Twilio: "sim TAG N"); one inbound message per arrival
    mark = f"sim[- ]{tag}[- ]([0-9]+)"
    with psycopg.connect(cluster.database_url) as pg:
        rows = pg.execute(
            "SELECT n, ticket_id FROM ("
            " SELECT ticket_id, substring(coalesce(external_id, '') || ' '"
            "   || coalesce(body_text, '') from %s) AS n"
            " FROM message WHERE direction = 'in') m WHERE n IS NOT NULL",
            (mark,),
        ).fetchall()
        # a call is a voicecall row (its ticket's message is the desk's own), its caller the
        # arrival's number (the last 7 digits: simulate.drivers._phone); the cluster's
        # database is new for every run
        calls = pg.execute("SELECT caller, ticket_id FROM voicecall").fetchall()
    numbers = [int(n) for n, _ in rows] + [int(str(c)[-7:]) for c, _ in calls]
    tickets = {t for _, t in rows} | {t for _, t in calls}
    return len(numbers), set(numbers), len(tickets)


def _replies(cluster: Cluster, sim: Any, stub: Any, sink: MailSink | None) -> dict[str, Any]:
    """The agents' replies: each stored once, and each sent once (the SMTP sink's and the
    Twilio stub's own records of what reached them)."""
    import psycopg

    replied = {t for t, n in sim.by_ticket.items()
               if (o := sim.outcomes.get(n)) is not None and o.replied_at is not None}  # fmt: skip
    with psycopg.connect(cluster.database_url) as pg:
        rows = pg.execute(_REPLY_ROWS, (REPLY,)).fetchall()
    per_ticket: dict[int, int] = {}
    status: dict[str, dict[str, int]] = {}
    for ticket, channel, state, _ in rows:
        per_ticket[ticket] = per_ticket.get(ticket, 0) + 1
        status.setdefault(channel, {}).setdefault(state, 0)
        status[channel][state] += 1
    sent = {str(r[3]) for r in rows if r[2] in ("sent", "delivered") and r[3]}
    out: dict[str, Any] = {
        "acknowledged": len(replied),
        "lost": len(replied - per_ticket.keys()),
        "duplicated": sum(c - 1 for c in per_ticket.values()),
        "by_channel": status,
        "pending": sum(1 for r in rows if r[2] in ("queued", "sending")),
    }
    if sink is not None:  # email: one message per reply (its Message-ID is the row's id)
        ids = [m for _, m in sink.received]
        out["email_received"] = len(ids)
        out["email_duplicated"] = len(ids) - len(set(ids))
        out["email_unrecorded"] = len(set(ids) - sent)  # received, not marked sent
    if stub is not None:  # SMS and texts to callers: one message per reply
        texts = [(m["to"], m["sid"]) for m in stub.messages if m.get("body") == REPLY]
        out["texts_received"] = len(texts)
        out["texts_duplicated"] = len(texts) - len({to for to, _ in texts})
        out["texts_unrecorded"] = len({sid for _, sid in texts} - sent)
    return out


def machine_speed() -> float:
    """How fast this machine is right now: the bare aiohttp baseline of ``bench sms_webhooks``
    (signed form posts answered with empty TwiML, 32 connections), in requests/s. A shared
    machine's speed drifts by more than two times between hours; a soak's figures are
    comparable with another's only beside this one."""
    from bench import sms_webhooks

    plan = sms_webhooks.make_plan(11_000, "http://127.0.0.1:1", "calibration", 0.3, 0.02, 1)
    args = argparse.Namespace(concurrency=32, warmup=1_000)
    return float(sms_webhooks.run_baseline(plan, args).load.per_s)


def _window(outcomes: list[Outcome], start: float, end: float) -> list[float]:
    return [
        (o.offered_at - o.sent_at) * 1000
        for o in outcomes
        if o.offered_at is not None and o.sent_at is not None and start <= o.arrival.at < end
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=50.0, help="contacts per second, all")
    parser.add_argument("--agents", type=int, default=300)
    parser.add_argument("--workers", type=int, default=3, help="RQ workers (deliveries)")
    parser.add_argument("--aht", type=float, default=8.0, help="mean handle seconds")
    parser.add_argument("--sample", type=float, default=10.0)
    parser.add_argument("--faults", action="store_true")
    parser.add_argument("--no-twilio", action="store_true", help="SMS and voice via the API")
    parser.add_argument("--no-smtp", action="store_true", help="no SMTP sink for email replies")
    parser.add_argument("--set", action="append", default=[], metavar="CC_NAME=VALUE",
                        help="a setting for every cluster process (repeatable), to compare "
                             "configurations: --set CC_EVENT_LOOP=asyncio")  # fmt: skip
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        metavar="DIR",
        help="the cluster's logs and data here (kept afterwards)",
    )
    args = parser.parse_args(argv)
    chosen: dict[str, str] = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("CC_"):
            parser.error(f"--set takes CC_NAME=VALUE, not {item!r}")
        chosen[name] = value
    if not (0 < args.minutes <= 60 and 0 < args.rate <= 200 and 1 <= args.agents <= 1000
            and 1 <= args.workers <= 8):  # fmt: skip
        parser.error("--minutes 0..60, --rate 0..200, --agents 1..1000, --workers 1..8")
    seconds = args.minutes * 60
    mix = tuple(
        ChannelMix(c, args.rate * share * 3600, args.aht, 30.0 if c in ("chat", "voice") else None)
        for c, share in SHARES.items()
    )
    scenario = Scenario(mix, seconds, args.agents, accept_delay_seconds=0.3, seed=args.seed)
    plan = arrivals(scenario)
    speed = machine_speed()
    print(f"soak: this machine now: {speed:,.0f} requests/s on the bare aiohttp baseline "
          "(bench sms_webhooks; about 13,900 at full speed)", flush=True)  # fmt: skip
    started = time.perf_counter()
    faults: list[dict[str, Any]] = []
    stub = None
    extra: dict[str, str] = {}
    if not args.no_twilio:
        from tests.twilio_stub import TwilioStub

        stub = TwilioStub(TWILIO_SID, TWILIO_TOKEN)
        stub.port = free_port()  # type: ignore[attr-defined]
        extra.update({
            "CC_TWILIO_ACCOUNT_SID": TWILIO_SID, "CC_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "CC_TWILIO_API_BASE_URL": f"http://127.0.0.1:{stub.port}",  # type: ignore[attr-defined]
            "CC_TWILIO_SMS_FROM": "+15005550006", "CC_TWILIO_HOLD_MUSIC_URL": "",
        })  # fmt: skip
    sink = None if args.no_smtp else MailSink()
    if sink is not None:  # the desk's email replies: SMTP to the sink on loopback
        sink.controller.start()
        extra.update(
            {
                "CC_SMTP_HOST": "127.0.0.1",
                "CC_SMTP_PORT": str(sink.port),
                "CC_SMTP_TLS": "none",
                "CC_EMAIL_FROM": "Sim desk <desk@sim.example>",
            }
        )
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    extra.update(chosen)
    config = ClusterConfig(web=2, leaders=2, workers=args.workers, extra_env=extra)
    with Cluster(config, workdir=args.keep) as cluster:
        web = (cluster.url("web1"), cluster.url("web2"))
        print(f"soak: {len(plan)} contacts over {seconds:.0f} s ({args.rate:g}/s), "
              f"{args.agents} agents, cluster {json.dumps(cluster.describe()['pids'])}",
              flush=True)  # fmt: skip
        sampler = Sampler(cluster, args.sample)
        sampler.start()
        go = threading.Event()
        fault_thread = _faults(cluster, seconds, faults, go) if args.faults else None
        threading.Thread(target=lambda: (go.wait(), sampler.mark()), daemon=True).start()
        # chat customers open the widget's socket from the desk's public page (nginx, if any)
        origin = cluster.env("web1")["CC_PUBLIC_BASE_URL"]
        target = Target(web, "admin@demo.test", "demo-password", queue="general", origin=origin,
                        twilio_token="" if stub is None else TWILIO_TOKEN,
                        public_url=origin, twilio_account_sid=TWILIO_SID)  # fmt: skip
        try:
            sim = run_on_uvloop(_drive(target, scenario, plan, stub, cluster.database_url, go))
            cpu = sampler.cpu_seconds()  # from the first contact to the end of the drain
            replies = _replies(cluster, sim, stub, sink)
        finally:
            if sink is not None:
                sink.controller.stop()
        sampler.stop_event.set()
        sampler.join()
        if fault_thread is not None:
            fault_thread.join(60)
        stored, numbers, tickets = _count(cluster, sim.tag)
    outcomes = list(sim.outcomes.values())
    if args.keep is not None:  # one line per contact, for a closer look afterwards
        with (args.keep / "outcomes.jsonl").open("w") as out:
            for o in outcomes:
                row = {
                    "n": o.arrival.number,
                    "channel": o.arrival.channel,
                    "at": o.arrival.at,
                    "sent": o.sent_at,
                    "acked": o.acked_at,
                    "offered": o.offered_at,
                    "answered": o.answered_at,
                    "abandoned": o.abandoned_at,
                    "solved": o.solved_at,
                    "error": o.error,
                }
                out.write(json.dumps(row) + "\n")
    # lost: the desk acknowledged it (its 201 or 200, the chat's ack, the mailbox's APPEND)
    # and has no row of it; a contact never acknowledged (an error at the customer, no answer
    # by the end) may or may not be stored
    acked = {o.arrival.number for o in outcomes if o.acked_at is not None}
    sent = len(acked)
    failed = {o.arrival.number for o in outcomes if o.acked_at is None}
    lat = _window(outcomes, 0, seconds)
    first, last = _window(outcomes, 0, 60), _window(outcomes, seconds - 60, seconds)
    live = [o for o in outcomes if o.arrival.channel in ("chat", "voice")]
    fig = figures(live, scenario.threshold_seconds, scenario.short_abandon_seconds)
    mem_first = {
        n: v for n, v in (sampler.samples[1][1] if len(sampler.samples) > 1 else {}).items()
    }
    mem_last = sampler.samples[-1][1] if sampler.samples else {}
    result = {
        "name": "soak",
        "minutes": args.minutes, "rate_per_s": args.rate, "agents": args.agents,
        "contacts": len(plan), "sent": sent, "errors": sum(1 for o in outcomes if o.error),
        "stored": stored, "lost": len(acked - numbers), "duplicated": stored - len(numbers),
        "failed_but_stored": len(failed & numbers),
        "replies": replies,
        "tickets": tickets,
        "offered": len(lat), "p50_offer_ms": round(percentile(lat, 50), 1),
        "p99_offer_ms": round(percentile(lat, 99), 1),
        "first_minute_p99_ms": round(percentile(first, 99), 1),
        "last_minute_p99_ms": round(percentile(last, 99), 1),
        "ratio": round(percentile(last, 99) / percentile(first, 99), 2) if first and last else None,
        "p99_offer_ms_by_minute": [round(percentile(w, 99)) if w else None for w in (
            _window(outcomes, m * 60, (m + 1) * 60) for m in range(math.ceil(seconds / 60)))],
        "live_service_level": fig.service_level, "live_abandon_rate": fig.abandon_rate,
        "rss_mib_first": {n: round(v / 1024) for n, v in mem_first.items()},
        "rss_mib_last": {n: round(v / 1024) for n, v in mem_last.items()},
        "cpu_s": cpu, "cpu_ms_per_contact": {
            part: round(1000 * v / max(1, len(plan)), 1) for part, v in cpu.items()},
        "cpu_ms_per_contact_all": round(1000 * sum(cpu.values()) / max(1, len(plan)), 1),
        "error_samples": sorted({str(o.error)[:160] for o in outcomes if o.error})[:5],
        "agent_errors": sim.agent_errors, "agent_error_samples": sim.agent_error_samples,
        "faults": faults,
        "machine_baseline_per_s": speed, "settings": args.set,
        "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    print(json.dumps(result))
    return 0 if result["lost"] == 0 and result["duplicated"] == 0 else 1
