"""Loopback helpers shared by the local cluster, the benchmarks and the tests: a free port,
and waiting until a server answers HTTP."""

from __future__ import annotations

import socket
import subprocess
import time

__all__ = ["LOOPBACK", "free_port", "wait_for_http"]

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_for_http(
    url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll ``url`` until it answers any HTTP status (or raise after ``timeout`` seconds)."""
    import urllib.error
    import urllib.request

    if not url.startswith(f"http://{LOOPBACK}:"):
        raise ValueError("benchmarks talk to loopback only")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (loopback URL, checked)
                return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout} s")
