"""The traffic simulator's pure parts: scenario, arrivals, outcomes, figures, Erlang prediction.

A scenario says, per channel, how many contacts arrive per hour (Poisson), how long agents
handle one (exponential with the given mean, as Erlang assumes), how long a live customer
waits before giving up (exponential patience) and which queue they go to; plus how many agents
there are and how quickly they accept an offer. Everything here is plain data and arithmetic
(stdlib and ``sla.erlang``), fed explicit times and a seeded ``random.Random``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from sla.erlang import asa as erlang_c_asa
from sla.erlang import erlang_a, service_level

__all__ = [
    "LIVE",
    "Arrival",
    "ChannelMix",
    "Figures",
    "Outcome",
    "Prediction",
    "Scenario",
    "arrivals",
    "figures",
    "predict",
    "series",
]

LIVE = frozenset({"chat", "voice"})
"""Channels whose customers wait on the line (answer target, patience, abandons)."""


@dataclass(frozen=True, slots=True)
class ChannelMix:
    """One channel's traffic."""

    channel: str
    per_hour: float
    aht_seconds: float = 180.0
    patience_seconds: float | None = None  # live channels; None: never gives up

    def __post_init__(self) -> None:
        if self.per_hour < 0 or self.aht_seconds <= 0:
            raise ValueError(f"{self.channel}: rate must be >= 0 and AHT > 0")
        if self.patience_seconds is not None and self.patience_seconds <= 0:
            raise ValueError(f"{self.channel}: patience must be > 0")


@dataclass(frozen=True, slots=True)
class Scenario:
    """What to simulate."""

    mix: tuple[ChannelMix, ...]
    seconds: float
    agents: int
    accept_delay_seconds: float = 0.5  # mean; the agent reads the offer, then accepts
    threshold_seconds: float = 20.0  # the answer promise (service level's T)
    short_abandon_seconds: float = 5.0
    seed: int = 1

    def __post_init__(self) -> None:
        if self.seconds <= 0 or self.agents < 1:
            raise ValueError("need a positive duration and at least one agent")


@dataclass(frozen=True, slots=True, order=True)
class Arrival:
    """One contact to send: when (seconds from the start), on which channel, its draws."""

    at: float
    number: int
    channel: str
    handle_seconds: float = field(compare=False)
    patience_seconds: float | None = field(compare=False)


def arrivals(scenario: Scenario) -> list[Arrival]:
    """Poisson arrivals per channel over the scenario's duration, merged in time order."""
    rng = random.Random(scenario.seed)
    out: list[Arrival] = []
    for mix in scenario.mix:
        if mix.per_hour == 0:
            continue
        rate = mix.per_hour / 3600
        t = rng.expovariate(rate)
        while t < scenario.seconds:
            patience = rng.expovariate(1 / mix.patience_seconds) if mix.patience_seconds else None
            out.append(Arrival(t, 0, mix.channel, rng.expovariate(1 / mix.aht_seconds), patience))
            t += rng.expovariate(rate)
    out.sort()
    return [Arrival(a.at, i, a.channel, a.handle_seconds, a.patience_seconds)
            for i, a in enumerate(out)]  # fmt: skip


@dataclass(slots=True)
class Outcome:
    """What became of one contact (seconds from the start of the run)."""

    arrival: Arrival
    sent_at: float | None = None
    acked_at: float | None = None  # the desk (or its mailbox) took it: a 201, a 200, an ack
    offered_at: float | None = None
    answered_at: float | None = None
    abandoned_at: float | None = None
    solved_at: float | None = None
    replied_at: float | None = None  # the agent's reply was stored (201)
    error: str | None = None

    @property
    def wait(self) -> float | None:
        """Seconds from arrival to the answer (accepted offer)."""
        if self.answered_at is None or self.sent_at is None:
            return None
        return self.answered_at - self.sent_at


@dataclass(frozen=True, slots=True)
class Figures:
    """Service figures of a set of outcomes (live channels: answers and abandons)."""

    offered: int
    answered: int
    answered_within: int
    abandoned: int
    short_abandoned: int
    unanswered: int  # still waiting at the end, or lost
    errors: int
    service_level: float | None  # answered within T / (answered + abandoned - short abandons)
    asa_seconds: float | None
    abandon_rate: float | None  # (abandoned - short) / (offered - short)
    mean_offer_seconds: float | None  # arrival to the agent's offer event
    within_of_offered: float | None  # answered within T / offered (what Erlang A predicts)
    abandoned_of_offered: float | None  # abandoned / offered, short ones in (Erlang A's P(ab))
    mean_wait_seconds: float | None  # every ended contact: to its answer or its abandon


def figures(outcomes: Iterable[Outcome], threshold: float, short: float) -> Figures:
    """The figures of these outcomes (the reference's V4 service level, short abandons out)."""
    items = list(outcomes)
    waits = [o.wait for o in items if o.wait is not None]
    offers = [o.offered_at - o.sent_at for o in items
              if o.offered_at is not None and o.sent_at is not None]  # fmt: skip
    aband = [o for o in items if o.abandoned_at is not None and o.answered_at is None]
    shorts = sum(
        1 for o in aband
        if o.sent_at is not None and o.abandoned_at is not None
        and o.abandoned_at - o.sent_at < short
    )  # fmt: skip
    answered = len(waits)
    ended = waits + [
        o.abandoned_at - o.sent_at for o in aband
        if o.abandoned_at is not None and o.sent_at is not None
    ]  # fmt: skip
    within = sum(1 for w in waits if w <= threshold)
    denom = answered + len(aband) - shorts
    offered = len(items)
    return Figures(
        offered=offered,
        answered=answered,
        answered_within=within,
        abandoned=len(aband),
        short_abandoned=shorts,
        unanswered=sum(1 for o in items if o.answered_at is None and o.abandoned_at is None),
        errors=sum(1 for o in items if o.error is not None),
        service_level=within / denom if denom else None,
        asa_seconds=sum(waits) / answered if answered else None,
        abandon_rate=(len(aband) - shorts) / (offered - shorts) if offered - shorts else None,
        mean_offer_seconds=sum(offers) / len(offers) if offers else None,
        within_of_offered=within / offered if offered else None,
        abandoned_of_offered=len(aband) / offered if offered else None,
        mean_wait_seconds=sum(ended) / len(ended) if ended else None,
    )


@dataclass(frozen=True, slots=True)
class Prediction:
    """What queueing theory expects for one live channel at this load and staffing."""

    model: str  # "erlang_a" (with patience) or "erlang_c"
    load_erlangs: float
    within_of_offered: float  # answered within T / offered
    mean_wait_seconds: float  # of every arrival, answered or not (Erlang C: the ASA)
    abandoned_of_offered: float


def predict(mix: ChannelMix, agents: int, threshold: float) -> Prediction | None:
    """Erlang A (exponential patience) or Erlang C for a live channel served by ``agents``
    agents handling one contact at a time; None when the queue is unstable under Erlang C."""
    lam = mix.per_hour / 3600
    load = lam * mix.aht_seconds
    if lam == 0:
        return None
    if mix.patience_seconds:
        r = erlang_a(lam, mix.aht_seconds, mix.patience_seconds, agents, threshold)
        return Prediction("erlang_a", load, r.sl_answered_of_offered, r.mean_wait, r.p_abandon)
    if load >= agents:
        return None
    return Prediction("erlang_c", load, service_level(agents, load, mix.aht_seconds, threshold),
                      erlang_c_asa(agents, load, mix.aht_seconds), 0.0)  # fmt: skip


def series(
    outcomes: Sequence[Outcome], seconds: float, step: float, threshold: float, short: float
) -> Iterator[tuple[float, Figures]]:
    """Figures of the contacts that arrived in each ``step``-second window (for the chart)."""
    t = 0.0
    while t < seconds:
        window = [o for o in outcomes if t <= o.arrival.at < t + step]
        yield t + step, figures(window, threshold, short)
        t += step
