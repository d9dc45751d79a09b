"""A throwaway Dovecot IMAP server (maildir) for tests and the benchmark.

Started on a free loopback port with a generated configuration under a temporary directory;
mail is owned by the ``dovecot`` user the Debian package creates (so this needs root, as the
CI container is). Any user name logs in with the one password (a static passdb): each test
simply picks a fresh name to get an empty mailbox. (A passwd-file re-read on change misses
users added within the same second, which made logins fail at random.)
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from contact_center.loopback import free_port  # (re-exported: the tests take it from here)

__all__ = ["PASSWORD", "Dovecot", "free_port"]

PASSWORD = "secret"  # every user's password (static passdb)

_CONF = """\
base_dir = {root}/run
state_dir = {root}/run/state
instance_name = cc-test-{port}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {root}/dovecot.log
mail_location = maildir:~/Maildir
default_internal_user = dovecot
default_login_user = dovenull
mail_uid = dovecot
mail_gid = dovecot
first_valid_uid = 0
mailbox_idle_check_interval = 1 secs
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
protocol imap {{
  mail_max_userip_connections = 200
}}
"""


class Dovecot:
    """One Dovecot instance; use as a context manager or call start/stop."""

    def __init__(self, password: str = PASSWORD) -> None:
        self.password = password
        self.root = Path(tempfile.mkdtemp(prefix="cc-dovecot-"))
        self.port = free_port()
        self.host = "127.0.0.1"
        self.conf = self.root / "dovecot.conf"

    @staticmethod
    def available() -> bool:
        """True when the dovecot binary is installed."""
        return shutil.which("dovecot") is not None

    def start(self) -> Dovecot:
        """Write the configuration and start the server; returns when it accepts connections."""
        for sub in ("run", "mail"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        shutil.chown(self.root / "mail", "dovecot", "dovecot")
        conf = _CONF.format(root=self.root, port=self.port, password=self.password)
        self.conf.write_text(conf)
        subprocess.run(
            ["dovecot", "-c", str(self.conf)],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 1):
                return self
            time.sleep(0.05)
        raise RuntimeError(f"dovecot did not start; log: {self.log()}")

    def log(self) -> str:
        """The server log (for failure messages)."""
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop the server and remove its files."""
        subprocess.run(
            ["doveadm", "-c", str(self.conf), "stop"],
            check=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
