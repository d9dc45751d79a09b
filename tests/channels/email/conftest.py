"""Email fixtures: a real Dovecot per session, a real aiosmtpd per test, and a ``Desk``.

Each test gets its own Dovecot user (so its own mailbox) and its own SMTP sink; the ``settings``
fixture is overridden so the app's job runner sends email through that sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from channels.email.acks import AckCourier
from channels.email.client import ImapSession
from channels.email.config import EmailConfig, MailboxConfig
from channels.email.poller import MailboxPoller
from channels.email.sender import EmailSender
from channels.email.store import BatchResult, MailStore
from channels.email.threading import ThreadKeys
from contact_center.keys import Services
from contact_center.settings import Secret, Settings
from tests.channels.email.dovecot import PASSWORD, Dovecot, free_port
from tests.conftest import World, sql
from tests.smtp_server import ClosingController
from tickets.actions.messages import post_message
from tickets.domain import Role
from tickets.queries import Viewer

FIXTURES = Path(__file__).parent / "fixtures"
SUPPORT = "support@example.test"


def fixture(name: str, **fill: object) -> bytes:
    """A corpus message with ``{NAME}`` placeholders filled in."""
    raw = (FIXTURES / name).read_bytes()
    for key, value in fill.items():
        raw = raw.replace(b"{" + key.encode() + b"}", str(value).encode())
    return raw


def mail(
    frm: str = "ann@example.com",
    subject: str = "Printer on floor 3 is broken",
    body: str = "It does not print.",
    msgid: str | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """A plain customer mail."""
    lines = [f"From: {frm}", f"To: {SUPPORT}", f"Subject: {subject}",
             "Date: Mon, 02 Mar 2026 09:00:00 +0000",
             f"Message-ID: {msgid or f'<{uuid.uuid4().hex}@example.com>'}",
             "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]  # fmt: skip
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


class Sink:
    """An aiosmtpd handler that keeps what it receives (or refuses with ``refuse``)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []
        self.over_tls: list[bool] = []  # per received message: did it come over TLS
        self.refuse: str | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            return self.refuse
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        self.over_tls.append(server.transport.get_extra_info("ssl_object") is not None)
        return "250 OK"


@dataclass
class SmtpSink:
    """The running sink and its port."""

    handler: Sink
    port: int

    @property
    def received(self) -> list[tuple[str, list[str], bytes]]:
        return self.handler.received


@contextlib.contextmanager
def running_sink(**controller: Any) -> Iterator[SmtpSink]:
    """A real aiosmtpd server on a free port (port=0 does not work with Controller); the
    keywords go to the ``Controller`` (``tls_context``, ``require_starttls``, ``ssl_context``,
    and ``smtp_class``: see tests/smtp_server.py)."""
    handler = Sink()
    port = free_port()
    server = ClosingController(handler, hostname="127.0.0.1", port=port, **controller)
    server.start()
    try:
        yield SmtpSink(handler, port)
    finally:
        server.stop()


@dataclass(frozen=True)
class TlsCert:
    """A self-signed certificate for 127.0.0.1 (and localhost) and its key, as PEM files."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> TlsCert:
    """Made once per session with ``openssl req`` (the cryptography package is not installed)."""
    root = tmp_path_factory.mktemp("tls")
    made = TlsCert(root / "cert.pem", root / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(made.key), "-out", str(made.cert), "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return made


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """One real Dovecot for the whole session (``apt-get install -y dovecot-imapd``)."""
    if not Dovecot.available():
        pytest.fail("dovecot is not installed: apt-get install -y dovecot-imapd (.ci/run does)")
    server = Dovecot().start()
    yield server
    server.stop()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A real aiosmtpd SMTP server (plaintext, no STARTTLS) on a free port."""
    with running_sink() as sink:
        yield sink


@pytest.fixture
def mailbox(dovecot: Dovecot) -> MailboxConfig:
    """A fresh Dovecot user tied to the ``general`` queue; IDLE on, short timeouts."""
    user = f"desk-{uuid.uuid4().hex[:10]}@example.test"
    return MailboxConfig(name=f"test/{user}", host=dovecot.host, port=dovecot.port, user=user,
                         password=Secret(PASSWORD), address=SUPPORT, tls="none", queue="general",
                         idle_seconds=20, timeout_seconds=5, batch_size=10)  # fmt: skip


@pytest.fixture
def settings(db_url: str, tmp_path: Path, smtp_sink: SmtpSink) -> Settings:
    """The base test settings plus SMTP to the sink and our From address."""
    return Settings(
        database_url=db_url,
        data_dir=tmp_path / "data",
        secret_key=Secret("test-secret-key-0123456789abcdef"),
        db_pool_size=8,
        rq_queue=f"cc-test-{uuid.uuid4().hex[:8]}",
        events_channel=f"cc-test-{uuid.uuid4().hex[:8]}",
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        smtp_tls="none",
        email_from=f"Help Desk <{SUPPORT}>",
        email_own_addresses="notifications@example.test",
    )


@dataclass
class Desk:
    """The email channel against real servers, with helpers to feed and drain a mailbox."""

    svc: Services
    world: World
    box: MailboxConfig
    sink: SmtpSink
    config: EmailConfig
    keys: ThreadKeys
    batches: list[BatchResult] = field(default_factory=list)

    def store(self, **kw: Any) -> MailStore:
        return MailStore(self.config, self.keys, self.svc.ingest_policy, **kw)

    def poller(self, box: MailboxConfig | None = None, **kw: Any) -> MailboxPoller:
        async def enqueue(message_id: int) -> None:
            await self.svc.jobs.enqueue("deliver_message", message_id)

        sender = EmailSender(self.config, self.keys)
        kw.setdefault("acks", AckCourier(self.svc.db, sender, enqueue))
        kw.setdefault("on_batch", self.batches.append)
        return MailboxPoller(
            box or self.box, kw.pop("store", None) or self.store(), self.svc.db, **kw
        )

    async def imap(self, box: MailboxConfig | None = None) -> ImapSession:
        b = box or self.box
        return await ImapSession.open(b.host, b.port, tls="none", user=b.user,
                                      password=b.password.reveal(), limit=5)  # fmt: skip

    async def append(self, *raws: bytes, folder: str = "INBOX") -> list[int]:
        session = await self.imap()
        try:
            return [uid or 0 for uid in [await session.append(r, folder) for r in raws]]
        finally:
            await session.close()

    async def drain(self, poller: MailboxPoller | None = None, timeout: float = 10) -> None:
        """Run a poller until it has caught up with the folder, then stop it."""
        poller = poller or self.poller()
        task = asyncio.create_task(poller.run())
        try:
            await asyncio.wait_for(poller.caught_up.wait(), timeout)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.svc.jobs.drain()  # type: ignore[attr-defined]

    async def reply(self, ticket_id: int, body: str = "We are looking into it.") -> EmailMessage:
        """An agent's reply, delivered by the real job through the real SMTP sink."""
        viewer = Viewer(user_id=self.world.users["admin"]["id"], role=Role.ADMIN)
        posted = await self.svc.db.write(post_message, viewer, ticket_id, body)
        before = len(self.sink.received)
        await self.svc.jobs.enqueue("deliver_message", posted.message_id)
        await self.svc.jobs.drain()  # type: ignore[attr-defined]
        assert len(self.sink.received) == before + 1, "the reply was not delivered"
        return self.sent(-1)

    def sent(self, index: int) -> EmailMessage:
        """A message the SMTP sink received, parsed."""
        parsed = message_from_bytes(self.sink.received[index][2], policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def tickets(self) -> list[int]:
        return [r[0] for r in self.rows("SELECT id FROM ticket ORDER BY id")]

    def rows(self, statement: str, **params: Any) -> list[Any]:
        return sql(self.svc.db, statement, **params)


@pytest.fixture
def desk(
    services: Services, world: World, mailbox: MailboxConfig, smtp_sink: SmtpSink,
    settings: Settings,
) -> Desk:  # fmt: skip
    """Everything wired like ``channels.email.setup`` does, on the test database."""
    config = replace(EmailConfig.from_settings(settings), mailboxes=(mailbox,))
    config = replace(config, own_addresses=config.own_addresses | {SUPPORT})
    return Desk(
        services,
        world,
        mailbox,
        smtp_sink,
        config,
        ThreadKeys(settings.secret_key.reveal(), config.domain),
    )
