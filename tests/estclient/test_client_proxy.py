"""EST through an HTTP CONNECT proxy: the tunnel works, and the server checks still run end to end."""

from __future__ import annotations

import select
import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest
from cryptography import x509

from estclient import AsyncEstClient, EstClient, HostnameMismatchError, TrustAnchors
from estclient.testing import EstServer, TlsIdentity
from tests._support.pki import TestPki


class _Tunnel(socketserver.BaseRequestHandler):
    server: _Proxy

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            head += chunk
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method != "CONNECT":
            self.request.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        self.server.targets.append(target)
        _, port = target.rsplit(":", 1)
        upstream = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
        self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        sockets = [self.request, upstream]
        try:
            while True:
                readable, _, _ = select.select(sockets, [], [], 10)
                if not readable:
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is self.request else self.request).sendall(data)
        finally:
            upstream.close()


class _Proxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    targets: list[str]


@pytest.fixture(scope="module")
def proxy() -> Iterator[_Proxy]:
    server = _Proxy(("127.0.0.1", 0), _Tunnel)
    server.targets = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def proxy_url(proxy: _Proxy) -> str:
    return f"http://127.0.0.1:{proxy.server_address[1]}"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_enrollment_through_a_connect_proxy(proxy: _Proxy) -> None:
    with EstServer(users={"u": "p"}) as srv:
        trust = TrustAnchors.explicit_anchors(srv.ca_file)
        with EstClient(srv.url, trust=trust, auth=("u", "p"), proxy=proxy_url(proxy)) as c:
            assert c.cacerts().authenticated_by == "explicit"
        assert f"localhost:{srv.port}" in proxy.targets
        assert srv.requests[-1].operation == "cacerts"


def test_server_checks_run_through_the_tunnel(proxy: _Proxy, pki: TestPki) -> None:
    wrong = pki.wrong_name
    with EstServer(users={"u": "p"}, tls=TlsIdentity(wrong.cert, wrong.key, wrong.chain, (pki.root.cert,))) as srv:
        trust = TrustAnchors.explicit_anchors([pki.root.cert])
        client = EstClient(srv.url, trust=trust, auth=("u", "p"), proxy=proxy_url(proxy))
        with client, pytest.raises(HostnameMismatchError) as info:
            client.cacerts()
        assert srv.requests == []
    assert info.value.names == ("wrong-host.example.test",)


@pytest.mark.anyio
async def test_async_through_a_connect_proxy(proxy: _Proxy) -> None:
    with EstServer() as srv:
        trust = TrustAnchors.explicit_anchors(srv.ca_file)
        async with AsyncEstClient(srv.url, trust=trust, proxy=proxy_url(proxy)) as c:
            cas = await c.cacerts()
        assert all(isinstance(cert, x509.Certificate) for cert in cas.certificates)
        assert f"localhost:{srv.port}" in proxy.targets
