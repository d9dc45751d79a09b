"""A scaled-out deployment on loopback without Docker (``make cluster``, the fault runs).

``Cluster`` starts its own Redis (``redis-server`` on a free port, memory only, so a fault run
may restart it), uses the local PostgreSQL with a database of its own (re-created), migrates,
seeds the demo data and starts:

* ``web1``, ``web2``: ``contact-center serve`` with ``CC_ROUTING_ENABLED=false``, sharing
  Socket.IO through ``AsyncRedisManager`` and events through the Redis bus;
* ``lead1``, ``lead2``: ``contact-center lead``, contending for the router lock (one leads);
* ``worker1``: ``contact-center worker`` (RQ).

Every process gets the same secret (a token from one web process works at the other), data
directory and database. ``python -m contact_center.cluster`` runs it until Ctrl-C and prints
the URLs; with ``nginx`` installed it also serves both web processes behind one sticky port
(``deploy/nginx.conf`` is the production version of that config).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from contact_center.loopback import LOOPBACK, free_port, wait_for_http

__all__ = ["Cluster", "ClusterConfig", "main", "render_nginx"]

ROOT = Path(__file__).resolve().parent.parent


@dataclass(slots=True)
class ClusterConfig:
    """How many of each process, and where."""

    web: int = 2
    leaders: int = 2
    workers: int = 1
    pg_admin_url: str = "postgresql://postgres@127.0.0.1:5432/test"
    pg_database: str = "cc_cluster"
    nginx_port: int | None = None  # serve the web processes behind one port if nginx exists
    extra_env: dict[str, str] = field(default_factory=dict)


class Cluster:
    """Start, inspect, kill and restart the processes of a local scaled-out deployment."""

    def __init__(self, config: ClusterConfig | None = None, workdir: Path | None = None) -> None:
        self.config = config or ClusterConfig()
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="cc-cluster-")
        self.workdir = workdir or Path(self._tmp.name if self._tmp else ".")
        self.redis_port = free_port()
        self.redis_url = f"redis://{LOOPBACK}:{self.redis_port}/0"
        self.database_url = self.config.pg_admin_url.rsplit("/", 1)[0] + (
            f"/{self.config.pg_database}"
        )
        self.secret = secrets.token_urlsafe(32)
        self.ports: dict[str, int] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self.redis: subprocess.Popen[str] | None = None
        self._redis_reader: threading.Thread | None = None
        self.nginx: subprocess.Popen[bytes] | None = None

    # -- environment ----------------------------------------------------------------------------

    def env(self, name: str, port: int | None = None) -> dict[str, str]:
        """The environment of one process (``name`` decides the role's switches)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
        base = f"http://{LOOPBACK}:{self.config.nginx_port or self.ports.get('web1', 8080)}"
        env.update(
            CC_DATABASE_URL=self.database_url, CC_REDIS_URL=self.redis_url,
            CC_SECRET_KEY=self.secret, CC_DATA_DIR=str(self.workdir / "data"),
            CC_PUBLIC_BASE_URL=base, CC_HOST=LOOPBACK, CC_LOG_LEVEL="WARNING",
            CC_BACKUP_DAILY="false", CC_EVENTS_CHANNEL="cc-cluster",
            CC_RQ_QUEUE="cc-cluster", CC_LEADER_TTL_MS="3000",
            # nginx on loopback forwards the client; the simulator's chat customers all come
            # from this machine, so the widget's per-address flood limits do not apply to it
            CC_TRUSTED_PROXIES=LOOPBACK, CC_CHAT_UNLIMITED_ADDRESSES=LOOPBACK,
        )  # fmt: skip
        if port is not None:
            env["CC_PORT"] = str(port)
        if name.startswith("web"):
            env["CC_ROUTING_ENABLED"] = "false"
        env.update(self.config.extra_env)
        return env

    def url(self, name: str) -> str:
        """``http://127.0.0.1:<port>`` of a web or leader process."""
        return f"http://{LOOPBACK}:{self.ports[name]}"

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> Cluster:
        """Redis, database, migrate + demo, then every process (each answering /healthz)."""
        self.start_redis()
        self._recreate_database()
        for i in range(1, self.config.web + 1):
            self.ports[f"web{i}"] = free_port()
        for i in range(1, self.config.leaders + 1):
            self.ports[f"lead{i}"] = free_port()
        cli = str(Path(sys.executable).parent / "contact-center")
        seed = self.env("seed")
        subprocess.run([cli, "migrate"], env=seed, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, timeout=120)  # fmt: skip
        subprocess.run([cli, "demo", "--no-serve"], env=seed, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, timeout=120)  # fmt: skip
        for name in self.ports:
            self.start_process(name)
        for i in range(1, self.config.workers + 1):
            self.start_process(f"worker{i}")
        if self.config.nginx_port and shutil.which("nginx"):
            self._start_nginx()
        return self

    def start_process(self, name: str) -> None:
        """(Re)start one process by name and wait until it answers (workers: until alive)."""
        cli = str(Path(sys.executable).parent / "contact-center")
        command = (
            "serve" if name.startswith("web") else "lead" if name.startswith("lead") else ("worker")
        )
        log = self._logs.get(name) or open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115
        self._logs[name] = log
        self.procs[name] = subprocess.Popen(
            [cli, command], env=self.env(name, self.ports.get(name)), cwd=ROOT, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        if name in self.ports:
            wait_for_http(f"{self.url(name)}/healthz", 60.0, self.procs[name])

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to a process's whole group (a worker forks its scheduler) and reap it."""
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(30)

    def stop(self) -> None:
        """Everything down (SIGTERM, then SIGKILL), Redis last; the temp directory removed."""
        if self.nginx is not None:
            self.nginx.terminate()
            self.nginx.wait(10)
            self.nginx = None
        for name in list(self.procs):
            proc = self.procs[name]
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            del self.procs[name]
        for log in self._logs.values():
            log.close()
        self._logs.clear()
        self.stop_redis()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- Redis and PostgreSQL ---------------------------------------------------------------------

    def start_redis(self, timeout: float = 20) -> None:
        """Our own ``redis-server`` (memory only) on ``redis_port``."""
        ready = threading.Event()
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", LOOPBACK, "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

        def follow(out: IO[str]) -> None:
            for line in out:
                if "Ready to accept connections" in line:
                    ready.set()

        assert self.redis.stdout is not None
        self._redis_reader = threading.Thread(target=follow, args=(self.redis.stdout,),
                                              daemon=True)  # fmt: skip
        self._redis_reader.start()
        if not ready.wait(timeout):
            raise RuntimeError("redis-server did not start")

    def stop_redis(self) -> None:
        """Kill our Redis (everything in it is gone, as after a crash)."""
        if self.redis is None:
            return
        self.redis.kill()
        self.redis.wait(10)
        if self._redis_reader is not None:
            self._redis_reader.join(10)
        if self.redis.stdout is not None:
            self.redis.stdout.close()
        self.redis = None

    def _recreate_database(self) -> None:
        import psycopg

        with psycopg.connect(self.config.pg_admin_url, autocommit=True) as pg:
            pg.execute(f'drop database if exists "{self.config.pg_database}" with (force)')
            pg.execute(f'create database "{self.config.pg_database}"')

    # -- nginx ------------------------------------------------------------------------------

    def _start_nginx(self) -> None:
        conf = self.workdir / "nginx.conf"
        upstreams = [f"{LOOPBACK}:{self.ports[n]}" for n in self.ports if n.startswith("web")]
        assert self.config.nginx_port is not None
        conf.write_text(render_nginx(upstreams, self.config.nginx_port, self.workdir))
        self.nginx = subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", str(self.workdir), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_http(f"http://{LOOPBACK}:{self.config.nginx_port}/healthz", 30.0)

    # -- inspection -------------------------------------------------------------------------

    def leader(self) -> str | None:
        """The process holding the router lock right now (its token names its pid), if any."""
        import redis

        with redis.Redis.from_url(self.redis_url, socket_timeout=2) as conn:
            token = conn.get("cc-cluster:router-leader")
        if token is None:
            return None
        pid = int(token.decode().split(":")[1])
        return next((n for n, p in self.procs.items() if p.pid == pid), None)

    def describe(self) -> dict[str, Any]:
        """Names, URLs and pids (what ``make cluster`` prints)."""
        return {
            "web": [self.url(n) for n in self.ports if n.startswith("web")],
            "leaders": [self.url(n) for n in self.ports if n.startswith("lead")],
            "nginx": f"http://{LOOPBACK}:{self.config.nginx_port}" if self.nginx else None,
            "redis": self.redis_url,
            "database": self.database_url,
            "pids": {n: p.pid for n, p in self.procs.items()},
            "logs": str(self.workdir),
        }


def render_nginx(upstreams: list[str], port: int, prefix: Path) -> str:
    """``deploy/nginx.conf`` for these upstream ``host:port`` servers, listening on loopback."""
    template = (ROOT / "deploy" / "nginx.conf").read_text()
    servers = "\n        ".join(f"server {u};" for u in upstreams)
    return (
        template.replace("# @UPSTREAMS@", servers)
        .replace("listen 80;", f"listen {LOOPBACK}:{port};")
        .replace("@PREFIX@", str(prefix))
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m contact_center.cluster``: run until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m contact_center.cluster", description=__doc__)
    parser.add_argument("--web", type=int, default=2)
    parser.add_argument("--leaders", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--nginx-port", type=int, default=8080)
    args = parser.parse_args(argv)
    config = ClusterConfig(web=args.web, leaders=args.leaders, workers=args.workers,
                           nginx_port=args.nginx_port)  # fmt: skip
    cluster = Cluster(config, workdir=Path(tempfile.mkdtemp(prefix="cc-cluster-")))
    try:
        cluster.start()
        info = cluster.describe()
        print(json.dumps(info, indent=2))
        print("demo logins as in `contact-center demo` (password demo-password); Ctrl-C stops",
              flush=True)  # fmt: skip

        def interrupt(*_: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, interrupt)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(1)
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
