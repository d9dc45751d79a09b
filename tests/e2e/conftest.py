"""Browser tests: the real app in a thread (demo data, real clock) and Debian's Chromium.

One browser for all of them (several contexts per test: a customer, an agent, a supervisor);
one fresh app and database per test. Screenshots go to ``test-artifacts/`` (gitignored).
Chromium comes from Debian (``apt-get install chromium``); ``playwright install`` is never run.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from contact_center.app import build_services, create_app
from contact_center.demo import DEMO_PASSWORD, seed_demo
from contact_center.keys import Services
from contact_center.settings import Secret, Settings
from tests.conftest import FAST_HASHING

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
TIMEOUT_MS = 15_000

sync_api = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.exists():  # pragma: no cover - .ci/run installs it
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)",
                allow_module_level=True)  # fmt: skip


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One headless Chromium for every browser test. Package scope, not session: sync
    Playwright keeps an event loop running in this thread while it is open, which the async
    tests that run after this package must not find."""
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield b
        b.close()


@dataclass
class Desk:
    """The app serving on a free port from a background thread (its own event loop)."""

    settings: Settings
    services: Services
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    thread: threading.Thread | None = None
    runner: Any = None

    @property
    def url(self) -> str:
        return self.settings.public_base_url

    def run(self, coro: Any, timeout: float = 15) -> Any:
        """Run a coroutine on the app's loop (e.g. a database read) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self, sock: socket.socket) -> None:
        from aiohttp import web

        ready = threading.Event()

        async def serve() -> None:
            self.runner = web.AppRunner(create_app(self.settings, services=self.services),
                                        access_log=None)  # fmt: skip
            await self.runner.setup()
            await web.SockSite(self.runner, sock).start()
            ready.set()

        def main() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.create_task(serve())
            self.loop.run_forever()

        self.thread = threading.Thread(target=main, name="desk", daemon=True)
        self.thread.start()
        assert ready.wait(15), "the app did not start"

    def stop(self) -> None:
        async def drain() -> None:  # what the sockets left running (pings) ends here too
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        if self.runner is not None:
            self.run(self.runner.cleanup(), timeout=30)
            self.run(drain())
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self.thread is not None:
            self.thread.join(10)
        self.loop.close()
        self.services.db.close()


@pytest.fixture
def desk_settings(tmp_path: Path, sqlite_template: Path) -> Iterator[tuple[Settings, Any]]:
    db = tmp_path / "desk.db"
    shutil.copy(sqlite_template, db)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = Settings(
        database_url=f"sqlite:///{db}",
        data_dir=tmp_path / "data",
        secret_key=Secret("e2e-secret-key-0123456789abcdef"),
        public_base_url=f"http://127.0.0.1:{port}",
        port=port,
        log_json=False,
    )
    yield settings, sock
    sock.close()


@pytest.fixture
def desk(desk_settings: tuple[Settings, Any]) -> Iterator[Desk]:
    """The demo desk (`make run`'s data), served on a free port."""
    settings, sock = desk_settings
    services = build_services(settings, password_hashing=FAST_HASHING)
    seed_demo(services.db, services.ingest_policy, FAST_HASHING)
    d = Desk(settings, services)
    d.start(sock)
    yield d
    d.stop()


class Dialogs:
    """Every JavaScript dialog (alert, confirm, prompt) any page opened: must stay empty."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.contexts: list[Any] = []

    def watch(self, page: Any) -> Any:
        def on_dialog(dialog: Any) -> None:
            self.seen.append(f"{page.url}: {dialog.type} {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.set_default_timeout(TIMEOUT_MS)
        return page


@pytest.fixture
def dialogs(desk: Desk) -> Iterator[Dialogs]:
    """The dialog watcher; the contexts it opened close before the desk stops."""
    d = Dialogs()
    yield d
    for ctx in d.contexts:
        ctx.close()


def new_page(browser: Any, dialogs: Dialogs, **context: Any) -> Any:
    """A page in a fresh browser context (its own cookies and storage)."""
    ctx = browser.new_context(**context)
    dialogs.contexts.append(ctx)
    return dialogs.watch(ctx.new_page())


def login(page: Any, desk: Desk, who: str, then: str = "/console") -> None:
    """Log in with a demo account through the login form."""
    page.goto(desk.url + "/login")
    page.fill("input[name=email]", f"{who}@demo.test")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console")
    if then != "/console":
        page.goto(desk.url + then)


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


__all__ = ["ARTIFACTS", "Desk", "Dialogs", "login", "new_page", "screenshot"]
