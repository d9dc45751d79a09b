"""Email ingest benchmark: IMAP mailbox → tickets, on a real Dovecot, beside django-helpdesk.

1. 1,000 messages (one sender each, ~1.5 KB, one in five Chinese) are APPENDed to a Dovecot
   mailbox and the email poller (the code the app runs: ``MailboxPoller`` + ``MailStore`` +
   ``AckCourier``, SQLite) drains it. Figures are messages / seconds from poller start until
   every ticket exists (and, with acknowledgements, every acknowledgement is sent):
   ``mails_per_s`` with the product default (no acknowledgement), ``mails_per_s_with_acks``
   with ``CC_EMAIL_AUTO_ACK`` on and delivered over SMTP to a sink in its own process.
2. ``idle_latency_ms``: with the poller in IDLE, one more mail is APPENDed and the time until
   its ticket is committed is taken (median of 5; Dovecot itself notifies IDLE clients about
   0.5 s after a change, so that is the floor).
3. Baseline: django-helpdesk's ``manage.py get_email`` (pip-installed into its own venv in
   the run's temporary directory) on identical mailboxes of the same Dovecot: once with its
   acknowledgement mail going nowhere (Django's dummy email backend: like for like with
   ``mails_per_s``) and once sending it to the same sink (``..._with_acks``). django-helpdesk
   cannot switch its acknowledgement off; it also deletes what it ingests.

Both sides first run an unmeasured warm-up pass (``--warmup`` mails, default 200, on a mailbox
and database of its own), so that no measured pass pays for first use: django-helpdesk's
first ``get_email`` right after the install compiles its modules and fills the OS caches;
ours imports what loads lazily (templates, SMTP client) and warms Dovecot and the OS caches
the same way. Every file the run writes (databases, blob stores, the venv, the Django
projects; Dovecot's mail in a directory of its own) is in temporary directories removed at
the end; nothing goes to the repository's ``var/``.

``python -m bench email_ingest [--messages N] [--warmup N] [--no-baseline]``; the last line is
JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from channels.email.acks import AckCourier
from channels.email.client import ImapSession
from channels.email.config import EmailConfig, MailboxConfig
from channels.email.poller import MailboxPoller
from channels.email.sender import EmailSender
from channels.email.store import BatchResult, MailStore
from channels.email.threading import ThreadKeys
from contact_center.app import build_services
from contact_center.db import Actor
from contact_center.migrate import migrate
from contact_center.settings import Secret, Settings
from tests.channels.email.dovecot import PASSWORD, Dovecot, free_port
from tickets.actions import admin

__all__ = ["main"]

SUPPORT = "support@example.test"


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def _message(i: int) -> bytes:
    chinese = i % 5 == 0
    subject = f"订单 {i} 的发票问题" if chinese else f"Order {i}: the invoice is wrong"
    body = (
        "您好，我的发票抬头写错了，请帮忙更正。谢谢！\n"
        if chinese
        else "Hello, the billing address on my invoice is wrong; please correct it.\n"
    ) * 12
    msg = EmailMessage()
    msg["From"] = f"Customer {i} <customer{i}@example.com>"
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Date"] = "Mon, 02 Mar 2026 09:00:00 +0000"
    msg["Message-ID"] = f"<bench-{i}@example.com>"
    msg.set_content(body)
    return msg.as_bytes()


def _acks_sent(session: Any) -> int:
    query = "SELECT count(*) FROM message WHERE direction='out' AND delivery_status='sent'"
    return int(session.execute(sa.text(query)).scalar_one())


def _ticket_count(session: Any) -> int:
    return int(session.execute(sa.text("SELECT count(*) FROM ticket")).scalar_one())


async def _append(dovecot: Dovecot, user: str, raws: list[bytes]) -> None:
    session = await ImapSession.open(dovecot.host, dovecot.port, tls="none", user=user,
                                     password=PASSWORD, limit=30)  # fmt: skip
    try:
        for raw in raws:
            await session.append(raw)
    finally:
        await session.close()


async def _ours(
    dovecot: Dovecot, n: int, sink_port: int, work: Path, *, acks: bool, samples: int = 5
) -> dict[str, Any]:
    """Drain ``n`` mails from a fresh mailbox into a fresh database (``work``), then take
    ``samples`` IDLE latencies."""
    work.mkdir(parents=True)
    settings = Settings(
        database_url=f"sqlite:///{work / 'desk.db'}", data_dir=work / "data",
        secret_key=Secret("bench-secret-key"), smtp_host="127.0.0.1", smtp_port=sink_port,
        smtp_tls="none", email_from=f"Help Desk <{SUPPORT}>", email_auto_ack=acks,
    )  # fmt: skip
    svc = build_services(settings)
    migrate(svc.db)
    svc.db.write_sync(admin.create_queue, Actor("cli"), {"name": "general"})
    user = f"bench-ours-{work.name}@example.test"
    box = MailboxConfig(
        name="bench", host=dovecot.host, port=dovecot.port, user=user, password=Secret(PASSWORD),
        address=SUPPORT, tls="none", queue="general",
    )  # fmt: skip
    config = replace(EmailConfig.from_settings(settings), mailboxes=(box,))
    store = MailStore(config, ThreadKeys("bench-secret-key", config.domain), svc.ingest_policy)
    await _append(dovecot, user, [_message(i) for i in range(n)])

    created: list[float] = []
    fresh = asyncio.Event()

    def on_batch(result: BatchResult) -> None:
        if result.ticket_ids:
            created.append(time.perf_counter())
            fresh.set()

    async def enqueue(message_id: int) -> None:
        await svc.jobs.enqueue("deliver_message", message_id)

    courier = AckCourier(svc.db, EmailSender(config, store.keys), enqueue)
    poller = MailboxPoller(box, store, svc.db, acks=courier, on_batch=on_batch)
    started = time.perf_counter()
    task = asyncio.create_task(poller.run())
    try:
        await asyncio.wait_for(poller.caught_up.wait(), 600)
        await svc.jobs.drain()  # type: ignore[attr-defined]
        elapsed = time.perf_counter() - started
        tickets = svc.db.read_sync(_ticket_count)
        acks_sent = svc.db.read_sync(_acks_sent)
        latencies = []
        for k in range(samples):
            fresh.clear()
            sent = time.perf_counter()
            await _append(dovecot, user, [_message(n + k)])
            await asyncio.wait_for(fresh.wait(), 30)
            latencies.append((created[-1] - sent) * 1000)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await courier.close()
        await svc.jobs.stop()
        svc.db.close()
    return {"elapsed_s": elapsed, "tickets": tickets, "acks_sent": acks_sent,
            "latencies_ms": latencies}  # fmt: skip


def _run(cmd: list[str], cwd: Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, **kw)


_DH_SETTINGS = """
INSTALLED_APPS += ['django.contrib.sites', 'django.contrib.humanize', 'rest_framework', 'helpdesk']
SITE_ID = 1
HELPDESK_TEAMS_MODE_ENABLED = False
LOGIN_URL = '/helpdesk/login/'
EMAIL_BACKEND = 'django.core.mail.backends.{backend}.EmailBackend'
EMAIL_HOST, EMAIL_PORT = '127.0.0.1', {port}
DEFAULT_FROM_EMAIL = 'helpdesk@example.test'
MEDIA_ROOT = BASE_DIR / 'media'
ALLOWED_HOSTS = ['127.0.0.1', 'localhost']
"""
_DH_QUEUE = (
    "from helpdesk.models import Queue; Queue.objects.create(title='Support', slug='support', "
    "email_address='helpdesk@example.test', allow_email_submission=True, email_box_type='imap', "
    "email_box_host='127.0.0.1', email_box_port={port}, email_box_ssl=False, "
    "email_box_user='{user}', email_box_pass='{password}', email_box_imap_folder='INBOX', "
    "email_box_interval=0)"
)


def _install_helpdesk(venv: Path) -> str:
    """django-helpdesk in a new venv at ``venv``; its version. Raises RuntimeError."""
    python = venv / "bin" / "python"
    try:
        _run([sys.executable, "-m", "venv", str(venv)], venv.parent)
        _run([str(python), "-m", "pip", "install", "-q", "django-helpdesk"], venv.parent,
             timeout=600)  # fmt: skip
        code = "import importlib.metadata as m; print(m.version('django-helpdesk'))"
        return _run([str(python), "-c", code], venv.parent).stdout.strip()
    except (subprocess.SubprocessError, OSError) as err:
        detail = getattr(err, "stderr", "") or ""
        raise RuntimeError(f"{type(err).__name__}: {str(detail)[-300:]}") from None


def _baseline(
    dovecot: Dovecot, n: int, sink_port: int, venv: Path, project: Path, *, acks: bool
) -> dict[str, Any]:
    """django-helpdesk ``get_email`` on an identical mailbox, in a new Django project at
    ``project``; raises RuntimeError on failure."""
    python = venv / "bin" / "python"
    try:
        project.mkdir(parents=True)
        _run([str(venv / "bin" / "django-admin"), "startproject", "deskpeer", "."], project)
        settings = project / "deskpeer" / "settings.py"
        backend = "smtp" if acks else "dummy"
        settings.write_text(
            settings.read_text() + _DH_SETTINGS.format(port=sink_port, backend=backend)
        )
        urls = project / "deskpeer" / "urls.py"
        urls.write_text(urls.read_text().replace("from django.urls import path",
                        "from django.urls import include, path").replace(
                        "urlpatterns = [", "urlpatterns = [\n    path('helpdesk/', "
                        "include('helpdesk.urls', namespace='helpdesk')),"))  # fmt: skip
        manage = [str(python), "manage.py"]
        _run([*manage, "migrate", "-v", "0"], project)
        user = f"bench-helpdesk-{project.name}@example.test"
        code = _DH_QUEUE.format(port=dovecot.port, user=user, password=PASSWORD)
        _run([*manage, "shell", "-c", code], project)
        asyncio.run(_append(dovecot, user, [_message(i) for i in range(n)]))
        started = time.perf_counter()
        _run([*manage, "get_email", "--quiet"], project, timeout=1800)
        elapsed = time.perf_counter() - started
        count = _run([*manage, "shell", "-c", "from helpdesk.models import Ticket;"
                      "print(Ticket.objects.count())"], project).stdout.strip()  # fmt: skip
    except (subprocess.SubprocessError, OSError) as err:
        detail = getattr(err, "stderr", "") or ""
        raise RuntimeError(f"{type(err).__name__}: {str(detail)[-300:]}") from None
    return {"elapsed_s": elapsed, "tickets": int(count.splitlines()[-1])}


def _rate(run: dict[str, Any]) -> float:
    return round(run["tickets"] / run["elapsed_s"], 1)


def main(argv: list[str]) -> int:
    """Run the benchmark; prints progress and one JSON object last."""
    parser = argparse.ArgumentParser(prog="python -m bench email_ingest")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=200, help="mails in each warm-up pass")
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args(argv)
    n, warm = args.messages, args.warmup
    result: dict[str, Any] = {"benchmark": "email_ingest", "messages": n}
    if not Dovecot.available():
        print(json.dumps({**result, "error": "dovecot is not installed (dovecot-imapd)"}))
        return 1
    port = free_port()
    sink = subprocess.Popen(  # its own process, as a real MTA would be: no GIL shared with us
        [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink",
         "-l", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for_port(port)
        with Dovecot() as dovecot, tempfile.TemporaryDirectory(prefix="cc-bench-") as tmp:
            work = Path(tmp)
            if warm:  # unmeasured: first use of every code path happens here
                asyncio.run(_ours(dovecot, warm, port, work / "warm", acks=True, samples=1))
            plain = asyncio.run(_ours(dovecot, n, port, work / "plain", acks=False))
            acked = asyncio.run(_ours(dovecot, n, port, work / "acked", acks=True))
            for name, run in (("no acks", plain), ("acks", acked)):
                print(f"ours ({name}): {run['tickets']} tickets in {run['elapsed_s']:.2f} s, "
                      f"{run['acks_sent']} acknowledgements sent", flush=True)  # fmt: skip
            latencies = plain["latencies_ms"] + acked["latencies_ms"]
            result.update(
                mails_per_s=_rate(plain),
                mails_per_s_with_acks=_rate(acked),
                tickets=plain["tickets"],
                acks_sent=acked["acks_sent"],
                idle_latency_ms=round(statistics.median(latencies), 1),
                idle_latency_ms_max=round(max(latencies), 1),
                baseline="django-helpdesk manage.py get_email",
                baseline_mails_per_s=None,
                baseline_mails_per_s_with_acks=None,
                ratio=None,
                ratio_with_acks=None,
            )
            if not args.no_baseline:
                venv = work / "django-helpdesk"
                try:
                    version = _install_helpdesk(venv)
                    if warm:  # the first get_email after the install is not measured
                        _baseline(dovecot, warm, port, venv, work / "dh-warm", acks=True)
                    quiet = _baseline(dovecot, n, port, venv, work / "dh-plain", acks=False)
                    loud = _baseline(dovecot, n, port, venv, work / "dh-acked", acks=True)
                except RuntimeError as err:
                    result["baseline_error"] = str(err)
                else:
                    for name, run in (("no acks", quiet), ("acks", loud)):
                        print(f"django-helpdesk {version} ({name}): {run['tickets']} "
                              f"tickets in {run['elapsed_s']:.2f} s", flush=True)  # fmt: skip
                    result.update(
                        baseline=f"django-helpdesk {version} manage.py get_email",
                        baseline_mails_per_s=_rate(quiet),
                        baseline_mails_per_s_with_acks=_rate(loud),
                        baseline_tickets=[quiet["tickets"], loud["tickets"]],
                        ratio=round(_rate(plain) / _rate(quiet), 1),
                        ratio_with_acks=round(_rate(acked) / _rate(loud), 1),
                    )
    finally:
        sink.terminate()
        sink.wait(10)
    result["warmup_messages"] = warm
    result["targets"] = {"mails_per_s": 300, "ratio": 10, "idle_latency_ms": 2000}
    print(json.dumps(result))
    return 0
