"""Router core: ordering, agent choice, capacity, relaxation, known agent, offers, restore."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from routing.core import (
    AgentSpec,
    DuplicateError,
    Offer,
    OfferExpiredError,
    Presence,
    QueueConfig,
    RelaxStep,
    Router,
    RouterConfig,
    SkillScore,
    Strategy,
    TicketState,
    UnknownAgentError,
    UnknownOfferError,
    UnknownTicketError,
    WorkItem,
)

ROOT = Path(__file__).resolve().parents[2]
Q = 1


def agent(
    aid: int,
    skills: Mapping[str, int] | None = None,
    *,
    idle: float = 0.0,
    queues: frozenset[int] = frozenset({Q}),
    capacity: Mapping[str, int] | None = None,
    presence: Presence = Presence.AVAILABLE,
) -> AgentSpec:
    return AgentSpec(aid, skills or {}, queues, capacity or {}, presence, idle)


def item(ticket: int, channel: str = "chat", *, at: float = 0.0, **kw: Any) -> WorkItem:
    kw.setdefault("queue", Q)
    return WorkItem(ticket=ticket, channel=channel, enqueued_at=at, **kw)


def pairs(offers: Iterable[Offer]) -> list[tuple[int, int]]:
    return [(o.ticket, o.agent) for o in offers]


# -- ordering and agent choice ---------------------------------------------------------------


def test_priority_first_then_age() -> None:
    r = Router()
    r.enqueue(item(1, "voice", at=1.0))
    r.enqueue(item(2, "voice", at=2.0, priority=5))
    r.enqueue(item(3, "voice", at=0.5))
    r.enqueue(item(4, "voice", at=0.2, priority=5))
    assert r.route(10.0) == []  # nobody there
    r.add_agent(agent(1))
    assert pairs(r.route(10.0)) == [(4, 1)]  # priority 5, oldest of the two
    r.accept(4, 1, 10.0)
    r.complete(4, 11.0)
    assert pairs(r.route(11.0)) == [(2, 1)]
    r.accept(2, 1, 11.0)
    r.complete(2, 12.0)
    assert pairs(r.route(12.0)) == [(3, 1)]  # same priority: oldest first


def test_longest_idle_agent_gets_the_offer() -> None:
    r = Router()
    for aid, idle in ((1, 30.0), (2, 10.0), (3, 20.0)):
        r.add_agent(agent(aid, idle=idle, capacity={"voice": 1}))
    for t in (1, 2, 3):
        r.enqueue(item(t, "voice", at=float(t)))
    assert pairs(r.route(50.0)) == [(1, 2), (2, 3), (3, 1)]


def test_best_skill_strategy_with_sum_and_max_and_idle_tie_break() -> None:
    r = Router(queues=[QueueConfig(Q, Strategy.BEST_SKILL, SkillScore.SUM)])
    r.add_agent(agent(1, {"billing": 2, "fr": 5}, idle=0.0))  # sum 7, idle longest
    r.add_agent(agent(2, {"billing": 5, "fr": 4}, idle=5.0))  # sum 9
    r.add_agent(agent(3, {"billing": 4, "fr": 5}, idle=1.0))  # sum 9, idle longer than 2
    r.enqueue(item(1, required_skills={"billing": 1, "fr": 1}))
    assert pairs(r.route(10.0)) == [(1, 3)]

    r2 = Router(queues=[QueueConfig(Q, Strategy.BEST_SKILL, SkillScore.MAX)])
    r2.add_agent(agent(1, {"billing": 2, "fr": 4}, idle=0.0))
    r2.add_agent(agent(2, {"billing": 5, "fr": 1}, idle=9.0))
    r2.enqueue(item(1, required_skills={"billing": 1, "fr": 1}))
    assert pairs(r2.route(10.0)) == [(1, 2)]


def test_default_strategy_ignores_skill_level_above_the_minimum() -> None:
    r = Router()
    r.add_agent(agent(1, {"billing": 1}, idle=0.0))
    r.add_agent(agent(2, {"billing": 5}, idle=1.0))
    r.enqueue(item(1, required_skills={"billing": 1}))
    assert pairs(r.route(5.0)) == [(1, 1)]


def test_eligibility_needs_skills_levels_language_queue_and_presence() -> None:
    r = Router()
    r.add_agent(agent(1, {"billing": 2, "lang:de": 1}))
    r.add_agent(agent(2, {"billing": 5}))
    r.add_agent(agent(3, {"billing": 5, "lang:de": 3}, queues=frozenset({2})))
    r.add_agent(agent(4, {"billing": 5, "lang:de": 3}, presence=Presence.BUSY))
    r.enqueue(item(1, required_skills={"billing": 3}, language="DE"))
    assert r.route(1.0) == []
    r.set_presence(4, Presence.AVAILABLE, 2.0)
    assert pairs(r.route(2.0)) == [(1, 4)]


# -- capacity --------------------------------------------------------------------------------


def test_capacity_per_channel_is_never_exceeded() -> None:
    r = Router()
    r.add_agent(agent(1, capacity={"chat": 2, "voice": 1, "email": 0}))
    for t in range(1, 5):
        r.enqueue(item(t, "chat", at=float(t)))
    r.enqueue(item(10, "voice", at=9.0))
    r.enqueue(item(20, "email", at=9.0))
    assert sorted(pairs(r.route(10.0))) == [(1, 1), (2, 1), (10, 1)]
    view = r.agent_view(1)
    assert (view.load["chat"], view.load["voice"], view.load["email"]) == (2, 1, 0)
    assert view.free("chat") == 0
    r.accept(1, 1, 10.0)
    assert r.route(11.0) == []  # accepting keeps the unit
    r.complete(1, 12.0)
    assert pairs(r.route(12.0)) == [(3, 1)]  # a freed chat unit goes to the next chat
    assert r.state_of(20) is TicketState.WAITING  # email capacity 0: never offered


def test_default_capacities_and_one_voice_call() -> None:
    r = Router()
    r.add_agent(agent(1))
    for t in range(1, 13):
        r.enqueue(item(t, "email", at=float(t)))
    r.enqueue(item(100, "voice"))
    r.enqueue(item(101, "voice"))
    offers = r.route(20.0)
    assert sum(1 for o in offers if o.channel == "email") == 10
    assert sum(1 for o in offers if o.channel == "voice") == 1


def test_complete_frees_capacity_and_moves_idle_since() -> None:
    r = Router()
    r.add_agent(agent(1, idle=0.0, capacity={"voice": 1}))
    r.add_agent(agent(2, idle=5.0, capacity={"voice": 1}))
    r.enqueue(item(1, "voice"))
    assert pairs(r.route(10.0)) == [(1, 1)]
    r.accept(1, 1, 10.0)
    done = r.complete(1, 30.0)
    assert (done.ticket, done.agent) == (1, 1)
    assert r.agent_view(1).idle_since == 30.0
    r.enqueue(item(2, "voice", at=31.0))
    assert pairs(r.route(31.0)) == [(2, 2)]  # agent 2 (idle since 5) now idle longest
    with pytest.raises(UnknownTicketError):
        r.complete(1, 32.0)


# -- relaxation ------------------------------------------------------------------------------


def relaxing_router() -> Router:
    steps = (RelaxStep(30.0, max_level=1), RelaxStep(60.0, drop_all=True))
    return Router(queues=[QueueConfig(Q, relaxation=steps)])


def test_relaxation_lowers_the_level_then_drops_the_skills() -> None:
    r = relaxing_router()
    r.add_agent(agent(1, {"billing": 1}, capacity={"chat": 1}))
    r.add_agent(agent(2, {"sales": 3}, capacity={"chat": 1}))
    r.enqueue(item(1, required_skills={"billing": 4}, at=100.0))
    r.enqueue(item(2, required_skills={"billing": 4}, at=101.0))
    assert r.route(100.0) == []
    assert r.next_relaxation_at() == 130.0
    assert r.route(129.9) == []
    assert pairs(r.route(130.0)) == [(1, 1)]  # level relaxed to 1 at exactly 30 s
    assert r.next_relaxation_at() == 131.0
    assert r.route(131.0) == []  # item 2 relaxed too, but agent 1 is full; agent 2 lacks billing
    assert r.snapshot().waiting[0].requirements == {"billing": 1}
    assert pairs(r.route(161.0)) == [(2, 2)]  # 60 s: any agent in the queue
    assert r.next_relaxation_at() is None


def test_relaxation_applies_to_old_items_at_once_and_keeps_language() -> None:
    steps = (RelaxStep(10.0, drop_all=True, keep_language=True),)
    r = Router(queues=[QueueConfig(Q, relaxation=steps)])
    r.add_agent(agent(1, {"lang:en": 1}))
    r.add_agent(agent(2, {"lang:es": 1, "billing": 5}))
    r.enqueue(item(1, required_skills={"billing": 5}, language="es", at=0.0))
    r.enqueue(item(2, required_skills={"billing": 5}, language="en", at=0.0))
    assert pairs(r.route(500.0)) == [(1, 2), (2, 1)]


def test_drop_named_skills() -> None:
    r = Router(queues=[QueueConfig(Q, relaxation=(RelaxStep(5.0, drop=frozenset({"vip"})),))])
    r.add_agent(agent(1, {"billing": 2}))
    r.enqueue(item(1, required_skills={"billing": 2, "vip": 1}))
    assert r.route(4.0) == []
    assert pairs(r.route(5.0)) == [(1, 1)]


def test_configure_queue_refiles_waiting_items() -> None:
    r = Router()
    r.add_agent(agent(1, {"billing": 1}))
    r.enqueue(item(1, required_skills={"billing": 3}, at=0.0))
    assert r.route(50.0) == []
    r.configure_queue(QueueConfig(Q, relaxation=(RelaxStep(20.0, max_level=1),)), now=50.0)
    assert r.queue_config(Q).relaxation[0].after_seconds == 20.0
    assert pairs(r.route(50.0)) == [(1, 1)]


# -- known agent -----------------------------------------------------------------------------


def test_preferred_agent_gets_the_first_offer_even_if_not_idle_longest() -> None:
    r = Router()
    r.add_agent(agent(1, idle=0.0))
    r.add_agent(agent(2, idle=50.0))
    r.enqueue(item(1, preferred_agent=2, preference_window=30.0))
    assert pairs(r.route(1.0)) == [(1, 2)]


def test_item_waits_for_a_busy_preferred_agent_until_the_window_closes() -> None:
    r = Router()
    r.add_agent(agent(1, idle=0.0, capacity={"voice": 1}))
    r.add_agent(agent(2, idle=50.0, capacity={"voice": 1}))
    r.enqueue(item(9, "voice", at=0.0))
    assert pairs(r.route(0.0)) == [(9, 1)]  # agent 1 is on a call now...
    r.accept(9, 1, 0.0)
    r.enqueue(item(1, "voice", at=1.0, preferred_agent=1, preference_window=20.0))
    assert r.route(1.0) == []  # ...so the item waits for agent 1 although agent 2 is free
    assert r.snapshot().waiting[0].pinned_to == 1
    assert r.next_deadline() == 21.0
    r.complete(9, 10.0)
    assert pairs(r.route(10.0)) == [(1, 1)]  # agent 1 is back inside the window


def test_preference_window_closes_then_anyone_eligible() -> None:
    r = Router()
    r.add_agent(agent(1, capacity={"voice": 1}, presence=Presence.AWAY))
    r.add_agent(agent(2, capacity={"voice": 1}))
    r.enqueue(item(1, "voice", at=0.0, preferred_agent=1, preference_window=20.0))
    assert r.route(19.9) == []
    assert pairs(r.route(20.0)) == [(1, 2)]


def test_preference_skipped_when_agent_offline_unknown_or_outside_queue() -> None:
    for pref_spec in (
        agent(1, presence=Presence.OFFLINE),
        agent(1, queues=frozenset({7})),
        None,
    ):
        r = Router()
        if pref_spec is not None:
            r.add_agent(pref_spec)
        r.add_agent(agent(2))
        r.enqueue(item(1, preferred_agent=1, preference_window=60.0))
        assert pairs(r.route(1.0)) == [(1, 2)], pref_spec


def test_preferred_agent_going_offline_releases_waiting_items() -> None:
    r = Router()
    r.add_agent(agent(1, presence=Presence.BUSY))
    r.add_agent(agent(2))
    r.enqueue(item(1, preferred_agent=1, preference_window=60.0))
    assert r.route(1.0) == []
    r.set_presence(1, Presence.OFFLINE, 2.0)
    assert pairs(r.route(2.0)) == [(1, 2)]


def test_preferred_agent_who_rejects_is_not_waited_for() -> None:
    r = Router()
    r.add_agent(agent(1, idle=5.0))
    r.add_agent(agent(2, idle=9.0))
    r.enqueue(item(1, preferred_agent=2, preference_window=60.0))
    assert pairs(r.route(1.0)) == [(1, 2)]
    r.reject(1, 2, 2.0)
    assert pairs(r.route(2.0)) == [(1, 1)]


# -- offers: reject, expire, accept, cancel --------------------------------------------------


def test_reject_goes_to_the_next_agent_and_excludes_the_rejecter() -> None:
    r = Router()
    for aid in (1, 2):
        r.add_agent(agent(aid, idle=float(aid), capacity={"voice": 1}))
    r.enqueue(item(1, "voice", at=3.0))
    assert pairs(r.route(5.0)) == [(1, 1)]
    rejected = r.reject(1, 1, 6.0)
    assert rejected.agent == 1
    assert pairs(r.route(6.0)) == [(1, 2)]
    r.reject(1, 2, 7.0)
    assert r.route(7.0) == []  # both excluded now
    waiting = r.snapshot().waiting[0]
    assert waiting.excluded == {1, 2}
    assert waiting.item.enqueued_at == 3.0  # keeps its place in line
    assert r.agent_view(1).presence is Presence.AVAILABLE  # a rejection is not an absence
    with pytest.raises(UnknownOfferError):
        r.reject(1, 2, 8.0)


def test_expiry_goes_to_the_next_agent_and_sets_the_agent_away() -> None:
    r = Router(RouterConfig(offer_timeout={"chat": 10.0}))
    r.add_agent(agent(1, idle=0.0))
    r.add_agent(agent(2, idle=1.0))
    r.enqueue(item(1, "chat"))
    [offer] = r.route(5.0)
    assert (offer.agent, offer.expires_at, offer.created_at) == (1, 15.0, 5.0)
    assert r.next_deadline() == 15.0
    assert r.expire(14.9) == []
    tick = r.tick(15.0)
    assert [o.ticket for o in tick.expired] == [1]
    assert pairs(list(tick.offers)) == [(1, 2)]
    assert r.agent_view(1).presence is Presence.AWAY
    assert r.agent_view(1).load["chat"] == 0
    assert tick.offers[0].expires_at == 25.0
    with pytest.raises(OfferExpiredError):
        r.accept(1, 2, 25.0)  # due: expire() will end it
    assert r.state_of(1) is TicketState.OFFERED


def test_expiry_without_away() -> None:
    r = Router(RouterConfig(away_on_expire=False))
    r.add_agent(agent(1))
    r.enqueue(item(1, "email"))
    [offer] = r.route(0.0)
    assert offer.expires_at == 120.0  # async default
    r.expire(120.0)
    assert r.agent_view(1).presence is Presence.AVAILABLE
    assert r.route(120.0) == []  # excluded: no second offer to the same agent


def test_accept_turns_the_offer_into_an_assignment() -> None:
    r = Router()
    r.add_agent(agent(1))
    r.enqueue(item(1, "voice"))
    r.route(0.0)
    with pytest.raises(UnknownOfferError):
        r.accept(1, 2, 1.0)
    got = r.accept(1, 1, 1.0)
    assert (got.ticket, got.agent, got.channel, got.since) == (1, 1, "voice", 1.0)
    assert r.state_of(1) is TicketState.ASSIGNED
    assert r.assignment_for(1) == got
    assert r.offer_for(1) is None
    assert r.next_deadline() is None


def test_cancel_frees_whatever_the_ticket_held() -> None:
    r = Router()
    r.add_agent(agent(1, capacity={"voice": 1}))
    for t in (1, 2, 3):
        r.enqueue(item(t, "voice", at=float(t)))
    assert pairs(r.route(5.0)) == [(1, 1)]
    assert r.cancel(3) is None  # waiting: just gone
    cancelled = r.cancel(1)  # offered: the offer is returned to withdraw it
    assert cancelled is not None and cancelled.agent == 1
    assert pairs(r.route(6.0)) == [(2, 1)]
    r.accept(2, 1, 6.0)
    assert r.cancel(2) is None  # assigned: capacity back
    assert r.agent_view(1).load["voice"] == 0
    assert r.cancel(2) is None  # idempotent
    assert r.state_of(2) is None
    assert r.waiting_count() == 0


# -- presence and agent changes --------------------------------------------------------------


def test_presence_changes() -> None:
    r = Router()
    r.add_agent(agent(1, idle=0.0, presence=Presence.WRAP_UP))
    r.add_agent(agent(2, idle=5.0))
    r.enqueue(item(1, "voice"))
    r.enqueue(item(2, "voice"))
    assert pairs(r.route(10.0)) == [(1, 2)]
    r.set_presence(1, Presence.AVAILABLE, 20.0)
    assert r.agent_view(1).idle_since == 20.0
    assert pairs(r.route(20.0)) == [(2, 1)]
    r.set_presence(1, "busy", 21.0)  # keeps its open offer
    assert r.offer_for(2) is not None
    rescinded = r.set_presence(1, Presence.OFFLINE, 22.0)
    assert [o.ticket for o in rescinded] == [2]
    assert r.state_of(2) is TicketState.WAITING
    assert r.snapshot().waiting[0].excluded == frozenset()  # rescinded, not rejected
    with pytest.raises(UnknownAgentError):
        r.set_presence(99, Presence.AVAILABLE, 0.0)


def test_update_and_remove_agent() -> None:
    r = Router()
    r.add_agent(agent(1, {"billing": 1}))
    r.enqueue(item(1, required_skills={"billing": 3}))
    r.enqueue(item(2, "voice", queue=2))
    assert r.route(1.0) == []
    assert r.update_agent(1, skills={"billing": 3}) == []
    assert pairs(r.route(2.0)) == [(1, 1)]
    rescinded = r.update_agent(1, queues={2})
    assert [o.ticket for o in rescinded] == [1]
    assert pairs(r.route(3.0)) == [(2, 1)]
    r.accept(2, 1, 3.0)
    assert r.remove_agent(1) == []
    assert r.state_of(2) is None  # its assignment is forgotten with it
    with pytest.raises(DuplicateError):
        r.enqueue(item(1))
    r.add_agent(agent(1))
    with pytest.raises(DuplicateError):
        r.add_agent(agent(1))


def test_rescind_checks_the_relaxed_requirement_of_an_offer() -> None:
    """An offer made (or restored) after a relaxation step is judged by the relaxed
    requirement: a later skill change that still meets it keeps the offer."""
    steps = (RelaxStep(10.0, drop=frozenset({"billing"})),)
    for restored in (False, True):
        r = Router(queues=[QueueConfig(Q, relaxation=steps)])
        if restored:  # offered at 15 s (after the step), then the service restarted
            r.add_agent(agent(1, {"sales": 1}))
            r.restore_offer(item(1, required_skills={"billing": 2}), 1, 30.0, 15.0)
        else:  # offered at 5 s; the step dropped billing at 10 s while it was open
            r.add_agent(agent(1, {"billing": 2}))
            r.enqueue(item(1, required_skills={"billing": 2}))
            assert pairs(r.route(5.0)) == [(1, 1)]
            assert r.route(12.0) == []
        assert r.update_agent(1, skills={"sales": 2}) == []
        assert r.offer_for(1) is not None


def test_lowering_capacity_keeps_work_but_stops_new_offers() -> None:
    r = Router()
    r.add_agent(agent(1, capacity={"chat": 3}))
    for t in (1, 2, 3, 4):
        r.enqueue(item(t, at=float(t)))
    assert len(r.route(5.0)) == 3
    r.update_agent(1, capacity={"chat": 1})
    for t in (1, 2):
        r.accept(t, 1, 6.0)
        r.complete(t, 7.0)
    assert r.route(7.0) == []  # load 1 (offer 3) = capacity 1
    r.cancel(3)
    assert pairs(r.route(8.0)) == [(4, 1)]


# -- timers, snapshot, restore ---------------------------------------------------------------


def test_next_deadline_is_the_earliest_of_expiry_and_relaxation() -> None:
    r = relaxing_router()
    assert r.next_deadline() is None
    r.add_agent(agent(1, {"billing": 5}, capacity={"voice": 1}))
    r.enqueue(item(1, "voice", required_skills={"billing": 2}, at=0.0))
    r.enqueue(item(2, "voice", required_skills={"billing": 2}, at=0.0))
    r.route(0.0)
    assert r.next_offer_expiry() == 15.0
    assert r.next_relaxation_at() == 30.0
    assert r.next_deadline() == 15.0


def test_snapshot_is_plain_data() -> None:
    r = relaxing_router()
    r.add_agent(agent(1, {"billing": 5}, capacity={"voice": 1}))
    r.enqueue(item(1, "voice", required_skills={"billing": 2}, language="fr"))
    r.enqueue(item(2, "voice", priority=3))
    r.route(1.0)
    data = json.loads(json.dumps(r.snapshot().to_dict()))
    assert data["offers"][0]["ticket"] == 2
    assert data["waiting"][0]["requirements"] == {"billing": 2, "lang:fr": 1}
    assert data["agents"][0]["load"] == {"voice": 1}


def test_restore_rebuilds_an_equivalent_router() -> None:
    r = relaxing_router()
    r.add_agent(agent(1, {"billing": 5}, capacity={"voice": 1, "chat": 2}, idle=3.0))
    r.add_agent(agent(2, {"billing": 1}, capacity={"voice": 1, "chat": 2}, idle=1.0))
    r.enqueue(item(1, "voice", required_skills={"billing": 3}))
    r.enqueue(item(2, "chat", at=1.0))
    r.enqueue(item(3, "chat", at=2.0))
    r.enqueue(item(4, "voice", required_skills={"billing": 3}, at=3.0))
    r.route(5.0)
    r.accept(1, 1, 5.0)
    r.reject(2, 2, 6.0)
    before = r.snapshot()

    fresh = relaxing_router()
    for view in before.agents:
        fresh.add_agent(view.spec())
    for s in before.assignments:
        fresh.restore_assignment(s.ticket, s.agent, s.channel, queue=s.queue, since=s.since)
    for offer, it in zip(before.offers, before.offered_items, strict=True):
        fresh.restore_offer(it, offer.agent, offer.expires_at, offer.created_at)
    for it in before.waiting_items():
        fresh.enqueue(it)
    assert fresh.snapshot().to_dict() == before.to_dict()
    # both make the same decisions from here on
    assert pairs(fresh.route(6.0)) == pairs(r.route(6.0))
    assert pairs(fresh.route(40.0)) == pairs(r.route(40.0))
    assert fresh.snapshot().to_dict() == r.snapshot().to_dict()
    assert fresh.next_deadline() == r.next_deadline()
    with pytest.raises(DuplicateError):
        fresh.restore_assignment(1, 1, "voice")
    with pytest.raises(UnknownAgentError):
        fresh.restore_offer(item(50), 99, 10.0)


def test_validation() -> None:
    with pytest.raises(ValueError):
        AgentSpec(1, {"billing": 6})
    with pytest.raises(ValueError):
        WorkItem(1, "fax", Q)
    with pytest.raises(ValueError):
        RelaxStep(10.0, max_level=0)
    with pytest.raises(ValueError):
        RouterConfig(offer_timeout={"chat": 0})
    with pytest.raises(ValueError):
        AgentSpec(1, capacity={"voice": -1})


# -- purity and cost -------------------------------------------------------------------------


def test_core_is_pure_and_never_reads_the_clock() -> None:
    modules = sorted(p.stem for p in (ROOT / "routing").glob("*.py") if p.stem != "service")
    names = ["routing" if m == "__init__" else f"routing.{m}" for m in modules]
    heavy = ("aiohttp", "socketio", "sqlmodel", "sqlalchemy", "redis", "rq", "pydantic")
    code = (
        "import importlib, sys\n"
        f"for m in {names!r}: importlib.import_module(m)\n"
        f"print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
    clock = re.compile(r"\b(time\.(time|monotonic|perf_counter|sleep)|datetime\.now)\s*\(")
    for m in modules:
        if m in ("__init__", "service"):
            continue
        assert not clock.findall((ROOT / "routing" / f"{m}.py").read_text()), m
