"""Erlang C and Erlang A against the published and computed vectors of the reference (§4)."""

from __future__ import annotations

import math

import pytest

from sla.erlang import (
    agents_needed,
    agents_needed_erlang_a,
    asa,
    erlang_a,
    erlang_b,
    erlang_c,
    positions_with_shrinkage,
    service_level,
    traffic_intensity,
)

# §4.2 vector A: 100 calls / 30 min, AHT 180 s, 80 % in 20 s. Columns: P(wait), SL, ASA, occupancy.
VECTOR_A = {
    11: (0.6821182, 0.3896138, 122.7813, 0.9090909),
    12: (0.4493882, 0.6401580, 40.4449, 0.8333333),
    13: (0.2852705, 0.7955948, 17.1162, 0.7692308),
    14: (0.1741319, 0.8883500, 7.8359, 0.7142857),
    15: (0.1020424, 0.9414528, 3.6735, 0.6666667),
}
# §4.3 vector B: 360 calls / 30 min, AHT 240 s, T = 15 s.
VECTOR_B = {
    53: (0.3765420, 0.7245160, 18.0740, 0.9056604),
    54: (0.3013079, 0.7929143, 12.0523, 0.8888889),
    55: (0.2387009, 0.8458831, 8.1840, 0.8727273),
    56: (0.1871542, 0.8864852, 5.6146, 0.8571429),
}


@pytest.mark.parametrize(
    ("vector", "contacts", "aht", "threshold"),
    [(VECTOR_A, 100, 180, 20), (VECTOR_B, 360, 240, 15)],
)
def test_erlang_c_tables_to_the_published_decimals(
    vector: dict[int, tuple[float, float, float, float]], contacts: int, aht: int, threshold: int
) -> None:
    load = traffic_intensity(contacts, 1800, aht)
    for n, (p_wait, sl, avg, occ) in vector.items():
        assert round(erlang_c(n, load), 7) == p_wait
        assert round(service_level(n, load, aht, threshold), 7) == sl
        assert round(asa(n, load, aht), 4) == avg
        assert round(load / n, 7) == occ


def test_vector_a_headline_figures() -> None:
    load = traffic_intensity(100, 1800, 180)
    assert load == 10.0
    s = agents_needed(load, 180, 0.80, 20, max_occupancy=0.85, shrinkage=0.30)
    assert s.agents == 14 and s.positions == 20
    assert round(s.p_wait, 7) == 0.1741319
    assert round(s.service_level, 5) == 0.88835
    assert round(s.asa, 4) == 7.8359
    assert math.isclose(s.asa, 7.83593701177724, rel_tol=1e-12)  # the R ErlangC README digits
    assert round(s.occupancy, 7) == 0.7142857
    assert round(service_level(13, load, 180, 20), 7) == 0.7955948  # 13 agents just miss 80 %


def test_vector_b_and_caps() -> None:
    load = traffic_intensity(360, 1800, 240)
    assert load == 48.0
    assert agents_needed(load, 240, 0.80, 15).agents == 55
    assert agents_needed(traffic_intensity(100, 1800, 180), 180, 0.80, 20, max_asa=3.0).agents == 16
    assert agents_needed(10.0, 180, 0.5, 20, max_occupancy=0.7).agents == 15


def test_erlang_b_recursion_is_stable_for_large_groups() -> None:
    assert erlang_b(0, 5.0) == 1.0
    assert 0 < erlang_b(2000, 1900.0) < 1
    assert 0 < erlang_c(2000, 1900.0) < 1
    assert erlang_c(10, 10.0) == 1.0 and service_level(9, 10.0, 180, 20) == 0.0
    assert asa(10, 10.0, 180) == math.inf
    assert positions_with_shrinkage(14, 0.3) == 20 and positions_with_shrinkage(14, 0) == 14
    with pytest.raises(ValueError):
        traffic_intensity(10, 0, 180)
    with pytest.raises(ValueError):
        agents_needed(10.0, 180, 1.5, 20)


# §4.4 Erlang A, vector A plus mean patience 180 s: P(wait), P(abandon), mean wait, 3 SLs.
ERLANG_A = {
    11: (0.4170, 0.0834, 15.01, 0.7054, 0.7325, 0.7424),
    12: (0.303224, 0.053092, 9.556, 0.802304, 0.823615, 0.828179),
    13: (0.208444, 0.032247, 5.805, 0.875088, 0.890295, 0.892169),
    14: (0.1355, 0.0187, 3.36, 0.9256, 0.9355, 0.9362),
}


def _decimals(x: float) -> int:
    return len(repr(x).split(".")[1])


def test_erlang_a_table() -> None:
    for n, expected in ERLANG_A.items():
        r = erlang_a(200 / 3600, 180, 180, n, 20)
        got = (
            r.p_wait,
            r.p_abandon,
            r.mean_wait,
            r.sl_answered_of_offered,
            r.sl_answered_of_offered_minus_early_abandons,
            r.sl_answered_or_abandoned_of_offered,
        )
        for value, want in zip(got, expected, strict=True):
            assert round(value, _decimals(want)) == want, (n, value, want)
    assert agents_needed_erlang_a(200 / 3600, 180, 180, 0.80, 20).agents == 12
    patient = agents_needed_erlang_a(200 / 3600, 180, 600, 0.80, 20)
    assert patient.agents == 13 and round(patient.sl_answered_of_offered, 4) == 0.8376
