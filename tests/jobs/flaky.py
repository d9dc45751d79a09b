"""A job for retry tests: fails until its attempt count (kept in a file) reaches ``succeed_on``."""

from __future__ import annotations

from pathlib import Path

from contact_center.jobs import JobContext, job


@job("test.flaky", retries=3, intervals=(0, 0, 0))
def flaky(ctx: JobContext, path: str, succeed_on: int) -> str:
    """Append this attempt's number and final flag; raise until attempt ``succeed_on``."""
    counter = Path(path)
    with counter.open("a") as fh:
        fh.write(f"{ctx.attempt}:{int(ctx.final_attempt)}\n")
    if ctx.attempt < succeed_on:
        raise RuntimeError(f"attempt {ctx.attempt} fails on purpose")
    return "ok"
