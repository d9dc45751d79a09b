"""A real aiosmtpd server for tests that closes its connections when it stops.

aiosmtpd's ``Controller.stop`` stops and closes its loop without closing the connections still
open. A plain connection still closes as the loop winds down, but a TLS one waits for its peer:
one whose client has just sent QUIT and hung up, before the server loop has seen it, is left as
an open transport, and the per-test ``gc.collect()`` reports it as unclosed (a rare teardown
error of the implicit-TLS tests). This controller aborts every connection in its loop first.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import warnings
from collections.abc import Iterator
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

STOP_TIMEOUT = 10.0  # seconds for the server loop to close its connections


class _Tracked:
    """Mixed into the server's SMTP class: keeps the sessions whose connection is open."""

    sessions: set[SMTP]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.sessions.add(self)  # type: ignore[arg-type]
        super().connection_made(transport)  # type: ignore[misc]

    def connection_lost(self, error: Exception | None) -> None:
        self.sessions.discard(self)
        super().connection_lost(error)  # type: ignore[misc]


class ClosingController(Controller):
    """``aiosmtpd.controller.Controller`` whose ``stop`` closes the open connections first;
    ``smtp_class`` is the server's protocol (an ``aiosmtpd.smtp.SMTP`` subclass)."""

    def __init__(self, handler: Any, *, smtp_class: type[SMTP] = SMTP, **kw: Any) -> None:
        super().__init__(handler, **kw)
        self._sessions: set[SMTP] = set()
        self._smtp_class = type("Tracked" + smtp_class.__name__, (_Tracked, smtp_class),
                                {"sessions": self._sessions})  # fmt: skip

    def factory(self) -> SMTP:
        smtp: SMTP = self._smtp_class(self.handler, **self.SMTP_kwargs)
        return smtp

    async def _abort_sessions(self) -> None:
        while self._sessions:
            for session in list(self._sessions):
                if session.transport is None:  # connection_lost already ran
                    self._sessions.discard(session)
                else:
                    cast(asyncio.Transport, session.transport).abort()
            await asyncio.sleep(0)  # let the loop run the connection_lost callbacks

    def stop(self, no_assert: bool = False) -> None:
        if self._thread is not None and self.loop.is_running():
            closing = asyncio.run_coroutine_threadsafe(self._abort_sessions(), self.loop)
            closing.result(STOP_TIMEOUT)
        super().stop(no_assert)


@contextlib.contextmanager
def resource_warnings() -> Iterator[list[str]]:
    """The ``ResourceWarning`` messages (unclosed sockets and transports) of what the block
    left behind, after a garbage collection at its end; the list fills when the block ends."""
    found: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield found
        gc.collect()
    found.extend(str(w.message) for w in caught if issubclass(w.category, ResourceWarning))
