"""An IMAP endpoint that forwards to the real Dovecot, or misbehaves on purpose.

Only for protocol faults a real server will not produce on demand. While healthy it is a plain
TCP relay to Dovecot, so the poller reads real mail through it; :meth:`FaultyImap.fail` drops
the live sessions and makes the next ones misbehave in one of these ways:

* ``silent``: greets, then never answers a command;
* ``bye_in_idle``: answers like an empty mailbox, accepts IDLE (``+ idling``), then says
  ``* BYE`` and keeps the socket open;
* ``bye_for_idle``: answers IDLE with ``* BYE`` instead of ``+ idling`` (aioimaplib's own
  ``idle_start`` waits forever for that), socket open;
* ``frozen_idle``: accepts IDLE, then nothing ever again (DONE included).

:meth:`FaultyImap.heal` makes new sessions reach Dovecot again.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["FAULTS", "FaultyImap"]

FAULTS = ("silent", "bye_in_idle", "bye_for_idle", "frozen_idle")
_CAPS = "IMAP4rev1 IDLE"


class FaultyImap:
    """A loopback listener in front of ``upstream`` (host, port)."""

    def __init__(self, upstream: tuple[str, int], uidvalidity: int) -> None:
        self.upstream = upstream
        self.uidvalidity = uidvalidity
        self.mode = "forward"
        self.faulty_sessions = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._live: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> FaultyImap:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def fail(self, mode: str) -> None:
        """Drop every live session; the next ones misbehave as ``mode`` says."""
        assert mode in FAULTS, mode
        self.mode = mode
        for writer in list(self._live):
            writer.transport.abort()

    def heal(self) -> None:
        """New sessions reach the real server again."""
        self.mode = "forward"

    async def close(self) -> None:
        """Stop listening and hang up on everyone; the sessions end on their own."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._live):
            writer.transport.abort()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._live.add(writer)
        try:
            if self.mode == "forward":
                await self._forward(reader, writer)
            else:
                self.faulty_sessions += 1
                await self._misbehave(self.mode, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._live.discard(writer)
            self._tasks.discard(task)
            writer.transport.abort()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self._live.add(up_writer)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._live.discard(up_writer)
            up_writer.transport.abort()

    async def _misbehave(
        self, mode: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        writer.write(f"* OK [CAPABILITY {_CAPS}] fault server ready\r\n".encode())
        if mode == "silent":
            await _ignore(reader)
            return
        while line := await reader.readline():
            tag, _, rest = line.decode(errors="replace").strip().partition(" ")
            words = rest.upper().split()
            command = " ".join(words[:2]) if words[:1] == ["UID"] else "".join(words[:1])
            if command == "IDLE":
                if mode != "bye_for_idle":
                    writer.write(b"+ idling\r\n")
                if mode != "frozen_idle":
                    writer.write(b"* BYE fault server shutting down\r\n")
                await _ignore(reader)  # DONE, LOGOUT: never answered
                return
            writer.write(self._answer(tag, command).encode())
            await writer.drain()

    def _answer(self, tag: str, command: str) -> str:
        """What an empty, healthy mailbox says."""
        untagged = {
            "CAPABILITY": [f"* CAPABILITY {_CAPS}"],
            "SELECT": ["* 0 EXISTS", "* 0 RECENT", f"* OK [UIDVALIDITY {self.uidvalidity}] ok",
                       "* OK [UIDNEXT 1] ok"],
            "UID SEARCH": ["* SEARCH"],
        }.get(command, [])  # fmt: skip
        status = "OK" if command in {"CAPABILITY", "LOGIN", "SELECT", "NOOP", "UID SEARCH",
                                     "CREATE"} else "BAD"  # fmt: skip
        return "".join(f"{line}\r\n" for line in [*untagged, f"{tag} {status} {command} done"])


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    dst.transport.abort()


async def _ignore(reader: asyncio.StreamReader) -> None:
    """Read and drop whatever comes, until the client hangs up."""
    while await reader.read(65536):
        pass
