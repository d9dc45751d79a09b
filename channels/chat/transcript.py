"""The transcript email of a chat: built from the stored messages (no notes), in the
visitor's language, and sent by the ``send_chat_transcript`` job through the email sender."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Connection

from channels.base import OutboundMessage
from contact_center.errors import NotFound
from tickets.actions._common import ATTACHMENT, MESSAGE, TICKET, USER
from tickets.domain import Direction

__all__ = ["TEXT", "format_transcript", "transcript_message"]

TEXT = {
    "en": {
        "subject": "Transcript of your chat (#{n})",
        "you": "You",
        "agent": "Agent",
        "intro": "Here is the conversation you asked for.",
        "file": "file",
    },
    "zh-CN": {
        "subject": "您的聊天记录（#{n}）",
        "you": "您",
        "agent": "客服",
        "intro": "以下是您要求的聊天记录。",
        "file": "文件",
    },
}

# Transcript Message-IDs must not collide with a real message's: numbers above every id.
_ID_BASE = 1 << 40


def format_transcript(lines: list[tuple[str, str, str, list[str]]], language: str) -> str:
    """Plain text: one block per message ``(time, speaker, body, file names)``."""
    t = TEXT.get(language, TEXT["en"])
    out = [t["intro"], ""]
    for at, who, body, files in lines:
        out.append(f"[{at}] {who}:")
        out.extend("  " + line for line in (body or "").splitlines() or [""])
        out.extend(f"  ({t['file']}: {name})" for name in files)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def transcript_message(
    session: Connection, ticket_id: int, email: str, language: str, number: int
) -> OutboundMessage:
    """The email carrying the transcript of ``ticket_id`` to ``email``."""
    ticket = session.execute(sa.select(TICKET.c.id).where(TICKET.c.id == ticket_id)).first()
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} not found")
    t = TEXT.get(language, TEXT["en"])
    rows = session.execute(
        sa.select(
            MESSAGE.c.id,
            MESSAGE.c.direction,
            MESSAGE.c.body_text,
            MESSAGE.c.created_at,
            USER.c.name,
        )
        .select_from(MESSAGE.outerjoin(USER, USER.c.id == MESSAGE.c.author_user_id))
        .where(
            MESSAGE.c.ticket_id == ticket_id,
            MESSAGE.c.direction.in_([Direction.IN.value, Direction.OUT.value]),
            MESSAGE.c.channel == "chat",
        )
        .order_by(MESSAGE.c.id)
    ).all()
    files: dict[int, list[str]] = {}
    for mid, name in session.execute(
        sa.select(ATTACHMENT.c.message_id, ATTACHMENT.c.filename)
        .where(ATTACHMENT.c.message_id.in_([r.id for r in rows]))
        .order_by(ATTACHMENT.c.id)
    ):
        files.setdefault(mid, []).append(name)
    lines = []
    for r in rows:
        who = (
            t["you"]
            if r.direction == Direction.IN.value
            else (str(r.name or "").split(" ", 1)[0] or t["agent"])
        )
        lines.append(
            (r.created_at.strftime("%Y-%m-%d %H:%M UTC"), who, r.body_text, files.get(r.id, []))
        )
    return OutboundMessage(
        message_id=_ID_BASE + ticket_id * 10 + number,
        ticket_id=ticket_id,
        channel="email",
        to_handle=email,
        body_text=format_transcript(lines, language),
        subject=t["subject"].format(n=ticket_id),
    )
