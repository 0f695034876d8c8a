"""/serverkeygen and /fullcmc through EstClient and AsyncEstClient, against the EST server over real TLS."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from estclient import (
    AsyncEstClient,
    BadRequestError,
    ClientCertificate,
    CmcFailError,
    CsrSpec,
    EnrollResult,
    EstClient,
    Pending,
    ServerKeyGenError,
    ServerKeyGenResult,
    TrustAnchors,
)
from estclient._cmc import build_pki_data
from estclient.testing import EnrollmentRejected, EstServer, Issued, LocalCaBackend, Requester

USERS = {"estuser": "estpwd"}
KEY_ID = b"shared-key-1"
AES_KEY = os.urandom(32)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def spki(key: object) -> bytes:
    assert isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey))
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def new_csr(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.CertificateSigningRequest]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return key, x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())


@pytest.fixture(scope="module")
def server() -> Iterator[EstServer]:
    with EstServer(users=USERS, shared_keys={KEY_ID: AES_KEY}) as srv:
        yield srv


@pytest.fixture
def client(server: EstServer) -> Iterator[EstClient]:
    with EstClient(server.url, trust=TrustAnchors.explicit_anchors(server.ca_file), auth=("estuser", "estpwd")) as c:
        yield c


def test_serverkeygen_plain_pkcs8(client: EstClient) -> None:
    request_key, csr = new_csr("keygen-plain")
    result = client.server_keygen(csr)
    assert isinstance(result, ServerKeyGenResult)
    assert result.encrypted is False
    assert result.certificate.subject == csr.subject
    assert spki(result.private_key) == result.certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert spki(result.private_key) != spki(request_key)  # the server made a new key


def test_serverkeygen_encrypted_with_a_shared_key(client: EstClient) -> None:
    spec = CsrSpec(ec.generate_private_key(ec.SECP256R1()), "CN=keygen-aes", decrypt_key_id=KEY_ID)
    result = client.server_keygen(spec, decrypt_key=AES_KEY)
    assert isinstance(result, ServerKeyGenResult)
    assert result.encrypted is True
    assert result.certificate.subject.rfc4514_string() == "CN=keygen-aes"


def test_serverkeygen_wrong_decrypt_key_is_a_typed_error(client: EstClient) -> None:
    spec = CsrSpec(ec.generate_private_key(ec.SECP256R1()), "CN=keygen-wrong", decrypt_key_id=KEY_ID)
    with pytest.raises(ServerKeyGenError):
        client.server_keygen(spec, decrypt_key=os.urandom(32))


def test_serverkeygen_unknown_key_id_is_refused_by_the_server(client: EstClient) -> None:
    spec = CsrSpec(ec.generate_private_key(ec.SECP256R1()), "CN=keygen-unknown", decrypt_key_id=b"nobody")
    with pytest.raises(BadRequestError) as info:
        client.server_keygen(spec, decrypt_key=AES_KEY)
    assert "shared key" in info.value.server_text


def test_fullcmc_from_a_csr(server: EstServer, client: EstClient) -> None:
    key, csr = new_csr("cmc-device")
    result = client.full_cmc(csr)
    assert isinstance(result, EnrollResult)
    assert result.certificate.public_key() == key.public_key()
    assert server.requests[-1].operation == "fullcmc"


def test_fullcmc_from_prebuilt_pki_data(client: EstClient) -> None:
    _key, csr = new_csr("cmc-prebuilt")
    result = client.full_cmc(build_pki_data(csr, req_id=7))
    assert isinstance(result, EnrollResult)
    assert result.certificate.subject == csr.subject


class _Refusing(LocalCaBackend):
    def enroll(
        self,
        csr: x509.CertificateSigningRequest,
        *,
        label: str | None,
        requester: Requester,
        renewal_of: x509.Certificate | None = None,
    ) -> Issued:
        raise EnrollmentRejected("template PhoneLSC does not allow this subject")


def test_fullcmc_rejection_is_a_cmc_failure_with_the_servers_words() -> None:
    with EstServer(_Refusing(), users=USERS) as srv:
        trust = TrustAnchors.explicit_anchors(srv.ca_file)
        with EstClient(srv.url, trust=trust, auth=("estuser", "estpwd")) as c, pytest.raises(CmcFailError) as info:
            c.full_cmc(new_csr("refused")[1])
    assert info.value.status_string == "template PhoneLSC does not allow this subject"
    assert info.value.fail_info_name == "badRequest"
    assert info.value.http_status is not None and info.value.http_status >= 400


@pytest.mark.anyio
async def test_async_serverkeygen_and_fullcmc(server: EstServer) -> None:
    trust = TrustAnchors.explicit_anchors(server.ca_file)
    async with AsyncEstClient(server.url, trust=trust, auth=("estuser", "estpwd")) as c:
        generated = await c.server_keygen(new_csr("async-keygen")[1])
        assert isinstance(generated, ServerKeyGenResult)
        spec = CsrSpec(ec.generate_private_key(ec.SECP256R1()), "CN=async-keygen-aes", decrypt_key_id=KEY_ID)
        encrypted = await c.server_keygen(spec, decrypt_key=AES_KEY)
        assert isinstance(encrypted, ServerKeyGenResult) and encrypted.encrypted
        key, csr = new_csr("async-cmc")
        issued = await c.full_cmc(csr)
        assert isinstance(issued, EnrollResult)
        assert issued.certificate.public_key() == key.public_key()


def test_serverkeygen_pending_is_a_result() -> None:
    with EstServer(users=USERS, manual_approval=True) as srv:
        trust = TrustAnchors.explicit_anchors(srv.ca_file)
        with EstClient(srv.url, trust=trust, auth=("estuser", "estpwd")) as c:
            result = c.server_keygen(new_csr("held-keygen")[1])
    assert isinstance(result, Pending)
    assert result.operation == "serverkeygen"


def test_serverkeygen_encrypted_to_the_clients_rsa_certificate(server: EstServer, client: EstClient) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    enrolled = client.simple_enroll(CsrSpec(rsa_key, "CN=keygen-rsa-client"))
    assert isinstance(enrolled, EnrollResult)
    try:
        ski = enrolled.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        ski = x509.SubjectKeyIdentifier.from_public_key(rsa_key.public_key()).digest
    credential = ClientCertificate(enrolled.certificate, rsa_key)
    trust = TrustAnchors.explicit_anchors(server.ca_file)
    with EstClient(server.url, trust=trust, client_certificate=credential) as tls_client:
        spec = CsrSpec(ec.generate_private_key(ec.SECP256R1()), "CN=keygen-rsa", asymmetric_decrypt_key_id=ski)
        result = tls_client.server_keygen(spec, decrypt_key=rsa_key)
    assert isinstance(result, ServerKeyGenResult)
    assert result.encrypted is True
    assert result.certificate.subject.rfc4514_string() == "CN=keygen-rsa"


def _ec_tls_credential(client: EstClient) -> tuple[ClientCertificate, bytes, ec.EllipticCurvePrivateKey]:
    """Enroll an EC key and return it as a TLS client credential with its key identifier."""
    ec_key = ec.generate_private_key(ec.SECP256R1())
    enrolled = client.simple_enroll(CsrSpec(ec_key, "CN=keygen-ec-client"))
    assert isinstance(enrolled, EnrollResult)
    try:
        ski = enrolled.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        ski = x509.SubjectKeyIdentifier.from_public_key(ec_key.public_key()).digest
    return ClientCertificate(enrolled.certificate, ec_key), ski, ec_key


def test_serverkeygen_encrypted_to_the_clients_ec_certificate(server: EstServer, client: EstClient) -> None:
    """ECDH key agreement (RFC 5753) to the EC certificate the client authenticates with, end to end."""
    credential, ski, ec_key = _ec_tls_credential(client)
    trust = TrustAnchors.explicit_anchors(server.ca_file)
    with EstClient(server.url, trust=trust, client_certificate=credential) as tls_client:
        spec = CsrSpec(ec.generate_private_key(ec.SECP256R1()), "CN=keygen-ec", asymmetric_decrypt_key_id=ski)
        result = tls_client.server_keygen(spec, decrypt_key=ec_key)
        assert isinstance(result, ServerKeyGenResult)
        assert result.encrypted is True
        assert spki(result.private_key) == result.certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        with pytest.raises(ServerKeyGenError):  # another EC key cannot open the envelope
            tls_client.server_keygen(spec, decrypt_key=ec.generate_private_key(ec.SECP256R1()))


@pytest.mark.anyio
async def test_async_serverkeygen_encrypted_to_the_clients_ec_certificate(server: EstServer, client: EstClient) -> None:
    credential, ski, ec_key = _ec_tls_credential(client)
    trust = TrustAnchors.explicit_anchors(server.ca_file)
    async with AsyncEstClient(server.url, trust=trust, client_certificate=credential) as tls_client:
        spec = CsrSpec(ec.generate_private_key(ec.SECP256R1()), "CN=keygen-ec-async", asymmetric_decrypt_key_id=ski)
        result = await tls_client.server_keygen(spec, decrypt_key=ec_key)
    assert isinstance(result, ServerKeyGenResult)
    assert result.encrypted is True
    assert result.certificate.subject.rfc4514_string() == "CN=keygen-ec-async"
