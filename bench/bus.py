"""The event bus's receiving side: CPU per Redis message, in the process that subscribes.

Every process of a scaled-out desk (web processes, leaders) reads every message of the event
channel, so what one message costs there is paid four times and more. A separate publisher
process sends ``--n`` (20,000) messages of three ``ticket.updated`` events each, pipelined, to
a ``RedisBus`` in this process; its subscriber counts the events. ``time.process_time`` of this
process from the first publish to the last event / ``--n`` = µs per message (receive, decode,
dispatch to one subscriber).

Baseline in the same run: redis-py's ``PubSub.listen``, the path the bus takes when the
connection's stream is not available (``contact_center.events._stream_of`` returns None);
``ratio`` = the bus's µs / the baseline's. The two alternate ``--rounds`` (3) times.
``python -m bench bus [--n N] [--rounds R] [--redis-url URL]``; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contact_center import events
from contact_center.db import EventRecord
from contact_center.events import RedisBus

__all__ = ["main"]

_PUBLISHER = """
import sys
import redis
url, path, channel = sys.argv[1:4]
client = redis.Redis.from_url(url)
pipe = client.pipeline(transaction=False)
with open(path) as f:
    for i, line in enumerate(f):
        pipe.publish(channel, line.rstrip("\\n"))
        if i % 500 == 499:
            pipe.execute()
pipe.execute()
"""


_PAYLOAD = {
    "status": "open",
    "subject": "Where is my parcel?",
    "assignee_id": 5,
    "queue_id": 2,
    "channel": "chat",
    "priority": "normal",
    "changed": ["status"],
}


def _messages(n: int) -> list[str]:
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        payload = dict(_PAYLOAD, id=i)
        batch = [EventRecord(3 * i + k, "ticket.updated", i, payload, now) for k in range(3)]
        out.append(events._encode("another-process", batch))
    return out


async def _once(url: str, path: Path, n: int, stream: bool) -> float:
    channel = f"cc-bench-bus-{uuid.uuid4().hex}"
    real = events._stream_of
    if not stream:
        events._stream_of = lambda conn: None
    bus = RedisBus(url, channel)
    seen = [0]
    done = asyncio.Event()

    async def count(ev: EventRecord) -> None:
        seen[0] += 1
        if seen[0] == 3 * n:
            done.set()

    bus.subscribe(count)
    try:
        await bus.start()
        start = time.process_time()
        publisher = subprocess.Popen([sys.executable, "-c", _PUBLISHER, url, str(path), channel])
        try:
            await asyncio.wait_for(done.wait(), 300)
        finally:
            publisher.wait()
        return (time.process_time() - start) / n * 1e6
    finally:
        await bus.stop()
        events._stream_of = real


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench bus", description=__doc__)
    parser.add_argument("--n", type=int, default=20_000, help="messages per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)
    runs: dict[str, list[float]] = {"stream": [], "pubsub": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "messages.txt"
        path.write_text("\n".join(_messages(args.n)) + "\n")
        for _ in range(args.rounds):
            for kind in ("pubsub", "stream"):
                us = asyncio.run(_once(args.redis_url, path, args.n, kind == "stream"))
                runs[kind].append(round(us, 1))
    best = {k: min(v) for k, v in runs.items()}
    out: dict[str, Any] = {
        "name": "bus",
        "n": args.n,
        "us_per_message": runs["stream"],
        "baseline_pubsub_us_per_message": runs["pubsub"],
        "ratio": round(best["stream"] / best["pubsub"], 3),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
