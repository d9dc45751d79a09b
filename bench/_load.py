"""Shared load-generation helpers for HTTP benchmarks (loopback only, bounded).

* :class:`Server` starts a server subprocess, waits until its port answers, reads its CPU time
  from ``/proc`` and stops it (SIGINT, then SIGTERM/SIGKILL after a grace period).
* :func:`drive` runs a closed-loop load generator in a **separate process**
  (``python -m bench._load run PLAN OUT``): an aiohttp client with ``concurrency`` keep-alive
  connections sends a fixed list of pre-encoded JSON bodies, each exactly once, in order. The
  first ``warmup`` requests are not measured; throughput is measured requests divided by the
  time from the first measured request's start to the last one's end, and latencies are the
  client-side wall times of the measured requests.
* ``python -m bench._load baseline --port P`` serves the bare aiohttp baselines: one JSON POST
  handler that parses the body, checks it is an object and answers 201 with a small JSON reply,
  and one form POST handler (``/webhooks/twilio/sms``) that answers empty TwiML.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from contact_center.loopback import LOOPBACK, free_port, wait_for_http

__all__ = [
    "LoadResult",
    "Server",
    "drive",
    "free_port",
    "percentile",
    "wait_for_http",
]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """A server subprocess: ``with Server(argv, env, ready_url) as srv: ...``."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        ready_url: str,
        cwd: str | os.PathLike[str] | None = None,
        log_path: Path | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.ready_url = ready_url
        self.cwd = cwd
        self.log_path = log_path
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def __enter__(self) -> Server:
        self._log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            self.argv, env=self.env, cwd=self.cwd, stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            wait_for_http(self.ready_url, self.start_timeout, self.proc)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def cpu_seconds(self) -> float:
        """CPU seconds the server process has used so far."""
        return 0.0 if self.proc is None else _cpu_seconds(self.proc.pid)

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGINT (graceful for aiohttp), then SIGTERM, then SIGKILL; the exit code."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
                try:
                    proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
            self._log = None
        return None if proc is None else proc.returncode

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server's output (when logged to a file)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass(slots=True)
class LoadResult:
    """What one load run measured (times in seconds unless named otherwise)."""

    sent: int
    measured: int
    window_s: float
    per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    client_cpu_s: float = 0.0

    @property
    def non_2xx(self) -> int:
        """Responses outside 200-299 plus transport errors."""
        bad = sum(n for s, n in self.statuses.items() if not s.startswith("2"))
        return bad + self.errors


def drive(
    url: str,
    bodies: Sequence[bytes],
    *,
    concurrency: int = 32,
    warmup: int = 0,
    headers: Mapping[str, str] | None = None,
    timeout: float = 300.0,
    content_type: str = "application/json",
    request_headers: Sequence[Mapping[str, str]] | None = None,
) -> LoadResult:
    """POST every body once to ``url`` from a separate load-generator process.

    ``request_headers[i]`` are extra headers of request ``i`` (e.g. a per-request signature).
    """
    if not url.startswith(f"http://{LOOPBACK}:"):
        raise ValueError("benchmarks talk to loopback only")
    if not 0 <= warmup < len(bodies):
        raise ValueError("warmup must leave requests to measure")
    with tempfile.TemporaryDirectory(prefix="cc-load-") as tmp:
        plan = Path(tmp) / "plan.json"
        out = Path(tmp) / "result.json"
        plan.write_text(
            json.dumps(
                {
                    "url": url,
                    "concurrency": concurrency,
                    "warmup": warmup,
                    "headers": {"Content-Type": content_type, **dict(headers or {})},
                    "request_headers": [dict(h) for h in request_headers or ()],
                    "bodies": [b.decode() for b in bodies],
                }
            )
        )
        subprocess.run(
            [sys.executable, "-m", "bench._load", "run", str(plan), str(out)],
            check=True,
            timeout=timeout,
        )
        return LoadResult(**json.loads(out.read_text()))


async def _run_load(plan: dict[str, Any]) -> LoadResult:
    import aiohttp

    url: str = plan["url"]
    warmup: int = plan["warmup"]
    concurrency: int = plan["concurrency"]
    headers = {"Content-Type": "application/json", **plan["headers"]}
    bodies = [b.encode() for b in plan["bodies"]]
    per_request: list[dict[str, str]] = plan.get("request_headers") or [{}] * len(bodies)
    n = len(bodies)
    starts = [0.0] * n
    ends = [0.0] * n
    statuses: dict[str, int] = {}
    samples: list[str] = []
    error_count = 0
    next_index = 0

    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            nonlocal next_index, error_count
            while next_index < n:  # bounded: each index is taken exactly once
                i = next_index
                next_index += 1
                t0 = time.perf_counter()
                try:
                    extra = per_request[i]
                    sent = {**headers, **extra} if extra else headers
                    async with session.post(url, data=bodies[i], headers=sent) as resp:
                        await resp.read()
                        key = str(resp.status)
                except (aiohttp.ClientError, TimeoutError) as err:
                    key = ""
                    error_count += 1
                    if len(samples) < 5:
                        samples.append(repr(err))
                ends[i] = time.perf_counter()
                starts[i] = t0
                if key:
                    statuses[key] = statuses.get(key, 0) + 1

        cpu0 = time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu = time.process_time() - cpu0
    window = max(ends[warmup:]) - starts[warmup]
    lat = [(ends[i] - starts[i]) * 1000 for i in range(warmup, n)]
    measured = n - warmup
    return LoadResult(
        sent=n,
        measured=measured,
        window_s=round(window, 4),
        per_s=round(measured / window, 1) if window > 0 else 0.0,
        p50_ms=round(percentile(lat, 50), 2),
        p90_ms=round(percentile(lat, 90), 2),
        p99_ms=round(percentile(lat, 99), 2),
        max_ms=round(max(lat), 2),
        statuses=statuses,
        errors=error_count,
        error_samples=samples,
        client_cpu_s=round(cpu, 3),
    )


def _baseline_app() -> Any:
    """The bare aiohttp baseline: parse the JSON body, answer 201."""
    from aiohttp import web

    async def inbound(request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return web.json_response({"error": "expected application/json"}, status=400)
        data = json.loads(await request.read())
        if not isinstance(data, dict) or not data.get("external_id"):
            return web.json_response({"error": "bad body"}, status=400)
        return web.json_response(
            {"external_id": data["external_id"], "duplicate": False}, status=201
        )

    async def sms(request: web.Request) -> web.Response:
        form = await request.post()
        if not form.get("MessageSid"):
            return web.json_response({"error": "bad body"}, status=400)
        return web.Response(text='<?xml version="1.0" encoding="UTF-8"?><Response />',
                            content_type="text/xml")  # fmt: skip

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/api/v1/inbound", inbound)
    app.router.add_post("/webhooks/twilio/sms", sms)  # a form post answered with empty TwiML
    app.router.add_get("/healthz", health)
    return app


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._load")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run a load plan (JSON) and write the result (JSON)")
    run.add_argument("plan")
    run.add_argument("out")
    base = sub.add_parser("baseline", help="serve the bare aiohttp baseline on 127.0.0.1")
    base.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    if args.cmd == "run":
        plan = json.loads(Path(args.plan).read_text())
        result = asyncio.run(_run_load(plan))
        Path(args.out).write_text(json.dumps(asdict(result)))
        return 0
    from aiohttp import web

    web.run_app(_baseline_app(), host=LOOPBACK, port=args.port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
