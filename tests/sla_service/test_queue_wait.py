"""SlaService.queue_wait: waiting count, place in line and expected wait, hand-computed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from contact_center.db import Actor
from contact_center.errors import NotFound, ValidationError
from tests.conftest import World
from tests.sla_service._helpers import contact, patch, reply, settle, sla_of
from tests.sla_service.test_occupancy import presence
from tickets.actions import admin


async def _at(clock: Any, world: World, seconds: float) -> None:
    clock.now = clock.start + timedelta(seconds=seconds)
    await settle(world.svc)


async def _handled(client: Any, world: World, ext: str) -> int:
    """A chat the agent answers and takes (reply + assignment)."""
    tid = int((await contact(client, world, ext))["ticket_id"])
    await reply(client, world, tid)
    await patch(client, world, tid, "supervisor", assignee_id=world.users["agent"]["id"])
    return tid


async def _line(client, world, clock) -> dict[str, int]:
    """Both agents take one chat at a time. 09:00 A answered and taken by agent, solved 09:05
    (handle 300 s: today's AHT); 09:06 agent takes E, agent2 becomes available; 09:07 chats
    B (priority 2), C (2) and D (3) arrive 10 s apart: the line is D, B, C."""
    svc, cli = world.svc, Actor("cli")
    for who in ("agent", "agent2"):
        svc.db.write_sync(admin.update_user, cli, world.users[who]["id"], {"capacity": {"chat": 1}})
    clock.start = clock.now
    await presence(client, world, "agent", "available")
    a = await _handled(client, world, "qw-a")
    await _at(clock, world, 300)
    await patch(client, world, a, "supervisor", status="solved")
    await _at(clock, world, 360)
    e = await _handled(client, world, "qw-e")
    await presence(client, world, "agent2", "available")
    ids = {"A": a, "E": e}
    for i, (name, prio) in enumerate((("B", 2), ("C", 2), ("D", 3))):
        await _at(clock, world, 420 + 10 * i)
        ids[name] = int((await contact(client, world, f"qw-{name}", priority=prio))["ticket_id"])
    await settle(svc)
    return ids


async def test_places_in_line_and_expected_waits(client, world, clock, monkeypatch):
    ids = await _line(client, world, clock)
    sla, general = sla_of(world.svc), world.queues["general"]

    b = sla.queue_wait(general, ticket_id=ids["B"])
    assert b.to_dict() == {
        "queue_id": general, "channel": "chat", "waiting": 3, "position": 2,
        "ticket_id": ids["B"], "agents": 2, "places": 2, "free_places": 1,
        "aht_seconds": 300.0, "aht_source": "queue_channel",
        "expected_wait_seconds": 150.0,  # (2 - 1 free) * 300 s / 2 places
        "reason": None,
    }  # fmt: skip
    assert sla.queue_wait(general, ticket_id=ids["C"]).expected_wait_seconds == 300.0
    assert sla.queue_wait(general, ticket_id=ids["D"]).position == 1
    assert sla.queue_wait(general, ticket_id=ids["D"]).expected_wait_seconds == 0.0  # a free place
    new = sla.queue_wait(general, channel="chat")  # someone who would join now
    assert (new.position, new.expected_wait_seconds) == (4, 450.0)
    mail = sla.queue_wait(general, channel="email")
    assert (mail.waiting, mail.places, mail.free_places, mail.expected_wait_seconds) == (
        0,
        20,
        20,
        0.0,
    )
    billing = sla.queue_wait(world.queues["billing"], channel="chat")  # agent only, and busy
    assert (billing.places, billing.free_places, billing.aht_seconds) == (1, 0, None)
    assert (
        billing.expected_wait_seconds is None and billing.reason == "no handle time known yet today"
    )

    # the whole line at once (what the widget pushes): the same figures as one by one
    line = sla.queue_line(general, "chat")
    assert [w.ticket_id for w in line] == [ids["D"], ids["B"], ids["C"]]
    assert line == [sla.queue_wait(general, ticket_id=ids[n]) for n in "DBC"]
    assert sla.queue_line(general, "email") == []
    # one visitor's entry (a web process pushes only to the visitors it holds): its own place
    assert sla.queue_line(general, "chat", only=lambda t: t == ids["C"]) == [
        sla.queue_wait(general, ticket_id=ids["C"])
    ]
    from contact_center import sla_wait

    made: list[int] = []
    real_line = sla_wait._Line
    monkeypatch.setattr(sla_wait, "_Line", lambda *a: made.append(1) or real_line(*a))
    assert sla.queue_line(general, "email") == []  # nobody waits: no pass over the agents
    assert sla.queue_line(general, "chat", only=lambda t: False) == []
    assert made == []
    assert len(sla.queue_line(general, "chat")) == 3 and made == [1]
    monkeypatch.undo()

    await patch(client, world, ids["D"], "supervisor", priority=1)  # D drops behind B and C
    await presence(client, world, "agent2", "away")
    await settle(world.svc)
    assert sla.queue_wait(general, ticket_id=ids["D"]).position == 3
    b = sla.queue_wait(general, ticket_id=ids["B"])
    assert (b.position, b.places, b.free_places, b.expected_wait_seconds) == (1, 1, 0, 300.0)
    await presence(client, world, "agent", "away")
    await settle(world.svc)
    b = sla.queue_wait(general, ticket_id=ids["B"])
    assert b.expected_wait_seconds is None and b.reason == "no agent of this queue is available"


async def test_bad_input_is_refused_clearly(client, world, clock):
    ids = await _line(client, world, clock)
    sla, general = sla_of(world.svc), world.queues["general"]
    with pytest.raises(NotFound, match="no queue 999"):
        sla.queue_wait(999, channel="chat")
    with pytest.raises(NotFound, match="is not waiting in queue"):
        sla.queue_wait(general, ticket_id=ids["A"])  # answered and solved
    with pytest.raises(NotFound, match="is not waiting in queue"):
        sla.queue_wait(world.queues["billing"], ticket_id=ids["B"])
    with pytest.raises(ValidationError, match="unknown channel 'fax'"):
        sla.queue_wait(general, channel="fax")
    with pytest.raises(ValidationError, match="unknown channel 'fax'"):
        sla.queue_line(general, "fax")
    with pytest.raises(NotFound, match="no queue 999"):
        sla.queue_line(999, "chat")
    with pytest.raises(ValidationError, match="is a chat contact"):
        sla.queue_wait(general, ticket_id=ids["B"], channel="voice")
    with pytest.raises(ValidationError, match="give a channel or a ticket"):
        sla.queue_wait(general)
    with pytest.raises(ValidationError, match="queue_id must be an integer"):
        sla.queue_wait("1", channel="chat")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="ticket_id must be an integer"):
        sla.queue_wait(general, ticket_id=True)
