"""EstClient against small TLS peers written for one behaviour each (real TLS on loopback, tests/_support/tls_http).

These cover what the project's EST server does not do on purpose: closing the connection after /csrattrs (so a
linked CSR must be re-signed), redirects, Retry-After as an HTTP date, load-balancer cookies, closing idle
connections, and answering with the RFC 7030 Appendix A.4 bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import socket
import ssl
import time
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from estclient import (
    AsyncEstClient,
    CsrSpec,
    EnrollResult,
    EstClient,
    EstHttpError,
    Pending,
    ServerKeyGenResult,
    TrustAnchors,
    load_csr,
)
from estclient._b64 import decode_body, encode_body
from estclient._csr import csr_challenge_password
from estclient._csrattrs import OID_CHALLENGE_PASSWORD, CsrAttrOid, CsrAttrs, encode_csrattrs
from estclient._pkcs7 import build_certs_only
from tests._support.pki import TestPki
from tests._support.tls_http import Request, Response, serve_tls
from tests.estclient import _vectors

CERTS_ONLY = [("Content-Type", "application/pkcs7-mime; smime-type=certs-only")]


def issue_for(pki: TestPki, body: bytes) -> tuple[x509.CertificateSigningRequest, bytes]:
    csr = x509.load_der_x509_csr(decode_body(body))
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(pki.intermediate.cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
    )
    issued = builder.sign(pki.intermediate.key, hashes.SHA256())
    return csr, encode_body(build_certs_only([issued, pki.intermediate.cert]))


def tls12(pki: TestPki) -> ssl.SSLContext:
    return pki.server_context(max_version=ssl.TLSVersion.TLSv1_2)


def test_linked_csr_is_resigned_when_the_connection_changes(pki: TestPki) -> None:
    seen: list[tuple[str, int, int]] = []

    def handler(req: Request) -> Response:
        conn = req.connection_state.setdefault("id", len({c for _, c, _ in seen}) + 1)
        if req.method == "GET":
            seen.append(("csrattrs", conn, 200))
            body = encode_body(encode_csrattrs(CsrAttrs((CsrAttrOid(OID_CHALLENGE_PASSWORD),))))
            return Response(200, [("Content-Type", "application/csrattrs"), ("Connection", "close")], body)
        csr, issued = issue_for(pki, req.body)
        expected = base64.b64encode(req.tls.get_channel_binding("tls-unique") or b"").decode()
        if csr_challenge_password(csr) != expected:
            seen.append(("simpleenroll", conn, 400))
            return Response(400, [("Content-Type", "text/plain")], b"PoP check failed: tls-unique mismatch")
        seen.append(("simpleenroll", conn, 200))
        return Response(200, CERTS_ONLY, issued)

    with serve_tls(handler, tls12(pki)) as srv:
        trust = TrustAnchors.explicit_anchors([pki.root.cert])
        with EstClient(srv.url, trust=trust, pop_linking="always") as c:
            result = c.simple_enroll(CsrSpec(ec.generate_private_key(ec.SECP256R1()), "CN=relinked"))
    assert isinstance(result, EnrollResult)
    # the first POST went out on a new connection with the old tls-unique; the re-signed one succeeded there
    assert seen == [("csrattrs", 1, 200), ("simpleenroll", 2, 400), ("simpleenroll", 2, 200)]


def test_get_redirect_is_followed_with_the_same_checks(pki: TestPki) -> None:
    def handler(req: Request) -> Response:
        if req.path == "/.well-known/est/cacerts":
            return Response(301, [("Location", "/.well-known/est/moved/cacerts")])
        return Response(200, CERTS_ONLY, encode_body(build_certs_only([pki.root.cert, pki.intermediate.cert])))

    with serve_tls(handler, pki.server_context()) as srv:
        with EstClient(srv.url, trust=TrustAnchors.explicit_anchors([pki.root.cert])) as c:
            cas = c.cacerts()
        assert cas.certificates == (pki.root.cert, pki.intermediate.cert)
        assert [r.path for r in srv.requests] == ["/.well-known/est/cacerts", "/.well-known/est/moved/cacerts"]


def test_post_redirect_is_not_followed(pki: TestPki) -> None:
    def handler(req: Request) -> Response:
        return Response(307, [("Location", "https://elsewhere.example.test/.well-known/est/simpleenroll")])

    with serve_tls(handler, pki.server_context()) as srv:
        client = EstClient(srv.url, trust=TrustAnchors.explicit_anchors([pki.root.cert]), pop_linking="never")
        spec = CsrSpec(ec.generate_private_key(ec.SECP256R1()), "CN=x", apply_server_requirements=False)
        with client, pytest.raises(EstHttpError) as info:
            client.simple_enroll(spec)
        assert len(srv.requests) == 1
    assert "elsewhere.example.test" in info.value.hint


def test_retry_after_http_date_then_issued(pki: TestPki) -> None:
    calls: list[int] = []

    def handler(req: Request) -> Response:
        calls.append(1)
        if len(calls) <= 2:  # pending twice: once returned, once waited for
            when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
            return Response(202, [("Retry-After", email.utils.format_datetime(when, usegmt=True))], b"queued")
        _, issued = issue_for(pki, req.body)
        return Response(200, CERTS_ONLY, issued)

    state: dict[str, Any] = {}
    with serve_tls(handler, pki.server_context()) as srv:
        trust = TrustAnchors.explicit_anchors([pki.root.cert])
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dated")]))
            .sign(key, hashes.SHA256())
        )
        with EstClient(srv.url, trust=trust) as c:
            state["first"] = c.simple_enroll(csr)
            state["second"] = c.simple_enroll(csr, wait=True)
    assert isinstance(state["first"], Pending)
    assert state["first"].server_text == "queued"
    assert 0 <= state["first"].retry_after <= 2
    assert isinstance(state["second"], EnrollResult)
    assert len(calls) == 3


def test_redirect_to_plain_http_is_refused(pki: TestPki) -> None:
    import http.server
    import threading

    from estclient import EstError

    reached: list[str] = []

    class Plain(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            reached.append(self.path)
            body = encode_body(build_certs_only([pki.other_root.cert]))
            self.send_response(200)
            self.send_header("Content-Type", "application/pkcs7-mime")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Plain)
    thread = threading.Thread(target=plain.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        location = f"http://127.0.0.1:{plain.server_address[1]}/.well-known/est/cacerts"

        def handler(req: Request) -> Response:
            return Response(302, [("Location", location)])

        with serve_tls(handler, pki.server_context()) as srv:
            client = EstClient(srv.url, trust=TrustAnchors.explicit_anchors([pki.root.cert]))
            with client, pytest.raises(EstError) as info:
                client.cacerts()
        assert "not HTTPS" in str(info.value)
        assert reached == []  # refused before the request went out in clear
    finally:
        plain.shutdown()
        plain.server_close()
        thread.join(5)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_async_redirects_get_followed_post_refused_http_refused(pki: TestPki) -> None:
    """The async client's redirect rules are the sync client's: GET within HTTPS only, never a POST."""
    from estclient import AsyncEstClient, EstError

    def handler(req: Request) -> Response:
        if req.path == "/.well-known/est/cacerts":
            return Response(301, [("Location", "/.well-known/est/moved/cacerts")])
        if req.path == "/.well-known/est/moved/cacerts":
            return Response(200, CERTS_ONLY, encode_body(build_certs_only([pki.root.cert])))
        if req.path == "/.well-known/est/csrattrs":
            return Response(302, [("Location", "http://127.0.0.1:9/.well-known/est/csrattrs")])
        return Response(307, [("Location", "https://elsewhere.example.test/.well-known/est/simpleenroll")])

    with serve_tls(handler, pki.server_context()) as srv:
        trust = TrustAnchors.explicit_anchors([pki.root.cert])
        async with AsyncEstClient(srv.url, trust=trust, pop_linking="never") as c:
            assert (await c.cacerts()).certificates == (pki.root.cert,)
            with pytest.raises(EstError) as downgrade:
                await c.csrattrs()
            spec = CsrSpec(ec.generate_private_key(ec.SECP256R1()), "CN=x", apply_server_requirements=False)
            with pytest.raises(EstHttpError) as refused:
                await c.simple_enroll(spec)
        paths = [r.path for r in srv.requests]
    assert paths == [
        "/.well-known/est/cacerts",
        "/.well-known/est/moved/cacerts",
        "/.well-known/est/csrattrs",
        "/.well-known/est/simpleenroll",
    ]
    assert "not HTTPS" in str(downgrade.value)
    assert "elsewhere.example.test" in refused.value.hint


def _signed_csr(common_name: str) -> x509.CertificateSigningRequest:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name.removeprefix("CN="))])
    key = ec.generate_private_key(ec.SECP256R1())
    return x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())


def _cookie_peer(pki: TestPki, seen: list[str]) -> Any:
    """A peer that pins the client with a load-balancer cookie on its first answer and records what comes back."""

    def handler(req: Request) -> Response:
        seen.append(req.headers.get("cookie", ""))
        headers = list(CERTS_ONLY)
        if len(seen) == 1:
            headers.append(("Set-Cookie", "lb=backend-2; Path=/; Secure"))
        if req.method == "GET":
            return Response(200, headers, encode_body(build_certs_only([pki.root.cert])))
        return Response(200, headers, issue_for(pki, req.body)[1])

    return serve_tls(handler, pki.server_context())


def test_cookies_set_by_the_server_are_sent_back(pki: TestPki) -> None:
    # EST needs no cookies, but load balancers pin clients with them: the client's jar keeps them (the jar skips
    # only its parsing work on answers that set none).
    seen: list[str] = []
    csr = _signed_csr("CN=pinned")
    with _cookie_peer(pki, seen) as srv, EstClient(srv.url, trust=TrustAnchors.explicit_anchors([pki.root.cert])) as c:
        c.cacerts()
        c.simple_enroll(csr)
        c.cacerts()
    assert seen == ["", "lb=backend-2", "lb=backend-2"]


@pytest.mark.anyio
async def test_async_cookies_set_by_the_server_are_sent_back(pki: TestPki) -> None:
    seen: list[str] = []
    csr = _signed_csr("CN=pinned")
    trust = TrustAnchors.explicit_anchors([pki.root.cert])
    with _cookie_peer(pki, seen) as srv:
        async with AsyncEstClient(srv.url, trust=trust) as c:
            await c.cacerts()
            await c.simple_enroll(csr)
    assert seen == ["", "lb=backend-2"]


def _closing_peer(pki: TestPki) -> Any:
    def handler(req: Request) -> Response:
        req.connection_state.setdefault("requests", 0)
        req.connection_state["requests"] += 1
        return Response(200, CERTS_ONLY, encode_body(build_certs_only([pki.root.cert])))

    return serve_tls(handler, pki.server_context())


def _close_server_side(srv: Any) -> None:
    """Close the connection of the last request from the server's side, as an idle timeout on the server does."""
    srv.requests[-1].tls.shutdown(socket.SHUT_RDWR)
    time.sleep(0.2)  # let the FIN reach the client's socket


def test_a_pooled_connection_the_server_closed_is_replaced(pki: TestPki) -> None:
    with _closing_peer(pki) as srv, EstClient(srv.url, trust=TrustAnchors.explicit_anchors([pki.root.cert])) as c:
        c.cacerts()
        _close_server_side(srv)
        c.cacerts()
    assert [r.connection_state["requests"] for r in srv.requests] == [1, 1]  # the second on a new connection


@pytest.mark.anyio
async def test_async_pooled_connection_the_server_closed_is_replaced(pki: TestPki) -> None:
    # The async transport answers httpcore's "is the idle connection readable?" itself (from the socket looked up
    # once): a connection the server closed must still be seen as closed and replaced.
    with _closing_peer(pki) as srv:
        async with AsyncEstClient(srv.url, trust=TrustAnchors.explicit_anchors([pki.root.cert])) as c:
            await c.cacerts()
            await c.cacerts()
            _close_server_side(srv)
            await c.cacerts()
    assert [r.connection_state["requests"] for r in srv.requests] == [2, 2, 1]  # same state dict per connection


def _rfc7030_a4_peer(pki: TestPki, seen: list[bytes]) -> Any:
    """A peer that answers /serverkeygen with RFC 7030 Appendix A.4's response, as printed (LF line ends)."""
    body = _vectors.text("rfc7030_a4_serverkeygen_response.txt")

    def handler(req: Request) -> Response:
        seen.append(req.body)
        return Response(200, [("Content-Type", "multipart/mixed ; boundary=estServerExampleBoundary")], body)

    return serve_tls(handler, pki.server_context())


def test_rfc7030_a4_answer_read_over_tls(pki: TestPki) -> None:
    # The RFC's own request (a signed CSR) goes out as it is, and its own answer comes back parsed.
    request = load_csr(decode_body(_vectors.text("rfc7030_a4_serverkeygen_request.b64")))
    seen: list[bytes] = []
    with (
        _rfc7030_a4_peer(pki, seen) as srv,
        EstClient(srv.url, trust=TrustAnchors.explicit_anchors([pki.root.cert])) as c,
    ):
        result = c.server_keygen(request)
    assert isinstance(result, ServerKeyGenResult)
    assert result.certificate.serial_number == 22
    assert result.private_key.public_key() == result.certificate.public_key()
    assert load_csr(decode_body(seen[0])) == request


@pytest.mark.anyio
async def test_async_rfc7030_a4_answer_read_over_tls(pki: TestPki) -> None:
    request = load_csr(decode_body(_vectors.text("rfc7030_a4_serverkeygen_request.b64")))
    with _rfc7030_a4_peer(pki, []) as srv:
        async with AsyncEstClient(srv.url, trust=TrustAnchors.explicit_anchors([pki.root.cert])) as c:
            result = await c.server_keygen(request)
    assert isinstance(result, ServerKeyGenResult)
    assert result.private_key.public_key() == result.certificate.public_key()
