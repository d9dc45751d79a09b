"""``get_ticket`` (statements built once per scope shape) and ``ticket_scope`` admit exactly
the tickets the rules of ``tickets/queries.py`` give, for every kind of viewer, locked or not:
an admin every ticket, a supervisor their team's and their own, an agent their own and the
unassigned ones of their queues."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from contact_center.db import Actor
from contact_center.errors import NotFound
from tickets.actions import ingest
from tickets.actions._common import TICKET
from tickets.actions.tickets import update_ticket
from tickets.contact import InboundContact
from tickets.domain import Channel, Role
from tickets.queries import Viewer, get_ticket, ticket_scope

ADMIN = Viewer(user_id=1, role=Role.ADMIN)


@pytest.fixture
def tickets(services, world):
    """Tickets in every queue, unassigned or with an assignee of either team."""
    db, q, u = services.db, world.queues, world.users
    assignees = [
        None,
        u["agent"]["id"],
        u["agent2"]["id"],
        u["blue_agent"]["id"],
        u["supervisor"]["id"],
    ]
    ids = []
    for n, (queue, assignee) in enumerate((qn, a) for qn in q for a in assignees):
        contact = InboundContact(
            channel=Channel.EMAIL,
            external_id=f"s{n}",
            handle=f"c{n}@example.com",
            body_text="hello",
        )
        tid = db.write_sync(ingest, contact, services.ingest_policy, Actor("test")).ticket_id
        change: dict[str, object] = {"queue_id": q[queue]}
        if assignee is not None:
            change["assignee_id"] = assignee
        row = db.write_sync(update_ticket, ADMIN, tid, change)
        ids.append((tid, row["queue_id"], row["team_id"], row["assignee_id"]))
    return ids


def _by_the_rules(viewer: Viewer, team_id, queue_id, assignee_id) -> bool:
    if viewer.role is Role.ADMIN:
        return True
    if assignee_id == viewer.user_id:
        return True
    if viewer.role is Role.SUPERVISOR:
        return viewer.team_id is not None and team_id == viewer.team_id
    return assignee_id is None and queue_id in viewer.queue_ids


def _viewers(world) -> dict[str, Viewer]:
    u, q = world.users, world.queues
    red = world.teams["red"]
    return {
        "admin": ADMIN,
        "supervisor": Viewer(u["supervisor"]["id"], Role.SUPERVISOR, red),
        "supervisor without a team": Viewer(u["supervisor"]["id"], Role.SUPERVISOR, None),
        "agent of two queues": Viewer(
            u["agent"]["id"], Role.AGENT, red, frozenset({q["general"], q["billing"]})
        ),
        "agent of one queue": Viewer(u["agent2"]["id"], Role.AGENT, red, frozenset({q["general"]})),
        "agent of no queue": Viewer(u["agent2"]["id"], Role.AGENT, red),
        "blue agent": Viewer(
            u["blue_agent"]["id"], Role.AGENT, world.teams["blue"], frozenset({q["tech"]})
        ),
    }


@pytest.mark.parametrize("lock", [False, True])
def test_get_ticket_sees_what_the_scope_admits(services, world, tickets, lock):
    db = services.db
    facts = {tid: (team, queue, assignee) for tid, queue, team, assignee in tickets}
    tickets = list(facts)
    for name, viewer in _viewers(world).items():
        admitted = set(
            db.read_sync(
                lambda c, v=viewer: set(
                    c.execute(sa.select(TICKET.c.id).where(ticket_scope(v))).scalars()
                )
            )
        )

        def found(conn, v=viewer):
            seen = set()
            for tid in tickets:
                try:
                    row = get_ticket(conn, v, tid, lock=lock and conn.dialect.name != "sqlite")
                except NotFound:
                    continue
                assert row.id == tid
                seen.add(tid)
            return seen

        seen = db.write_sync(lambda uow: found(uow.session)) if lock else db.read_sync(found)
        assert seen == admitted & set(tickets), name
        assert seen == {t for t in tickets if _by_the_rules(viewer, *facts[t])}, name
        assert len(seen) > 0 or name == "agent of no queue", name  # the cases are not empty
        assert len(seen) < len(tickets) or name == "admin", name
