"""Admin changes to teams, queues and SLA policies: PATCH and DELETE, validated, audited, and
refused with a clear 409 while something still uses the row (nothing is changed then)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from contact_center.api.admin import QueueChange, QueueCreate, SlaChange, SlaCreate
from tests.conftest import World, sql
from tests.web._helpers import error_code, new_ticket, nxt
from tickets.actions._common import TICKET


async def _call(client: Any, world: World, method: str, path: str, body: Any = None) -> Any:
    resp = await client.request(method, path, json=body, headers=world.auth("admin"))
    return resp.status, await resp.json()


async def _make(client: Any, world: World, kind: str, **values: Any) -> dict[str, Any]:
    status, body = await _call(client, world, "POST", f"/api/v1/{kind}",
                               {"name": f"adm-{nxt()}", **values})  # fmt: skip
    assert status == 201, body
    return dict(body)


async def _listed(client: Any, world: World, kind: str, row_id: int) -> dict[str, Any] | None:
    status, body = await _call(client, world, "GET", f"/api/v1/{kind}")
    assert status == 200
    return next((r for r in body["items"] if r["id"] == row_id), None)


def _audit(world: World, action: str, target_id: int) -> list[Any]:
    return sql(world.svc.db, "SELECT actor_user_id, detail FROM auditlog WHERE action = :a "
                             "AND target_id = :t ORDER BY id", a=action, t=target_id)  # fmt: skip


def _detail(row: Any) -> Any:
    return json.loads(row.detail) if isinstance(row.detail, str) else row.detail


async def test_team_rename_is_audited_and_a_taken_name_is_a_409(client, world):
    team = await _make(client, world, "teams")
    status, body = await _call(client, world, "PATCH", f"/api/v1/teams/{team['id']}",
                               {"name": "Renamed"})  # fmt: skip
    assert (status, body) == (200, {"id": team["id"], "name": "Renamed"})
    (row,) = _audit(world, "team.update", team["id"])
    assert row.actor_user_id == world.users["admin"]["id"]
    assert _detail(row) == {"changes": {"name": [team["name"], "Renamed"]}}

    status, body = await _call(client, world, "PATCH", f"/api/v1/teams/{team['id']}",
                               {"name": "red"})  # fmt: skip
    assert status == 409 and "already has this name" in body["error"]["message"]
    assert (await _listed(client, world, "teams", team["id"]))["name"] == "Renamed"
    assert len(_audit(world, "team.update", team["id"])) == 1  # the refusal changed nothing


async def test_bad_patch_bodies_are_400_with_the_field_named(client, world):
    queue = await _make(client, world, "queues")
    path = f"/api/v1/queues/{queue['id']}"
    before = await _listed(client, world, "queues", queue["id"])
    cases = [
        ({"colour": "red"}, "colour"),  # unknown field
        ({"name": None}, "name"),  # a name cannot be removed
        ({"name": "Not A Slug"}, "name"),
        ({"default_priority": 9}, "default_priority"),
        ({"required_skills": {"billing": 6}}, "required_skills.billing"),
        ({"sla_policy_id": 999999}, "sla_policy_id"),
        ({"live_sla_policy_id": 999999}, "live_sla_policy_id"),
        ({"team_id": 999999}, "team_id"),
        ({}, "body"),  # nothing to change
    ]
    for body, field in cases:
        status, answer = await _call(client, world, "PATCH", path, body)
        assert status == 400, (body, answer)
        assert error_code(answer) == "invalid_request"
        assert field in answer["error"]["fields"], (body, answer)
    status, answer = await _call(client, world, "PATCH", "/api/v1/sla-policies/1",
                                 {"warn_percent": None})  # fmt: skip
    assert status == 400 and "warn_percent" in answer["error"]["fields"]
    assert await _listed(client, world, "queues", queue["id"]) == before
    assert _audit(world, "queue.update", queue["id"]) == []
    for kind in ("teams", "queues", "sla-policies"):
        status, answer = await _call(client, world, "PATCH", f"/api/v1/{kind}/999999",
                                     {"name": "ghost"})  # fmt: skip
        assert status == 404 and error_code(answer) == "not_found", kind
        status, answer = await _call(client, world, "DELETE", f"/api/v1/{kind}/999999")
        assert status == 404 and error_code(answer) == "not_found", kind


async def test_queue_patch_changes_the_policy_new_tickets_get_at_once(client, world, clock):
    live = await _make(client, world, "sla-policies", answer_seconds=15,
                       first_response_seconds=None)  # fmt: skip
    status, queue = await _call(client, world, "PATCH", f"/api/v1/queues/{world.queues['tech']}",
                                {"live_sla_policy_id": live["id"],
                                 "required_skills": {"technical": 2}})  # fmt: skip
    assert status == 200, queue
    assert queue["live_sla_policy_id"] == live["id"] and queue["required_skills"] == {
        "technical": 2}  # fmt: skip
    (row,) = _audit(world, "queue.update", world.queues["tech"])
    assert _detail(row) == {"changes": {"live_sla_policy_id": [None, live["id"]],
                                        "required_skills": [{}, {"technical": 2}]}}  # fmt: skip
    chat = await new_ticket(client, world, queue="tech", channel="chat", handle="visitor-adm1")
    email = await new_ticket(client, world, queue="tech", channel="email")
    rows = world.svc.db.read_sync(lambda s: {r.id: r for r in s.execute(sa.select(TICKET))})
    assert rows[chat["ticket_id"]].sla_policy_id == live["id"]
    assert rows[chat["ticket_id"]].answer_due_at == clock.now + timedelta(seconds=15)
    assert rows[chat["ticket_id"]].required_skills == {"technical": 2}
    assert rows[email["ticket_id"]].sla_policy_id != live["id"]  # async: the queue's default


async def test_sla_policy_patch_and_null_stops_tracking(client, world):
    policy = await _make(client, world, "sla-policies")
    status, body = await _call(client, world, "PATCH", f"/api/v1/sla-policies/{policy['id']}",
                               {"answer_seconds": 30, "resolution_seconds": None,
                                "first_response_seconds": None})  # fmt: skip
    assert status == 200, body
    assert (body["answer_seconds"], body["first_response_seconds"]) == (30, None)
    (row,) = _audit(world, "sla_policy.update", policy["id"])
    assert _detail(row) == {"changes": {"answer_seconds": [20, 30],
                                        "first_response_seconds": [86400, None]}}  # fmt: skip


async def test_deleting_what_is_in_use_is_a_409_naming_the_users(client, world):
    red, general = world.teams["red"], world.queues["general"]
    status, body = await _call(client, world, "DELETE", f"/api/v1/teams/{red}")
    assert status == 409 and error_code(body) == "conflict"
    message = body["error"]["message"]
    assert message == "team 1 is still in use by 3 users, 2 queues; move or remove them first"
    await new_ticket(client, world, queue="general")
    status, body = await _call(client, world, "DELETE", f"/api/v1/queues/{general}")
    assert status == 409
    assert "1 ticket," in body["error"]["message"] and "member agents" in body["error"]["message"]
    status, body = await _call(client, world, "DELETE", "/api/v1/sla-policies/1")
    assert status == 409 and "queues" in body["error"]["message"]
    # a queue whose only tie is a member agent is refused too
    lone = await _make(client, world, "queues")
    status, _ = await _call(client, world, "PATCH", f"/api/v1/users/{world.users['agent2']['id']}",
                            {"queue_ids": [general, lone["id"]]})  # fmt: skip
    assert status == 200
    status, body = await _call(client, world, "DELETE", f"/api/v1/queues/{lone['id']}")
    assert status == 409 and "by 1 member agent;" in body["error"]["message"]
    # nothing was deleted, nothing audited as deleted
    assert await _listed(client, world, "teams", red) is not None
    assert await _listed(client, world, "queues", general) is not None
    assert await _listed(client, world, "sla-policies", 1) is not None
    assert (
        sql(world.svc.db, "SELECT count(*) FROM auditlog WHERE action LIKE '%.delete'")[0][0] == 0
    )


async def test_unused_rows_are_deleted_and_audited(client, world):
    team = await _make(client, world, "teams")
    policy = await _make(client, world, "sla-policies")
    queue = await _make(client, world, "queues", team_id=team["id"], sla_policy_id=policy["id"])
    status, _ = await _call(client, world, "DELETE", f"/api/v1/teams/{team['id']}")
    assert status == 409  # the queue still belongs to it
    for kind, row in (("queues", queue), ("teams", team), ("sla-policies", policy)):
        status, body = await _call(client, world, "DELETE", f"/api/v1/{kind}/{row['id']}")
        assert status == 200, (kind, body)
        assert body["id"] == row["id"] and body["name"] == row["name"]
        assert await _listed(client, world, kind, row["id"]) is None
        action = {"queues": "queue", "teams": "team", "sla-policies": "sla_policy"}[kind]
        (audit,) = _audit(world, f"{action}.delete", row["id"])
        assert _detail(audit) == {"name": row["name"]}
        status, _ = await _call(client, world, "DELETE", f"/api/v1/{kind}/{row['id']}")
        assert status == 404  # deleting twice: gone


def test_every_create_field_is_patchable():
    # the routing fields (and any later one) need one line in QueueCreate, nothing more
    assert QueueChange.model_fields.keys() == QueueCreate.model_fields.keys()
    assert SlaChange.model_fields.keys() == SlaCreate.model_fields.keys()
    assert not any(f.is_required() for f in QueueChange.model_fields.values())
