"""Agent occupancy from presence and handling changes, against hand-computed seconds."""

from __future__ import annotations

import pytest

from sla.occupancy import AgentState, AgentTime, Seconds, state_of

T0 = 1_800_000_000.0  # a minute boundary (1800000000 = 30,000,000 minutes)


def test_states() -> None:
    assert state_of("available", 0) is AgentState.IDLE
    assert state_of("available", 2) is AgentState.OCCUPIED
    assert state_of("wrap_up", 0) is AgentState.OCCUPIED
    assert state_of("away", 1) is AgentState.OCCUPIED  # the contact is still being handled
    assert state_of("away", 0) is None and state_of("busy", 0) is None
    assert state_of("offline", 3) is None


def test_a_morning_of_two_agents() -> None:
    """a: available 0 s, chat X 180-480 s, wrap-up 480-540 s, available; b: available 300 s,
    away 540 s. At 720 s: a occupied 300 + 60 = 360, idle 180 + 180 = 360; b idle 240."""
    t = AgentTime()
    t.presence(1, 7, "offline", T0 - 3600)
    t.presence(1, 7, "available", T0)
    t.presence(2, 7, "offline", T0)
    t.handle("X", 1, T0 + 180)
    t.presence(2, 7, "available", T0 + 300)
    t.handle("X", None, T0 + 480)
    t.presence(1, 7, "wrap_up", T0 + 480)
    t.presence(1, 7, "available", T0 + 540)
    t.presence(2, 7, "away", T0 + 540)
    s = t.seconds(T0 - 7200, T0 + 720, team=7)
    assert (s.occupied, s.idle) == (360.0, 600.0)
    assert s.occupancy == pytest.approx(360 / 960)
    # from the minute containing 400 s (360 s) on: a occupied 360-480 + 480-540, idle 540-720;
    # b idle 360-540
    s = t.seconds(T0 + 400, T0 + 720, team=7)
    assert (s.occupied, s.idle) == (180.0, 360.0)
    assert t.seconds(T0, T0 + 720, team=8) == Seconds()
    assert t.seconds(T0, T0 + 720, team=8).occupancy is None
    assert t.seconds(T0, T0 + 720, everything=True) == Seconds(360.0, 600.0)


def test_several_contacts_and_moves() -> None:
    t = AgentTime()
    t.presence(1, "red", "available", T0)
    t.presence(2, "red", "available", T0)
    t.handle("A", 1, T0 + 10)
    t.handle("B", 1, T0 + 20)  # two chats at once: still one agent occupied
    t.handle("A", None, T0 + 30)
    t.handle("B", 2, T0 + 40)  # transferred to agent 2
    assert t.contacts_of(1) == frozenset() and t.contacts_of(2) == {"B"}
    t.handle("B", 2, T0 + 50)  # repeated: nothing changes
    t.handle("C", 99, T0 + 50)  # not an agent we count
    t.presence(2, "blue", "available", T0 + 60)  # agent 2 moves team, still on B
    t.remove(2, T0 + 70)
    assert t.state(2) is None and "B" not in t.handled_by
    red = t.seconds(T0, T0 + 100, team="red")
    # agent 1: idle 0-10, occupied 10-40, idle 40-100; agent 2: idle 0-40, occupied 40-60
    assert (red.occupied, red.idle) == (30.0 + 20.0, 10.0 + 60.0 + 40.0)
    blue = t.seconds(T0, T0 + 100, team="blue")
    assert (blue.occupied, blue.idle) == (10.0, 0.0)


def test_long_intervals_split_exactly_at_buckets_and_prune() -> None:
    t = AgentTime(bucket_seconds=60)
    t.presence(1, None, "available", T0 + 30)
    t.presence(1, None, "offline", T0 + 3 * 3600 + 30)
    assert t.seconds(T0, T0 + 4 * 3600).idle == 3 * 3600
    assert t.seconds(T0 + 3600, T0 + 4 * 3600).idle == 2 * 3600 + 30
    t.prune(T0 + 3600)
    assert t.seconds(T0, T0 + 4 * 3600).idle == 2 * 3600 + 30
    with pytest.raises(ValueError, match="positive"):
        AgentTime(bucket_seconds=0)
