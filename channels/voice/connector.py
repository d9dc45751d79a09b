"""Puts a waiting call through to the agent the router (or a supervisor) gave its ticket.

It listens for ``ticket.assigned`` on voice tickets. The database decides who acts: the call
row goes ``queued`` → ``connecting`` by compare-and-set, so with several web processes only
one redirects the call. The redirect is a REST update of the live call with TwiML that dials
the agent (:func:`channels.voice.client.connect_twiml`); Twilio errors that may pass are
retried twice, and a call that cannot be redirected goes back to the queue with its ticket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from channels.sms.client import TwilioRest
from channels.sms.config import TwilioConfig
from channels.voice.calls import claim_connect, mark_connected, requeue_call
from channels.voice.client import connect_twiml
from channels.voice.parse import prompts_for
from contact_center.db import Database, EventRecord
from contact_center.errors import ChannelError

__all__ = ["CallConnector", "call_query"]

log = logging.getLogger("channels.voice")


def call_query(ticket_id: int, language: str | None) -> str:
    """The query our voice URLs carry (Twilio signs it with the URL)."""
    return f"?t={ticket_id}&lang={prompts_for(language).say.split('-')[0]}"


class CallConnector:
    """Bus subscriber: connects queued calls to their new assignee."""

    def __init__(
        self,
        db: Database,
        rest: TwilioRest,
        config: TwilioConfig,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        backoff: Sequence[float] = (0.5, 2.0),
    ) -> None:
        self.db = db
        self.rest = rest
        self.config = config
        self._sleep = sleep
        self._backoff = tuple(backoff)
        self._tasks: set[asyncio.Task[str]] = set()
        self.outcomes: dict[int, str] = {}  # ticket -> what the last attempt came to

    async def on_event(self, ev: EventRecord) -> None:
        """Start connecting when a voice ticket gets an assignee (never blocks the bus)."""
        p = ev.payload
        if ev.type != "ticket.assigned" or p.get("channel") != "voice":
            return
        if ev.ticket_id is None or p.get("assignee_id") is None:
            return
        task = asyncio.create_task(self.connect(ev.ticket_id, int(p["assignee_id"])),
                                   name=f"voice-connect:{ev.ticket_id}")  # fmt: skip
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def connect(self, ticket_id: int, agent_id: int) -> str:
        """Redirect the ticket's queued call to the agent; what happened."""
        claimed = await self.db.write(claim_connect, ticket_id, agent_id)
        if claimed is None:
            return self._done(ticket_id, "not waiting")
        call, line = claimed
        dial_url = self.config.url(
            "/webhooks/twilio/voice/dial" + call_query(ticket_id, call.language)
        )
        xml = connect_twiml(prompts_for(call.language), line, dial_url)
        error: ChannelError | None = None
        for attempt in range(len(self._backoff) + 1):
            try:
                await asyncio.to_thread(self.rest.update_call, call.call_sid, xml)
            except ChannelError as err:
                error = err
                if not err.retryable or attempt == len(self._backoff):
                    break
                await self._sleep(self._backoff[attempt])
            else:
                await self.db.write(mark_connected, call.call_sid)
                return self._done(ticket_id, "connected")
        log.error("call of ticket %d not put through to agent %d: %s", ticket_id, agent_id,
                  error)  # fmt: skip
        await self.db.write(requeue_call, call.call_sid, f"redirect failed: {error}")
        return self._done(ticket_id, "requeued")

    def _done(self, ticket_id: int, outcome: str) -> str:
        self.outcomes[ticket_id] = outcome
        return outcome

    async def drain(self) -> None:
        """Wait for every connection in progress (tests; shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        """Cancel what is still running."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
