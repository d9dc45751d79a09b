"""The ``/agent`` namespace's conversation side: messages, typing, read marks, chat replies.

Mixed into :class:`agent_console.agent.AgentNamespace`. The assignee of a ticket hears
``message`` for every message stored on it (customer, agent, note), ``read`` when the visitor
read up to a message, ``customer.left`` when the visitor ended the chat, and ``typing`` while
the visitor types. The console answers chats with ``reply`` (idempotent by ``client_id``),
and sends ``typing`` and ``read`` for the visitor; email and SMS replies use the REST API.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from contact_center.db import EventRecord
from contact_center.errors import ValidationError
from contact_center.realtime import acked
from tickets.actions import chat as chat_actions
from tickets.actions import messages as msg_actions
from tickets.actions._common import TICKET
from tickets.domain import Channel
from tickets.queries import get_ticket

if TYPE_CHECKING:
    from contact_center.auth import AuthUser
    from contact_center.keys import Services

__all__ = ["Conversations", "customer_room"]

_CLIENT_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def customer_room(customer_id: int) -> str:
    """The ``/customer`` room of a customer's sockets (``channels.chat.namespace``)."""
    return f"customer:{customer_id}"


def _positive(data: Any, key: str) -> int:
    raw = data.get(key) if isinstance(data, dict) else None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
        raise ValidationError(f"{key} (a positive integer) is required", fields={key: "required"})
    return raw


def _assignee_of(session: sa.Connection, ticket_id: int) -> tuple[int | None, int | None]:
    row = session.execute(
        sa.select(TICKET.c.assignee_id, TICKET.c.customer_id).where(TICKET.c.id == ticket_id)
    ).first()
    return (None, None) if row is None else (row.assignee_id, row.customer_id)


class Conversations:
    """Requests and events about the messages of an agent's tickets."""

    services: Services
    server: Any
    # provided by AgentNamespace / AuthedNamespace (declarations only: no attributes here)
    user: Callable[[str], Awaitable[AuthUser]]
    _to_agent: Callable[[Any, str, EventRecord, Any], Awaitable[None]]

    def _init_conversations(self) -> None:
        # ticket id -> (assignee id, customer id), learnt from ticket events; misses read the DB
        self._owners: OrderedDict[int, tuple[int | None, int | None]] = OrderedDict()

    def learn_owner(self, p: dict[str, Any]) -> None:
        """Remember a ticket's assignee from an event's ticket summary."""
        if "id" in p and "customer_id" in p:
            self._owners[int(p["id"])] = (p.get("assignee_id"), int(p["customer_id"]))
            self._owners.move_to_end(int(p["id"]))
            while len(self._owners) > 20_000:
                self._owners.popitem(last=False)

    async def _owner(self, ticket_id: int) -> tuple[int | None, int | None]:
        hit = self._owners.get(ticket_id)
        if hit is None:
            hit = await self.services.db.read(_assignee_of, ticket_id)
            self._owners[ticket_id] = hit
        return hit

    async def conversation_event(self, ev: EventRecord) -> None:
        """``message``, ``read`` and ``customer.left`` for the assignee of the ticket."""
        if ev.ticket_id is None:
            return
        assignee, _ = await self._owner(ev.ticket_id)
        if assignee is None:
            return
        p = ev.payload
        if ev.type == "message.created":
            await self._to_agent(assignee, "message", ev, {"message": p})
        elif ev.type == "chat.read" and p.get("by") == "customer":
            await self._to_agent(
                assignee, "read", ev, {"ticket_id": ev.ticket_id, "message_id": p["message_id"]}
            )
        elif ev.type == "chat.left":
            await self._to_agent(
                assignee,
                "customer.left",
                ev,
                {"ticket_id": ev.ticket_id, "abandoned": bool(p.get("abandoned"))},
            )

    async def _own_chat(self, sid: str, data: Any) -> tuple[Any, Any]:
        user = await self.user(sid)
        ticket = await self.services.db.read(get_ticket, user.viewer, _positive(data, "ticket_id"))
        if ticket.channel != Channel.CHAT.value:
            raise ValidationError(
                "not a chat: reply with POST /api/v1/tickets/{id}/replies",
                fields={"ticket_id": "not a chat ticket"},
            )
        return user, ticket

    async def on_reply(self, sid: str, data: Any = None) -> dict[str, Any]:
        """``{ticket_id, body, client_id}`` on a chat ticket: stored once, pushed to the visitor."""

        async def run() -> dict[str, Any]:
            user, ticket = await self._own_chat(sid, data)
            body = data.get("body") if isinstance(data, dict) else None
            client_id = data.get("client_id") if isinstance(data, dict) else None
            if not isinstance(body, str) or not body.strip() or len(body) > 10_000:
                raise ValidationError(
                    "body (1-10000 characters) required", fields={"body": "required"}
                )
            if not (
                isinstance(client_id, str)
                and 8 <= len(client_id) <= 64
                and set(client_id) <= _CLIENT_ID_CHARS
            ):
                raise ValidationError(
                    "client_id (8-64 of A-Z a-z 0-9 _ -) required", fields={"client_id": "required"}
                )
            svc = self.services
            result = await svc.db.write(
                msg_actions.post_message,
                user.viewer,
                ticket.id,
                body,
                client_key=f"agent-{user.id}:{client_id}",
            )
            if result.needs_delivery:
                await svc.jobs.enqueue("deliver_message", result.message_id)
            return {"message_id": result.message_id, "ticket_id": ticket.id}

        return await acked(run())

    async def on_typing(self, sid: str, data: Any = None) -> dict[str, Any]:
        """``{ticket_id, typing}``: shown to the visitor of an own chat (not stored)."""

        async def run() -> dict[str, Any]:
            user, ticket = await self._own_chat(sid, data)
            if ticket.assignee_id != user.id:
                raise ValidationError("not your conversation", fields={"ticket_id": "not yours"})
            typing = bool(data.get("typing")) if isinstance(data, dict) else False
            await self.server.emit(
                "typing",
                {"ticket_id": ticket.id, "typing": typing},
                namespace="/customer",
                room=customer_room(ticket.customer_id),
            )
            return {"sent": True}

        return await acked(run())

    async def on_read(self, sid: str, data: Any = None) -> dict[str, Any]:
        """``{ticket_id, message_id}``: the agent has seen the chat up to this message."""

        async def run() -> dict[str, Any]:
            user, ticket = await self._own_chat(sid, data)
            moved = await self.services.db.write(
                chat_actions.mark_read, ticket.id, _positive(data, "message_id"), viewer=user.viewer
            )
            return {"moved": moved}

        return await acked(run())
