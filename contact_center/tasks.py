"""The registered background jobs (thin shells over actions)."""

from __future__ import annotations

import logging
import time

from channels.base import OutboundMessage
from contact_center.errors import ChannelError, ChannelUnavailable
from contact_center.jobs import JobContext, job
from tickets.actions import messages as msg_actions

__all__ = ["deliver_message", "deliver_webhook", "send_chat_transcript"]

log = logging.getLogger(__name__)


@job("deliver_message", retries=4, intervals=(5, 30, 120, 600))
def deliver_message(ctx: JobContext, message_id: int) -> str:
    """Send an outbound message through its channel; idempotent (final states are kept)."""
    out: OutboundMessage | None = ctx.db.write_sync(
        msg_actions.begin_delivery, message_id, ctx.blobs
    )
    if out is None:
        return "skipped"
    sender = ctx.senders.get(out.channel)
    try:
        if sender is None:
            raise ChannelUnavailable(f"channel {out.channel!r} is not configured for sending")
        result = sender.send(out)
    except ChannelError as err:
        final = ctx.final_attempt or not err.retryable
        ctx.db.write_sync(
            msg_actions.record_delivery, message_id, None, "failed" if final else "queued", str(err)
        )
        if final:
            log.error("message %d not delivered: %s", message_id, err.code)
            return "failed"
        raise
    ctx.db.write_sync(msg_actions.record_delivery, message_id, result.external_id, result.status)
    return str(result.status)


@job("fetch_twilio_media", retries=3, intervals=(5, 30, 120))
def fetch_twilio_media(
    ctx: JobContext, message_id: int, media: list[list[str]], stem: str = "media"
) -> str:
    """Download the files of an inbound MMS/WhatsApp message or a voicemail into it."""
    from channels.sms.media import fetch_into_message

    return fetch_into_message(ctx, message_id, media, stem)


@job("deliver_webhook", retries=0, intervals=())
def deliver_webhook(ctx: JobContext, delivery_id: int) -> str:
    """One attempt at one outbox row (the outbox schedules retries, not the job queue).

    The attempt's time budget starts before the claim, and the claim's lease is that budget
    plus a margin, so the row is never sent by two workers at once.
    """
    from contact_center.webhooks import outbox
    from contact_center.webhooks.delivery import post_event
    from contact_center.webhooks.ssrf import TargetGuard

    timeout = ctx.settings.webhook_timeout_seconds
    started = time.monotonic()
    claim = ctx.db.write_sync(outbox.claim_delivery, delivery_id, outbox.lease_for(timeout))
    if claim is None:
        return "skipped"
    guard = ctx.webhook_guard or TargetGuard.from_config(ctx.settings.webhook_allow_cidrs)
    attempt = post_event(claim, now=ctx.db.clock(), timeout=timeout, guard=guard, started=started)
    return ctx.db.write_sync(
        outbox.record_result,
        delivery_id,
        claim.attempt,
        attempt.status_code,
        attempt.response,
        attempt.error,
        attempt.retry_after,
    )


@job("send_chat_transcript", retries=4, intervals=(5, 30, 120, 600))
def send_chat_transcript(
    ctx: JobContext, ticket_id: int, email: str, language: str, number: int
) -> str:
    """Email a chat's transcript (requested by the visitor) through the email sender.

    At least once: a worker killed after the send may send it again on the retry.
    """
    from channels.chat.transcript import transcript_message

    out = ctx.db.read_sync(transcript_message, ticket_id, email, language, number)
    sender = ctx.senders.get("email")
    try:
        if sender is None:
            raise ChannelUnavailable("no email sender is configured (CC_SMTP_HOST)")
        sender.send(out)
    except ChannelError as err:
        if ctx.final_attempt or not err.retryable:
            log.error("transcript of ticket %d not sent: %s", ticket_id, err.code)
            return "failed"
        raise
    return "sent"
