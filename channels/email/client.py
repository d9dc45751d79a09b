"""The only module that imports aioimaplib and aiosmtplib; their errors become ours here.

Every IMAP call runs under ``asyncio.timeout`` (aioimaplib's ``idle_start`` hangs forever when
a server answers ``* BYE`` instead of ``+ idling``, whatever its own timeout says). Python
3.11's ``asyncio.wait_for``, which aioimaplib uses inside, can swallow a cancellation that
arrives as the awaited result does; every call here re-raises a pending cancellation, so a
poller asked to stop always stops. A lost
connection wakes an IDLE wait at once, and so does a ``* BYE`` during IDLE. Network trouble
and timeouts raise :class:`ChannelUnavailable` (retry later), refused credentials
:class:`ChannelAuthFailed`, other refusals :class:`ChannelError` (also an SMTP relay without
STARTTLS when it is required, or with a certificate we do not trust: settings to fix).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import ssl
from collections.abc import Awaitable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, TypeVar

import aioimaplib
import aiosmtplib

from channels.email.config import SmtpConfig
from channels.email.wire import fetch_records, uid_set
from contact_center.errors import ChannelAuthFailed, ChannelError, ChannelUnavailable

__all__ = ["FolderInfo", "ImapSession", "MailMeta", "smtp_send", "smtp_send_batch"]

T = TypeVar("T")
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
_LOST = [b"__connection_lost__"]
_IMAP_ERRORS = (aioimaplib.AioImapException, OSError, EOFError, TimeoutError)
_SMTP_ERRORS = (aiosmtplib.SMTPException, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class FolderInfo:
    """SELECT result."""

    uidvalidity: int
    uidnext: int | None
    exists: int


@dataclass(frozen=True, slots=True)
class MailMeta:
    """Size and flags of one message, from a cheap FETCH before the download."""

    size: int
    flags: frozenset[str]


class ImapSession:
    """One logged-in IMAP connection with a timeout on every command."""

    def __init__(self, imap: aioimaplib.IMAP4, timeout: float) -> None:
        self._imap = imap
        self.timeout = timeout
        self.lost = False
        self._gone = asyncio.Event()  # set with ``lost``: fails the pending command at once

    @classmethod
    async def open(
        cls, host: str, port: int, *, tls: str, user: str, password: str, limit: float
    ) -> ImapSession:
        """Connect, greet and log in."""
        holder: list[ImapSession] = []

        def on_lost(_exc: Exception | None) -> None:
            if holder:
                holder[0]._connection_lost()

        context = ssl.create_default_context() if tls == "ssl" else None
        try:
            imap = aioimaplib.IMAP4(
                host, port, timeout=limit, conn_lost_cb=on_lost, ssl_context=context
            )
        except _IMAP_ERRORS as err:
            raise ChannelUnavailable(f"IMAP {host}:{port}: {type(err).__name__}") from None
        session = cls(imap, limit)
        holder.append(session)
        try:
            await session._run("connect", imap.wait_hello_from_server())
            response = await session._run("LOGIN", imap.login(user, password))
        except ChannelError:
            await session.close()
            raise
        if response.result != "OK":
            await session.close()
            raise ChannelAuthFailed(f"IMAP login refused for {user} on {host}")
        return session

    def _connection_lost(self) -> None:
        self.lost = True
        self._gone.set()
        with contextlib.suppress(Exception):
            self._imap.protocol.idle_queue.put_nowait(_LOST)

    async def _run(self, what: str, call: Awaitable[T]) -> T:
        if self.lost:
            if inspect.iscoroutine(call):
                call.close()
            raise ChannelUnavailable("IMAP connection lost")
        try:
            async with asyncio.timeout(self.timeout):
                result = await self._unless_lost(what, call)
        except TimeoutError:
            raise ChannelUnavailable(f"IMAP {what} timed out") from None
        except ChannelUnavailable:  # the connection dropped (a ConnectionError: keep it as is)
            raise
        except _IMAP_ERRORS as err:
            raise ChannelUnavailable(f"IMAP {what} failed: {type(err).__name__}") from None
        _resurface_cancellation()
        return result

    async def _unless_lost(self, what: str, call: Awaitable[T]) -> T:
        """``call``'s result, or ChannelUnavailable as soon as the connection drops (aioimaplib
        leaves a command pending forever when its connection is lost)."""
        command = asyncio.ensure_future(call)
        gone = asyncio.ensure_future(self._gone.wait())
        try:
            await asyncio.wait({command, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not command.done():
                command.cancel()
        if command.cancelled() or not command.done():
            raise ChannelUnavailable(f"IMAP connection lost during {what}")
        return command.result()

    async def _ok(self, what: str, call: Awaitable[Any]) -> Any:
        response = await self._run(what, call)
        if response.result != "OK":
            text = b" ".join(x for x in response.lines if isinstance(x, bytes))[:200]
            raise ChannelError(f"IMAP {what}: {response.result} {text.decode(errors='replace')}")
        return response

    def has(self, capability: str) -> bool:
        """Whether the server announced a capability (IDLE, MOVE, ...)."""
        return bool(self._imap.has_capability(capability))

    async def select(self, folder: str) -> FolderInfo:
        """SELECT a folder (read-write) and report its UIDVALIDITY."""
        response = await self._ok("SELECT", self._imap.select(folder))
        text = b"\n".join(x for x in response.lines if isinstance(x, bytes))
        validity = re.search(rb"UIDVALIDITY (\d+)", text)
        uidnext = re.search(rb"UIDNEXT (\d+)", text)
        exists = re.search(rb"(\d+) EXISTS", text)
        if validity is None:
            raise ChannelError(f"IMAP SELECT {folder}: no UIDVALIDITY")
        return FolderInfo(
            uidvalidity=int(validity.group(1)),
            uidnext=int(uidnext.group(1)) if uidnext else None,
            exists=int(exists.group(1)) if exists else 0,
        )

    async def ensure_folder(self, folder: str) -> None:
        """CREATE a folder unless it exists."""
        await self._run("CREATE", self._imap.create(folder))

    async def noop(self) -> None:
        """NOOP: lets the server sync the selected folder (new mail becomes searchable)."""
        await self._ok("NOOP", self._imap.noop())

    async def search(self, criteria: str) -> list[int]:
        """UID SEARCH; returns UIDs in ascending order."""
        response = await self._ok("UID SEARCH", self._imap.uid_search(criteria, charset=None))
        uids: set[int] = set()
        for line in response.lines:
            if isinstance(line, bytes) and re.fullmatch(rb"[\d ]+", line.strip() or b"x"):
                uids.update(int(x) for x in line.split())
        return sorted(uids)

    async def fetch_meta(self, uids: list[int]) -> dict[int, MailMeta]:
        """RFC822.SIZE and FLAGS of messages, by UID."""
        response = await self._ok(
            "UID FETCH", self._imap.uid("fetch", uid_set(uids), "(UID RFC822.SIZE FLAGS)")
        )
        out: dict[int, MailMeta] = {}
        for head, _ in fetch_records(response.lines):
            uid, size, flags = _UID.search(head), _SIZE.search(head), _FLAGS.search(head)
            if uid is not None:
                names = flags.group(1).decode(errors="replace").split() if flags else []
                out[int(uid.group(1))] = MailMeta(
                    size=int(size.group(1)) if size else 0, flags=frozenset(names)
                )
        return out

    async def fetch(self, uids: list[int], part: str = "BODY.PEEK[]") -> dict[int, bytes]:
        """The raw source (or ``BODY.PEEK[HEADER]``) of messages, by UID; never sets \\Seen."""
        call = self._imap.uid("fetch", uid_set(uids), f"(UID {part})")
        response = await self._ok("UID FETCH", call)
        out: dict[int, bytes] = {}
        for head, data in fetch_records(response.lines):
            uid = _UID.search(head)
            if uid is not None and data is not None:
                out[int(uid.group(1))] = data
        return out

    async def add_flags(self, uids: list[int], flags: str) -> None:
        """UID STORE +FLAGS.SILENT."""
        call = self._imap.uid("store", uid_set(uids), f"+FLAGS.SILENT ({flags})")
        await self._ok("UID STORE", call)

    async def move(self, uids: list[int], folder: str) -> None:
        """UID MOVE (RFC 6851); servers without MOVE get COPY (the original is never deleted)."""
        verb = "move" if self.has("MOVE") else "copy"
        await self._ok(f"UID {verb.upper()}", self._imap.uid(verb, uid_set(uids), folder))

    async def append(self, raw: bytes, folder: str = "INBOX") -> int | None:
        """APPEND a message; returns its UID when the server reports APPENDUID."""
        response = await self._ok("APPEND", self._imap.append(raw, mailbox=folder))
        text = b" ".join(x for x in response.lines if isinstance(x, bytes))
        found = re.search(rb"APPENDUID \d+ (\d+)", text)
        return int(found.group(1)) if found else None

    async def wait_for_mail(self, seconds: float) -> bool:
        """IDLE until the server announces new mail (True) or ``seconds`` pass (False)."""
        queue = self._imap.protocol.idle_queue
        while not queue.empty():
            if queue.get_nowait() is _LOST:
                raise ChannelUnavailable("IMAP connection lost")
        idle = await self._run("IDLE", self._imap.idle_start(timeout=seconds + self.timeout))
        found = False
        try:
            async with asyncio.timeout(seconds):
                while not found:
                    push = await queue.get()  # not aioimaplib's wait_for-based wait_server_push
                    _resurface_cancellation()
                    if push is _LOST:
                        raise ChannelUnavailable("IMAP connection lost during IDLE")
                    if push == aioimaplib.STOP_WAIT_SERVER_PUSH:
                        break
                    lines = [x for x in (push if isinstance(push, list) else [push])
                             if isinstance(x, bytes)]  # fmt: skip
                    if any(x.startswith(b"BYE") for x in lines):  # the server ends the session
                        self._connection_lost()  # (it may keep the socket open: do not wait)
                        raise ChannelUnavailable("IMAP server said BYE during IDLE")
                    found = any(x.endswith(b"EXISTS") for x in lines)
        except TimeoutError:
            pass  # nothing new: re-issue IDLE (RFC 2177) after a look at the folder
        finally:
            ended = False
            if not self.lost:
                self._imap.idle_done()
                try:
                    async with asyncio.timeout(self.timeout):
                        await asyncio.shield(idle)  # cancelling the IDLE future would orphan it
                    ended = True
                except TimeoutError:
                    pass  # a server that does not answer DONE is gone (raised below)
                except _IMAP_ERRORS:
                    ended = True
        if self.lost:
            raise ChannelUnavailable("IMAP connection lost during IDLE")
        if not ended:
            raise ChannelUnavailable("IMAP IDLE timed out: no answer to DONE")
        return found

    async def close(self) -> None:
        """LOGOUT (briefly) and drop the connection."""
        protocol = self._imap.protocol
        quiet = protocol.pending_sync_command is None and not protocol.pending_async_commands
        if not self.lost and quiet:  # after a cancelled command just hang up: LOGOUT would wait
            with contextlib.suppress(*_IMAP_ERRORS, ChannelError):
                async with asyncio.timeout(min(self.timeout, 2)):
                    await self._imap.logout()
        transport = getattr(self._imap.protocol, "transport", None)
        if transport is not None:
            transport.close()


def _resurface_cancellation() -> None:
    """Raise CancelledError if this task was asked to stop and an inner wait_for ate it."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _untrusted(err: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate failure somewhere in an exception's chain (aiosmtplib wraps it)."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _smtp_error(err: Exception, host: str) -> ChannelError:
    """4xx and network trouble are retryable (ChannelUnavailable), 5xx are final."""
    if isinstance(err, aiosmtplib.SMTPAuthenticationError):
        return ChannelAuthFailed(f"SMTP login refused on {host}")
    if isinstance(err, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in err.recipients] or [550]
        if all(400 <= c < 500 for c in codes):
            return ChannelUnavailable(f"SMTP recipient deferred ({codes[0]})")
        return ChannelError(f"SMTP recipient refused ({codes[0]})")
    if isinstance(err, aiosmtplib.SMTPResponseException):
        text = f"SMTP {err.code}: {str(err.message)[:200]}"
        return ChannelUnavailable(text) if 400 <= err.code < 500 else ChannelError(text)
    if (bad := _untrusted(err)) is not None:  # a setting to fix, not a moment to wait out
        reason = bad.verify_message or bad.reason or "verification failed"
        return ChannelError(
            f"SMTP {host}: TLS certificate not trusted ({reason}); "
            "set CC_SMTP_CA_FILE to the relay's CA"
        )
    return ChannelUnavailable(f"SMTP {host}: {type(err).__name__}")


async def _smtp_connect(config: SmtpConfig) -> aiosmtplib.SMTP:
    """Connect, upgrade to TLS as configured (STARTTLS is required, never skipped) and log in."""
    client = aiosmtplib.SMTP(
        hostname=config.host,
        port=config.port,
        timeout=config.timeout_seconds,
        use_tls=config.tls == "tls",
        start_tls=False,  # done below, so that a server without STARTTLS is a clear refusal
        validate_certs=config.verify,
        cert_bundle=config.ca_file or None,
    )
    await client.connect()
    try:
        if config.tls == "starttls":
            await client.ehlo()
            if not client.supports_extension("starttls"):
                raise ChannelError(
                    f"SMTP {config.host}:{config.port} does not offer STARTTLS; not sending in "
                    "plaintext (CC_SMTP_TLS=starttls; use tls for port 465)"
                )
            await client.starttls()
        if config.user:
            await client.login(config.user, config.password.reveal())
    except BaseException:
        await _hang_up(client, client.transport)
        raise
    return client


async def _hang_up(client: aiosmtplib.SMTP, transport: asyncio.BaseTransport | None) -> None:
    """End the connection now, socket closed before this returns.

    aiosmtplib's ``close()`` (also the end of ``quit()``) only starts closing: over TLS the
    transport then waits for the relay's TLS close, and a caller that ends its event loop
    (``asyncio.run`` per send) before that arrives leaves the socket open. After QUIT's reply, or
    on an error, nothing more is owed to the relay, so the transport is aborted; its socket is
    closed in the loop's next callback, which the one yield below lets run. ``transport`` is
    the client's as it was before ``quit()``, which forgets it."""
    client.close()
    if isinstance(transport, asyncio.Transport):  # the SSL one is one too
        transport.abort()
        await asyncio.sleep(0)


async def smtp_send_batch(
    config: SmtpConfig, items: list[tuple[EmailMessage, str, list[str]]]
) -> list[ChannelError | None]:
    """Send several messages over one connection; per message, None or why it failed."""
    try:
        client = await _smtp_connect(config)
    except ChannelError as err:
        return [err] * len(items)
    except _SMTP_ERRORS as err:
        return [_smtp_error(err, config.host)] * len(items)
    transport = client.transport  # after STARTTLS: the TLS one
    results: list[ChannelError | None] = []
    try:
        for message, sender, recipients in items:
            try:
                await client.send_message(message, sender=sender, recipients=recipients)
            except _SMTP_ERRORS as err:
                results.append(_smtp_error(err, config.host))
            else:
                results.append(None)
    finally:
        try:
            if client.is_connected:
                with contextlib.suppress(*_SMTP_ERRORS):
                    await client.quit()
        finally:
            await _hang_up(client, transport)
    return results


async def smtp_send(
    message: EmailMessage, config: SmtpConfig, *, sender: str, recipients: list[str]
) -> None:
    """Send one message; raises the mapped error (see :func:`smtp_send_batch`)."""
    (error,) = await smtp_send_batch(config, [(message, sender, recipients)])
    if error is not None:
        raise error
