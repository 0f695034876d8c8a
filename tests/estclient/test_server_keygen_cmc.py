"""/serverkeygen (plain and CMS-encrypted keys) and /fullcmc on the EST server, over real TLS."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from estclient._cmc import build_pki_data, parse_pki_response
from estclient._csr import build_csr
from estclient._errors import CmcFailError, ServerKeyGenError
from estclient._serverkeygen import parse_serverkeygen_response
from estclient.testing import EnrollmentRejected, EstServer, Issued, LocalCaBackend, Requester
from tests._support.pki import TestPki
from tests.estclient._server_helpers import make_csr, post_csr, raw_client

SHARED_KEY_ID = b"lab-key-1"
SHARED_KEY = os.urandom(32)


@pytest.fixture(scope="module")
def server(pki: TestPki) -> Iterator[EstServer]:
    cas = [pki.root.cert, pki.intermediate.cert]
    with EstServer(client_cas=cas, shared_keys={SHARED_KEY_ID: SHARED_KEY}) as srv:
        yield srv


def _ski(cert: x509.Certificate) -> bytes:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def test_serverkeygen_plain_pkcs8(server: EstServer) -> None:
    _, csr = make_csr("keygen-plain")  # P-256: the server generates a P-256 key
    with raw_client(server) as c:
        response = post_csr(c, "serverkeygen", csr)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("multipart/mixed; boundary=")
    result = parse_serverkeygen_response(response.headers["content-type"], response.content)
    assert isinstance(result.private_key, ec.EllipticCurvePrivateKey)
    assert isinstance(result.private_key.curve, ec.SECP256R1)
    assert result.certificate.public_key() == result.private_key.public_key()
    assert result.certificate.subject == csr.subject
    assert not result.encrypted


def test_serverkeygen_encrypted_to_the_client_rsa_key(server: EstServer, pki: TestPki) -> None:
    assert isinstance(pki.client_rsa.key, rsa.RSAPrivateKey)
    csr = build_csr(
        ec.generate_private_key(ec.SECP256R1()), "CN=keygen-enc", asymmetric_decrypt_key_id=_ski(pki.client_rsa.cert)
    )
    with raw_client(server, cert=pki.client_rsa.chain_path, key=pki.client_rsa.key_path) as c:
        response = post_csr(c, "serverkeygen", csr)
    assert response.status_code == 200, response.text
    content_type = response.headers["content-type"]
    with pytest.raises(ServerKeyGenError):
        parse_serverkeygen_response(content_type, response.content)  # encrypted: needs the decrypt key
    result = parse_serverkeygen_response(content_type, response.content, decrypt_key=pki.client_rsa.key)
    assert result.encrypted
    assert result.certificate.public_key() == result.private_key.public_key()


def test_serverkeygen_encrypted_with_a_shared_key(server: EstServer) -> None:
    csr = build_csr(ec.generate_private_key(ec.SECP256R1()), "CN=keygen-kek", decrypt_key_id=SHARED_KEY_ID)
    with raw_client(server) as c:
        response = post_csr(c, "serverkeygen", csr)
    assert response.status_code == 200, response.text
    result = parse_serverkeygen_response(response.headers["content-type"], response.content, decrypt_key=SHARED_KEY)
    assert result.encrypted
    assert result.certificate.public_key() == result.private_key.public_key()


def test_serverkeygen_refuses_keys_it_cannot_encrypt_to(server: EstServer, pki: TestPki) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with raw_client(server) as c:
        unknown_shared = post_csr(c, "serverkeygen", build_csr(key, "CN=x", decrypt_key_id=b"nope"))
        assert unknown_shared.status_code == 400
        assert "shared key" in unknown_shared.text
        no_cert = post_csr(c, "serverkeygen", build_csr(key, "CN=x", asymmetric_decrypt_key_id=b"\x01" * 20))
        assert no_cert.status_code == 400
        assert "key identifier" in no_cert.text
    # an EC client certificate receives the key by ECDH key agreement (RFC 5753), not RSA key transport
    with raw_client(server, cert=pki.client.chain_path, key=pki.client.key_path) as c:
        ec_recipient = post_csr(
            c, "serverkeygen", build_csr(key, "CN=x", asymmetric_decrypt_key_id=_ski(pki.client.cert))
        )
        assert ec_recipient.status_code == 200, ec_recipient.text
    result = parse_serverkeygen_response(
        ec_recipient.headers["content-type"], ec_recipient.content, decrypt_key=pki.client.key
    )
    assert result.encrypted


def _post_cmc(client: httpx.Client, der: bytes) -> httpx.Response:
    return client.post(
        "/fullcmc",
        content=base64.encodebytes(der),
        headers={"Content-Type": "application/pkcs7-mime; smime-type=CMC-request"},
    )


def test_fullcmc_issues_in_a_full_pki_response(server: EstServer) -> None:
    key, csr = make_csr("cmc-device")
    with raw_client(server) as c:
        response = _post_cmc(c, build_pki_data(csr))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pkcs7-mime; smime-type=CMC-response"
    certs = parse_pki_response(base64.b64decode(response.content))
    assert certs.certificate_for_key(key.public_key()) is not None


class _Refusing(LocalCaBackend):
    def enroll(
        self,
        csr: x509.CertificateSigningRequest,
        *,
        label: str | None,
        requester: Requester,
        renewal_of: x509.Certificate | None,
    ) -> Issued:
        raise EnrollmentRejected("Template 'CiscoRA' not found on the CA.")


def test_fullcmc_failure_is_a_cmc_response_with_4xx() -> None:
    with EstServer(_Refusing()) as srv, raw_client(srv) as c:
        response = _post_cmc(c, build_pki_data(make_csr()[1]))
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/pkcs7-mime; smime-type=CMC-response"
        with pytest.raises(CmcFailError, match="CiscoRA"):
            parse_pki_response(base64.b64decode(response.content), http_status=400)


def test_fullcmc_rejects_wrong_content_type_and_garbage(server: EstServer) -> None:
    with raw_client(server) as c:
        csr_der = make_csr()[1].public_bytes(Encoding.DER)
        wrong_type = c.post(
            "/fullcmc", content=base64.b64encode(csr_der), headers={"Content-Type": "application/pkcs10"}
        )
        assert wrong_type.status_code == 400
        assert "CMC-request" in wrong_type.text
        garbage = _post_cmc(c, csr_der)
        assert garbage.status_code == 400
        assert "CMC request" in garbage.text
