"""Customer changes: merge two records of one person."""

from __future__ import annotations

import sqlalchemy as sa

from contact_center.db import Actor, UnitOfWork
from contact_center.errors import NotFound, ValidationError
from tickets.actions._common import CUSTOMER, HANDLE, MESSAGE, TICKET

__all__ = ["merge_customers"]


def merge_customers(uow: UnitOfWork, actor: Actor, keep_id: int, merge_id: int) -> int:
    """Move every handle, ticket and message of ``merge_id`` to ``keep_id``; returns keep_id."""
    if keep_id == merge_id:
        raise ValidationError("cannot merge a customer into itself", fields={"merge_id": "same"})
    rows = uow.session.execute(
        sa.select(CUSTOMER.c.id, CUSTOMER.c.merged_into_id)
        .where(CUSTOMER.c.id.in_([keep_id, merge_id]))
        .with_for_update()
    ).all()
    found = {r.id: r for r in rows}
    if keep_id not in found or merge_id not in found:
        raise NotFound("no such customer")
    if found[keep_id].merged_into_id is not None or found[merge_id].merged_into_id is not None:
        raise ValidationError("customer was merged already", fields={"merge_id": "merged"})
    moved = len(
        uow.session.execute(
            sa.update(TICKET)
            .where(TICKET.c.customer_id == merge_id)
            .values(customer_id=keep_id)
            .returning(TICKET.c.id)
        ).all()
    )
    uow.session.execute(
        sa.update(HANDLE).where(HANDLE.c.customer_id == merge_id).values(customer_id=keep_id)
    )
    uow.session.execute(
        sa.update(MESSAGE)
        .where(MESSAGE.c.author_customer_id == merge_id)
        .values(author_customer_id=keep_id)
    )
    uow.session.execute(
        sa.update(CUSTOMER).where(CUSTOMER.c.id == merge_id).values(merged_into_id=keep_id)
    )
    uow.emit("customer.merged", {"id": keep_id, "merged_id": merge_id, "tickets_moved": moved})
    uow.audit(actor, "customer.merge", "customer", keep_id, {"merged_id": merge_id})
    return keep_id
