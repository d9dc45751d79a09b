"""The ``/customer`` Socket.IO namespace: anonymous (or site-verified) visitors chatting.

A visitor is whoever holds a server-signed visitor token (``channels.chat.tokens``); the server
names the handle, computes every room (``visitor:<handle>``, ``customer:<id>``, ``lang:<tag>``)
and never lets a client name one, so nobody can listen to another visitor's conversation.
Messages go through ``tickets.actions.ingest`` (idempotent by the widget's ``client_id``);
what the desk does comes back from committed events (``channels.chat.live``). Protocol:
``docs/realtime.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import socketio

from channels.chat import store
from channels.chat.live import ChatLive, customer_room, visitor_room
from channels.chat.parse import (
    ALLOWED_TYPES,
    AttachmentForm,
    MessageForm,
    OfflineForm,
    StartForm,
    TranscriptForm,
    browser_language,
    chat_contact,
    check_attachment,
    offline_contact,
    parse_form,
    verified_handle,
)
from channels.chat.tokens import Visitor
from contact_center.clientaddr import client_address
from contact_center.db import Actor
from contact_center.errors import RateLimited, ServiceDeskError, ValidationError
from contact_center.realtime import acked
from tickets.actions import chat as chat_actions
from tickets.actions.ingest import IngestResult, ingest
from tickets.contact import InboundAttachment

__all__ = ["CustomerNamespace", "customer_room", "visitor_room"]

log = logging.getLogger(__name__)
CHAT = Actor("channel:chat")
AGENT_ROOM = "agent:{}"  # agent_console.agent.agent_room (channels do not import the console)


def _refused(err: ServiceDeskError) -> socketio.exceptions.ConnectionRefusedError:
    """``connect_error`` with ``message`` and ``data`` = our error (code, message, fields)."""
    return socketio.exceptions.ConnectionRefusedError(err.message, err.to_dict()["error"])


class CustomerNamespace(ChatLive):
    """Visitors of the chat widget: connect, then requests answered with acks."""

    # -- connect ---------------------------------------------------------------------------------

    def _identify(self, auth: dict[str, Any]) -> tuple[Visitor, bool]:
        """The visitor, and whether it is new (its token must be handed out)."""
        identity = auth.get("identity")
        if identity is not None:
            secret = self.services.settings.chat_identity_secret.reveal()
            return Visitor(verified_handle(secret, identity), verified=True), True
        known = self.tokens.read(auth.get("visitor_token"))
        if known is not None:
            return known, False
        return self.tokens.new_visitor(), True

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        request = environ.get("aiohttp.request")
        peer = getattr(request, "remote", None) or environ.get("REMOTE_ADDR")
        ip = client_address(peer, environ.get("HTTP_X_FORWARDED_FOR"), self.proxies)
        if ip not in self.unlimited and not self.limits.sessions.allow(f"ip:{ip}", self._now()):
            raise _refused(RateLimited("too many connections; try again later"))
        data = auth if isinstance(auth, dict) else {}
        try:
            visitor, _new = self._identify(data)
        except ServiceDeskError as err:
            raise _refused(err) from None
        raw_lang = data.get("lang") if isinstance(data.get("lang"), str) else None
        lang = browser_language(raw_lang or environ.get("HTTP_ACCEPT_LANGUAGE"))
        task = self._abandon.pop(visitor.handle, None)
        if task is not None:
            task.cancel()
        await self.enter_room(sid, visitor_room(visitor.handle))
        await self.enter_room(sid, f"lang:{lang}")
        cid = await self.services.db.read(store.customer_of, visitor.handle)
        if cid is not None:  # rooms before the read: nothing in between is lost (ids dedupe)
            await self.enter_room(sid, customer_room(cid))
        await self.save_session(
            sid, {"visitor": visitor, "ip": ip, "lang": lang, "customer_id": cid}
        )
        after = data.get("last_message_id")
        after = after if isinstance(after, int) and after > 0 else 0
        conv = await self.services.db.read(store.conversation, cid, after)
        line = None
        if conv["ticket"] is not None:
            facts = await self._facts(int(conv["ticket"]["id"]), fresh=True)
            line = await self._visitor_line(facts)
        await self.emit(
            "welcome",
            {
                "visitor_token": self.tokens.issue(visitor),
                "visitor_id": visitor.handle,
                "verified": visitor.verified,
                "lang": lang,
                "status": await self.status(lang),
                "resync": after > 0,
                "queue": line,
                "limits": {
                    "attachment_max_bytes": self.services.settings.chat_attachment_max_bytes,
                    "attachment_types": sorted(ALLOWED_TYPES),
                },
                **conv,
            },
            to=sid,
        )

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        """The visitor's last socket went away while waiting: abandon after the grace period."""
        with contextlib.suppress(KeyError):
            session = await self.get_session(sid)
            visitor: Visitor = session["visitor"]
            cid = session.get("customer_id")
            if cid is None or visitor.handle in self._abandon:
                return
            self._abandon[visitor.handle] = asyncio.create_task(
                self._abandon_later(visitor.handle, int(cid)), name="chat-abandon"
            )

    async def _abandon_later(self, handle: str, customer_id: int) -> None:
        try:
            await asyncio.sleep(self.services.settings.chat_abandon_seconds)
            if self._local(visitor_room(handle)):
                return
            conv = await self.services.db.read(store.conversation, customer_id, with_messages=False)
            ticket = conv["ticket"]
            if ticket is not None and ticket["waiting"]:
                await self.services.db.write(
                    chat_actions.customer_left, int(ticket["id"]), customer_id, only_if_waiting=True
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("chat abandon check failed")
        finally:
            if self._abandon.get(handle) is asyncio.current_task():
                del self._abandon[handle]

    # -- requests (each answers with an ack) -----------------------------------------------------

    async def _session(self, sid: str) -> dict[str, Any]:
        session: dict[str, Any] = await self.get_session(sid)
        return session

    def _limit(self, limiter_name: str, key: str) -> None:
        limiter = getattr(self.limits, limiter_name)
        if not limiter.allow(key, self._now()):
            raise RateLimited("too many requests; slow down")

    def _limit_address(self, session: dict[str, Any]) -> None:
        """New chats, offline messages and transcripts: a few a minute per client address."""
        if session["ip"] not in self.unlimited:
            self._limit("forms", f"ip:{session['ip']}")

    async def _ingest(
        self,
        sid: str,
        client_id: str,
        body: str,
        *,
        name: str = "",
        files: tuple[InboundAttachment, ...] = (),
    ) -> tuple[IngestResult, dict[str, Any]]:
        session = await self._session(sid)
        visitor: Visitor = session["visitor"]
        self._limit("messages", visitor.handle)
        av = await self.availability(session["lang"])
        contact = chat_contact(
            visitor.handle,
            client_id,
            body,
            queue=av.queue_name,
            name=name,
            language=session["lang"],
            attachments=files,
        )
        svc = self.services
        result = await svc.db.write(ingest, contact, svc.ingest_policy, CHAT)
        svc.metrics.contacts.labels("chat", "duplicate" if result.duplicate else "stored").inc()
        if session.get("customer_id") != result.customer_id:
            session["customer_id"] = result.customer_id
            await self.save_session(sid, session)
            for other, _ in list(
                self.server.manager.get_participants(self.namespace, visitor_room(visitor.handle))
            ):
                await self.enter_room(other, customer_room(result.customer_id))
        facts = await self._facts(result.ticket_id, fresh=result.created_ticket)
        if result.created_ticket and facts is not None and facts.queue_id is not None:
            self._mark(facts.queue_id)
        message = await svc.db.read(store.visitor_message_of, result.message_id)
        return result, {
            "ticket_id": result.ticket_id,
            "message": message,
            "duplicate": result.duplicate,
        }

    async def on_start(self, sid: str, data: Any = None) -> dict[str, Any]:
        """The pre-chat form and the first message: ``{name, email?, body, client_id, lang?}``."""

        async def run() -> dict[str, Any]:
            form = parse_form(StartForm, data)
            session = await self._session(sid)
            self._limit_address(session)
            if form.lang:
                session["lang"] = browser_language(form.lang)
                await self.save_session(sid, session)
            result, out = await self._ingest(sid, form.client_id, form.body, name=form.name)
            if result.created_ticket:
                await self.services.db.write(
                    chat_actions.record_prechat,
                    result.ticket_id,
                    result.customer_id,
                    form.name,
                    form.email,
                )
            return out

        return await acked(run())

    async def on_message(self, sid: str, data: Any = None) -> dict[str, Any]:
        """``{client_id, body}``: the same ``client_id`` again stores nothing new."""

        async def run() -> dict[str, Any]:
            form = parse_form(MessageForm, data)
            return (await self._ingest(sid, form.client_id, form.body))[1]

        return await acked(run())

    async def on_attachment(self, sid: str, data: Any = None) -> dict[str, Any]:
        """``{client_id, filename, content_type, data: <binary>}`` within the size/type limits."""

        async def run() -> dict[str, Any]:
            form = parse_form(AttachmentForm, data)
            limit = self.services.settings.chat_attachment_max_bytes
            file = check_attachment(form, limit)
            return (await self._ingest(sid, form.client_id, "", files=(file,)))[1]

        return await acked(run())

    async def _current(self, sid: str) -> tuple[dict[str, Any], store.TicketFacts]:
        session = await self._session(sid)
        cid = session.get("customer_id")
        conv = await self.services.db.read(store.conversation, cid, with_messages=False)
        if conv["ticket"] is None:
            raise ValidationError("no open conversation", fields={"ticket": "none open"})
        facts = await self._facts(int(conv["ticket"]["id"]), fresh=True)
        assert facts is not None
        return session, facts

    async def on_typing(self, sid: str, data: Any = None) -> dict[str, Any]:
        """``{typing: bool}``: told to the agent of the conversation (not stored)."""

        async def run() -> dict[str, Any]:
            session = await self._session(sid)
            typing = bool(data.get("typing")) if isinstance(data, dict) else False
            if not self.limits.typing.allow(session["visitor"].handle, self._now()):
                return {"sent": False}
            ticket_id = session.get("ticket_id")
            facts = await self._facts(int(ticket_id)) if ticket_id else None
            if facts is None or facts.status not in store.OPEN:
                _, facts = await self._current(sid)
                session["ticket_id"] = facts.id
                await self.save_session(sid, session)
            if facts.assignee_id is None:
                return {"sent": False}
            await self.server.emit(
                "typing",
                {"ticket_id": facts.id, "typing": typing},
                namespace="/agent",
                room=AGENT_ROOM.format(facts.assignee_id),
            )
            return {"sent": True}

        return await acked(run())

    async def on_read(self, sid: str, data: Any = None) -> dict[str, Any]:
        """``{message_id}``: the visitor has seen the agent's messages up to this one."""

        async def run() -> dict[str, Any]:
            raw = data.get("message_id") if isinstance(data, dict) else None
            if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
                raise ValidationError("message_id required", fields={"message_id": "required"})
            session, facts = await self._current(sid)
            moved = await self.services.db.write(
                chat_actions.mark_read, facts.id, raw, customer_id=session["customer_id"]
            )
            return {"moved": moved}

        return await acked(run())

    async def on_leave(self, sid: str, data: Any = None) -> dict[str, Any]:
        """The visitor ends the chat; unanswered, that is an abandon."""

        async def run() -> dict[str, Any]:
            session, facts = await self._current(sid)
            outcome = await self.services.db.write(
                chat_actions.customer_left, facts.id, session["customer_id"]
            )
            return {"ticket_id": facts.id, "outcome": outcome}

        return await acked(run())

    async def on_transcript(self, sid: str, data: Any = None) -> dict[str, Any]:
        """``{email}``: the conversation so far by email (at most 3 per conversation)."""

        async def run() -> dict[str, Any]:
            form = parse_form(TranscriptForm, data)
            session = await self._session(sid)
            self._limit_address(session)
            conv = await self.services.db.read(store.conversation, session.get("customer_id"))
            ticket_id = (conv["ticket"] or {}).get("id") or next(
                (m["ticket_id"] for m in reversed(conv["messages"])), None
            )
            if ticket_id is None:
                raise ValidationError("nothing to send yet", fields={"ticket": "none"})
            email = form.email.lower()
            number = await self.services.db.write(
                chat_actions.record_transcript,
                int(ticket_id),
                session["customer_id"],
                email,
                session["lang"],
            )
            await self.services.jobs.enqueue(
                "send_chat_transcript", int(ticket_id), email, session["lang"], number
            )
            return {"ticket_id": ticket_id}

        return await acked(run())

    async def on_offline(self, sid: str, data: Any = None) -> dict[str, Any]:
        """The offline form: ``{name, email, body, client_id}`` becomes an email ticket."""

        async def run() -> dict[str, Any]:
            form = parse_form(OfflineForm, data)
            session = await self._session(sid)
            self._limit_address(session)
            av = await self.availability(session["lang"])
            contact = offline_contact(session["visitor"].handle, form, queue=av.queue_name)
            svc = self.services
            result = await svc.db.write(ingest, contact, svc.ingest_policy, CHAT)
            svc.metrics.contacts.labels(
                "email", "duplicate" if result.duplicate else "stored"
            ).inc()
            return {"ticket_id": result.ticket_id, "duplicate": result.duplicate}

        return await acked(run())

    async def on_status(self, sid: str, data: Any = None) -> dict[str, Any]:
        """Whether a chat can be answered now, and the visitor's place in line."""

        async def run() -> dict[str, Any]:
            session = await self._session(sid)
            out: dict[str, Any] = {"status": await self.status(session["lang"]), "queue": None}
            with contextlib.suppress(ValidationError):
                _, facts = await self._current(sid)
                out["queue"] = await self._visitor_line(facts)
            return out

        return await acked(run())

    async def on_sync(self, sid: str, data: Any = None) -> dict[str, Any]:
        """``{last_message_id}``: what the widget missed (messages after it, ticket, marks)."""

        async def run() -> dict[str, Any]:
            session = await self._session(sid)
            after = data.get("last_message_id") if isinstance(data, dict) else 0
            after = after if isinstance(after, int) and after > 0 else 0
            return dict(
                await self.services.db.read(store.conversation, session.get("customer_id"), after)
            )

        return await acked(run())
