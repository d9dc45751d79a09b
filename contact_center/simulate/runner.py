"""The traffic simulator's live part: simulated agents and customers against a deployment.

Agents are real python-socketio clients on ``/agent`` (spread over the given web URLs): they go
``available``, accept each offer after a short reading time, reply after a think time and solve
the ticket when its handle time is up. Customers arrive on schedule through the channel drivers
(``drivers.py``); a live customer who is not answered within their patience hangs up. Every
contact is recorded as an :class:`~contact_center.simulate.model.Outcome`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import secrets
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import aiohttp
import uvloop

from contact_center.simulate.model import LIVE, Arrival, Outcome, Scenario

if TYPE_CHECKING:
    from contact_center.simulate.drivers import Driver

__all__ = ["REPLY", "Api", "ImapBox", "Run", "SimAgent", "Target", "run", "run_on_uvloop"]

T = TypeVar("T")

REPLY = "Thanks, I am looking into it."  # every simulated agent's reply (counted afterwards)


@dataclass(frozen=True, slots=True)
class ImapBox:
    """The mailbox the deployment watches, for customers' email (``--imap-*``)."""

    host: str
    port: int
    user: str
    password: str
    address: str  # the support address customers write to
    folder: str = "INBOX"
    tls: bool = True


@dataclass(frozen=True, slots=True)
class Target:
    """The deployment: web URLs (agents and customers are spread over them) and an admin."""

    urls: tuple[str, ...]
    admin_email: str
    admin_password: str
    queue: str = "sim"
    imap: ImapBox | None = None
    chat_socket: bool = True  # chat customers use the widget's /customer socket
    chat_queue: str = "chat"  # where the widget's chats land (CC_CHAT_QUEUE)
    origin: str = ""  # the widget's page origin (one the desk allows); "": the web URL
    # with the desk's Twilio auth token, SMS/WhatsApp and voice come as signed Twilio webhooks
    twilio_token: str = field(default="", repr=False)
    public_url: str = ""  # what Twilio signs: the desk's CC_PUBLIC_BASE_URL; "": the web URL
    twilio_queues: tuple[str, ...] = ()  # where they land (CC_TWILIO_SMS/VOICE_QUEUE); (): default
    twilio_number: str = "+15005550006"  # the desk's number the customers text and call
    twilio_account_sid: str = ""  # AccountSid of the webhooks; "": a placeholder


class Api:
    """JSON over HTTP to any of the web processes (the next one when one fails)."""

    def __init__(self, urls: tuple[str, ...]) -> None:
        self.urls = urls
        self._turn = itertools.cycle(range(len(urls)))
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))

    async def call(self, method: str, path: str, token: str | None, body: Any = None,
                   *, ok: tuple[int, ...] = (), idempotency_key: str | None = None,
                   ) -> tuple[int, Any]:  # fmt: skip
        """The status and JSON answer; a failed connection is tried on the next process
        (``idempotency_key``: a POST the desk must not store twice when that happens)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        last: Exception | None = None
        first = next(self._turn)  # every web process once, from the next one in turn
        for k in range(len(self.urls)):
            url = self.urls[(first + k) % len(self.urls)]
            try:
                async with self.http.request(method, url + path, json=body, headers=headers) as r:
                    data = await r.json(content_type=None)
                    if r.status >= 300 and r.status not in ok:
                        raise RuntimeError(f"{method} {path}: {r.status} {data}")
                    return r.status, data
            except (aiohttp.ClientError, TimeoutError) as err:  # (the total timeout's is
                last = err  # a bare TimeoutError)
        raise RuntimeError(f"{method} {path}: no web process answered ({last})")

    async def login(self, email: str, password: str) -> str:
        _, data = await self.call("POST", "/api/v1/login", None,
                                  {"email": email, "password": password})  # fmt: skip
        return str(data["token"])

    async def close(self) -> None:
        await self.http.close()


@dataclass(slots=True)
class Run:
    """One simulation in progress: the contacts by number and by ticket, the clock."""

    scenario: Scenario
    started: float = field(default_factory=time.monotonic)
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    by_ticket: dict[int, int] = field(default_factory=dict)
    answered: dict[int, asyncio.Event] = field(default_factory=dict)  # set at the accept
    tag: str = ""
    reported: int = -1  # the last 10-second slot the progress line was printed in
    agent_errors: int = 0  # an agent's accept, reply or solve that failed (timeouts, drops)
    agent_error_samples: list[str] = field(default_factory=list)  # the first few, for the report

    def agent_failed(self, err: BaseException) -> None:
        """Count a failed agent step (the contact's outcome shows what it cost)."""
        self.agent_errors += 1
        if len(self.agent_error_samples) < 5:
            self.agent_error_samples.append(f"{type(err).__name__}: {err}"[:160])

    def now(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self.started

    def outcome_of_ticket(self, ticket_id: int) -> Outcome | None:
        n = self.by_ticket.get(ticket_id)
        return None if n is None else self.outcomes.get(n)


class SimAgent:
    """One simulated agent at a console."""

    def __init__(self, name: str, token: str, urls: str | tuple[str, ...], api: Api, sim: Run,
                 rng: random.Random) -> None:  # fmt: skip
        import socketio

        self.name, self.token, self.api, self.sim, self.rng = name, token, api, sim, rng
        # the first is the agent's own web process; a reconnect tries the next one each time
        # (a console behind a load balancer that fails over to a live process)
        self.urls = (urls,) if isinstance(urls, str) else urls
        self.attempts = 0
        self.sio = socketio.AsyncClient(reconnection=True, reconnection_delay=0.5)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.working: set[asyncio.Task[Any]] = set()  # handling an offer, snapshot or presence
        self.handling: set[int] = set()  # offer ids this agent has taken up
        self.on_hand: set[int] = set()  # tickets this agent has worked or works
        self.sio.on("offer", self._spawner(self._offer), namespace="/agent")
        self.sio.on("snapshot", self._spawner(self._snapshot), namespace="/agent")
        self.sio.on("presence", self._spawner(self._presence), namespace="/agent")
        self.sio.on("assigned", self._spawner(self._assigned), namespace="/agent")
        self.sio.on("connect", self._on_connect, namespace="/agent")
        self.sio.on("disconnect", self._on_disconnect, namespace="/agent")
        self.connects = 0
        self.closing = False

    def _spawner(self, fn: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], None]:
        async def guarded(data: dict[str, Any]) -> None:
            try:
                await fn(data)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - an overloaded desk: ack timeouts, drops
                self.sim.agent_failed(err)

        def spawn(data: dict[str, Any]) -> None:
            task = asyncio.get_running_loop().create_task(guarded(data))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            self.working.add(task)
            task.add_done_callback(self.working.discard)

        return spawn

    async def keep_in_sync(self, every: float = 120.0) -> None:
        """A backstop: a fresh snapshot now and then, taking what it lists (an offer event can
        be lost with a process that died between commit and publish). Every two minutes on
        average: 300 agents syncing every 30 s cost the desk ~10 snapshots a second, a load
        the browser console (which syncs only after a reconnect) never makes."""
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(Exception):
                await self._resync({})

    def url(self) -> str:
        """Where the next connection attempt goes (python-socketio calls it on each one)."""
        url = self.urls[self.attempts % len(self.urls)]
        self.attempts += 1
        return url

    async def _connect(self, *, retry: bool = False) -> None:
        await self.sio.connect(self.url, namespaces=["/agent"], auth={"token": self.token},
                               transports=["websocket"], wait_timeout=10, retry=retry)  # fmt: skip

    def _on_disconnect(self, reason: Any = None) -> None:
        """A process that shuts down closes its sockets itself, and python-socketio does not
        reconnect after that: the agent comes back as a console does (to the next process)."""
        if reason == self.sio.reason.SERVER_DISCONNECT and not self.closing:
            task = asyncio.get_running_loop().create_task(self._come_back())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _come_back(self) -> None:
        await self.sio.eio.wait()  # the old connection wound down (this runs inside its end)
        await self._connect(retry=True)

    async def start(self) -> None:
        await self._connect()
        ack = await self.sio.call("presence", {"presence": "available"}, namespace="/agent")
        if not ack.get("ok"):
            raise RuntimeError(f"{self.name}: presence refused: {ack}")
        task = asyncio.get_running_loop().create_task(
            self.keep_in_sync(120.0 * (0.5 + self.rng.random()))  # spread over the agents
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _on_connect(self) -> None:
        """After a reconnect (its process died, a ping timed out) the agent looks again: the
        desk may have set it away meanwhile (offers that ran out while the socket was gone),
        and a ``resumed`` socket gets no snapshot, so it asks for one."""
        self.connects += 1
        if self.connects > 1:
            self._spawner(self._resync)({})

    async def _resync(self, _: dict[str, Any]) -> None:
        ack = await self.sio.call("sync", namespace="/agent", timeout=10)
        if ack.get("ok"):
            await self._snapshot(ack["snapshot"])

    async def _presence(self, data: dict[str, Any]) -> None:
        if data.get("presence") == "away":  # let an offer run out: back at once
            await self.sio.call("presence", {"presence": "available"}, namespace="/agent")

    async def _snapshot(self, snap: dict[str, Any]) -> None:
        await self._presence(snap.get("agent", {}))  # set away while it was not listening: back
        for ticket in snap.get("tickets", []):  # own work it may not have heard of
            self._spawner(self._own)(ticket)
        for offer in snap.get("offers", []):
            await self._offer(offer)

    def _outcome(self, ticket: int, subject: str) -> Outcome | None:
        """The contact of a ticket (the offer can beat the POST's answer: match by subject)."""
        outcome = self.sim.outcome_of_ticket(ticket)
        if outcome is None and subject.startswith(f"sim {self.sim.tag} "):
            n = int(subject.split()[2])
            self.sim.by_ticket[ticket] = n
            outcome = self.sim.outcomes.get(n)
        return outcome

    async def _offer(self, offer: dict[str, Any]) -> None:
        if offer["offer_id"] in self.handling:  # heard again (snapshot, sync, re-announced)
            return
        self.handling.add(offer["offer_id"])
        offered, ticket = self.sim.now(), int(offer["ticket_id"])
        outcome = self._outcome(ticket, str(offer.get("ticket", {}).get("subject", "")))
        if outcome is not None and outcome.offered_at is None:
            outcome.offered_at = offered
        await asyncio.sleep(self.rng.expovariate(1 / self.sim.scenario.accept_delay_seconds))
        # an accept whose answer times out may still have gone through: then the ticket's
        # ``assigned`` event brings it to this agent anyway (see _assigned)
        ack = await self.sio.call("accept", {"ticket_id": ticket}, namespace="/agent", timeout=10)
        if not ack.get("ok"):
            return
        if outcome is None:  # the driver may have learned the ticket meanwhile (a call's TwiML)
            outcome = self.sim.outcome_of_ticket(ticket)
            if outcome is not None and outcome.offered_at is None:
                outcome.offered_at = offered
        if outcome is not None:
            await self._work(ticket, outcome)

    async def _assigned(self, data: dict[str, Any]) -> None:
        """A ticket became this agent's: an accept whose answer was lost, or a transfer. A
        console shows it among the agent's own, and the agent works it as any other (left
        alone, it would hold a unit of the agent's capacity for good)."""
        ticket = data.get("ticket") or {}
        await self._own(ticket)

    async def _own(self, ticket: dict[str, Any]) -> None:
        if ticket.get("status") not in ("new", "open") or "id" not in ticket:
            return
        tid = int(ticket["id"])
        outcome = self._outcome(tid, str(ticket.get("subject", "")))
        if outcome is not None:
            await self._work(tid, outcome)

    async def _work(self, ticket: int, outcome: Outcome) -> None:
        """Answer, reply after a think time, solve after the handle time; once per ticket."""
        if ticket in self.on_hand:
            return
        self.on_hand.add(ticket)
        if outcome.abandoned_at is None and outcome.answered_at is None:
            outcome.answered_at = self.sim.now()
            self.sim.answered.setdefault(outcome.arrival.number, asyncio.Event()).set()
        handle = outcome.arrival.handle_seconds
        think = min(handle / 2, 2.0)
        await asyncio.sleep(think)
        # a web process that dies after storing the reply but before answering: the retry on
        # the next one must not reply twice
        status, _ = await self.api.call("POST", f"/api/v1/tickets/{ticket}/replies", self.token,
                                        {"body": REPLY}, ok=(404, 409),
                                        idempotency_key=f"sim-reply-{ticket}")  # fmt: skip
        if status == 201:
            outcome.replied_at = self.sim.now()
        await asyncio.sleep(max(0.0, handle - think))
        await self.api.call("PATCH", f"/api/v1/tickets/{ticket}", self.token,
                            {"status": "solved"}, ok=(400, 404, 409))  # fmt: skip
        outcome.solved_at = self.sim.now()

    async def close(self) -> None:
        self.closing = True
        for task in list(self.tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self.tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.sio.disconnect()


async def _setup(api: Api, target: Target, scenario: Scenario) -> tuple[str, list[str]]:
    """The admin token and one token per simulated agent (created once, reused later)."""
    admin = await api.login(target.admin_email, target.admin_password)
    status, team = await api.call("POST", "/api/v1/teams", admin, {"name": "sim"}, ok=(409,))
    if status == 409:
        _, teams = await api.call("GET", "/api/v1/teams", admin)
        team = next(t for t in teams["items"] if t["name"] == "sim")
    await api.call(
        "POST", "/api/v1/queues", admin, {"name": target.queue, "team_id": team["id"]}, ok=(409,)
    )
    _, queues = await api.call("GET", "/api/v1/queues", admin)
    by_name = {q["name"]: q["id"] for q in queues["items"]}
    queue_ids = [by_name[target.queue]]
    if target.chat_socket and any(m.channel == "chat" for m in scenario.mix):
        # the widget's chats land in the chat queue (or the default one): serve it too
        extra = next((by_name[q] for q in (target.chat_queue, "general") if q in by_name), None)
        if extra is not None and extra not in queue_ids:
            queue_ids.append(extra)
    if target.twilio_token and any(m.channel in ("sms", "whatsapp", "voice") for m in scenario.mix):
        for name in target.twilio_queues or ("general",):  # (the desk's default queue)
            extra = by_name.get(name, by_name.get("general"))
            if extra is not None and extra not in queue_ids:
                queue_ids.append(extra)
    capacity = {m.channel: (1 if m.channel in LIVE else 10) for m in scenario.mix}
    password = secrets.token_urlsafe(18)  # new each run; existing agents get it reset
    _, users = await api.call("GET", "/api/v1/users", admin)
    known = {u["email"]: u["id"] for u in users["items"]}
    sem = asyncio.Semaphore(8)

    async def agent(i: int) -> str:
        async with sem:
            email = f"sim-agent-{i}@sim.example"
            body = {
                "name": f"Sim agent {i}",
                "password": password,
                "team_id": team["id"],
                "queue_ids": queue_ids,
                "capacity": capacity,
                "skills": {"lang:en": 3},  # the widget's chats ask for their language
                "active": True,
            }
            if email not in known:
                create = {k: v for k, v in body.items() if k != "active"}
                status, _ = await api.call("POST", "/api/v1/users", admin,
                                           {**create, "email": email, "role": "agent"},
                                           ok=(409,))  # fmt: skip
                if status != 409:  # (409: a retried create that had gone through)
                    return await api.login(email, password)
                _, users = await api.call("GET", "/api/v1/users", admin)
                known.update({u["email"]: u["id"] for u in users["items"]})
            await api.call("PATCH", f"/api/v1/users/{known[email]}", admin, body)
            return await api.login(email, password)

    tokens = await asyncio.gather(*(agent(i) for i in range(scenario.agents)))
    return admin, list(tokens)


def _progress(out: TextIO, sim: Run, *, final: bool = False) -> None:
    """A bar on a terminal (redrawn in place); elsewhere one line every 10 s."""
    tty = out.isatty()
    slot = int(sim.now()) // 10
    if not tty and not final and slot == sim.reported:
        return
    sim.reported = slot
    total = sim.scenario.seconds
    t = min(sim.now(), total)
    done = int(30 * t / total)
    values = list(sim.outcomes.values())
    answered = sum(1 for o in values if o.answered_at is not None)
    gone = sum(1 for o in values if o.abandoned_at is not None and o.answered_at is None)
    waiting = sum(1 for o in values if o.answered_at is None and o.abandoned_at is None)
    errors = sum(1 for o in values if o.error is not None)
    start, end = ("\r", "") if tty else ("", "\n")
    out.write(f"{start}[{'#' * done}{'.' * (30 - done)}] {100 * t / total:3.0f}%  "
              f"t={t:5.0f}/{total:.0f} s  sent {len(values)}  answered {answered}  "
              f"abandoned {gone}  waiting {waiting - errors}  errors {errors}  "
              f"agent errors {sim.agent_errors} {end}")  # fmt: skip
    out.flush()


async def _customer(driver: Driver, outcome: Outcome) -> None:
    """One customer's contact; whatever goes wrong is the contact's error, and a contact the
    desk never acknowledged by the end of the run (still waiting for its answer) is one too:
    only acknowledged contacts must be stored."""
    try:
        await driver.contact(outcome)
    except asyncio.CancelledError:
        if outcome.acked_at is None and outcome.error is None:
            outcome.error = f"{outcome.arrival.channel}: no answer by the end of the run"
        raise
    except Exception as err:  # noqa: BLE001 - a timeout, a dropped connection: counted
        if outcome.error is None:
            outcome.error = f"{outcome.arrival.channel}: {err!r}"


async def _start_all(agents: list[SimAgent], at_once: int = 16) -> None:
    """Every agent connected and available, ``at_once`` connecting at a time (one after
    the other, 300 agents took longer than a minute on a slow machine)."""
    sem = asyncio.Semaphore(at_once)

    async def start(agent: SimAgent) -> None:
        async with sem:
            await agent.start()

    await asyncio.gather(*(start(a) for a in agents))


def run_on_uvloop(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop: the simulator shares the machine with the desk it drives,
    and every bit of CPU it spends on its own event loop is taken from the desk."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


async def run(
    target: Target,
    scenario: Scenario,
    arrivals: list[Arrival],
    *,
    drain_seconds: float = 60.0,
    progress: TextIO | None = sys.stderr,
    on_started: Callable[[], None] | None = None,
) -> Run:
    """Simulate ``scenario`` against ``target``; the outcomes once everything ended or drained.

    ``on_started`` is called once the agents are on line, as the first arrival is due (the
    soak times its faults from there, not from the setup, whose length depends on the machine).
    """
    from contact_center.simulate.drivers import driver_for

    api = Api(target.urls)
    sim = Run(scenario, tag=f"{int(time.time())}")
    agents: list[SimAgent] = []
    customers: set[asyncio.Task[Any]] = set()
    drivers: dict[str, Driver] = {}
    try:
        admin, tokens = await _setup(api, target, scenario)
        rng = random.Random(scenario.seed + 1)
        for i, token in enumerate(tokens):
            own = i % len(target.urls)  # spread over the web processes
            urls = target.urls[own:] + target.urls[:own]
            agents.append(SimAgent(f"agent{i}", token, urls, api, sim, random.Random(rng.random())))
        await _start_all(agents)
        drivers.update(
            {m.channel: driver_for(m.channel, api, admin, target, sim) for m in scenario.mix}
        )
        sim.started = time.monotonic()
        if on_started is not None:
            on_started()
        last_draw = 0.0
        for arrival in arrivals:
            delay = arrival.at - sim.now()
            if delay > 0:
                await asyncio.sleep(delay)
            outcome = sim.outcomes[arrival.number] = Outcome(arrival)
            task = asyncio.create_task(_customer(drivers[arrival.channel], outcome))
            customers.add(task)
            task.add_done_callback(customers.discard)
            if progress is not None and sim.now() - last_draw >= 0.5:
                _progress(progress, sim)
                last_draw = sim.now()
        remaining = scenario.seconds - sim.now()
        if remaining > 0:
            await asyncio.sleep(remaining)
        end = time.monotonic() + drain_seconds
        while customers and time.monotonic() < end:
            if progress is not None:
                _progress(progress, sim)
            await asyncio.wait(customers, timeout=0.5)
        # the agents finish the contacts in hand (reply, solve) within what is left of the drain
        working = {t for a in agents for t in a.working}
        if working:
            await asyncio.wait(working, timeout=max(0.1, end - time.monotonic()))
        if progress is not None:
            _progress(progress, sim, final=True)
            if progress.isatty():
                progress.write("\n")
    finally:
        for task in list(customers):
            task.cancel()
        for agent in agents:
            await agent.close()
        for driver in drivers.values():
            await driver.close()
        await api.close()
    return sim
