"""One HTTP attempt: POST the signed event to the pinned address, never follow redirects.

The whole attempt (DNS, connect, TLS, send, answer) has one budget, ``timeout`` seconds from
``started``. Every socket operation gets only what is left of it, so a receiver that trickles
its answer a byte at a time cannot stretch an attempt past its claim's lease (see
:func:`contact_center.webhooks.outbox.lease_for`), and two workers never send one row at once.
"""

from __future__ import annotations

import http.client
import io
import json
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from contact_center.errors import ValidationError
from contact_center.webhooks.outbox import Claim
from contact_center.webhooks.signing import signature_header
from contact_center.webhooks.ssrf import TargetGuard, check_url

__all__ = ["Attempt", "parse_retry_after", "post_event", "webhook_body"]

USER_AGENT = "contact-center-webhooks/1"
THROTTLED = (429, 503)  # answers whose Retry-After we honour


@dataclass(frozen=True, slots=True)
class Attempt:
    """What happened: a status code (None when no response), body excerpt, error text, and
    for 429/503 the seconds the receiver asked us to wait (``Retry-After``)."""

    status_code: int | None
    response: str
    error: str | None
    retry_after: float | None = None


def webhook_body(claim: Claim) -> bytes:
    """The Standard Webhooks payload: ``{type, timestamp, data}``."""
    return json.dumps(
        {"type": claim.event_type, "timestamp": claim.event_created_at.isoformat(),
         "data": claim.event_payload},
        ensure_ascii=False, separators=(",", ":"), default=str,
    ).encode()  # fmt: skip


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from ``now`` in a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class _Deadline:
    """What is left of one attempt's budget; a spent budget raises ``TimeoutError``."""

    def __init__(self, end: float, clock: Callable[[], float]) -> None:
        self._end = end
        self._clock = clock

    def left(self) -> float:
        left = self._end - self._clock()
        if left <= 0:
            raise TimeoutError("the attempt ran out of time (CC_WEBHOOK_TIMEOUT_SECONDS)")
        return left


class _DeadlineReader(io.RawIOBase):
    """Socket reads, each allowed only the time left of the attempt."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        # the socket's own file object: it keeps the socket open for a "Connection: close" answer
        self._raw = sock.makefile("rb", buffering=0)
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        self._sock.settimeout(self._deadline.left())
        return self._raw.readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class _DeadlineSocket:
    """The few socket methods ``http.client`` uses, each under the attempt's deadline."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(self._deadline.left())  # sendall's timeout covers the whole call
        self._sock.sendall(data)

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))

    def close(self) -> None:
        self._sock.close()


class _Pinned(http.client.HTTPConnection):
    """Connects to the checked address, never to a second DNS answer."""

    def __init__(self, host: str, ip: str, port: int, deadline: _Deadline) -> None:
        super().__init__(host, port)
        self._ip = ip
        self._deadline = deadline

    def _wrap(self, sock: socket.socket) -> socket.socket:
        return sock

    def connect(self) -> None:
        raw = socket.create_connection((self._ip, self.port), self._deadline.left())
        try:
            wrapped = self._wrap(raw)
        except BaseException:
            raw.close()
            raise
        self.sock = _DeadlineSocket(wrapped, self._deadline)


class _PinnedTLS(_Pinned):
    default_port = 443

    def _wrap(self, sock: socket.socket) -> socket.socket:
        sock.settimeout(self._deadline.left())  # the handshake's timeout covers all of it
        return ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)


def post_event(
    claim: Claim,
    *,
    now: datetime,
    timeout: float = 10.0,
    guard: TargetGuard | None = None,
    started: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Attempt:
    """Sign and POST; the SSRF check runs again here, on the address actually dialled.

    ``started`` (a ``clock`` reading taken before the row was claimed) starts the budget; by
    default it starts now.
    """
    deadline = _Deadline((clock() if started is None else started) + timeout, clock)
    try:
        scheme, host, port = check_url(claim.url)
        ip = (guard or TargetGuard()).check(host, port, allow_private=claim.allow_private)
    except ValidationError as err:
        return Attempt(None, "", f"refused: {err.message}")
    body = webhook_body(claim)
    ts = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": claim.msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signature_header(claim.secrets, claim.msg_id, ts, body),
    }
    parts = urlsplit(claim.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    cls = _PinnedTLS if scheme == "https" else _Pinned
    conn = cls(host, str(ip), port, deadline)
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read(4096).decode("utf-8", "replace")
        wait = parse_retry_after(resp.getheader("Retry-After"), now)
        return Attempt(resp.status, text, None, wait if resp.status in THROTTLED else None)
    except (OSError, http.client.HTTPException) as err:
        return Attempt(None, "", f"{type(err).__name__}: {err}"[:1000])
    finally:
        conn.close()
