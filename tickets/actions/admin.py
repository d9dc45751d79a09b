"""Administration: users, teams, queues, SLA policies (admins only, checked by the caller)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from contact_center.db import Actor, UnitOfWork
from contact_center.errors import Conflict, NotFound, ValidationError
from tickets.actions._common import QUEUE, QUEUE_MEMBER, SLA, TEAM, TICKET, USER
from tickets.domain import DEFAULT_CAPACITY, Presence, Role

__all__ = [
    "USER_FIELDS",
    "create_queue",
    "create_sla_policy",
    "create_team",
    "create_user",
    "delete_queue",
    "delete_sla_policy",
    "delete_team",
    "set_presence",
    "update_queue",
    "update_sla_policy",
    "update_team",
    "update_user",
    "user_public",
]

USER_FIELDS = ("id", "email", "name", "role", "team_id", "skills", "capacity", "presence",
               "language", "phone", "active")  # fmt: skip
# what a user change records as [old, new] in the audit log (never secrets)
_AUDITED_USER_VALUES = ("name", "role", "team_id", "active", "skills", "capacity", "language",
                        "phone")  # fmt: skip


def user_public(row: Any, queue_ids: list[int] | None = None) -> dict[str, Any]:
    """A user without secrets."""
    out = {f: getattr(row, f) for f in USER_FIELDS}
    out["capacity"] = {**DEFAULT_CAPACITY, **(row.capacity or {})}
    if queue_ids is not None:
        out["queue_ids"] = queue_ids
    return out


def _insert(uow: UnitOfWork, table: sa.Table, values: dict[str, Any], what: str) -> int:
    try:
        with uow.session.begin_nested():
            return int(
                uow.session.execute(
                    sa.insert(table).values(**values).returning(table.c.id)
                ).scalar_one()
            )
    except IntegrityError:
        raise Conflict(f"{what} already exists") from None


def _check_refs(uow: UnitOfWork, team_id: int | None, queue_ids: list[int] | None) -> None:
    if (
        team_id is not None
        and uow.session.execute(sa.select(TEAM.c.id).where(TEAM.c.id == team_id)).first() is None
    ):
        raise ValidationError("no such team", fields={"team_id": "unknown"})
    if queue_ids:
        known = set(
            uow.session.execute(sa.select(QUEUE.c.id).where(QUEUE.c.id.in_(queue_ids))).scalars()
        )
        missing = sorted(set(queue_ids) - known)
        if missing:
            raise ValidationError("no such queue", fields={"queue_ids": f"unknown: {missing}"})


def _set_queues(uow: UnitOfWork, user_id: int, queue_ids: list[int]) -> None:
    uow.session.execute(sa.delete(QUEUE_MEMBER).where(QUEUE_MEMBER.c.user_id == user_id))
    if queue_ids:
        uow.session.execute(
            sa.insert(QUEUE_MEMBER), [{"queue_id": q, "user_id": user_id} for q in set(queue_ids)]
        )


def create_user(
    uow: UnitOfWork, actor: Actor, values: dict[str, Any], queue_ids: list[int] | None = None
) -> dict[str, Any]:
    """Create a user; ``values`` has a ``password_hash`` already (never a password)."""
    _check_refs(uow, values.get("team_id"), queue_ids)
    Role(values.get("role", "agent"))
    values = {"skills": {}, "capacity": {}, **values, "email": values["email"].strip().lower()}
    values.setdefault("created_at", uow.now)
    user_id = _insert(uow, USER, values, "a user with this email")
    if queue_ids:
        _set_queues(uow, user_id, queue_ids)
    row = uow.session.execute(sa.select(USER).where(USER.c.id == user_id)).one()
    public = user_public(row, sorted(set(queue_ids or [])))
    uow.emit("user.created", public)
    uow.audit(actor, "user.create", "user", user_id, {"role": row.role, "email": row.email})
    return public


def update_user(
    uow: UnitOfWork, actor: Actor, user_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    """Change a user; role, password or deactivation bumps the token version (logs them out).

    The audit row names the fields and holds ``changes``: ``{field: [old, new]}`` for each
    value that really changed (role, team, active, skills, capacity, name, language, queues).
    """
    row = uow.session.execute(sa.select(USER).where(USER.c.id == user_id)).first()
    if row is None:
        raise NotFound("no such user")
    before = {k: getattr(row, k) for k in _AUDITED_USER_VALUES}
    old_queues = _queue_ids(uow, user_id)
    changes = dict(changes)
    queue_ids = changes.pop("queue_ids", None)
    _check_refs(uow, changes.get("team_id"), queue_ids)
    if "role" in changes:
        Role(changes["role"])
    revoke = any(k in changes for k in ("role", "password_hash")) or changes.get("active") is False
    if revoke:
        changes["token_version"] = row.token_version + 1
    if changes:
        uow.session.execute(sa.update(USER).where(USER.c.id == user_id).values(**changes))
    if queue_ids is not None:
        _set_queues(uow, user_id, queue_ids)
    row = uow.session.execute(sa.select(USER).where(USER.c.id == user_id)).one()
    qids = _queue_ids(uow, user_id)
    public = user_public(row, qids)
    uow.emit("user.updated", {**public, "revoked": revoke})
    audited = sorted(k for k in changes if k != "password_hash")
    if "password_hash" in changes:
        audited.append("password")
    if queue_ids is not None:
        audited.append("queue_ids")
    diff = {k: [before[k], getattr(row, k)] for k in _AUDITED_USER_VALUES
            if k in changes and before[k] != getattr(row, k)}  # fmt: skip
    if qids != old_queues:
        diff["queue_ids"] = [old_queues, qids]
    uow.audit(actor, "user.update", "user", user_id, {"fields": audited, "changes": diff})
    return public


def _queue_ids(uow: UnitOfWork, user_id: int) -> list[int]:
    return sorted(
        uow.session.execute(
            sa.select(QUEUE_MEMBER.c.queue_id).where(QUEUE_MEMBER.c.user_id == user_id)
        ).scalars()
    )


def set_presence(uow: UnitOfWork, user_id: int, presence: str) -> None:
    """An agent's own presence change."""
    Presence(presence)
    team_id = uow.session.execute(
        sa.update(USER).where(USER.c.id == user_id).values(presence=presence)
        .returning(USER.c.team_id)
    ).scalar()  # fmt: skip
    uow.emit("agent.presence", {"id": user_id, "presence": presence, "team_id": team_id})
    uow.audit(Actor("user", user_id), "user.presence", "user", user_id, {"presence": presence})


# catalog tables: how messages name them, and the audit target type
_WHAT = {TEAM.name: "team", QUEUE.name: "queue", SLA.name: "SLA policy"}
_AUDIT_KIND = {TEAM.name: "team", QUEUE.name: "queue", SLA.name: "sla_policy"}


def _found(uow: UnitOfWork, table: sa.Table, row_id: int, what: str) -> Any:
    row = uow.session.execute(sa.select(table).where(table.c.id == row_id)).first()
    if row is None:
        raise NotFound(f"no such {what}")
    return row


def _update(
    uow: UnitOfWork, actor: Actor, table: sa.Table, row_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    """Change one row of a named catalog table (team, queue, policy); audits old and new."""
    what = _WHAT[table.name]
    if not changes:
        raise ValidationError("nothing to change", fields={"body": "give at least one field"})
    old = dict(_found(uow, table, row_id, what)._mapping)
    try:
        with uow.session.begin_nested():
            uow.session.execute(sa.update(table).where(table.c.id == row_id).values(**changes))
    except IntegrityError:
        if "name" in changes:
            raise Conflict(f"another {what} already has this name") from None
        raise Conflict(f"the {what} changed meanwhile; read it again") from None  # lost a race
    new = dict(_found(uow, table, row_id, what)._mapping)
    diff = {k: [old[k], new[k]] for k in sorted(changes) if old[k] != new[k]}
    uow.emit(f"{_AUDIT_KIND[table.name]}.updated", {**new, "changed": sorted(diff)})
    uow.audit(actor, f"{_AUDIT_KIND[table.name]}.update", _AUDIT_KIND[table.name], row_id,
              {"changes": diff})  # fmt: skip
    return new


def _delete(
    uow: UnitOfWork,
    actor: Actor,
    table: sa.Table,
    row_id: int,
    users: list[tuple[str, sa.ColumnElement[bool]]],
) -> dict[str, Any]:
    """Delete one catalog row, or refuse (409) naming what still uses it."""
    what = _WHAT[table.name]
    row = dict(_found(uow, table, row_id, what)._mapping)
    held = []
    for label, uses in users:
        n = int(uow.session.execute(sa.select(sa.func.count()).where(uses)).scalar_one())
        if n:
            held.append(f"{n} {label if n > 1 else label.removesuffix('s')}")
    if held:
        raise Conflict(f"{what} {row_id} is still in use by {', '.join(held)}; "
                       "move or remove them first")  # fmt: skip
    try:
        with uow.session.begin_nested():
            uow.session.execute(sa.delete(table).where(table.c.id == row_id))
    except IntegrityError:  # something started using it after the counts (a lost race)
        raise Conflict(f"{what} {row_id} is still in use; move or remove that first") from None
    uow.emit(f"{_AUDIT_KIND[table.name]}.deleted", {"id": row_id, "name": row["name"]})
    uow.audit(actor, f"{_AUDIT_KIND[table.name]}.delete", _AUDIT_KIND[table.name], row_id,
              {"name": row["name"]})  # fmt: skip
    return row


def create_team(uow: UnitOfWork, actor: Actor, name: str) -> dict[str, Any]:
    """A new team."""
    team_id = _insert(uow, TEAM, {"name": name}, "a team with this name")
    uow.audit(actor, "team.create", "team", team_id, {"name": name})
    return {"id": team_id, "name": name}


def update_team(
    uow: UnitOfWork, actor: Actor, team_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    """Rename a team."""
    return _update(uow, actor, TEAM, team_id, changes)


def delete_team(uow: UnitOfWork, actor: Actor, team_id: int) -> dict[str, Any]:
    """Delete a team nobody, no queue and no ticket belongs to (else 409)."""
    return _delete(uow, actor, TEAM, team_id, [
        ("users", USER.c.team_id == team_id),
        ("queues", QUEUE.c.team_id == team_id),
        ("tickets", TICKET.c.team_id == team_id),
    ])  # fmt: skip


_QUEUE_POLICIES = ("sla_policy_id", "live_sla_policy_id")


def _check_queue_refs(uow: UnitOfWork, values: dict[str, Any]) -> None:
    _check_refs(uow, values.get("team_id"), None)
    for key in _QUEUE_POLICIES:
        if values.get(key) is None:
            continue
        found = uow.session.execute(sa.select(SLA.c.id).where(SLA.c.id == values[key])).first()
        if found is None:
            raise ValidationError("no such SLA policy", fields={key: "unknown"})


def create_queue(uow: UnitOfWork, actor: Actor, values: dict[str, Any]) -> dict[str, Any]:
    """A new queue."""
    _check_queue_refs(uow, values)
    values = {"required_skills": {}, **values}
    queue_id = _insert(uow, QUEUE, values, "a queue with this name")
    uow.emit("queue.created", {"id": queue_id, **values})
    uow.audit(actor, "queue.create", "queue", queue_id, {"name": values["name"]})
    return {"id": queue_id, **values}


def update_queue(
    uow: UnitOfWork, actor: Actor, queue_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    """Change any of a queue's columns (the caller validated the names and values)."""
    _check_queue_refs(uow, changes)
    return _update(uow, actor, QUEUE, queue_id, changes)


def delete_queue(uow: UnitOfWork, actor: Actor, queue_id: int) -> dict[str, Any]:
    """Delete a queue without tickets or member agents (else 409)."""
    return _delete(uow, actor, QUEUE, queue_id, [
        ("tickets", TICKET.c.queue_id == queue_id),
        ("member agents", QUEUE_MEMBER.c.queue_id == queue_id),
    ])  # fmt: skip


def create_sla_policy(uow: UnitOfWork, actor: Actor, values: dict[str, Any]) -> dict[str, Any]:
    """A new SLA policy."""
    policy_id = _insert(uow, SLA, values, "an SLA policy with this name")
    uow.audit(actor, "sla_policy.create", "sla_policy", policy_id, {"name": values["name"]})
    return {"id": policy_id, **values}


def update_sla_policy(
    uow: UnitOfWork, actor: Actor, policy_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    """Change a policy's targets (they apply wherever its deadlines are computed next)."""
    return _update(uow, actor, SLA, policy_id, changes)


def delete_sla_policy(uow: UnitOfWork, actor: Actor, policy_id: int) -> dict[str, Any]:
    """Delete a policy no queue and no ticket uses (else 409)."""
    return _delete(uow, actor, SLA, policy_id, [
        ("queues", sa.or_(*(QUEUE.c[k] == policy_id for k in _QUEUE_POLICIES))),
        ("tickets", TICKET.c.sla_policy_id == policy_id),
    ])  # fmt: skip
