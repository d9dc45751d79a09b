"""The simulator's pure parts: Poisson arrivals, figures from outcomes, Erlang predictions."""

from __future__ import annotations

import itertools

import pytest

from contact_center.simulate.model import (
    Arrival,
    ChannelMix,
    Outcome,
    Scenario,
    arrivals,
    figures,
    predict,
    series,
)


def _scenario(**kw) -> Scenario:
    mix = kw.pop("mix", (ChannelMix("chat", 3600, 60, 30), ChannelMix("email", 720, 300)))
    return Scenario(mix, kw.pop("seconds", 3600), kw.pop("agents", 5), **kw)


def test_arrivals_are_poisson_merged_in_order_and_reproducible():
    plan = arrivals(_scenario())
    assert plan == arrivals(_scenario())  # same seed, same plan
    assert plan != arrivals(_scenario(seed=2))
    assert [a.number for a in plan] == list(range(len(plan)))
    assert all(x.at <= y.at for x, y in itertools.pairwise(plan))
    chat = [a for a in plan if a.channel == "chat"]
    email = [a for a in plan if a.channel == "email"]
    # 3,600 and 720 expected; Poisson sd is 60 and 27: four sd either way
    assert 3360 < len(chat) < 3840 and 612 < len(email) < 828
    assert all(a.patience_seconds is not None for a in chat)
    assert all(a.patience_seconds is None for a in email)
    mean_handle = sum(a.handle_seconds for a in chat) / len(chat)
    assert 55 < mean_handle < 65  # exponential, mean 60


def test_bad_scenarios_are_refused():
    with pytest.raises(ValueError):
        ChannelMix("chat", -1)
    with pytest.raises(ValueError):
        ChannelMix("chat", 10, aht_seconds=0)
    with pytest.raises(ValueError):
        ChannelMix("chat", 10, patience_seconds=0)
    with pytest.raises(ValueError):
        Scenario((), 0, 1)
    with pytest.raises(ValueError):
        Scenario((), 10, 0)


def _o(n: int, sent: float, answered: float | None = None, abandoned: float | None = None):
    return Outcome(Arrival(sent, n, "chat", 60, 30), sent_at=sent, offered_at=sent + 0.1,
                   answered_at=answered, abandoned_at=abandoned)  # fmt: skip


def test_figures_by_hand():
    outcomes = [
        _o(0, 0, answered=10),  # within 20 s
        _o(1, 0, answered=30),  # late
        _o(2, 0, abandoned=3),  # short abandon (< 5 s)
        _o(3, 0, abandoned=40),  # abandon
        _o(4, 0),  # still waiting
    ]
    f = figures(outcomes, threshold=20, short=5)
    assert (f.offered, f.answered, f.answered_within) == (5, 2, 1)
    assert (f.abandoned, f.short_abandoned, f.unanswered) == (2, 1, 1)
    assert f.service_level == pytest.approx(1 / 3)  # 1 / (2 + 2 - 1)
    assert f.asa_seconds == pytest.approx(20)
    assert f.abandon_rate == pytest.approx(1 / 4)  # (2 - 1) / (5 - 1)
    assert f.within_of_offered == pytest.approx(1 / 5)
    assert f.abandoned_of_offered == pytest.approx(2 / 5)
    assert f.mean_wait_seconds == pytest.approx((10 + 30 + 3 + 40) / 4)
    assert f.mean_offer_seconds == pytest.approx(0.1)
    empty = figures([], 20, 5)
    assert empty.service_level is None and empty.asa_seconds is None


def test_series_windows_by_arrival():
    outcomes = [_o(0, 5, answered=6), _o(1, 65, answered=100), _o(2, 70, abandoned=80)]
    points = list(series(outcomes, 120, 60, 20, 5))
    assert [t for t, _ in points] == [60, 120]
    assert points[0][1].within_of_offered == 1.0
    assert points[1][1].offered == 2 and points[1][1].answered_within == 0


def test_prediction_reproduces_the_erlang_c_vector():
    # 100 calls per 30 min, AHT 180 s, 14 agents, T = 20 s: SL 0.88835, ASA 7.8359 s
    mix = ChannelMix("voice", 200, 180)
    p = predict(mix, 14, 20)
    assert p is not None and p.model == "erlang_c"
    assert p.within_of_offered == pytest.approx(0.88835, abs=1e-5)
    assert p.mean_wait_seconds == pytest.approx(7.8359, abs=1e-4)
    assert predict(mix, 9, 20) is None  # 10 Erlangs on 9 agents: no steady state
    with_patience = predict(ChannelMix("voice", 200, 180, 60), 14, 20)
    assert with_patience is not None and with_patience.model == "erlang_a"
    assert 0 < with_patience.abandoned_of_offered < 0.1
    assert with_patience.within_of_offered > p.within_of_offered  # impatient callers leave
