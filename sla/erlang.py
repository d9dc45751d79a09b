"""Workforce math: Erlang C (M/M/N) and Erlang A (M/M/N+M, exponential patience).

Erlang C uses the numerically stable Erlang B recursion ``B(k) = A·B(k-1) / (k + A·B(k-1))``
and ``C = N·B / (N - A·(1 - B))``: no factorials or powers, fine for hundreds of agents.
Reference test vector (reproduced exactly by the tests): 100 calls / 30 min, AHT 180 s, 80 % in
20 s -> 14 agents, P(wait) 0.1741319, SL 0.88835, ASA 7.8359 s, occupancy 0.7142857.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "ErlangAResult",
    "Staffing",
    "agents_needed",
    "agents_needed_erlang_a",
    "asa",
    "erlang_a",
    "erlang_b",
    "erlang_c",
    "positions_with_shrinkage",
    "service_level",
    "traffic_intensity",
]


def traffic_intensity(contacts: float, interval_seconds: float, aht_seconds: float) -> float:
    """Offered load in Erlangs: arrival rate * average handle time."""
    if interval_seconds <= 0 or aht_seconds <= 0 or contacts < 0:
        raise ValueError("interval and AHT must be positive, contacts not negative")
    return contacts / interval_seconds * aht_seconds


def erlang_b(agents: int, load: float) -> float:
    """Blocking probability B(N, A) by the stable recursion."""
    if agents < 0 or load < 0:
        raise ValueError("agents and load must not be negative")
    b = 1.0
    for k in range(1, agents + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(agents: int, load: float) -> float:
    """Probability of waiting C(N, A) (1.0 when N <= A: the queue grows without bound)."""
    if agents <= load:
        return 1.0
    b = erlang_b(agents, load)
    return agents * b / (agents - load * (1 - b))


def service_level(agents: int, load: float, aht_seconds: float, threshold_seconds: float) -> float:
    """Fraction answered within the threshold: 1 - C · exp(-(N - A) · T / AHT)."""
    if agents <= load:
        return 0.0
    p_wait = erlang_c(agents, load)
    return 1.0 - p_wait * math.exp(-(agents - load) * threshold_seconds / aht_seconds)


def asa(agents: int, load: float, aht_seconds: float) -> float:
    """Average speed of answer (all contacts): C · AHT / (N - A); infinite when N <= A."""
    if agents <= load:
        return math.inf
    return erlang_c(agents, load) * aht_seconds / (agents - load)


def positions_with_shrinkage(agents: int, shrinkage: float) -> int:
    """Scheduled positions ceil(N / (1 - shrinkage)) (rounding noise removed: 14/0.7 -> 20)."""
    if not 0 <= shrinkage < 1:
        raise ValueError("shrinkage must be in [0, 1)")
    return math.ceil(round(agents / (1 - shrinkage), 9))


@dataclass(frozen=True, slots=True)
class Staffing:
    """Erlang C figures for a number of agents."""

    agents: int
    load: float
    p_wait: float
    service_level: float
    asa: float
    occupancy: float
    positions: int


def agents_needed(
    load: float,
    aht_seconds: float,
    target_service_level: float,
    threshold_seconds: float,
    *,
    max_asa: float | None = None,
    max_occupancy: float | None = None,
    shrinkage: float = 0.0,
    max_agents: int = 100_000,
) -> Staffing:
    """Smallest N > A meeting the service level (and the optional ASA / occupancy caps)."""
    if not 0 < target_service_level < 1:
        raise ValueError("target_service_level must be in (0, 1)")
    n = max(1, math.floor(load) + 1)
    while n <= max_agents:
        sl = service_level(n, load, aht_seconds, threshold_seconds)
        avg = asa(n, load, aht_seconds)
        occ = load / n
        if (
            sl >= target_service_level
            and (max_asa is None or avg <= max_asa)
            and (max_occupancy is None or occ <= max_occupancy)
        ):
            p = erlang_c(n, load)
            return Staffing(n, load, p, sl, avg, occ, positions_with_shrinkage(n, shrinkage))
        n += 1
    raise ValueError(f"no staffing up to {max_agents} agents meets the target")


@dataclass(frozen=True, slots=True)
class ErlangAResult:
    """Erlang A (M/M/N+M) figures; service levels as in reference §4.4."""

    agents: int
    p_wait: float
    p_abandon: float
    mean_wait: float
    sl_answered_of_offered: float
    sl_answered_of_offered_minus_early_abandons: float
    sl_answered_or_abandoned_of_offered: float


def _stationary(agents: int, lam: float, mu: float, theta: float) -> list[float]:
    """Birth-death stationary distribution, truncated where the tail is negligible."""
    probs, p, k = [1.0], 1.0, 0
    while True:
        k += 1
        p *= lam / (min(k, agents) * mu + max(k - agents, 0) * theta)
        probs.append(p)
        if k > agents and p < 1e-17 * sum(probs):
            break
        if k > agents + 100_000:
            raise ValueError("Erlang A queue does not converge (patience too long?)")
    total = sum(probs)
    return [x / total for x in probs]


def _absorption(
    start: list[float], agents: int, mu: float, theta: float, horizon: float
) -> tuple[float, float]:
    """Probability mass served / abandoned by ``horizon`` for waiting customers (uniformised).

    State i = customers ahead in queue; from i the tagged customer moves to i-1 at rate
    N·mu + i·theta (service of the head or abandonment of one ahead), is served from 0 at rate
    N·mu and abandons at rate theta.
    """
    size = len(start)
    rate = agents * mu + size * theta
    fwd = [(agents * mu + i * theta) / rate for i in range(size)]
    stay = [1.0 - fwd[i] - theta / rate for i in range(size)]
    v = list(start)
    served = abandoned = 0.0
    served_by = abandoned_by = 0.0
    m, x = 0, rate * horizon
    steps = int(x + 12 * math.sqrt(x) + 30)
    for m in range(steps + 1):
        weight = math.exp(m * math.log(x) - x - math.lgamma(m + 1)) if x > 0 else float(m == 0)
        served_by += weight * served
        abandoned_by += weight * abandoned
        served += v[0] * fwd[0]
        abandoned += sum(v) * theta / rate
        v = [v[i] * stay[i] + (v[i + 1] * fwd[i + 1] if i + 1 < size else 0.0) for i in range(size)]
    return served_by, abandoned_by


def erlang_a(
    contacts_per_second: float,
    aht_seconds: float,
    mean_patience_seconds: float,
    agents: int,
    threshold_seconds: float,
) -> ErlangAResult:
    """Exact M/M/N+M: P(wait), P(abandon), mean wait of all arrivals and three SL variants."""
    if agents < 1 or aht_seconds <= 0 or mean_patience_seconds <= 0:
        raise ValueError("agents, AHT and patience must be positive")
    lam, mu, theta = contacts_per_second, 1 / aht_seconds, 1 / mean_patience_seconds
    probs = _stationary(agents, lam, mu, theta)
    waiting = probs[agents:]
    p_wait = sum(waiting)
    mean_queue = sum(j * p for j, p in enumerate(waiting))
    p_abandon = theta * mean_queue / lam
    served_t, abandoned_t = _absorption(waiting, agents, mu, theta, threshold_seconds)
    answered_t = (1 - p_wait) + served_t
    return ErlangAResult(
        agents=agents,
        p_wait=p_wait,
        p_abandon=p_abandon,
        mean_wait=mean_queue / lam,
        sl_answered_of_offered=answered_t,
        sl_answered_of_offered_minus_early_abandons=answered_t / (1 - abandoned_t),
        sl_answered_or_abandoned_of_offered=answered_t + abandoned_t,
    )


def agents_needed_erlang_a(
    contacts_per_second: float,
    aht_seconds: float,
    mean_patience_seconds: float,
    target_service_level: float,
    threshold_seconds: float,
    *,
    max_agents: int = 10_000,
) -> ErlangAResult:
    """Smallest N whose answered-within-T / offered reaches the target under Erlang A."""
    load = contacts_per_second * aht_seconds
    for n in range(max(1, math.floor(load * 0.5)), max_agents + 1):
        r = erlang_a(contacts_per_second, aht_seconds, mean_patience_seconds, n, threshold_seconds)
        if r.sl_answered_of_offered >= target_service_level:
            return r
    raise ValueError(f"no staffing up to {max_agents} agents meets the target")
