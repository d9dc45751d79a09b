"""Faults in a scaled-out deployment on loopback (``contact_center.cluster``): two web
processes, two router leaders, an RQ worker, our own Redis, the local PostgreSQL.

Agents are real python-socketio clients spread over both web processes; contacts keep coming
through the API. We kill the leader (another leads within 5 s), kill a web process (its
agents reconnect to the other and resync) and restart Redis (service continues). Afterwards
every contact is one ticket, assigned once, with exactly one accepted offer.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import aiohttp
import pytest
import socketio

from contact_center.cluster import Cluster, ClusterConfig
from tests.conftest import until

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(600)]

AGENTS = 10


class ClusterAgent:
    """A console that accepts and solves every offer, reconnecting to the other web process
    when its own dies (as a load balancer would send it), and syncing as a backstop."""

    def __init__(self, name: str, token: str, urls: list[str], first: int) -> None:
        self.name, self.token, self.urls = name, token, urls
        self.turn = itertools.cycle(range(len(urls)))
        for _ in range(first):
            next(self.turn)
        self.sio: socketio.AsyncClient | None = None
        self.http = aiohttp.ClientSession()
        self.last_event_id: int | None = None
        self.snapshots = 0
        self.reconnects = 0
        self.tasks: set[asyncio.Task[Any]] = set()
        self.closing = False
        self.url = ""

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def connect(self) -> None:
        while True:
            url = self.urls[next(self.turn)]
            sio = socketio.AsyncClient(reconnection=False)
            sio.on("offer", lambda d: self._spawn(self._take(d)), namespace="/agent")
            sio.on("snapshot", lambda d: self._spawn(self._snapshot(d)), namespace="/agent")
            sio.on("presence", lambda d: self._spawn(self._presence(d)), namespace="/agent")
            sio.on("disconnect", lambda *_: self._spawn(self._lost()), namespace="/agent")
            auth: dict[str, Any] = {"token": self.token}
            if self.last_event_id is not None:
                auth["last_event_id"] = self.last_event_id
            try:
                await sio.connect(url, namespaces=["/agent"], auth=auth, transports=["websocket"],
                                  wait_timeout=5)  # fmt: skip
            except socketio.exceptions.ConnectionError:
                await sio.shutdown()
                await asyncio.sleep(0.2)
                continue
            self.sio, self.url = sio, url
            ack = await sio.call("presence", {"presence": "available"}, namespace="/agent")
            assert ack["ok"], ack
            return

    async def _lost(self) -> None:
        if self.closing:
            return
        self.reconnects += 1
        await self.connect()

    async def _snapshot(self, snap: dict[str, Any]) -> None:
        self.snapshots += 1
        self.last_event_id = max(self.last_event_id or 0, snap["last_event_id"])
        for offer in snap["offers"]:
            await self._take(offer)

    async def _presence(self, data: dict[str, Any]) -> None:
        self.last_event_id = max(self.last_event_id or 0, data["event_id"])
        if data["presence"] == "away" and self.sio is not None:  # an offer ran out: back now
            await self.sio.call("presence", {"presence": "available"}, namespace="/agent")

    async def _take(self, offer: dict[str, Any]) -> None:
        sio = self.sio
        if sio is None:
            return
        if "event_id" in offer:
            self.last_event_id = max(self.last_event_id or 0, offer["event_id"])
        try:
            ack = await sio.call("accept", {"ticket_id": offer["ticket_id"]}, namespace="/agent",
                                 timeout=5)  # fmt: skip
        except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError):
            return  # the process died under us: the offer comes back (snapshot or expiry)
        if ack.get("ok"):
            await self._solve(offer["ticket_id"])

    async def _solve(self, ticket_id: int) -> None:
        for url in (self.url, *self.urls):
            try:
                async with self.http.patch(f"{url}/api/v1/tickets/{ticket_id}",
                                           json={"status": "solved"},
                                           headers={"Authorization": f"Bearer {self.token}"}
                                           ) as resp:  # fmt: skip
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                continue

    async def sync(self) -> None:
        """The console's backstop: a fresh snapshot, accepting what it lists."""
        if self.sio is None or not self.sio.connected:
            return
        try:
            ack = await self.sio.call("sync", namespace="/agent", timeout=5)
        except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError):
            return
        if ack.get("ok"):
            await self._snapshot(ack["snapshot"])

    async def close(self) -> None:
        self.closing = True
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.sio is not None and self.sio.connected:
            await self.sio.disconnect()
        await self.http.close()


async def _api(http: aiohttp.ClientSession, method: str, url: str, token: str | None,
               body: Any = None) -> Any:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, url, json=body, headers=headers) as resp:
        data = await resp.json()
        assert resp.status < 300, (url, resp.status, data)
        return data


async def _post_contacts(http, urls, token, numbers, sent: list[int]) -> None:
    for n in numbers:
        body = {"external_id": f"fault-{n}", "channel": "chat", "handle": f"visitor-f{n}",
                "subject": f"contact {n}", "body": "help", "queue": "faults"}  # fmt: skip
        for url in itertools.islice(itertools.cycle(urls), n % len(urls), n % len(urls) + 3):
            try:
                await _api(http, "POST", f"{url}/api/v1/inbound", token, body)
                sent.append(n)
                break
            except aiohttp.ClientError:
                continue
        await asyncio.sleep(0.05)  # arrivals over time (open loop); not a timing assertion


def _sql(cluster: Cluster, statement: str) -> list[Any]:
    import psycopg

    with psycopg.connect(cluster.database_url) as pg:
        return list(pg.execute(statement).fetchall())


async def _all_assigned(cluster: Cluster, agents: list[ClusterAgent], total: int,
                        timeout: float = 90) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = _sql(cluster, "SELECT count(*) FROM ticket WHERE subject LIKE 'contact %' "
                    "AND assignee_id IS NOT NULL")[0][0]  # fmt: skip
        if done >= total:
            return
        await asyncio.gather(*(a.sync() for a in agents))
        await asyncio.sleep(0.5)
    waiting = _sql(cluster, "SELECT id, status FROM ticket WHERE subject LIKE 'contact %' "
                   "AND assignee_id IS NULL LIMIT 10")  # fmt: skip
    raise AssertionError(f"not all assigned after {timeout} s: {waiting}")


async def _until(condition, timeout: float = 5.0) -> float:
    return await until(condition, timeout, poll=0.05)


async def test_leader_web_and_redis_faults_lose_and_double_nothing(tmp_path):
    cluster = Cluster(ClusterConfig(web=2, leaders=2, workers=1), workdir=tmp_path)
    await asyncio.to_thread(cluster.start)
    agents: list[ClusterAgent] = []
    http = aiohttp.ClientSession()
    try:
        web = [cluster.url("web1"), cluster.url("web2")]
        admin = (
            await _api(
                http,
                "POST",
                f"{web[0]}/api/v1/login",
                None,
                {"email": "admin@demo.test", "password": "demo-password"},
            )
        )["token"]
        team = await _api(http, "POST", f"{web[0]}/api/v1/teams", admin, {"name": "faults"})
        queue = await _api(http, "POST", f"{web[0]}/api/v1/queues", admin,
                           {"name": "faults", "team_id": team["id"]})  # fmt: skip
        for i in range(AGENTS):
            email = f"f{i}@faults.example"
            await _api(
                http,
                "POST",
                f"{web[0]}/api/v1/users",
                admin,
                {
                    "email": email,
                    "name": f"F{i}",
                    "password": "fault-password-1",
                    "role": "agent",
                    "team_id": team["id"],
                    "queue_ids": [queue["id"]],
                    "capacity": {"chat": 2},
                },
            )
            token = (
                await _api(
                    http,
                    "POST",
                    f"{web[i % 2]}/api/v1/login",
                    None,
                    {"email": email, "password": "fault-password-1"},
                )
            )["token"]
            agent = ClusterAgent(email, token, web, first=i % 2)
            await agent.connect()
            agents.append(agent)
        sent: list[int] = []
        await _post_contacts(http, web, admin, range(20), sent)
        await _all_assigned(cluster, agents, 20)

        # 1. the leader dies: another leads within 5 s and the contacts keep being assigned
        leader = cluster.leader()
        assert leader in ("lead1", "lead2")
        await asyncio.to_thread(cluster.kill, leader)
        killed = time.monotonic()
        posting = asyncio.create_task(_post_contacts(http, web, admin, range(20, 40), sent))
        await _until(lambda: cluster.leader() not in (None, leader), timeout=5.0)
        takeover = time.monotonic() - killed
        assert takeover < 5.0
        await posting
        await _all_assigned(cluster, agents, 40)

        # 2. a web process dies: its agents reconnect to the other one and resync
        on_web1 = [a for a in agents if a.url == web[0]]
        assert on_web1
        before = {a.name: a.snapshots for a in on_web1}
        await asyncio.to_thread(cluster.kill, "web1")
        await _until(lambda: all(a.url == web[1] and a.sio is not None and a.sio.connected
                                 for a in on_web1), timeout=10)  # fmt: skip
        assert all(a.reconnects >= 1 and a.snapshots > before[a.name] for a in on_web1)
        await _post_contacts(http, [web[1]], admin, range(40, 60), sent)
        await _all_assigned(cluster, agents, 60)
        await asyncio.to_thread(cluster.start_process, "web1")

        # 3. Redis restarts (empty): the service continues
        await asyncio.to_thread(cluster.stop_redis)
        await asyncio.to_thread(cluster.start_redis)
        await _post_contacts(http, web, admin, range(60, 80), sent)
        await _all_assigned(cluster, agents, 80)

        # nothing lost, nothing doubled
        assert sorted(sent) == list(range(80))
        assert (
            _sql(cluster, "SELECT count(*) FROM message WHERE external_id LIKE 'fault-%'")[0][0]
            == 80
        )
        tickets = _sql(cluster, "SELECT count(*), count(assignee_id) FROM ticket "
                       "WHERE subject LIKE 'contact %'")[0]  # fmt: skip
        assert tuple(tickets) == (80, 80)
        accepted = _sql(cluster, "SELECT ticket_id, count(*) FROM offer WHERE outcome = "
                        "'accepted' GROUP BY ticket_id")  # fmt: skip
        assert len(accepted) == 80 and all(n == 1 for _, n in accepted)
        assert _sql(cluster, "SELECT count(*) FROM offer WHERE outcome IS NULL")[0][0] == 0
        print(f"leader takeover {takeover:.2f} s")
    finally:
        for a in agents:
            await a.close()
        await http.close()
        await asyncio.to_thread(cluster.stop)
