"""Property tests: random operation sequences against an independent brute-force model.

The model below re-derives everything from first principles (its own relaxation arithmetic,
eligibility, preference rule) and, after every operation, the router's snapshot must agree with
it: one state per ticket, loads within capacity, presence, exclusions. After every ``route()``:
each offer went to an eligible agent; no eligible (waiting item, agent) pair is left (work
conservation); no better-placed waiting item was passed over; the chosen agent was the longest
idle (or best skilled) of the eligible ones with capacity; the timers are the expected ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.core import (
    AgentSpec,
    Offer,
    OfferExpiredError,
    Presence,
    QueueConfig,
    RelaxStep,
    Router,
    RouterConfig,
    SkillScore,
    Strategy,
    UnknownTicketError,
    WorkItem,
)

CHANNELS = ("voice", "chat", "email")
SKILLS = ("a", "b", "c")
QUEUES = (1, 2)
AGENT_IDS = tuple(range(1, 7))
TIMEOUTS = {"voice": 8.0, "chat": 12.0, "email": 30.0}
# The model's own copy of the relaxation plan: (after, max_level, drop, drop_all, keep_lang)
PLAN: dict[int, tuple[tuple[float, int | None, frozenset[str], bool, bool], ...]] = {
    1: ((10.0, 1, frozenset(), False, False), (25.0, None, frozenset(), True, True)),
    2: ((15.0, None, frozenset({"b"}), False, False),),
}
EXAMPLES = int(os.environ.get("ROUTING_EXAMPLES", "200"))


def queue_configs(strategy1: Strategy, score2: SkillScore) -> list[QueueConfig]:
    def steps(q: int) -> tuple[RelaxStep, ...]:
        return tuple(RelaxStep(a, m, d, da, kl) for a, m, d, da, kl in PLAN[q])

    return [
        QueueConfig(1, strategy=strategy1, score=score2, relaxation=steps(1)),  # model: score2
        QueueConfig(2, strategy=Strategy.BEST_SKILL, score=score2, relaxation=steps(2)),
    ]


# -- the model -------------------------------------------------------------------------------


@dataclass
class MAgent:
    skills: dict[str, int]
    queues: frozenset[int]
    cap: dict[str, int]
    presence: str
    idle: float


@dataclass
class Model:
    strategy: dict[int, Strategy]
    score2: SkillScore
    agents: dict[int, MAgent] = field(default_factory=dict)
    items: dict[int, WorkItem] = field(default_factory=dict)
    excluded: dict[int, set[int]] = field(default_factory=dict)
    state: dict[int, tuple[str, int, float]] = field(default_factory=dict)  # kind, agent, exp
    last_route: float = 0.0

    def base(self, t: int) -> dict[str, int]:
        item = self.items[t]
        req = dict(item.required_skills)
        if item.language:
            req["lang:" + item.language] = max(req.get("lang:" + item.language, 1), 1)
        return req

    def effective(self, t: int, now: float) -> dict[str, int]:
        item = self.items[t]
        req = self.base(t)
        for after, max_level, drop, drop_all, keep_lang in PLAN[item.queue]:
            if item.enqueued_at + after > now:
                break
            req = {
                s: (lvl if max_level is None else min(lvl, max_level))
                for s, lvl in req.items()
                if s not in drop and not (drop_all and not (keep_lang and s.startswith("lang:")))
            }
        return req

    def stage(self, t: int, now: float) -> int:
        item = self.items[t]
        return sum(1 for step in PLAN[item.queue] if item.enqueued_at + step[0] <= now)

    def load(self, aid: int, channel: str) -> int:
        return sum(
            1
            for t, (kind, agent, _) in self.state.items()
            if kind in ("o", "a") and agent == aid and self.items[t].channel == channel
        )

    def qualifies(self, aid: int, t: int, now: float) -> bool:
        skills = self.agents[aid].skills
        return all(skills.get(s, 0) >= lvl for s, lvl in self.effective(t, now).items())

    def pinned(self, t: int, now: float) -> int | None:
        item = self.items[t]
        pref = item.preferred_agent
        if pref is None or not now < item.enqueued_at + item.preference_window:
            return None
        a = self.agents.get(pref)
        if (
            a is None
            or a.presence == "offline"
            or item.queue not in a.queues
            or pref in self.excluded[t]
            or a.cap[item.channel] <= 0
            or not self.qualifies(pref, t, now)
        ):
            return None
        return pref

    def static_ok(self, aid: int, t: int, now: float) -> bool:
        """Eligible apart from capacity."""
        a = self.agents[aid]
        pin = self.pinned(t, now)
        return (
            a.presence == "available"
            and self.items[t].queue in a.queues
            and aid not in self.excluded[t]
            and self.qualifies(aid, t, now)
            and pin in (None, aid)
        )

    def eligible(self, aid: int, t: int, now: float) -> bool:
        a = self.agents[aid]
        c = self.items[t].channel
        return self.static_ok(aid, t, now) and self.load(aid, c) < a.cap[c]

    def waiting(self) -> list[int]:
        return sorted(t for t, s in self.state.items() if s[0] == "w")

    def key(self, t: int) -> tuple[int, float, int]:
        item = self.items[t]
        return (-item.priority, item.enqueued_at, t)

    def score(self, aid: int, t: int) -> int:
        levels = [self.agents[aid].skills.get(s, 0) for s in self.base(t)]
        if self.score2 is SkillScore.SUM:
            return sum(levels)
        return max(levels, default=0)

    def withdraw(self, t: int, exclude: bool) -> None:
        _, aid, _ = self.state[t]
        if exclude:
            self.excluded[t].add(aid)
        self.state[t] = ("w", 0, 0.0)


# -- checks ----------------------------------------------------------------------------------


def check_state(router: Router, m: Model, now: float) -> None:
    snap = router.snapshot()
    waiting = {w.item.ticket: w for w in snap.waiting}
    offers = {o.ticket: o for o in snap.offers}
    assigned = {s.ticket: s for s in snap.assignments}
    assert not (waiting.keys() & offers.keys())
    assert not (waiting.keys() & assigned.keys())
    assert not (offers.keys() & assigned.keys())
    assert waiting.keys() | offers.keys() | assigned.keys() == m.state.keys()
    for t, (kind, aid, exp) in m.state.items():
        if kind == "w":
            assert t in waiting
            assert waiting[t].excluded == frozenset(m.excluded[t])
        elif kind == "o":
            assert (offers[t].agent, offers[t].expires_at) == (aid, exp)
        else:
            assert assigned[t].agent == aid
    assert [a.id for a in snap.agents] == sorted(m.agents)
    for view in snap.agents:
        ma = m.agents[view.id]
        assert view.presence == ma.presence
        assert view.idle_since == ma.idle
        assert dict(view.skills) == ma.skills and view.queues == ma.queues
        for c in CHANNELS:
            assert view.load[c] == m.load(view.id, c) <= ma.cap[c], (view, c)
        assert set(view.offers) == {t for t, s in m.state.items() if s[:2] == ("o", view.id)}
        assert set(view.assigned) == {t for t, s in m.state.items() if s[:2] == ("a", view.id)}


def check_choice(m: Model, t: int, aid: int, now: float) -> None:
    """Nobody eligible with capacity left was a better choice than ``aid`` for ``t``."""
    if m.pinned(t, now) is not None:
        return
    a, c = m.agents[aid], m.items[t].channel
    for b in m.agents:
        if b == aid or not m.eligible(b, t, now):
            continue
        idle_first = (m.agents[b].idle, b) < (a.idle, aid)
        if m.strategy[m.items[t].queue] is Strategy.LONGEST_IDLE:
            assert not idle_first, f"{b} idle longer than {aid} for {t} on {c}"
        else:
            sb, sa = m.score(b, t), m.score(aid, t)
            assert sb < sa or (sb == sa and not idle_first), f"{b} better than {aid} for {t}"


def apply_route(router: Router, m: Model, now: float, offers: list[Offer]) -> None:
    """Check ``offers`` (returned by ``route(now)``) one by one, then the post-conditions."""
    made: list[tuple[int, int]] = []
    for o in offers:
        t, aid = o.ticket, o.agent
        assert m.state[t][0] == "w", "offered a ticket that was not waiting"
        assert m.eligible(aid, t, now), f"ineligible offer {t} -> {aid}"
        assert o.expires_at == now + TIMEOUTS[m.items[t].channel]
        check_choice(m, t, aid, now)  # against the agents as they were at this offer
        m.state[t] = ("o", aid, o.expires_at)
        m.agents[aid].idle = now  # an offer sends the agent to the back of the line
        made.append((t, aid))
    m.last_route = now
    waiting = m.waiting()
    # work conservation: no eligible pair left
    for t in waiting:
        for aid in m.agents:
            assert not m.eligible(aid, t, now), f"route left {t} with eligible agent {aid}"
    for t, aid in made:
        c = m.items[t].channel
        # order: nothing better on the same channel was passed over by this agent
        for j in waiting:
            if m.items[j].channel == c and m.key(j) < m.key(t):
                assert not m.static_ok(aid, j, now), f"{aid} got {t} before better {j}"
    # waiting views: stage, effective requirements, pin
    views = {w.item.ticket: w for w in router.snapshot().waiting}
    for t in waiting:
        assert views[t].stage == m.stage(t, now)
        assert dict(views[t].requirements) == m.effective(t, now)
        assert views[t].pinned_to == m.pinned(t, now)
    # timers
    expected: list[float] = []
    for t, (kind, _, exp) in m.state.items():
        if kind == "a":
            continue
        if kind == "o":
            expected.append(exp)
        item = m.items[t]
        later = [item.enqueued_at + s[0] for s in PLAN[item.queue] if item.enqueued_at + s[0] > now]
        relax = min(later, default=None)
        pin_end = item.enqueued_at + item.preference_window
        if item.preferred_agent is not None and item.preference_window > 0 and pin_end > now:
            relax = pin_end if relax is None else min(relax, pin_end)
        if relax is not None:
            assert router.next_relaxation_at() is not None
            expected.append(relax)
    assert router.next_deadline() == min(expected, default=None)


# -- operations ------------------------------------------------------------------------------

PROFILES = ({"a": 3, "lang:en": 2}, {"a": 3, "b": 2, "lang:de": 1}, {"b": 4, "c": 3, "lang:en": 1})
skills_st = st.one_of(
    st.sampled_from(PROFILES),  # look-alike agents: ties in idle order and skill score
    st.dictionaries(
        st.sampled_from([*SKILLS, "lang:en", "lang:de"]), st.integers(1, 5), min_size=1, max_size=4
    ),
)
queues_st = st.sampled_from([frozenset({1}), frozenset({2}), frozenset({1, 2}), frozenset()])
caps_st = st.fixed_dictionaries({c: st.sampled_from([0, 1, 1, 2, 3]) for c in CHANNELS})
presence_st = st.sampled_from([Presence.AVAILABLE] * 4 + list(Presence))
agent_st = st.tuples(skills_st, queues_st, caps_st, presence_st, st.integers(0, 5))

enqueue_st = st.tuples(
    st.just("enqueue"),
    st.integers(0, 2),
    st.sampled_from(QUEUES),
    st.sampled_from(CHANNELS),
    st.dictionaries(st.sampled_from(SKILLS), st.sampled_from([1, 1, 2, 3, 5]), max_size=2),
    st.sampled_from([None, None, "en", "de"]),
    st.one_of(st.none(), st.sampled_from(AGENT_IDS)),
    st.sampled_from([0.0, 5.0, 20.0, 20.0]),
    st.integers(-30, 0),
)
WEIGHTED = [
    (6, enqueue_st),
    (3, st.tuples(st.just("accept"), st.integers(0, 99))),
    (1, st.tuples(st.just("reject"), st.integers(0, 99))),
    (2, st.tuples(st.just("complete"), st.integers(0, 99))),
    (1, st.tuples(st.just("cancel"), st.integers(0, 99))),
    (3, st.tuples(st.just("advance"), st.integers(0, 30))),
    (2, st.tuples(st.just("presence"), st.sampled_from(AGENT_IDS), presence_st)),
    (1, st.tuples(st.just("update"), st.sampled_from(AGENT_IDS), skills_st, queues_st)),
    (1, st.tuples(st.just("remove"), st.sampled_from(AGENT_IDS))),
    (1, st.tuples(st.just("add"), st.sampled_from(AGENT_IDS), agent_st)),
    (1, st.tuples(st.just("rebuild"))),
]
op_st = st.sampled_from([i for i, (w, _) in enumerate(WEIGHTED) for _ in range(w)]).flatmap(
    lambda i: WEIGHTED[i][1]
)
route_st = st.sampled_from([True, True, False])


def rebuild(router: Router, config: RouterConfig, queues: list[QueueConfig]) -> Router:
    snap = router.snapshot()
    fresh = Router(config, queues)
    for view in snap.agents:
        fresh.add_agent(view.spec())
    for s in snap.assignments:
        fresh.restore_assignment(s.ticket, s.agent, s.channel, queue=s.queue, since=s.since)
    for offer, item in zip(snap.offers, snap.offered_items, strict=True):
        fresh.restore_offer(item, offer.agent, offer.expires_at, offer.created_at)
    for item in snap.waiting_items():
        fresh.enqueue(item)
    return fresh


def pick(seq: list[int], index: int) -> int | None:
    return seq[index % len(seq)] if seq else None


def run(
    ops: list[tuple[tuple[Any, ...], bool]],
    agents: list[tuple[Any, ...]],
    strategy1: Strategy,
    score2: SkillScore,
) -> None:
    config = RouterConfig(offer_timeout=TIMEOUTS)
    queues = queue_configs(strategy1, score2)
    router = Router(config, queues)
    m = Model({1: strategy1, 2: Strategy.BEST_SKILL}, score2)
    now = 100.0
    next_ticket = 1

    def add(aid: int, spec: tuple[Any, ...]) -> None:
        skills, qs, caps, presence, idle = spec
        router.add_agent(AgentSpec(aid, skills, qs, caps, Presence(str(presence)), float(idle)))
        m.agents[aid] = MAgent(dict(skills), qs, dict(caps), str(presence), float(idle))

    for aid, spec in zip(AGENT_IDS, agents, strict=False):
        add(aid, spec)
    check_state(router, m, now)
    for op, then_route in ops:
        kind = op[0]
        if kind == "enqueue":
            _, prio, q, ch, req, lang, pref, window, age = op
            item = WorkItem(next_ticket, ch, q, prio, req, lang, now + age, pref, window)
            router.enqueue(item)
            m.items[next_ticket] = item
            m.excluded[next_ticket] = set()
            m.state[next_ticket] = ("w", 0, 0.0)
            next_ticket += 1
        elif kind == "presence":
            _, aid, presence = op
            if aid in m.agents:
                a = m.agents[aid]
                got = router.set_presence(aid, presence, now)
                want = []
                if presence != a.presence:
                    if presence == "available":
                        a.idle = now
                    if presence == "offline":
                        want = [t for t, s in sorted(m.state.items()) if s[:2] == ("o", aid)]
                        for t in want:
                            m.withdraw(t, exclude=False)
                    a.presence = str(presence)
                assert [o.ticket for o in got] == want
        elif kind in ("accept", "reject"):
            offered = sorted(t for t, s in m.state.items() if s[0] == "o")
            chosen = pick(offered, op[1])
            if chosen is not None:
                _, aid, exp = m.state[chosen]
                if kind == "reject":
                    router.reject(chosen, aid, now)
                    m.withdraw(chosen, exclude=True)
                elif now >= exp:
                    with pytest.raises(OfferExpiredError):
                        router.accept(chosen, aid, now)
                else:
                    router.accept(chosen, aid, now)
                    m.state[chosen] = ("a", aid, 0.0)
        elif kind == "complete":
            chosen = pick(sorted(t for t, s in m.state.items() if s[0] == "a"), op[1])
            if chosen is not None:
                router.complete(chosen, now)
                m.agents[m.state[chosen][1]].idle = now
                del m.state[chosen]
            else:
                with pytest.raises(UnknownTicketError):
                    router.complete(10_000, now)
        elif kind == "cancel":
            chosen = pick(sorted(m.state), op[1])
            if chosen is not None:
                cancelled = router.cancel(chosen)
                assert (cancelled is not None) == (m.state[chosen][0] == "o")
                del m.state[chosen]
        elif kind == "advance":
            now += float(op[1])
            due = sorted(t for t, s in m.state.items() if s[0] == "o" and s[2] <= now)
            got = router.expire(now)
            assert sorted(o.ticket for o in got) == due
            for t in due:
                m.agents[m.state[t][1]].presence = "away"
                m.withdraw(t, exclude=True)
        elif kind == "update":
            _, aid, skills, qs = op
            if aid in m.agents:
                a = m.agents[aid]
                got = router.update_agent(aid, skills=skills, queues=qs)
                a.skills, a.queues = dict(skills), qs
                want = [
                    t
                    for t, s in sorted(m.state.items())
                    if s[:2] == ("o", aid)
                    and (m.items[t].queue not in a.queues or not m.qualifies(aid, t, m.last_route))
                ]
                for t in want:
                    m.withdraw(t, exclude=False)
                assert [o.ticket for o in got] == want
        elif kind == "remove":
            aid = op[1]
            if aid in m.agents:
                got = router.remove_agent(aid)
                want = [t for t, s in sorted(m.state.items()) if s[:2] == ("o", aid)]
                assert [o.ticket for o in got] == want
                for t in want:
                    m.withdraw(t, exclude=False)
                for t in [t for t, s in m.state.items() if s[:2] == ("a", aid)]:
                    del m.state[t]
                del m.agents[aid]
        elif kind == "add":
            if op[1] not in m.agents:
                add(op[1], op[2])
        elif kind == "rebuild":
            router = rebuild(router, config, queues)
            then_route = True  # a rebuilt router routes at once (as the service does)
        check_state(router, m, now)
        if then_route:
            apply_route(router, m, now, list(router.route(now)))
            check_state(router, m, now)


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(
    ops=st.lists(st.tuples(op_st, route_st), min_size=15, max_size=60),
    agents=st.lists(agent_st, min_size=1, max_size=len(AGENT_IDS)),
    strategy1=st.sampled_from(list(Strategy)),
    score2=st.sampled_from(list(SkillScore)),
)
def test_random_operations_keep_every_invariant(
    ops: list[tuple[tuple[Any, ...], bool]],
    agents: list[tuple[Any, ...]],
    strategy1: Strategy,
    score2: SkillScore,
) -> None:
    run(ops, agents, strategy1, score2)


@settings(max_examples=max(EXAMPLES // 3, 10), deadline=None, database=None)
@given(
    ops=st.lists(st.tuples(op_st, st.just(True)), min_size=10, max_size=60),
    agents=st.lists(agent_st, min_size=3, max_size=len(AGENT_IDS)),
)
def test_route_after_every_step_is_work_conserving(
    ops: list[tuple[tuple[Any, ...], bool]], agents: list[tuple[Any, ...]]
) -> None:
    run(ops, agents, Strategy.LONGEST_IDLE, SkillScore.MAX)
