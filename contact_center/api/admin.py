"""Administration: users, teams, queues, SLA policies, audit log (admins only)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

import pydantic
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy import Connection

from contact_center.api.common import actor, path_id, services
from contact_center.keys import Services
from contact_center.web import (
    ADMIN,
    Registry,
    StrictModel,
    json_response,
    parse_body,
    parse_query,
    patch_model,
)
from tickets.actions import admin as admin_actions
from tickets.actions._common import AUDIT, QUEUE, QUEUE_MEMBER, SLA, TEAM, USER

__all__ = ["routes"]

routes = Registry()

RoleName = Literal["agent", "supervisor", "admin"]
SkillName = Annotated[str, pydantic.StringConstraints(pattern=r"^[a-z0-9_:.-]{1,40}$")]
Level = Annotated[int, pydantic.Field(ge=1, le=5)]
Skills = dict[SkillName, Level]
ChannelName = Literal["email", "chat", "sms", "whatsapp", "voice", "api"]
Capacity = dict[ChannelName, Annotated[int, pydantic.Field(ge=0, le=100)]]
E164 = Annotated[str, pydantic.StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]
"""A phone number in E.164 (an agent's: calls are put through to it)."""


class UserCreate(StrictModel):
    """A new user."""

    email: str = pydantic.Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str = pydantic.Field(min_length=1, max_length=200)
    password: str = pydantic.Field(min_length=10, max_length=1024)
    role: RoleName = "agent"
    team_id: int | None = None
    skills: Skills = {}
    capacity: Capacity = {}
    language: Literal["en", "zh"] = "en"
    phone: E164 | None = None
    queue_ids: list[int] = []


class UserChange(StrictModel):
    """Changes to a user; a new password, role or deactivation logs them out everywhere."""

    name: str | None = pydantic.Field(default=None, min_length=1, max_length=200)
    password: str | None = pydantic.Field(default=None, min_length=10, max_length=1024)
    role: RoleName | None = None
    team_id: int | None = None
    skills: Skills | None = None
    capacity: Capacity | None = None
    language: Literal["en", "zh"] | None = None
    phone: E164 | None = None
    active: bool | None = None
    queue_ids: list[int] | None = None


class TeamCreate(StrictModel):
    """A new team."""

    name: str = pydantic.Field(min_length=1, max_length=120)


class RelaxStepBody(StrictModel):
    """After ``after_seconds`` of waiting: cap levels, drop skills, or accept anyone."""

    after_seconds: float = pydantic.Field(ge=0, le=7 * 86400)
    max_level: Level | None = None
    drop: list[SkillName] = pydantic.Field(default=[], max_length=20)
    drop_all: bool = False
    keep_language: bool = False


class QueueCreate(StrictModel):
    """A new queue."""

    name: str = pydantic.Field(min_length=1, max_length=120, pattern=r"^[a-z0-9_-]+$")
    team_id: int | None = None
    required_skills: Skills = {}
    default_priority: int = pydantic.Field(default=2, ge=0, le=4)
    sla_policy_id: int | None = None
    live_sla_policy_id: int | None = pydantic.Field(
        default=None, description="policy of chat and voice tickets; null: sla_policy_id"
    )
    routing_strategy: Literal["longest_idle", "best_skill"] = "longest_idle"
    routing_score: Literal["sum", "max"] = pydantic.Field(
        default="sum", description="best_skill: sum or max of the required skills' levels"
    )
    relaxation: list[RelaxStepBody] = pydantic.Field(default=[], max_length=10)


class SlaCreate(StrictModel):
    """A new SLA policy; targets in seconds, null = not tracked."""

    name: str = pydantic.Field(min_length=1, max_length=120)
    answer_seconds: int | None = pydantic.Field(default=20, ge=1)
    first_response_seconds: int | None = pydantic.Field(default=86400, ge=1)
    next_response_seconds: int | None = pydantic.Field(default=None, ge=1)
    resolution_seconds: int | None = pydantic.Field(default=None, ge=1)
    warn_percent: int = pydantic.Field(default=80, ge=1, le=99)
    pause_while_pending: bool = True


# PATCH bodies: a field added to a create model above is patchable with no other change
TeamChange = patch_model(TeamCreate, "A team's new name.")
QueueChange = patch_model(QueueCreate, "Changes to a queue; absent fields stay as they are.")
SlaChange = patch_model(SlaCreate, "Changes to an SLA policy; null stops tracking a target.")


class AuditQuery(StrictModel):
    """Audit log filters."""

    action: str | None = pydantic.Field(default=None, max_length=60)
    actor_user_id: int | None = None
    before: int | None = None
    limit: int = pydantic.Field(default=100, ge=1, le=500)


def _list_users(session: Connection) -> list[dict[str, Any]]:
    members: dict[int, list[int]] = {}
    for qid, uid in session.execute(sa.select(QUEUE_MEMBER.c.queue_id, QUEUE_MEMBER.c.user_id)):
        members.setdefault(uid, []).append(qid)
    rows = session.execute(sa.select(USER).order_by(USER.c.id)).all()
    return [admin_actions.user_public(r, sorted(members.get(r.id, []))) for r in rows]


def _rows(session: Connection, table: sa.Table) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in session.execute(sa.select(table).order_by(table.c.id))]


async def _catalog_changed(svc: Services) -> None:
    """Queues, teams or policies changed: forget this process's cached copies of them."""
    svc.ingest_policy.lookups.clear()  # other processes re-read within its TTL (5 s)
    if svc.sla is not None:
        await svc.sla.refresh_catalog()  # other processes: at their next sweep


async def _change(
    request: web.Request, model: type[StrictModel], action: Callable[..., dict[str, Any]]
) -> web.StreamResponse:
    body = await parse_body(request, model)
    svc = services(request)
    changes = body.model_dump(exclude_unset=True)
    row = await svc.db.write(action, actor(request), path_id(request), changes)
    await _catalog_changed(svc)
    return json_response(row)


async def _remove(
    request: web.Request, action: Callable[..., dict[str, Any]]
) -> web.StreamResponse:
    svc = services(request)
    row = await svc.db.write(action, actor(request), path_id(request))
    await _catalog_changed(svc)
    return json_response(row)


def _audit(session: Connection, q: AuditQuery) -> list[dict[str, Any]]:
    stmt = sa.select(AUDIT)
    if q.action:
        stmt = stmt.where(AUDIT.c.action == q.action)
    if q.actor_user_id is not None:
        stmt = stmt.where(AUDIT.c.actor_user_id == q.actor_user_id)
    if q.before is not None:
        stmt = stmt.where(AUDIT.c.id < q.before)
    out = []
    for r in session.execute(stmt.order_by(AUDIT.c.id.desc()).limit(q.limit)):
        item = dict(r._mapping)
        created = item["created_at"]
        item["created_at"] = created.isoformat() if isinstance(created, datetime) else created
        out.append(item)
    return out


@routes.route("GET", "/api/v1/users", roles=ADMIN, summary="List users", tag="admin")
async def list_users(request: web.Request) -> web.StreamResponse:
    """Every user, without secrets."""
    return json_response({"items": await services(request).db.read(_list_users)})


@routes.route("POST", "/api/v1/users", roles=ADMIN, summary="Create a user", tag="admin",
              body=UserCreate)  # fmt: skip
async def create_user(request: web.Request) -> web.StreamResponse:
    """The password is hashed here and never stored or logged in clear."""
    body = await parse_body(request, UserCreate)
    svc = services(request)
    values = body.model_dump(exclude={"password", "queue_ids"})
    values["password_hash"] = svc.passwords.hash(body.password)
    user = await svc.db.write(admin_actions.create_user, actor(request), values, body.queue_ids)
    return json_response(user, status=201)


@routes.route("PATCH", "/api/v1/users/{id}", roles=ADMIN, summary="Change a user", tag="admin",
              body=UserChange)  # fmt: skip
async def update_user(request: web.Request) -> web.StreamResponse:
    """Role, team, skills, capacity, queues, password, active."""
    body = await parse_body(request, UserChange)
    svc = services(request)
    changes = body.model_dump(exclude_unset=True)
    password = changes.pop("password", None)
    if password is not None:
        changes["password_hash"] = svc.passwords.hash(password)
    user_id = path_id(request)
    user = await svc.db.write(admin_actions.update_user, actor(request), user_id, changes)
    svc.users.drop(user_id)
    return json_response(user)


@routes.route("GET", "/api/v1/teams", roles=ADMIN, summary="List teams", tag="admin")
async def list_teams(request: web.Request) -> web.StreamResponse:
    """All teams."""
    return json_response({"items": await services(request).db.read(_rows, TEAM)})


@routes.route("POST", "/api/v1/teams", roles=ADMIN, summary="Create a team", tag="admin",
              body=TeamCreate)  # fmt: skip
async def create_team(request: web.Request) -> web.StreamResponse:
    """A new team."""
    body = await parse_body(request, TeamCreate)
    team = await services(request).db.write(admin_actions.create_team, actor(request), body.name)
    return json_response(team, status=201)


@routes.route("PATCH", "/api/v1/teams/{id}", roles=ADMIN, summary="Rename a team", tag="admin",
              body=TeamChange)  # fmt: skip
async def update_team(request: web.Request) -> web.StreamResponse:
    """A new, unique name."""
    return await _change(request, TeamChange, admin_actions.update_team)


@routes.route("DELETE", "/api/v1/teams/{id}", roles=ADMIN, summary="Delete an unused team",
              tag="admin")  # fmt: skip
async def delete_team(request: web.Request) -> web.StreamResponse:
    """409 while any user, queue or ticket belongs to the team."""
    return await _remove(request, admin_actions.delete_team)


@routes.route("GET", "/api/v1/queues", roles=ADMIN, summary="List queues", tag="admin")
async def list_queues(request: web.Request) -> web.StreamResponse:
    """All queues."""
    return json_response({"items": await services(request).db.read(_rows, QUEUE)})


@routes.route("POST", "/api/v1/queues", roles=ADMIN, summary="Create a queue", tag="admin",
              body=QueueCreate)  # fmt: skip
async def create_queue(request: web.Request) -> web.StreamResponse:
    """A new queue."""
    body = await parse_body(request, QueueCreate)
    svc = services(request)
    queue = await svc.db.write(admin_actions.create_queue, actor(request), body.model_dump())
    await _catalog_changed(svc)
    return json_response(queue, status=201)


@routes.route("PATCH", "/api/v1/queues/{id}", roles=ADMIN, summary="Change a queue", tag="admin",
              body=QueueChange)  # fmt: skip
async def update_queue(request: web.Request) -> web.StreamResponse:
    """Name, team, skills, priority, policies: new tickets follow at once; an open ticket keeps
    its team and policy until a queue or priority change re-matches it."""
    return await _change(request, QueueChange, admin_actions.update_queue)


@routes.route("DELETE", "/api/v1/queues/{id}", roles=ADMIN, summary="Delete an unused queue",
              tag="admin")  # fmt: skip
async def delete_queue(request: web.Request) -> web.StreamResponse:
    """409 while any ticket is in the queue or any agent is a member."""
    return await _remove(request, admin_actions.delete_queue)


@routes.route("GET", "/api/v1/sla-policies", roles=ADMIN, summary="List SLA policies",
              tag="admin")  # fmt: skip
async def list_sla(request: web.Request) -> web.StreamResponse:
    """All SLA policies."""
    return json_response({"items": await services(request).db.read(_rows, SLA)})


@routes.route("POST", "/api/v1/sla-policies", roles=ADMIN, summary="Create an SLA policy",
              tag="admin", body=SlaCreate)  # fmt: skip
async def create_sla(request: web.Request) -> web.StreamResponse:
    """A new SLA policy."""
    body = await parse_body(request, SlaCreate)
    svc = services(request)
    policy = await svc.db.write(admin_actions.create_sla_policy, actor(request), body.model_dump())
    await _catalog_changed(svc)
    return json_response(policy, status=201)


@routes.route("PATCH", "/api/v1/sla-policies/{id}", roles=ADMIN, summary="Change an SLA policy",
              tag="admin", body=SlaChange)  # fmt: skip
async def update_sla(request: web.Request) -> web.StreamResponse:
    """Targets, warning, pausing: new tickets at once, open ones when their deadlines are
    next computed (a status, queue or priority change, a restart of the SLA service)."""
    return await _change(request, SlaChange, admin_actions.update_sla_policy)


@routes.route("DELETE", "/api/v1/sla-policies/{id}", roles=ADMIN,
              summary="Delete an unused SLA policy", tag="admin")  # fmt: skip
async def delete_sla(request: web.Request) -> web.StreamResponse:
    """409 while any queue or ticket uses the policy."""
    return await _remove(request, admin_actions.delete_sla_policy)


@routes.route("GET", "/api/v1/audit", roles=ADMIN, summary="Read the audit log (newest first)",
              tag="admin", query=AuditQuery)  # fmt: skip
async def audit(request: web.Request) -> web.StreamResponse:
    """Read-only: no route edits or deletes audit rows."""
    q = parse_query(request, AuditQuery)
    return json_response({"items": await services(request).db.read(_audit, q)})
