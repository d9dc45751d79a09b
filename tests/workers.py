"""Real ``contact-center worker`` processes and throwaway Redis servers for crash tests.

A worker gets the test's own ``Settings`` through the environment (``CC_*``, every field), so
it sees the same database, queue, SMTP sink and allow list as the test. A ``RedisServer`` is a
``redis-server`` of our own on a free port, never the shared one on 6379, so a test may stop
and restart it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from dataclasses import fields
from pathlib import Path

import redis

from contact_center.settings import Secret, Settings

__all__ = ["RedisServer", "kill_worker", "start_worker", "worker_env"]

ROOT = Path(__file__).resolve().parents[1]


def worker_env(settings: Settings) -> dict[str, str]:
    """An environment from which ``Settings.from_env()`` rebuilds ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
    for f in fields(Settings):
        value = getattr(settings, f.name)
        if isinstance(value, Secret):
            text = value.reveal()
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        env[f"CC_{f.name.upper()}"] = text
    env.update(CC_LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))
    return env


async def start_worker(
    settings: Settings, *args: str, log: Path | None = None
) -> asyncio.subprocess.Process:
    """``contact-center worker [args]`` in a new process group (its stderr to ``log``).

    The worker forks RQ's scheduler; its own group lets :func:`kill_worker` take both.
    """
    err = log.open("ab") if log is not None else subprocess.DEVNULL
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "contact_center.cli", "worker", *args,
            env=worker_env(settings), stdout=subprocess.DEVNULL, stderr=err,
            start_new_session=True,
        )  # fmt: skip
    finally:
        if log is not None:
            err.close()  # type: ignore[union-attr]


async def kill_worker(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the worker and its scheduler at once, as when its host dies; then reap it."""
    os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()


class RedisServer:
    """``redis-server --port P --bind 127.0.0.1 --save "" --appendonly no``: memory only."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[str] | None = None
        self._follower: threading.Thread | None = None

    def start(self, timeout: float = 20) -> None:
        """Start it and return once it logs that it accepts connections."""
        ready = threading.Event()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        lines: list[str] = []

        def follow(out) -> None:  # keeps reading, so the pipe never fills
            for line in out:
                lines.append(line)
                if "Ready to accept connections" in line:
                    ready.set()

        self._follower = threading.Thread(target=follow, args=(self.proc.stdout,), daemon=True)
        self._follower.start()
        if not ready.wait(timeout):
            self._reap(kill=True)
            raise RuntimeError(f"redis-server on {self.port} did not start: {''.join(lines)}")

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def shutdown_nosave(self, timeout: float = 20) -> None:
        """``SHUTDOWN NOSAVE``: everything in memory is gone, as after a crash."""
        with self.client() as conn:
            conn.shutdown(nosave=True)
        self._reap(kill=False, timeout=timeout)

    def stop(self) -> None:
        self._reap(kill=True)

    def _reap(self, *, kill: bool, timeout: float = 20) -> None:
        """Wait for the process (killing it first if asked) and close its output pipe."""
        if self.proc is None:
            return
        if kill and self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout)
        if self._follower is not None:
            self._follower.join(timeout)  # it ends at the pipe's end of file
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None
