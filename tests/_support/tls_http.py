"""A small threaded HTTP/1.1 server over real TLS on loopback, for tests.

It follows the rules that keep connection-based authentication (NTLM) and keep-alive honest: Nagle is off, every
response carries Content-Length (401s included) and the connection stays open between requests.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    """What a handler sees of one request."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    tls: ssl.SSLSocket
    connection_state: dict[str, Any]  # survives between requests on the same connection


@dataclass
class Response:
    """What a handler returns."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


Handler = Callable[[Request], Response]


class _RequestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        assert isinstance(self.request, ssl.SSLSocket)
        self.request.settimeout(30)
        self.request.do_handshake()
        super().setup()
        self._connection_state: dict[str, Any] = {}

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        assert isinstance(self.connection, ssl.SSLSocket)
        req = Request(
            self.command,
            self.path,
            {k.lower(): v for k, v in self.headers.items()},
            body,
            self.connection,
            self._connection_state,
        )
        self.server.requests.append(req)
        resp = self.server.handler(req)
        self.send_response(resp.status)
        for name, value in resp.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        self.wfile.write(resp.body)

    do_GET = do_POST = do_PUT = _handle


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    handler: Handler
    requests: list[Request]
    context: ssl.SSLContext

    def get_request(self) -> tuple[socket.socket, Any]:
        # Wrap without handshaking: the handshake runs in the connection's own thread (see setup()), so a
        # client that stalls or fails it never blocks the accept loop.
        sock, addr = self.socket.accept()
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr


@dataclass
class RunningServer:
    """A server started by :func:`serve_tls`."""

    host: str
    port: int
    requests: list[Request]

    @property
    def url(self) -> str:
        """The base URL, ``https://localhost:PORT``."""
        return f"https://{self.host}:{self.port}"


@contextmanager
def serve_tls(handler: Handler, context: ssl.SSLContext, host: str = "localhost") -> Iterator[RunningServer]:
    """Serve ``handler`` over TLS on 127.0.0.1 (an ephemeral port) until the block ends."""
    server = _Server(("127.0.0.1", 0), _RequestHandler)
    server.context = context
    server.handler = handler
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield RunningServer(host, server.server_address[1], server.requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
