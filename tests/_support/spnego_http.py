"""A minimal SPNEGO peer pair for the foundation tests: a pyspnego acceptor handler and a test-only httpx.Auth.

The handler plugs into :func:`tests._support.tls_http.serve_tls`: it answers 401 with ``WWW-Authenticate:
Negotiate`` and ``WWW-Authenticate: NTLM``, keeps one pyspnego acceptor context per TCP connection (as IIS does)
and, once a connection has authenticated, serves every later request on it without a new handshake.

:class:`SpnegoTestAuth` is the matching client side, kept deliberately small: it proves the fixtures (NTLM user
file, KDC, keytab) work with pyspnego on both sides. The library's own auth lives in ``certsrv``.
"""

from __future__ import annotations

import base64
from collections.abc import Generator
from dataclasses import dataclass, field

import httpx
import spnego
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from spnego.channel_bindings import GssChannelBindings

from tests._support.tls_http import Handler, Request, Response

CHALLENGE_HEADERS = [("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", "NTLM")]


def tls_server_end_point(cert_der: bytes) -> GssChannelBindings:
    """RFC 5929 tls-server-end-point binding of a server certificate (SHA-256 for MD5/SHA-1 signatures)."""
    cert = x509.load_der_x509_certificate(cert_der)
    algorithm = cert.signature_hash_algorithm
    if algorithm is None or isinstance(algorithm, hashes.MD5 | hashes.SHA1):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(cert_der)
    return GssChannelBindings(application_data=b"tls-server-end-point:" + digest.finalize())


@dataclass
class AcceptorStats:
    """What the handler saw: handshake legs and completed logins, per scheme."""

    legs: int = 0
    logins: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _parse_authorization(value: str | None) -> tuple[str, bytes] | None:
    if not value or " " not in value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() not in ("negotiate", "ntlm"):
        return None
    return ("Negotiate" if scheme.lower() == "negotiate" else "NTLM"), base64.b64decode(token.strip())


def make_handler(server_cert_der: bytes) -> tuple[Handler, AcceptorStats]:
    """A ``serve_tls`` handler that requires Negotiate or NTLM and answers with the user's name."""
    stats = AcceptorStats()

    def handler(req: Request) -> Response:
        state = req.connection_state
        if "user" not in state:
            parsed = _parse_authorization(req.headers.get("authorization"))
            if parsed is None:
                return Response(401, list(CHALLENGE_HEADERS), b"401 - Unauthorized")
            scheme, token = parsed
            stats.legs += 1
            ctx = state.get("ctx")
            if ctx is None or state.get("scheme") != scheme:
                ctx = spnego.server(
                    hostname="localhost",
                    service="HTTP",
                    protocol="negotiate" if scheme == "Negotiate" else "ntlm",
                    channel_bindings=tls_server_end_point(server_cert_der),
                )
                state["ctx"], state["scheme"] = ctx, scheme
            try:
                out = ctx.step(token)
            except Exception as exc:  # any acceptor failure is a rejected login
                stats.failures.append(type(exc).__name__)
                state.pop("ctx", None)
                return Response(401, list(CHALLENGE_HEADERS), b"401 - Unauthorized")
            if not ctx.complete:
                assert out is not None
                return Response(401, [("WWW-Authenticate", f"{scheme} {base64.b64encode(out).decode()}")], b"")
            state["user"] = ctx.client_principal or ""
            stats.logins.append(state["user"])
            state.pop("ctx", None)
            if out:
                state["final"] = f"{scheme} {base64.b64encode(out).decode()}"
        headers = []
        final = state.pop("final", None)
        if final:
            headers.append(("WWW-Authenticate", final))
        return Response(200, headers, f"hello {state['user']} {req.method} {len(req.body)}".encode())

    return handler, stats


def _server_token(response: httpx.Response, scheme: str) -> bytes | None:
    for value in response.headers.get_list("www-authenticate"):
        name, _, token = value.partition(" ")
        if name.lower() == scheme.lower() and token.strip():
            return base64.b64decode(token.strip())
    return None


class SpnegoTestAuth(httpx.Auth):
    """Test-only httpx auth: answers a 401 with a pyspnego client handshake (channel binding included)."""

    def __init__(self, username: str, password: str | None, protocol: str, hostname: str = "localhost") -> None:
        self.username = username
        self.password = password
        self.protocol = protocol
        self.scheme = "NTLM" if protocol == "ntlm" else "Negotiate"
        self.hostname = hostname
        self.handshakes = 0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Send as is; on a 401 offering our scheme, run the handshake on the same connection."""
        response = yield request
        offered = [v.split(" ")[0].lower() for v in response.headers.get_list("www-authenticate")]
        if response.status_code != 401 or self.scheme.lower() not in offered:
            return
        self.handshakes += 1
        ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
        ctx = spnego.client(
            self.username,
            self.password,
            hostname=self.hostname,
            service="HTTP",
            protocol=self.protocol,
            channel_bindings=tls_server_end_point(ssl_object.getpeercert(True)),
        )
        token = ctx.step()
        while token is not None:
            request.headers["Authorization"] = f"{self.scheme} {base64.b64encode(token).decode()}"
            response = yield request
            in_token = _server_token(response, self.scheme)
            if in_token is None:
                return
            token = ctx.step(in_token)
            if response.status_code != 401:
                return  # the last step checked the server's mutual-authentication token
