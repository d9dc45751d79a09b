"""Pure parsing for the web chat: visitor requests, language, identity, attachments.

Nothing here does I/O: each function takes the request's data (and a secret where one is
needed) and returns our own types or raises :class:`contact_center.errors.ValidationError`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from typing import Annotated, Any, TypeVar

import pydantic

from contact_center.errors import PayloadTooLarge, ValidationError
from tickets.contact import InboundAttachment, InboundContact
from tickets.domain import Channel, HandleKind

__all__ = [
    "ALLOWED_TYPES",
    "MAX_BODY",
    "AttachmentForm",
    "MessageForm",
    "OfflineForm",
    "StartForm",
    "TranscriptForm",
    "browser_language",
    "chat_contact",
    "check_attachment",
    "external_id",
    "identity_handle",
    "identity_hash",
    "offline_contact",
    "parse_form",
    "verified_handle",
]

MAX_BODY = 5000
"""Characters in one chat message (longer ones are refused, not cut)."""

ALLOWED_TYPES: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "application/pdf": (b"%PDF-",),
    "text/plain": (),
}
"""Attachment types a visitor may send, with the leading bytes each must start with.

No HTML, SVG or scripts: the file must be what it claims (``text/plain`` must be UTF-8 text)."""

_CLIENT_ID = r"^[A-Za-z0-9_-]{8,64}$"
_SITE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_EMAIL = r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\"]+$"

Text = Annotated[str, pydantic.StringConstraints(strip_whitespace=True)]


class _Form(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", str_max_length=MAX_BODY)


class MessageForm(_Form):
    """A chat message: ``client_id`` is the widget's id for it (resending it stores it once)."""

    client_id: str = pydantic.Field(pattern=_CLIENT_ID)
    body: Text = pydantic.Field(min_length=1, max_length=MAX_BODY)


class StartForm(MessageForm):
    """The pre-chat form with the first message: a name, optionally an email address."""

    name: Text = pydantic.Field(min_length=1, max_length=100)
    email: Text | None = pydantic.Field(default=None, max_length=254)
    lang: str | None = pydantic.Field(default=None, max_length=35)

    @pydantic.field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not re.match(_EMAIL, value):
            raise ValueError("not an email address")
        return value.lower()


class OfflineForm(StartForm):
    """The offline message form: like the pre-chat form, but the email address is required."""

    email: Text = pydantic.Field(max_length=254)


class TranscriptForm(_Form):
    """Where to send the transcript of the current conversation."""

    email: Text = pydantic.Field(max_length=254, pattern=_EMAIL)


class AttachmentForm(_Form):
    """A file: its name, claimed type and bytes (a binary Socket.IO attachment)."""

    client_id: str = pydantic.Field(pattern=_CLIENT_ID)
    filename: Text = pydantic.Field(min_length=1, max_length=255)
    content_type: str = pydantic.Field(max_length=100)
    data: bytes = pydantic.Field(repr=False)

    model_config = pydantic.ConfigDict(extra="forbid")


F = TypeVar("F", bound=pydantic.BaseModel)


def parse_form(model: type[F], data: Any) -> F:
    """Validate a socket payload; field errors name the field, like the REST API's."""
    if not isinstance(data, dict):
        raise ValidationError("expected an object", fields={"body": "expected an object"})
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as err:
        fields = {".".join(str(p) for p in e["loc"]) or "body": e["msg"] for e in err.errors()}
        raise ValidationError("invalid request", fields=fields) from None


def browser_language(tag: str | None) -> str:
    """``zh-CN`` for any Chinese tag (``zh``, ``zh-Hans``, ``zh-CN,zh;q=0.9``...), else ``en``.

    Takes a ``navigator.language`` value or an ``Accept-Language`` header (first entry wins).
    """
    first = (tag or "").split(",", 1)[0].split(";", 1)[0].strip().lower()
    return "zh-CN" if first == "zh" or first.startswith("zh-") else "en"


def external_id(handle: str, client_id: str) -> str:
    """The message's dedupe key: the visitor and the widget's own id for the message."""
    return f"{handle}:{client_id}"


def identity_hash(secret: str, customer_id: str) -> str:
    """What the host site computes on its server: hex HMAC-SHA256 of its customer id."""
    return hmac.new(secret.encode(), customer_id.encode(), hashlib.sha256).hexdigest()


def identity_handle(customer_id: str) -> str:
    """The chat handle of a verified site customer (the same on every device)."""
    if _SITE_ID.match(customer_id):
        return f"id:{customer_id}"
    return "idh:" + hashlib.sha256(customer_id.encode()).hexdigest()[:40]


def verified_handle(secret: str, identity: Any) -> str:
    """The handle of ``{"customer_id", "hash"}`` when the hash verifies, else ValidationError.

    With no secret configured, verified identity is off and every claim is refused.
    """
    if not isinstance(identity, dict):
        raise ValidationError("identity must be an object", fields={"identity": "object"})
    cid, given = identity.get("customer_id"), identity.get("hash")
    if not isinstance(cid, str) or not 1 <= len(cid) <= 200 or not isinstance(given, str):
        raise ValidationError("identity needs customer_id and hash", fields={"identity": "shape"})
    if not secret:
        raise ValidationError("verified identity is not enabled", fields={"identity": "off"})
    if not hmac.compare_digest(identity_hash(secret, cid), given.strip().lower()):
        raise ValidationError("identity does not verify", fields={"identity": "bad hash"})
    return identity_handle(cid)


def _safe_filename(name: str) -> str:
    base = re.split(r"[\\/]", name)[-1]
    cleaned = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip(" .")
    return (cleaned or "file")[:120]


def check_attachment(form: AttachmentForm, max_bytes: int) -> InboundAttachment:
    """The file if its size, declared type and content agree with our limits."""
    kind = form.content_type.strip().lower()
    if kind not in ALLOWED_TYPES:
        allowed = ", ".join(sorted(ALLOWED_TYPES))
        raise ValidationError("file type not allowed", fields={"content_type": allowed})
    if not form.data:
        raise ValidationError("empty file", fields={"data": "empty"})
    if len(form.data) > max_bytes:
        raise PayloadTooLarge(
            f"files may have at most {max_bytes} bytes",
            fields={"data": f"at most {max_bytes} bytes"},
        )
    magic = ALLOWED_TYPES[kind]
    if magic and not any(form.data.startswith(m) for m in magic):
        raise ValidationError("the file is not what its type says", fields={"data": "mismatch"})
    if kind == "image/webp" and form.data[8:12] != b"WEBP":
        raise ValidationError("the file is not what its type says", fields={"data": "mismatch"})
    if kind == "text/plain":
        try:
            form.data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError(
                "text files must be UTF-8", fields={"data": "not UTF-8"}
            ) from None
    return InboundAttachment(_safe_filename(form.filename), kind, form.data)


def chat_contact(
    handle: str,
    client_id: str,
    body: str,
    *,
    queue: str | None,
    name: str = "",
    language: str | None = None,
    attachments: tuple[InboundAttachment, ...] = (),
) -> InboundContact:
    """One visitor message as the contact every channel produces."""
    return InboundContact(
        channel=Channel.CHAT,
        external_id=external_id(handle, client_id),
        handle=handle,
        handle_kind=HandleKind.CHAT,
        body_text=body,
        customer_name=name,
        language=language,
        queue=queue,
        attachments=attachments,
    )


def offline_contact(handle: str, form: OfflineForm, *, queue: str | None) -> InboundContact:
    """An offline message: an email-channel ticket, so the answer goes out by email."""
    assert form.email is not None  # the form requires it
    return InboundContact(
        channel=Channel.EMAIL,
        external_id=f"chat-offline:{external_id(handle, form.client_id)}",
        handle=form.email,
        handle_kind=HandleKind.EMAIL,
        subject=form.body.split("\n", 1)[0][:120],
        body_text=form.body,
        customer_name=form.name,
        language=browser_language(form.lang),
        queue=queue,
        metadata={"via": "chat-offline", "visitor": handle},
    )
