"""Router benchmark: indexed skills router vs. a naive all-pairs scan, same state, same process.

Set-up (fixed seed): 2,000 agents over 10 queues and 20 skills (each queue has 4 topic skills;
agents know 2-3 topics of each of their 1-2 queues at levels 1-5 plus other skills and
languages), capacity voice 1 / chat 2 / email 3. Items arrive (chat 50 %, email 35 %, voice
15 %; priority 0/1/3; one or two topic skills, sometimes a language, 5 % with a known agent) and
are offered and accepted until every agent is saturated and 10,000 items wait. Queues relax
(after 30 s any level, after 120 s any agent in the queue who speaks the language); two queues
use best-skill, the rest longest-idle.

Measured run: random arrivals and completions (keeping ~10,000 waiting), 2 % of offers
rejected, clock advancing 5 ms per event. A *decision* is one event (``complete`` or
``enqueue``) plus the ``route(now)`` that follows it, timed together when it yields an offer:
p50/p99 over those, ``decisions_per_s`` = offers / time of all events incl. the ones with no
offer.

Baseline (same process, same state): the router's snapshot is copied into a naive router that,
for each decision, walks the waiting items in priority order and for each scans all agents,
stopping at the first item with an eligible agent (a generous baseline: it gets the waiting list
pre-sorted and stops early). Each baseline decision frees a unit of an agent who can take
something, and the indexed router's answer for the same event is checked to be the same offer.

Each decision is timed with the wall clock (``p50_ms``/``p99_ms``: what a caller waits,
including preemption by other processes on a shared machine) and with the thread's CPU clock
(``p50_cpu_ms``/``p99_cpu_ms``: the router's own work). The naive baseline is slow (seconds
per decision at this size), so it runs at most ``--baseline`` decisions within
``--baseline-seconds``; ``baseline_decisions`` says how many.

``python -m bench router [--agents N] [--skills N] [--waiting N] [--events N]
[--baseline N] [--baseline-seconds S] [--seed N]``. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from dataclasses import dataclass, field

from routing.core import (
    AgentSpec,
    Offer,
    Presence,
    QueueConfig,
    RelaxStep,
    Router,
    RouterSnapshot,
    SkillScore,
    Strategy,
    WorkItem,
)

__all__ = ["main"]

QUEUES = 10
CAPACITY = {"voice": 1, "chat": 2, "email": 3, "sms": 0, "api": 0, "whatsapp": 0}
LANGS = ("es", "de", "fr")
DT = 0.005  # seconds of simulated time per event


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def queue_configs() -> list[QueueConfig]:
    steps = (RelaxStep(30.0, max_level=1), RelaxStep(120.0, drop_all=True, keep_language=True))
    return [
        QueueConfig(
            q, Strategy.BEST_SKILL if q < 2 else Strategy.LONGEST_IDLE, SkillScore.SUM, steps
        )
        for q in range(QUEUES)
    ]


def topics(q: int, skills: int) -> list[str]:
    return [f"s{(2 * q + k) % skills:02d}" for k in range(4)]


def make_agents(rng: random.Random, n: int, skills: int) -> list[AgentSpec]:
    out = []
    for aid in range(1, n + 1):
        queues = rng.sample(range(QUEUES), 1 if rng.random() < 0.6 else 2)
        known: dict[str, int] = {}
        for q in queues:
            for s in rng.sample(topics(q, skills), rng.randint(2, 3)):
                known[s] = max(known.get(s, 0), rng.randint(1, 5))
        for _ in range(rng.randint(1, 2)):
            known.setdefault(f"s{rng.randrange(skills):02d}", rng.randint(1, 5))
        known["lang:en"] = rng.randint(3, 5)
        if rng.random() < 0.3:
            known[f"lang:{rng.choice(LANGS)}"] = rng.randint(1, 5)
        spec = AgentSpec(
            aid, known, frozenset(queues), CAPACITY, Presence.AVAILABLE, -rng.uniform(0, 600)
        )
        out.append(spec)
    return out


def make_item(rng: random.Random, ticket: int, now: float, skills: int, agents: int) -> WorkItem:
    q = rng.randrange(QUEUES)
    x = rng.random()
    channel = "chat" if x < 0.5 else ("email" if x < 0.85 else "voice")
    y = rng.random()
    priority = 0 if y < 0.8 else (1 if y < 0.95 else 3)
    picked = rng.sample(topics(q, skills), 2)
    required = {picked[0]: rng.randint(1, 4)}
    if rng.random() < 0.25:
        required[picked[1]] = rng.randint(1, 3)
    language = rng.choice(LANGS) if rng.random() < 0.15 else None
    pref = rng.randint(1, agents) if rng.random() < 0.05 else None
    return WorkItem(
        ticket, channel, q, priority, required, language, now, pref, 20.0 if pref else 0.0
    )


@dataclass
class Sim:
    """The event driver around the indexed router."""

    router: Router
    rng: random.Random
    skills: int
    agents: int
    now: float = 0.0
    next_ticket: int = 1
    assigned: list[int] = field(default_factory=list)

    def settle(self, offers: list[Offer]) -> int:
        """Answer offers: accept (98 %) or reject (2 %). Returns how many were made."""
        for o in offers:
            if self.rng.random() < 0.02:
                self.router.reject(o.ticket, o.agent, self.now)
            else:
                self.router.accept(o.ticket, o.agent, self.now)
                self.assigned.append(o.ticket)
        return len(offers)

    def arrival(self) -> list[Offer]:
        t = self.next_ticket
        self.next_ticket += 1
        self.router.enqueue(make_item(self.rng, t, self.now, self.skills, self.agents))
        return self.router.route(self.now)

    def pop_assigned(self) -> int:
        i = self.rng.randrange(len(self.assigned))
        self.assigned[i], self.assigned[-1] = self.assigned[-1], self.assigned[i]
        return self.assigned.pop()

    def completion(self) -> list[Offer]:
        self.router.complete(self.pop_assigned(), self.now)
        return self.router.route(self.now)


# -- the naive baseline ------------------------------------------------------------------------


@dataclass
class NaiveAgent:
    id: int
    skills: dict[str, int]
    queues: frozenset[int]
    cap: dict[str, int]
    load: dict[str, int]
    presence: str
    idle: float


class Naive:
    """All-pairs router: waiting items in order x all agents, first item with a match wins."""

    def __init__(self, snap: RouterSnapshot, queues: list[QueueConfig]) -> None:
        self.cfg = {q.queue: q for q in queues}
        self.agents = [
            NaiveAgent(
                a.id,
                dict(a.skills),
                a.queues,
                {str(c): n for c, n in a.capacity.items()},
                {str(c): n for c, n in a.load.items()},
                str(a.presence),
                a.idle_since,
            )
            for a in snap.agents
        ]
        self.by_id = {a.id: a for a in self.agents}
        self.waiting = sorted(
            snap.waiting_items(), key=lambda i: (-i.priority, i.enqueued_at, i.ticket)
        )
        self.assigned: dict[int, tuple[int, str]] = {
            s.ticket: (s.agent, str(s.channel)) for s in snap.assignments
        }

    def requirements(self, item: WorkItem, now: float) -> dict[str, int]:
        cfg = self.cfg[item.queue]
        return cfg.requirements_at(item.requirements(), cfg.stage_at(item.enqueued_at, now))

    def qualifies(self, a: NaiveAgent, item: WorkItem, req: dict[str, int]) -> bool:
        return (
            item.queue in a.queues
            and a.id not in item.excluded
            and all(a.skills.get(s, 0) >= lvl for s, lvl in req.items())
        )

    def pinned(self, item: WorkItem, req: dict[str, int], now: float) -> int | None:
        pref = item.preferred_agent
        if pref is None or not now < item.enqueued_at + item.preference_window:
            return None
        a = self.by_id.get(pref)
        if a is None or a.presence == "offline" or a.cap[item.channel] <= 0:
            return None
        return pref if self.qualifies(a, item, req) else None

    def decide(self, now: float) -> tuple[int, WorkItem, NaiveAgent] | None:
        for pos, item in enumerate(self.waiting):
            req = self.requirements(item, now)
            pin = self.pinned(item, req, now)
            best_skill = self.cfg[item.queue].strategy is Strategy.BEST_SKILL
            base = item.requirements()
            best: tuple[float, float, int] | None = None
            chosen: NaiveAgent | None = None
            c = item.channel
            for a in self.agents:
                if a.presence != "available" or a.load[c] >= a.cap[c]:
                    continue
                if not self.qualifies(a, item, req) or pin not in (None, a.id):
                    continue
                score = sum(a.skills.get(s, 0) for s in base) if best_skill else 0
                rank = (-score, a.idle, a.id)
                if best is None or rank < best:
                    best, chosen = rank, a
            if chosen is not None:
                return pos, item, chosen
        return None

    def offer(self, pos: int, item: WorkItem, a: NaiveAgent, now: float) -> None:
        del self.waiting[pos]
        a.load[item.channel] += 1
        a.idle = now  # like the router: an offer sends the agent to the back of the line
        self.assigned[item.ticket] = (a.id, item.channel)

    def complete(self, ticket: int, now: float) -> NaiveAgent:
        aid, c = self.assigned.pop(ticket)
        a = self.by_id[aid]
        a.load[c] -= 1
        a.idle = now
        return a

    def can_take_something(self, a: NaiveAgent, now: float) -> bool:
        for item in self.waiting:
            if a.load[item.channel] < a.cap[item.channel]:
                req = self.requirements(item, now)
                if self.qualifies(a, item, req) and self.pinned(item, req, now) in (None, a.id):
                    return True
        return False


# -- the run -----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, object]:
    rng = random.Random(args.seed)
    queues = queue_configs()
    t0 = time.perf_counter()
    router = Router(queues=queues)
    for spec in make_agents(rng, args.agents, args.skills):
        router.add_agent(spec)
    sim = Sim(router, rng, args.skills, args.agents)
    while router.waiting_count() < args.waiting:  # warm-up: saturate agents, fill the queue
        sim.now += DT
        sim.settle(sim.arrival())
    print(
        f"warm-up: {sim.next_ticket - 1} arrivals, {len(sim.assigned)} assigned, "
        f"{router.waiting_count()} waiting, {time.perf_counter() - t0:.1f} s"
    )

    latencies: list[float] = []
    cpu: list[float] = []
    arrivals_no_offer: list[float] = []
    busy = 0.0
    decisions = 0
    load_before = os.getloadavg()[0]
    for _ in range(args.events):
        sim.now += DT
        arrive = router.waiting_count() < args.waiting or not sim.assigned
        start, start_cpu = time.perf_counter(), time.thread_time()
        offers = sim.arrival() if arrive else sim.completion()
        took_cpu, took = time.thread_time() - start_cpu, time.perf_counter() - start
        busy += took
        if offers:
            latencies.append(took)
            cpu.append(took_cpu)
        elif arrive:
            arrivals_no_offer.append(took)
        decisions += sim.settle(offers)
    p50, p99 = percentile(latencies, 50) * 1e3, percentile(latencies, 99) * 1e3
    c50, c99 = percentile(cpu, 50) * 1e3, percentile(cpu, 99) * 1e3
    per_s = decisions / busy if busy else 0.0
    print(
        f"indexed: {decisions} offers over {args.events} events; per decision wall "
        f"p50 {p50:.3f} ms, p99 {p99:.3f} ms, max {max(latencies) * 1e3:.3f} ms; "
        f"thread CPU p50 {c50:.3f} ms, p99 {c99:.3f} ms; {per_s:,.0f} decisions/s"
    )
    print(
        f"indexed: arrival without offer p50 {percentile(arrivals_no_offer, 50) * 1e3:.3f} ms, "
        f"p99 {percentile(arrivals_no_offer, 99) * 1e3:.3f} ms; waiting "
        f"{router.waiting_count()}, requirement classes {router._widx.classes()}"
    )

    naive = Naive(router.snapshot(), queues)
    base: list[float] = []
    mismatches = 0
    budget_end = time.perf_counter() + args.baseline_seconds
    while len(base) < args.baseline and sim.assigned and time.perf_counter() < budget_end:
        sim.now += DT
        ticket = sim.pop_assigned()
        freed = naive.complete(ticket, sim.now)
        router.complete(ticket, sim.now)
        offers = router.route(sim.now)
        if not naive.can_take_something(freed, sim.now):  # untimed: keep only real decisions
            mismatches += bool(offers)
            continue
        start = time.perf_counter()
        got = naive.decide(sim.now)
        base.append(time.perf_counter() - start)
        assert got is not None
        naive.offer(*got, sim.now)
        mismatches += [(o.ticket, o.agent) for o in offers] != [(got[1].ticket, got[2].id)]
        for o in offers:
            router.accept(o.ticket, o.agent, sim.now)
            sim.assigned.append(o.ticket)
    b50, b99 = percentile(base, 50) * 1e3, percentile(base, 99) * 1e3
    load_after = os.getloadavg()[0]
    print(
        f"naive all-pairs: {len(base)} decisions (cap {args.baseline}, "
        f"{args.baseline_seconds:.0f} s budget); p50 {b50:.1f} ms, p99 {b99:.1f} ms; "
        f"indexed and naive disagreed on {mismatches}"
    )
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load_before:.2f} -> {load_after:.2f} "
        f"(wall times include preemption by other processes; thread CPU times do not)"
    )
    print(f"total {time.perf_counter() - t0:.1f} s")
    return {
        "name": "router",
        "agents": args.agents,
        "skills": args.skills,
        "waiting": args.waiting,
        "decisions": decisions,
        "decisions_per_s": round(per_s, 1),
        "p50_ms": round(p50, 4),
        "p99_ms": round(p99, 4),
        "p50_cpu_ms": round(c50, 4),
        "p99_cpu_ms": round(c99, 4),
        "baseline_decisions": len(base),
        "baseline_p50_ms": round(b50, 3),
        "baseline_p99_ms": round(b99, 3),
        "ratio": round(b99 / p99, 1) if p99 else None,
        "disagreements": mismatches,
        "loadavg": round(max(load_before, load_after), 2),
        "seed": args.seed,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench router", description=__doc__)
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--skills", type=int, default=20)
    parser.add_argument("--waiting", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--baseline", type=int, default=200, help="max naive decisions")
    parser.add_argument("--baseline-seconds", type=float, default=30.0, help="naive time budget")
    parser.add_argument("--seed", type=int, default=20260302)
    result = run(parser.parse_args(argv))
    print(json.dumps(result))
    return 0
