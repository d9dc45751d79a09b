"""Timer engine: exact firing, order, cancellation, re-scheduling, dedupe and rebuild."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sla.clock import to_epoch
from sla.engine import Fired, Kind, OpenTicket, SlaEngine, Timer
from sla.policy import Deadlines, Metric, SlaPolicy, compute_deadlines

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
US = timedelta(microseconds=1)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def kinds(fired: list[Fired]) -> list[tuple[object, str, str]]:
    return [(f.ticket_id, f.kind.value, f.metric.value) for f in fired]


def test_breach_fires_exactly_at_the_deadline_and_warning_at_80_percent() -> None:
    engine = SlaEngine()
    engine.schedule(1, compute_deadlines(SlaPolicy(), T0, "chat"))
    assert len(engine) == 2
    assert engine.next_fire_at() == to_epoch(at(16))
    assert engine.pop_due(at(16) - US) == []
    warning = engine.pop_due(at(16))
    assert kinds(warning) == [(1, "warning", "answer")]
    assert warning[0].fire_at_datetime == at(16)
    assert engine.pop_due(at(20) - US) == []
    assert engine.pop_due(to_epoch(at(20) - US)) == []
    assert kinds(engine.pop_due(at(20))) == [(1, "breach", "answer")]
    assert len(engine) == 0 and engine.next_fire_at() is None
    assert engine.pop_due(at(10_000)) == []


def test_everything_due_pops_in_deadline_order() -> None:
    engine = SlaEngine()
    for ticket, offset in ((1, 3.0), (2, 1.0), (3, 2.0)):
        engine.schedule(ticket, compute_deadlines(SlaPolicy(), at(offset), "voice"))
    fired = engine.pop_due(at(100))
    assert [f.fire_at for f in fired] == sorted(f.fire_at for f in fired)
    assert [f.ticket_id for f in fired if f.kind is Kind.BREACH] == [2, 3, 1]
    # A warning at the same instant as a breach comes first.
    engine.schedule(
        "x",
        [Timer(Metric.RESOLUTION, Kind.BREACH, 5.0), Timer(Metric.ANSWER, Kind.WARNING, 5.0)],
    )
    assert [f.kind for f in engine.pop_due(5.0)] == [Kind.WARNING, Kind.BREACH]


def test_cancel_all_or_one_metric() -> None:
    engine = SlaEngine()
    policy = SlaPolicy(resolution_seconds=100)
    engine.schedule(7, compute_deadlines(policy, T0, "chat"))
    engine.schedule(8, compute_deadlines(policy, T0, "chat"))
    assert len(engine) == 8
    engine.cancel(7)
    engine.cancel(8, Metric.ANSWER)
    assert len(engine) == 2
    assert kinds(engine.pop_due(at(1000))) == [
        (8, "warning", "resolution"),
        (8, "breach", "resolution"),
    ]
    engine.cancel(999)  # unknown ticket: no error


def test_rescheduling_replaces_the_old_timers() -> None:
    engine = SlaEngine()
    policy = SlaPolicy(first_response_seconds=100)
    engine.schedule(1, compute_deadlines(policy, T0, "email"))
    engine.schedule(1, compute_deadlines(policy, at(50), "email"))  # e.g. deadline moved
    assert len(engine) == 2 and engine.heap_size == 4
    assert engine.pop_due(at(100)) == []  # the old breach at +100 s is stale
    assert engine.next_fire_at() == to_epoch(at(130))
    fired = engine.pop_due(at(150))
    assert [(f.kind, f.fire_at) for f in fired] == [
        (Kind.WARNING, to_epoch(at(130))),
        (Kind.BREACH, to_epoch(at(150))),
    ]
    assert fired[0].version == fired[1].version
    engine.schedule(1, Deadlines())  # nothing running any more
    assert len(engine) == 0 and engine.next_fire_at() is None


def test_rescheduling_the_same_deadlines_does_not_repeat_a_fired_warning() -> None:
    engine = SlaEngine()
    deadlines = compute_deadlines(SlaPolicy(), T0, "chat")
    engine.schedule(1, deadlines)
    assert kinds(engine.pop_due(at(17))) == [(1, "warning", "answer")]
    engine.schedule(1, deadlines)  # a ticket write re-derives the same deadlines
    assert kinds(engine.pop_due(at(25))) == [(1, "breach", "answer")]
    engine.schedule(1, deadlines)
    assert engine.pop_due(at(30)) == []
    engine.schedule(1, compute_deadlines(SlaPolicy(), at(30), "chat"))  # new deadline: new timers
    assert len(kinds(engine.pop_due(at(60)))) == 2
    engine.cancel(1)
    engine.schedule(1, deadlines)  # after cancel the memory is gone
    assert len(engine.pop_due(at(60))) == 2


def test_rebuild_after_restart_fires_past_deadlines_on_the_first_pop() -> None:
    policy = SlaPolicy(first_response_seconds=1000)
    open_tickets = [
        OpenTicket(1, compute_deadlines(policy, T0, "email")),  # warn 800, due 1000: both past
        OpenTicket(2, compute_deadlines(policy, at(500), "email")),  # warn 1300 past, due 1500
        (3, compute_deadlines(policy, at(5000), "email")),  # all in the future
        OpenTicket(4, Deadlines(first_response_due=at(1000))),  # warning already announced
    ]
    engine = SlaEngine()
    engine.rebuild(open_tickets)
    assert len(engine) == 7
    restart = at(1400)
    assert engine.next_fire_at() == to_epoch(at(800))
    first = engine.pop_due(restart)
    assert kinds(first) == [
        (1, "warning", "first_response"),
        (1, "breach", "first_response"),
        (4, "breach", "first_response"),
        (2, "warning", "first_response"),
    ]
    assert engine.next_fire_at() == to_epoch(at(1500))
    assert kinds(engine.pop_due(at(1500))) == [(2, "breach", "first_response")]


def test_stale_entries_are_compacted() -> None:
    engine = SlaEngine()
    for i in range(20_000):
        engine.schedule(1, [Timer(Metric.ANSWER, Kind.BREACH, 1_000.0 + i)])
    assert len(engine) == 1
    assert engine.heap_size < 2_100
    assert [f.fire_at for f in engine.pop_due(1e9)] == [20_999.0]


def test_far_buckets_move_into_the_near_heap_in_time() -> None:
    engine = SlaEngine(bucket_seconds=10.0)
    engine.rebuild((i, [Timer(Metric.RESOLUTION, Kind.BREACH, float(i))]) for i in range(1000))
    assert engine.near_size == 0
    assert engine.next_fire_at() == 0.0
    assert engine.near_size == 10  # only the first bucket
    assert [f.ticket_id for f in engine.pop_due(25.0)] == list(range(26))
    assert engine.near_size <= 10
    engine.schedule("late", [Timer(Metric.ANSWER, Kind.BREACH, 26.5)])  # into a moved bucket
    engine.schedule("early", [Timer(Metric.ANSWER, Kind.BREACH, 3.0)])  # already past
    assert [f.ticket_id for f in engine.pop_due(27.0)] == ["early", 26, "late", 27]
    assert len(engine.pop_due(1e9)) == 1000 - 28


ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("schedule"),
            st.integers(0, 5),
            st.lists(
                st.tuples(
                    st.sampled_from(list(Metric)),
                    st.sampled_from(list(Kind)),
                    st.integers(0, 120).map(float),
                ),
                max_size=4,
                unique_by=lambda t: (t[0], t[1]),
            ),
        ),
        st.tuples(st.just("cancel"), st.integers(0, 5), st.sampled_from([None, *Metric])),
        st.tuples(st.just("pop"), st.integers(0, 40).map(float)),
    ),
    max_size=40,
)


class Model:
    """The obvious implementation: a list of armed timers, scanned and sorted."""

    def __init__(self) -> None:
        self.armed: list[tuple[float, int, int, int, Metric, Kind]] = []
        self.memory: dict[tuple[int, Metric], dict[Kind, float]] = {}
        self.seq = 0

    def schedule(self, ticket: int, timers: list[tuple[Metric, Kind, float]]) -> None:
        self.armed = [a for a in self.armed if a[3] != ticket]
        metrics = {m for m, _, _ in timers}
        for metric in Metric:
            if metric not in metrics and not self.memory.get((ticket, metric)):
                self.memory.pop((ticket, metric), None)
        for metric, kind, at in timers:
            if self.memory.get((ticket, metric), {}).get(kind) == at:
                continue
            self.seq += 1
            self.armed.append(
                (at, 0 if kind is Kind.WARNING else 1, self.seq, ticket, metric, kind)
            )

    def cancel(self, ticket: int, metric: Metric | None) -> None:
        for m in Metric if metric is None else (metric,):
            self.armed = [a for a in self.armed if (a[3], a[4]) != (ticket, m)]
            self.memory.pop((ticket, m), None)

    def pop(self, now: float) -> list[tuple[float, int, str, str]]:
        due = sorted(a for a in self.armed if a[0] <= now)
        self.armed = [a for a in self.armed if a[0] > now]
        for at, _, _, ticket, metric, kind in due:
            self.memory.setdefault((ticket, metric), {})[kind] = at
        return [(at, ticket, kind.value, metric.value) for at, _, _, ticket, metric, kind in due]


@settings(max_examples=300, deadline=None, database=None)
@given(ops, st.sampled_from([1.0, 7.0, 1000.0]))
def test_engine_matches_a_naive_model(operations: list[Any], width: float) -> None:
    engine, model, now = SlaEngine(bucket_seconds=width), Model(), 0.0
    for op in operations:
        if op[0] == "schedule":
            timers = [Timer(m, k, at) for m, k, at in op[2]]
            engine.schedule(op[1], timers)
            model.schedule(op[1], op[2])
        elif op[0] == "cancel":
            engine.cancel(op[1], op[2])
            model.cancel(op[1], op[2])
        else:
            now += op[1]
            got = [
                (f.fire_at, f.ticket_id, f.kind.value, f.metric.value) for f in engine.pop_due(now)
            ]
            assert got == model.pop(now)
        assert len(engine) == len(model.armed)
        nxt = min((a[0] for a in model.armed), default=None)
        assert engine.next_fire_at() == nxt
