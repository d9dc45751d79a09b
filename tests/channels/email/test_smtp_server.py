"""The tests' SMTP server closes the connections still open when it stops (tests/smtp_server.py)."""

from __future__ import annotations

import socket
import ssl

from aiosmtpd.controller import Controller

from contact_center.loopback import free_port
from tests.channels.email.conftest import TlsCert
from tests.smtp_server import ClosingController, resource_warnings


class _Handler:
    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 OK"


def _unclosed_after_stop(controller_class: type[Controller], cert: TlsCert) -> list[str]:
    """Stop an implicit-TLS server while a client is connected (a TLS connection cannot close
    without its peer); the unclosed-transport warnings that follow."""
    port = free_port()
    server = controller_class(_Handler(), hostname="127.0.0.1", port=port,
                              ssl_context=cert.server_context())  # fmt: skip
    server.start()
    client_context = ssl.create_default_context(cafile=str(cert.cert))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        client_context.wrap_socket(raw, server_hostname="127.0.0.1") as client,
    ):
        assert client.recv(1024).startswith(b"220")  # the server has made the connection
        with resource_warnings() as left:
            server.stop()
    return left


def test_the_plain_controller_leaves_an_open_connection_unclosed(tls_cert):
    """The failure the closing controller exists for: this must keep failing with aiosmtpd's own."""
    assert any("unclosed transport" in m for m in _unclosed_after_stop(Controller, tls_cert))


def test_the_closing_controller_closes_open_connections_when_it_stops(tls_cert):
    assert _unclosed_after_stop(ClosingController, tls_cert) == []
