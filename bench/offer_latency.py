"""Offer latency: from ``POST /api/v1/inbound`` to the chosen agent's ``offer`` event.

The real server (``contact-center serve``, a subprocess, SQLite unless ``--pg``) gets one team,
one chat queue and ``--agents`` (200) agents created through the admin API. This process
connects all of them to ``/agent`` as python-socketio clients (websocket), sets them
``available``, then posts ``--contacts`` chat contacts at ``--rate`` per second (open loop:
a contact is sent on schedule whether or not earlier ones were offered). Each contact's subject
carries its number; the latency is the time from just before its POST to the moment its
``offer`` event reaches an agent client. Agents accept every offer over the socket and solve
the ticket through the REST API right away, so capacity turns over as in a busy hour.

Baseline, in the same run: a bare python-socketio server (``python -m bench.offer_latency
baseline --port P``) and one client timing emit → server emits back round trips. ``ratio`` is
``p99_ms / baseline_p99_ms``: how many bare Socket.IO round trips an offer costs at p99 (HTTP
request, ingest transaction, router decision, offer transaction, event fan-out, emit).

``python -m bench offer_latency [--agents N] [--contacts N] [--rate R] [--warmup N] [--pg]``;
the last line printed is one JSON object. Target: p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._load import Server, free_port, percentile

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).parent / "contact-center")
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_DB = "cc_bench_offer_latency"
TARGET_P99_MS = 50.0
ADMIN = "bench-admin@example.com"


def _env(data_dir: Path, port: int, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
    env.update(
        CC_DATA_DIR=str(data_dir), CC_PORT=str(port), CC_HOST="127.0.0.1",
        CC_LOG_LEVEL="WARNING", CC_SECRET_KEY=secrets.token_urlsafe(32),
        CC_BACKUP_DAILY="false", CC_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        CC_ROUTING_PREFERENCE_SECONDS="0",
    )  # fmt: skip
    if database_url:
        env["CC_DATABASE_URL"] = database_url
    return env


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    subprocess.run([CLI, *args], env=env, cwd=ROOT, input=stdin, text=True, check=True,
                   stdout=subprocess.DEVNULL, timeout=120)  # fmt: skip


def _recreate_pg() -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as pg:
        pg.execute(f'drop database if exists "{PG_DB}" with (force)')
        pg.execute(f'create database "{PG_DB}"')
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_DB}"


class Api:
    """A tiny JSON client for the admin and agent calls."""

    def __init__(self, base: str) -> None:
        import aiohttp

        self.base = base
        self.http = aiohttp.ClientSession()

    async def call(self, method: str, path: str, token: str | None, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(method, self.base + path, json=body, headers=headers) as r:
            data = await r.json()
            if r.status >= 300:
                raise RuntimeError(f"{method} {path}: {r.status} {data}")
            return data

    async def login(self, email: str, password: str) -> str:
        data = await self.call("POST", "/api/v1/login", None,
                               {"email": email, "password": password})  # fmt: skip
        return str(data["token"])

    async def close(self) -> None:
        await self.http.close()


async def _seed(api: Api, admin: str, agents: int, password: str) -> list[str]:
    team = await api.call("POST", "/api/v1/teams", admin, {"name": "bench"})
    queue = await api.call("POST", "/api/v1/queues", admin,
                           {"name": "bench-chat", "team_id": team["id"]})  # fmt: skip
    sem = asyncio.Semaphore(8)

    async def one(i: int) -> str:
        async with sem:
            email = f"agent{i}@bench.example"
            await api.call("POST", "/api/v1/users", admin, {
                "email": email, "name": f"Agent {i}", "password": password, "role": "agent",
                "team_id": team["id"], "queue_ids": [queue["id"]], "capacity": {"chat": 3},
            })  # fmt: skip
            return await api.login(email, password)

    return list(await asyncio.gather(*(one(i) for i in range(agents))))


class Agents:
    """The connected consoles: they accept every offer and solve the ticket at once."""

    def __init__(self, api: Api, base: str) -> None:
        self.api = api
        self.base = base
        self.clients: list[Any] = []
        self.offered: dict[int, float] = {}  # contact number -> perf_counter at the offer
        self.tasks: set[asyncio.Task[None]] = set()
        self.accept_errors = 0

    async def connect(self, tokens: list[str]) -> None:
        import socketio

        async def one(token: str) -> None:
            client = socketio.AsyncClient(reconnection=False)

            async def on_offer(data: dict[str, Any]) -> None:
                now = time.perf_counter()
                subject = str(data["ticket"]["subject"])
                if subject.startswith("contact "):
                    self.offered.setdefault(int(subject.split()[1]), now)
                task = asyncio.get_running_loop().create_task(self._take(client, token, data))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

            client.on("offer", on_offer, namespace="/agent")
            await client.connect(self.base, namespaces=["/agent"], auth={"token": token},
                                 transports=["websocket"], wait_timeout=10)  # fmt: skip
            ack = await client.call("presence", {"presence": "available"}, namespace="/agent")
            if not ack.get("ok"):
                raise RuntimeError(f"presence: {ack}")
            self.clients.append(client)

        sem = asyncio.Semaphore(20)

        async def limited(token: str) -> None:
            async with sem:
                await one(token)

        await asyncio.gather(*(limited(t) for t in tokens))

    async def _take(self, client: Any, token: str, offer: dict[str, Any]) -> None:
        ack = await client.call("accept", {"ticket_id": offer["ticket_id"]}, namespace="/agent")
        if not ack.get("ok"):
            self.accept_errors += 1
            return
        await self.api.call("PATCH", f"/api/v1/tickets/{offer['ticket_id']}", token,
                            {"status": "solved"})  # fmt: skip

    async def close(self) -> None:
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.gather(*(c.disconnect() for c in self.clients), return_exceptions=True)


async def _load(args: argparse.Namespace, base: str, env: dict[str, str]) -> dict[str, Any]:
    api = Api(base)
    agents = Agents(api, base)
    try:
        admin = await api.login(ADMIN, env["_ADMIN_PASSWORD"])
        t0 = time.perf_counter()
        tokens = await _seed(api, admin, args.agents, secrets.token_urlsafe(16))
        await agents.connect(tokens)
        setup = time.perf_counter() - t0
        sent: dict[int, float] = {}
        total = args.warmup + args.contacts
        start = time.perf_counter()
        posts: list[asyncio.Task[Any]] = []
        for n in range(total):
            due = start + n / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[n] = time.perf_counter()
            body = {"external_id": f"bench-{n}", "channel": "chat", "handle": f"visitor-{n}",
                    "subject": f"contact {n}", "body": "Hello, I need help with my order.",
                    "queue": "bench-chat"}  # fmt: skip
            posts.append(asyncio.create_task(api.call("POST", "/api/v1/inbound", admin, body)))
        await asyncio.gather(*posts)
        deadline = time.perf_counter() + 30
        while len(agents.offered) < total and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        window = time.perf_counter() - start
        latencies = [
            (agents.offered[n] - sent[n]) * 1000
            for n in range(args.warmup, total)
            if n in agents.offered
        ]
        return {
            "latencies": latencies,
            "missing": total - len(agents.offered),
            "accept_errors": agents.accept_errors,
            "setup_s": round(setup, 1),
            "window_s": round(window, 1),
        }
    finally:
        await agents.close()
        await api.close()


def run_real(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cc-bench-offer-") as tmp:
        data_dir = Path(tmp)
        port = free_port()
        env = _env(data_dir, port, _recreate_pg() if args.pg else None)
        base = f"http://127.0.0.1:{port}"
        _cli(env, "migrate")
        password = secrets.token_urlsafe(18)
        _cli(env, "create-user", "--email", ADMIN, "--role", "admin", "--password-stdin",
             stdin=password + "\n")  # fmt: skip
        log_path = data_dir / "server.log"
        with Server([CLI, "serve"], env=env, ready_url=f"{base}/healthz", cwd=ROOT,
                    log_path=log_path) as srv:  # fmt: skip
            cpu0 = srv.cpu_seconds()
            got = asyncio.run(_load(args, base, {**env, "_ADMIN_PASSWORD": password}))
            got["server_cpu_s"] = round(srv.cpu_seconds() - cpu0, 1)
            if got["missing"]:
                print(f"server log tail:\n{srv.log_tail()}")
    return got


# -- the bare Socket.IO baseline ---------------------------------------------------------------


def serve_baseline(port: int) -> None:
    """A python-socketio server whose ``ping`` handler emits ``pong`` back to the sender."""
    import socketio
    from aiohttp import web

    sio = socketio.AsyncServer(async_mode="aiohttp", logger=False, engineio_logger=False)

    @sio.on("ping", namespace="/agent")  # type: ignore[misc]
    async def ping(sid: str, data: Any) -> None:
        await sio.emit("pong", data, to=sid, namespace="/agent")

    app = web.Application()
    sio.attach(app)

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/healthz", health)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


async def _round_trips(base: str, n: int) -> list[float]:
    import socketio

    client = socketio.AsyncClient(reconnection=False)
    got: asyncio.Queue[float] = asyncio.Queue()

    async def pong(_: Any) -> None:
        got.put_nowait(time.perf_counter())

    client.on("pong", pong, namespace="/agent")
    await client.connect(base, namespaces=["/agent"], transports=["websocket"])
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        await client.emit("ping", {"i": i}, namespace="/agent")
        out.append((await asyncio.wait_for(got.get(), 5) - t0) * 1000)
    await client.disconnect()
    return out[n // 10 :]  # the first tenth warms up


def run_baseline(n: int) -> list[float]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "bench.offer_latency", "baseline", "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
    with Server(argv, env=env, ready_url=f"{base}/healthz", cwd=ROOT):
        return asyncio.run(_round_trips(base, n))


def main(argv: list[str]) -> int:
    if argv[:1] == ["baseline"]:
        p = argparse.ArgumentParser(prog="python -m bench offer_latency baseline")
        p.add_argument("baseline")
        p.add_argument("--port", type=int, required=True)
        serve_baseline(p.parse_args(argv).port)
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench offer_latency", description=__doc__)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--contacts", type=int, default=1000, help="measured")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured, sent first")
    parser.add_argument("--rate", type=float, default=25.0, help="contacts per second")
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    args = parser.parse_args(argv)
    if not (1 <= args.agents <= 2000 and args.contacts >= 1 and 0 < args.rate <= 1000):
        parser.error("--agents 1..2000, --contacts >= 1, --rate 0..1000")
    started = time.perf_counter()
    real = run_real(args)
    lat = real["latencies"]
    base = run_baseline(1000)
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    b50, b99 = percentile(base, 50), percentile(base, 99)
    print(
        f"offer latency ({'PostgreSQL' if args.pg else 'SQLite'}): {len(lat)} measured offers "
        f"to {args.agents} agents at {args.rate:g}/s: p50 {p50:.2f} ms, p90 "
        f"{percentile(lat, 90):.2f} ms, p99 {p99:.2f} ms, max {max(lat, default=0):.2f} ms; "
        f"missing {real['missing']}, accept errors {real['accept_errors']}; setup "
        f"{real['setup_s']} s, load {real['window_s']} s, server CPU {real['server_cpu_s']} s"
    )
    print(f"bare Socket.IO emit round trip: p50 {b50:.3f} ms, p99 {b99:.3f} ms")
    ok = real["missing"] == 0 and p99 < TARGET_P99_MS
    result = {
        "name": "offer_latency",
        "database": "postgresql" if args.pg else "sqlite",
        "agents": args.agents,
        "contacts": args.contacts,
        "rate_per_s": args.rate,
        "p50_ms": round(p50, 2),
        "p90_ms": round(percentile(lat, 90), 2),
        "p99_ms": round(p99, 2),
        "max_ms": round(max(lat, default=0.0), 2),
        "missing": real["missing"],
        "accept_errors": real["accept_errors"],
        "baseline_p50_ms": round(b50, 3),
        "baseline_p99_ms": round(b99, 3),
        "ratio": round(p99 / b99, 1) if b99 else None,
        "server_cpu_s": real["server_cpu_s"],
        "target_met": ok,
        "loadavg": round(os.getloadavg()[0], 2),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result))
    return 0 if real["missing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
