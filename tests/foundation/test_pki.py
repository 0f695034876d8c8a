"""The test PKI and the TLS test server: good chains verify, each broken variant fails the way it should."""

from __future__ import annotations

import datetime as dt
import ssl

import httpx
import pytest
from cryptography import x509

from tests._support.pki import ID_KP_CMC_RA, Credential, TestPki
from tests._support.tls_http import Request, Response, serve_tls


def _hello(req: Request) -> Response:
    peer = req.tls.getpeercert()
    return Response(200, [("Content-Type", "text/plain")], b"client-cert" if peer else b"hello")


def test_chain_structure(pki: TestPki) -> None:
    assert pki.root.cert.issuer == pki.root.cert.subject
    assert pki.intermediate.cert.issuer == pki.root.cert.subject
    assert pki.server.cert.issuer == pki.intermediate.cert.subject
    assert pki.server.chain == (pki.intermediate.cert,)
    pki.server.cert.verify_directly_issued_by(pki.intermediate.cert)
    pki.intermediate.cert.verify_directly_issued_by(pki.root.cert)
    eku = pki.ra.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert ID_KP_CMC_RA in eku.value
    assert pki.key_mode(pki.server) == 0o600


def test_good_server_and_client_certificate(pki: TestPki) -> None:
    ctx = pki.server_context(client_auth=ssl.CERT_REQUIRED)
    with serve_tls(_hello, ctx) as srv, httpx.Client(verify=pki.client_context(pki.client)) as client:
        assert client.get(srv.url + "/").text == "client-cert"
        assert client.get(srv.url.replace("localhost", "127.0.0.1") + "/").status_code == 200


def _fails(pki: TestPki, cred: Credential, url_host: str = "localhost", *, send_chain: bool = True) -> str:
    with (
        serve_tls(_hello, pki.server_context(cred, send_chain=send_chain)) as srv,
        httpx.Client(verify=pki.client_context()) as client,
        pytest.raises(httpx.ConnectError) as err,
    ):
        client.get(srv.url.replace("localhost", url_host))
    return str(err.value)


def test_missing_intermediate_fails(pki: TestPki) -> None:
    assert "unable to get local issuer certificate" in _fails(pki, pki.server, send_chain=False)


def test_self_signed_fails(pki: TestPki) -> None:
    assert "self-signed certificate" in _fails(pki, pki.self_signed)


def test_wrong_name_fails(pki: TestPki) -> None:
    assert "mismatch" in _fails(pki, pki.wrong_name)


def test_not_yet_valid_fails(pki: TestPki) -> None:
    assert pki.not_yet_valid.cert.not_valid_before_utc > dt.datetime.now(dt.UTC)
    assert "not yet valid" in _fails(pki, pki.not_yet_valid)


def test_expired_fails(pki: TestPki) -> None:
    assert "expired" in _fails(pki, pki.expired)
