"""The ``fetch_twilio_media`` job's work: download an inbound message's files into it.

The webhook stores the message at once and leaves the downloads to this job (Twilio wants an
answer within 15 s, and nothing slow runs before it). Files larger than
``CC_ATTACHMENT_MAX_BYTES`` are not stored; the message text names them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from channels.sms.client import TwilioRest
from channels.sms.config import TwilioConfig
from channels.sms.store import attach_media

if TYPE_CHECKING:
    from contact_center.jobs import JobContext

__all__ = ["fetch_into_message"]


def fetch_into_message(
    ctx: JobContext, message_id: int, media: Sequence[Sequence[str]], stem: str = "media"
) -> str:
    """Download ``media`` ([url, content type] pairs) and attach it to message ``message_id``."""
    config = TwilioConfig.from_settings(ctx.settings)
    if config is None:
        return "skipped"
    rest = TwilioRest(config)
    items = [(str(url), str(kind)) for url, kind in media]
    files = asyncio.run(rest.fetch_media(items, config.media_max_bytes))
    ids = ctx.db.write_sync(attach_media, message_id, files, ctx.blobs, stem)
    return f"{len(ids)} stored, {len(files) - len(ids)} dropped"
