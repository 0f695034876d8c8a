"""Bootstrap mode (RFC 7030 §4.1.1): only /cacerts, no credentials, CA certificates accepted by fingerprint."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from estclient import (
    AsyncEstClient,
    BootstrapError,
    ClientCertificate,
    EnrollResult,
    EstClient,
    TrustAnchors,
    certificate_fingerprint,
)
from estclient.testing import EstServer, LocalCaBackend
from tests._support.pki import TestPki

USERS = {"estuser": "estpwd"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def server() -> Iterator[EstServer]:
    with EstServer(users=USERS) as srv:
        yield srv


def ca_of(server: EstServer) -> x509.Certificate:
    assert isinstance(server.backend, LocalCaBackend)
    return server.backend.ca.certificate


def new_csr() -> x509.CertificateSigningRequest:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bootstrapped")])
    return x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())


def test_fingerprint_format(server: EstServer) -> None:
    fp = certificate_fingerprint(ca_of(server))
    assert len(fp) == 95 and fp.count(":") == 31 and fp == fp.upper()


def test_bootstrap_with_a_confirmed_fingerprint_then_enroll(server: EstServer) -> None:
    fingerprint = certificate_fingerprint(ca_of(server)).replace(":", "").lower()  # any spelling works
    bootstrap = TrustAnchors.bootstrap(fingerprints={fingerprint})
    with EstClient(server.url, trust=bootstrap, auth=("estuser", "estpwd")) as c:
        server.clear_requests()
        cas = c.cacerts()
    assert cas.authenticated_by == "bootstrap"
    assert cas.confirmed == (ca_of(server),)
    assert server.requests[-1].user is None  # credentials are not sent on the provisional connection
    with EstClient(server.url, trust=cas.trust_anchors(), auth=("estuser", "estpwd")) as c:
        assert isinstance(c.simple_enroll(new_csr()), EnrollResult)


def test_unconfirmed_fingerprint_is_refused_and_shows_the_fingerprints(server: EstServer, pki: TestPki) -> None:
    other = TrustAnchors.bootstrap(fingerprints={certificate_fingerprint(pki.other_root.cert)})
    with EstClient(server.url, trust=other) as c, pytest.raises(BootstrapError) as info:
        c.cacerts()
    assert certificate_fingerprint(ca_of(server)) in str(info.value)
    assert info.value.libest_code == 60


def test_confirm_callback_sees_the_certificates(server: EstServer) -> None:
    seen: list[Sequence[x509.Certificate]] = []

    def ask(certs: Sequence[x509.Certificate]) -> bool:
        seen.append(certs)
        return True

    with EstClient(server.url, trust=TrustAnchors.bootstrap(confirm=ask)) as c:
        cas = c.cacerts()
    assert seen == [(ca_of(server),)]
    assert cas.confirmed == (ca_of(server),)

    declined = TrustAnchors.bootstrap(confirm=lambda certs: False)
    with EstClient(server.url, trust=declined) as c, pytest.raises(BootstrapError):
        c.cacerts()


def test_only_cacerts_is_allowed_while_provisional(server: EstServer) -> None:
    trust = TrustAnchors.bootstrap(fingerprints={certificate_fingerprint(ca_of(server))})
    with EstClient(server.url, trust=trust, auth=("estuser", "estpwd")) as c:
        server.clear_requests()
        with pytest.raises(BootstrapError):
            c.csrattrs()
        with pytest.raises(BootstrapError) as info:
            c.simple_enroll(new_csr())
    assert server.requests == []
    assert "trust_anchors()" in info.value.hint


def test_bootstrap_refuses_an_auth_challenge_on_cacerts(server: EstServer) -> None:
    def challenge(request: httpx.Request) -> httpx.Response:
        assert "authorization" not in request.headers
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="est"'}, text="credentials needed")

    trust = TrustAnchors.bootstrap(fingerprints={certificate_fingerprint(ca_of(server))})
    http = httpx.Client(transport=httpx.MockTransport(challenge))
    client = EstClient(server.url, trust=trust, auth=("estuser", "estpwd"), http_client=http)
    with http, client, pytest.raises(BootstrapError) as info:
        client.cacerts()
    assert "must not answer" in str(info.value)


def test_bootstrap_drops_client_certificate(server: EstServer, pki: TestPki) -> None:
    trust = TrustAnchors.bootstrap(fingerprints={certificate_fingerprint(ca_of(server))})
    credential = ClientCertificate(pki.client.cert, pki.client.key)
    with EstClient(server.url, trust=trust, client_certificate=credential) as c:
        server.clear_requests()
        c.cacerts()
    assert server.requests[-1].client_certificate is None


def test_bootstrap_needs_a_way_to_confirm() -> None:
    with pytest.raises(BootstrapError):
        TrustAnchors.bootstrap()
    with pytest.raises(BootstrapError):
        TrustAnchors.bootstrap(fingerprints={"not-a-fingerprint"})


def test_rogue_certificate_in_a_bootstrap_response_is_not_trusted(server: EstServer, pki: TestPki) -> None:
    from estclient import CaCertificates

    real = ca_of(server)
    cas = CaCertificates((real, pki.other_root.cert), (), "bootstrap", (real,))
    assert cas.trusted_certificates() == (real,)
    chain = CaCertificates(
        (pki.root.cert, pki.intermediate.cert, pki.other_root.cert), (), "bootstrap", (pki.root.cert,)
    )
    assert chain.trusted_certificates() == (pki.root.cert, pki.intermediate.cert)


@pytest.mark.anyio
async def test_async_bootstrap(server: EstServer) -> None:
    trust = TrustAnchors.bootstrap(fingerprints={certificate_fingerprint(ca_of(server))})
    async with AsyncEstClient(server.url, trust=trust) as c:
        cas = await c.cacerts()
        with pytest.raises(BootstrapError):
            await c.simple_enroll(new_csr())
    async with AsyncEstClient(server.url, trust=cas.trust_anchors(), auth=("estuser", "estpwd")) as c:
        assert isinstance(await c.simple_enroll(new_csr()), EnrollResult)
