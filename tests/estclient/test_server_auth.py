"""Authentication modes of the EST server: Basic, Digest, TLS client certificates, and combinations."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from estclient.testing import EstServer, LocalCa, LocalCaBackend, TlsIdentity
from tests._support.pki import TestPki
from tests.estclient._server_helpers import PREFIX, leaf_from, make_csr, post_csr, raw_client, tls_context

USERS = {"estuser": "estpwd", "other": "s3cret"}


@pytest.fixture(scope="module")
def digest_server() -> Iterator[EstServer]:
    with EstServer(users=USERS, http_auth="digest") as srv:
        yield srv


def test_digest_challenge_and_success(digest_server: EstServer) -> None:
    with raw_client(digest_server) as c:
        _, csr = make_csr("digest-user")
        challenge = post_csr(c, "simpleenroll", csr)
        assert challenge.status_code == 401
        header = challenge.headers["www-authenticate"]
        assert header.startswith('Digest realm="estrealm"')
        assert 'qop="auth"' in header and "nonce=" in header
        digest_server.clear_requests()
        response = post_csr(c, "simpleenroll", csr, auth=httpx.DigestAuth("estuser", "estpwd"))
        assert leaf_from(response).subject == csr.subject
        assert [r.status for r in digest_server.requests] == [401, 200]
        assert digest_server.requests[-1].user == "estuser"
        # the 401 and the authorized retry share one connection (keep-alive on 401)
        assert len({r.connection for r in digest_server.requests}) == 1


def test_digest_wrong_password_and_basic_against_digest(digest_server: EstServer) -> None:
    with raw_client(digest_server) as c:
        _, csr = make_csr()
        assert post_csr(c, "simpleenroll", csr, auth=httpx.DigestAuth("estuser", "wrong")).status_code == 401
        assert post_csr(c, "simpleenroll", csr, auth=("estuser", "estpwd")).status_code == 401


def test_digest_nonce_with_non_ascii_digits_is_invalid() -> None:
    # "²".isdigit() is True but int("²") fails: a forged nonce must be refused, not crash the server.
    from estclient.testing._auth import HttpAuthenticator

    auth = HttpAuthenticator({"u": "p"}, scheme="digest")
    assert auth._nonce_state("\u00b2.0123456789abcdef") == "invalid"
    assert auth._nonce_state(auth._nonce()) == "fresh"


def test_digest_sha256() -> None:
    with EstServer(users=USERS, http_auth="digest", digest_algorithm="SHA-256") as srv, raw_client(srv) as c:
        _, csr = make_csr()
        assert "algorithm=SHA-256" in post_csr(c, "simpleenroll", csr).headers["www-authenticate"]
        response = post_csr(c, "simpleenroll", csr, auth=httpx.DigestAuth("other", "s3cret"))
        assert response.status_code == 200
        assert srv.requests[-1].user == "other"


def test_digest_uri_must_name_the_request(digest_server: EstServer) -> None:
    with raw_client(digest_server) as c:
        _, csr = make_csr()
        good = post_csr(c, "simpleenroll", csr, auth=httpx.DigestAuth("estuser", "estpwd"))
        authorization = good.request.headers["authorization"]
        replayed = c.post(
            "/simplereenroll",
            content=good.request.content,
            headers={"Content-Type": "application/pkcs10", "Authorization": authorization},
        )
        assert replayed.status_code == 401


@pytest.fixture(scope="module")
def cert_server(pki: TestPki) -> Iterator[EstServer]:
    # the server trusts the test PKI for client certificates and requires one
    with EstServer(client_cas=[pki.root.cert, pki.intermediate.cert], require_client_certificate=True) as srv:
        yield srv


def test_client_certificate_authenticates(cert_server: EstServer, pki: TestPki) -> None:
    with raw_client(cert_server, cert=pki.client.chain_path, key=pki.client.key_path) as c:
        _, csr = make_csr("by-cert")
        response = post_csr(c, "simpleenroll", csr)
        assert leaf_from(response).subject == csr.subject
        assert cert_server.requests[-1].client_certificate == pki.client.cert


def test_missing_client_certificate_is_refused_with_reason(cert_server: EstServer) -> None:
    with raw_client(cert_server) as c:
        assert c.get("/cacerts").status_code == 200  # /cacerts stays open
        response = post_csr(c, "simpleenroll", make_csr()[1])
        assert response.status_code == 403
        assert "TLS client certificate" in response.text


def test_untrusted_client_certificate_fails_the_handshake(cert_server: EstServer, tmp_path: Path) -> None:
    stranger = LocalCa.generate("Stranger CA")
    cert, key = stranger.issue_tls_server()
    (tmp_path / "s.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "s.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    ctx = tls_context(cert_server, tmp_path / "s.pem", tmp_path / "s.key")
    with (
        httpx.Client(base_url=cert_server.url + PREFIX, verify=ctx) as c,
        pytest.raises(httpx.TransportError, match="unknown ca"),
    ):
        c.get("/cacerts")


def test_certificate_or_password_and_http_auth_required(pki: TestPki) -> None:
    cas = [pki.root.cert, pki.intermediate.cert]
    with EstServer(users=USERS, client_cas=cas) as either:
        with raw_client(either, cert=pki.client.chain_path, key=pki.client.key_path) as c:
            assert post_csr(c, "simpleenroll", make_csr()[1]).status_code == 200  # the certificate suffices
        with raw_client(either) as c:
            assert post_csr(c, "simpleenroll", make_csr()[1], auth=("other", "s3cret")).status_code == 200
    with (
        EstServer(users=USERS, client_cas=cas, http_auth_required=True) as both,
        raw_client(both, cert=pki.client.chain_path, key=pki.client.key_path) as c,
    ):
        assert post_csr(c, "simpleenroll", make_csr()[1]).status_code == 401
        ok = post_csr(c, "simpleenroll", make_csr()[1], auth=("estuser", "estpwd"))
        assert ok.status_code == 200
        assert both.requests[-1].user == "estuser"
        assert both.requests[-1].client_certificate == pki.client.cert


def test_anonymous_server_and_protected_csrattrs() -> None:
    with EstServer() as open_server, raw_client(open_server) as c:
        assert post_csr(c, "simpleenroll", make_csr()[1]).status_code == 200
    with EstServer(users=USERS, protect_csrattrs=True) as srv, raw_client(srv) as c:
        assert c.get("/csrattrs").status_code == 401
        assert c.get("/csrattrs", auth=("estuser", "estpwd")).status_code == 204


def test_server_uses_given_tls_identity(pki: TestPki) -> None:
    identity = TlsIdentity.from_files(pki.folder / "server-chain.pem", pki.folder / "server.key", pki.ca_bundle)
    with EstServer(LocalCaBackend(), tls=identity) as srv:
        assert srv.ca_file.read_bytes() == pki.root.cert_pem
        ctx = ssl.create_default_context(cafile=str(pki.ca_bundle))
        with httpx.Client(verify=ctx) as c:
            response = c.get(srv.operation_url("cacerts"))
            assert response.status_code == 200
            assert response.extensions["network_stream"].get_extra_info("ssl_object").getpeercert()["subject"]
