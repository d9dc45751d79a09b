"""A job for worker-crash tests: says it started, then holds until the test opens the gate."""

from __future__ import annotations

import time
from pathlib import Path

from contact_center.jobs import JobContext, job


@job("test.gate", retries=0)
def gate(ctx: JobContext, folder: str, name: str) -> str:
    """Touch ``<name>.started``, wait (60 s at most) for ``<name>.open``, touch ``<name>.done``."""
    base = Path(folder)
    (base / f"{name}.started").touch()
    deadline = time.monotonic() + 60
    while not (base / f"{name}.open").exists() and time.monotonic() < deadline:
        time.sleep(0.01)  # a gate the test opens, not a timing
    (base / f"{name}.done").touch()
    return name
