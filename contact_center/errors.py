"""One error hierarchy with stable codes, rendered as JSON by one middleware.

::

    ServiceDeskError (500, internal)
      ├─ ValidationError      400  invalid_request   (field errors in ``fields``)
      ├─ Unauthorized         401  unauthorized
      ├─ Forbidden            403  forbidden
      ├─ NotFound             404  not_found
      ├─ Conflict             409  conflict
      ├─ PayloadTooLarge      413  payload_too_large
      ├─ RateLimited          429  rate_limited
      ├─ BackupError          500  backup_invalid    (backup/restore refused or unverifiable)
      ├─ Unavailable          503  unavailable       (retryable: not served by this process now)
      └─ ChannelError         502  channel_error
           ├─ ChannelUnavailable  503  channel_unavailable (retryable; also a ConnectionError)
           ├─ ChannelAuthFailed   502  channel_auth_failed (not retryable)
           └─ PayloadRejected     403  payload_rejected (bad or unsigned webhook)

The body is always ``{"error": {"code": ..., "message": ..., "fields"?: {...}}}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "BackupError",
    "ChannelAuthFailed",
    "ChannelError",
    "ChannelUnavailable",
    "Conflict",
    "Forbidden",
    "NotFound",
    "PayloadRejected",
    "PayloadTooLarge",
    "RateLimited",
    "ServiceDeskError",
    "Unauthorized",
    "Unavailable",
    "ValidationError",
]


class ServiceDeskError(Exception):
    """Base of every error we raise on purpose."""

    code: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body (also used for Socket.IO acks)."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return {"error": body}


class ValidationError(ServiceDeskError):
    """The request is malformed or a field is invalid."""

    code = "invalid_request"
    http_status = 400


class Unauthorized(ServiceDeskError):
    """No valid credentials."""

    code = "unauthorized"
    http_status = 401


class Forbidden(ServiceDeskError):
    """Authenticated, but the role may not do this."""

    code = "forbidden"
    http_status = 403


class NotFound(ServiceDeskError):
    """Absent, or outside the caller's scope (never tells which)."""

    code = "not_found"
    http_status = 404


class Conflict(ServiceDeskError):
    """State changed under the caller (duplicate, lost race)."""

    code = "conflict"
    http_status = 409


class PayloadTooLarge(ServiceDeskError):
    """Body or attachment above the configured limit."""

    code = "payload_too_large"
    http_status = 413


class RateLimited(ServiceDeskError):
    """Too many requests; try later."""

    code = "rate_limited"
    http_status = 429


class BackupError(ServiceDeskError):
    """A backup could not be made, or an archive or restore failed verification."""

    code = "backup_invalid"


class Unavailable(ServiceDeskError):
    """This process does not serve this now (a standby leader's wallboard); ask another."""

    code = "unavailable"
    http_status = 503
    retryable = True


class ChannelError(ServiceDeskError):
    """A channel (email, SMS, voice, ...) failed."""

    code = "channel_error"
    http_status = 502


class ChannelUnavailable(ChannelError, ConnectionError):
    """The channel's server cannot be reached now; retry later."""

    code = "channel_unavailable"
    http_status = 503
    retryable = True


class ChannelAuthFailed(ChannelError):
    """Our credentials for the channel were refused; an operator must act."""

    code = "channel_auth_failed"


class PayloadRejected(ChannelError):
    """An inbound webhook was unsigned, badly signed or malformed."""

    code = "payload_rejected"
    http_status = 403
