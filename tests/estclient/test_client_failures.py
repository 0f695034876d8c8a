"""The seed's common problems and the server's injected faults, each as its typed error (sync and async).

Every broken TLS certificate comes from the test PKI; the EST server presents it. A trust failure must stop the
client before any HTTP byte is sent, so the server records no request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from estclient import (
    AsyncEstClient,
    CertificateValidityError,
    EstClient,
    EstConnectionError,
    EstError,
    EstTimeoutError,
    HostnameMismatchError,
    MalformedResponseError,
    NameResolutionError,
    RaAuthorizationError,
    SelfSignedServerError,
    ServerError,
    TrustAnchors,
    UntrustedServerError,
)
from estclient.testing import EstServer, Fault, FaultKind, TlsIdentity
from tests._support.pki import ID_KP_CMC_RA, Credential, TestPki, issue

USERS = {"estuser": "estpwd"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def new_csr() -> x509.CertificateSigningRequest:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dev")])
    return x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())


def identity(cred: Credential, pki: TestPki, *, send_chain: bool = True) -> TlsIdentity:
    return TlsIdentity(cred.cert, cred.key, cred.chain if send_chain else (), (pki.root.cert,))


@pytest.fixture
def root_only(pki: TestPki) -> TrustAnchors:
    return TrustAnchors.explicit_anchors([pki.root.cert])


def serve(cred: Credential, pki: TestPki, *, send_chain: bool = True) -> EstServer:
    return EstServer(users=USERS, tls=identity(cred, pki, send_chain=send_chain))


# -- trust failures (sync) ---------------------------------------------------------------------------------------


def test_good_chain_is_accepted(pki: TestPki, root_only: TrustAnchors) -> None:
    with serve(pki.server, pki) as srv, EstClient(srv.url, trust=root_only) as c:
        assert c.cacerts().authenticated_by == "explicit"


def test_missing_intermediate_names_the_missing_issuer(pki: TestPki, root_only: TrustAnchors) -> None:
    with (
        serve(pki.server, pki, send_chain=False) as srv,
        EstClient(srv.url, trust=root_only, auth=("estuser", "estpwd")) as c,
    ):
        with pytest.raises(UntrustedServerError) as info:
            c.simple_enroll(new_csr())
        assert srv.requests == []
    issuer = pki.intermediate.cert.subject.rfc4514_string()
    assert info.value.missing_issuer == issuer
    assert issuer in str(info.value) and "trust store" in info.value.hint
    assert info.value.libest_error == "EST_ERR_SSL_CONNECT"


def test_unrelated_anchor_is_untrusted(pki: TestPki) -> None:
    trust = TrustAnchors.explicit_anchors([pki.other_root.cert])
    with serve(pki.server, pki) as srv, EstClient(srv.url, trust=trust) as c, pytest.raises(UntrustedServerError):
        c.cacerts()


def test_self_signed_server_certificate(pki: TestPki, root_only: TrustAnchors) -> None:
    with serve(pki.self_signed, pki) as srv, EstClient(srv.url, trust=root_only) as c:
        with pytest.raises(SelfSignedServerError) as info:
            c.cacerts()
        assert srv.requests == []
    assert info.value.subject == pki.self_signed.cert.subject.rfc4514_string()
    assert "not supported" in info.value.hint


def test_host_name_mismatch_shows_both_names(pki: TestPki, root_only: TrustAnchors) -> None:
    with serve(pki.wrong_name, pki) as srv, EstClient(srv.url, trust=root_only, auth=("estuser", "estpwd")) as c:
        with pytest.raises(HostnameMismatchError) as info:
            c.simple_enroll(new_csr())
        assert srv.requests == []  # the credentials never left the client
    assert info.value.host == "localhost"
    assert info.value.names == ("wrong-host.example.test",)
    assert info.value.libest_code == 53
    assert "id-kp-cmcRA" in info.value.hint  # explicit anchor: the RA alternative is offered


@pytest.mark.parametrize(("which", "state"), [("not_yet_valid", "not_yet_valid"), ("expired", "expired")])
def test_validity_errors_show_dates_and_local_clock(
    pki: TestPki, root_only: TrustAnchors, which: str, state: str
) -> None:
    cred: Credential = getattr(pki, which)
    before = dt.datetime.now(dt.UTC)
    with (
        serve(cred, pki) as srv,
        EstClient(srv.url, trust=root_only) as c,
        pytest.raises(CertificateValidityError) as info,
    ):
        c.cacerts()
    err = info.value
    assert err.state == state
    assert err.not_before == cred.cert.not_valid_before_utc
    assert err.not_after == cred.cert.not_valid_after_utc
    assert err.now >= before
    assert err.now.isoformat() in str(err) and "NTP" in err.hint


def test_ra_certificate_accepted_with_explicit_anchor_only(pki: TestPki) -> None:
    ra = issue(
        "EST RA elsewhere", issuer=pki.intermediate, dns=("ra.example.test",),
        eku=(ID_KP_CMC_RA, ExtendedKeyUsageOID.SERVER_AUTH),
    )  # fmt: skip
    with EstServer(tls=TlsIdentity(ra.cert, ra.key, ra.chain, (pki.root.cert,))) as srv:
        with EstClient(srv.url, trust=TrustAnchors.explicit_anchors([pki.root.cert])) as c:
            assert c.cacerts().authenticated_by == "explicit"
        implicit = TrustAnchors(implicit=(pki.root.cert,))
        with EstClient(srv.url, trust=implicit) as c, pytest.raises(RaAuthorizationError):
            c.cacerts()
        no_ra = TrustAnchors.explicit_anchors([pki.root.cert], allow_ra_certificates=False)
        with EstClient(srv.url, trust=no_ra) as c, pytest.raises(RaAuthorizationError):
            c.cacerts()


def test_implicit_anchor_needs_the_host_name(pki: TestPki) -> None:
    trust = TrustAnchors(implicit=(pki.root.cert,))
    with (
        serve(pki.wrong_name, pki) as srv,
        EstClient(srv.url, trust=trust) as c,
        pytest.raises(HostnameMismatchError) as info,
    ):
        c.cacerts()
    assert "id-kp-cmcRA" not in info.value.hint


def test_name_resolution_failure() -> None:
    client = EstClient("https://est-server.invalid", trust=TrustAnchors.system(), timeout=5)
    with client, pytest.raises(NameResolutionError) as info:
        client.cacerts()
    assert info.value.host == "est-server.invalid"
    assert info.value.libest_code == 42


def test_connection_refused_is_a_connection_error(pki: TestPki, root_only: TrustAnchors) -> None:
    srv = serve(pki.server, pki).start()
    url = srv.url
    srv.stop()
    with EstClient(url, trust=root_only, timeout=5) as c, pytest.raises(EstConnectionError):
        c.cacerts()


# -- faults ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[EstServer]:
    with EstServer(users=USERS) as srv:
        yield srv


@pytest.fixture
def client(server: EstServer) -> Iterator[EstClient]:
    server.clear_faults()
    with EstClient(server.url, trust=TrustAnchors.explicit_anchors(server.ca_file), auth=("estuser", "estpwd")) as c:
        yield c
    server.clear_faults()


def test_read_timeout_names_phase_and_limit(server: EstServer) -> None:
    server.inject(Fault(FaultKind.DELAY, operations={"simpleenroll"}, times=1, seconds=1.5))
    timeout = httpx.Timeout(5.0, read=0.3)
    with (
        EstClient(
            server.url, trust=TrustAnchors.explicit_anchors(server.ca_file), auth=("estuser", "estpwd"), timeout=timeout
        ) as c,
        pytest.raises(EstTimeoutError) as info,
    ):
        c.simple_enroll(new_csr())
    assert info.value.phase == "read"
    assert info.value.limit == 0.3
    assert info.value.operation == "simpleenroll"
    assert info.value.libest_error == "EST_ERR_SSL_READ"


def test_server_error_keeps_the_servers_words(server: EstServer, client: EstClient) -> None:
    server.inject(Fault(FaultKind.SERVER_ERROR, operations={"simpleenroll"}, times=1, status=503))
    with pytest.raises(ServerError) as info:
        client.simple_enroll(new_csr())
    assert info.value.status == 503
    assert info.value.server_text
    assert info.value.server_text in str(info.value)


@pytest.mark.parametrize("kind", [FaultKind.DROP_MID_BODY, FaultKind.DROP_BEFORE_RESPONSE])
def test_dropped_connection(server: EstServer, client: EstClient, kind: FaultKind) -> None:
    server.inject(Fault(kind, operations={"cacerts"}, times=1))
    with pytest.raises(EstConnectionError) as info:
        client.cacerts()
    assert info.value.libest_error == "EST_ERR_SSL_READ"


@pytest.mark.parametrize("kind", [FaultKind.BAD_BASE64, FaultKind.TRUNCATED_PKCS7, FaultKind.WRONG_CONTENT_TYPE])
def test_malformed_responses(server: EstServer, client: EstClient, kind: FaultKind) -> None:
    server.inject(Fault(kind, operations={"cacerts", "simpleenroll"}, times=2))
    with pytest.raises(MalformedResponseError):
        client.cacerts()
    with pytest.raises(MalformedResponseError):
        client.simple_enroll(new_csr())


# -- the same over the async client --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_trust_failures(pki: TestPki, root_only: TrustAnchors) -> None:
    with serve(pki.wrong_name, pki) as srv:
        async with AsyncEstClient(srv.url, trust=root_only, auth=("estuser", "estpwd")) as c:
            with pytest.raises(HostnameMismatchError):
                await c.simple_enroll(new_csr())
        assert srv.requests == []
    with serve(pki.server, pki, send_chain=False) as srv:
        async with AsyncEstClient(srv.url, trust=root_only) as c:
            with pytest.raises(UntrustedServerError) as info:
                await c.cacerts()
        assert info.value.missing_issuer == pki.intermediate.cert.subject.rfc4514_string()
    with serve(pki.expired, pki) as srv:
        async with AsyncEstClient(srv.url, trust=root_only) as c:
            with pytest.raises(CertificateValidityError) as validity:
                await c.cacerts()
        assert validity.value.state == "expired"
    with serve(pki.self_signed, pki) as srv:
        async with AsyncEstClient(srv.url, trust=root_only) as c:
            with pytest.raises(SelfSignedServerError):
                await c.cacerts()


@pytest.mark.anyio
async def test_async_name_resolution_and_timeout(server: EstServer) -> None:
    async with AsyncEstClient("https://est-server.invalid", trust=TrustAnchors.system(), timeout=5) as c:
        with pytest.raises(NameResolutionError):
            await c.cacerts()
    server.inject(Fault(FaultKind.DELAY, operations={"cacerts"}, times=1, seconds=1.5))
    try:
        trust = TrustAnchors.explicit_anchors(server.ca_file)
        async with AsyncEstClient(server.url, trust=trust, timeout=httpx.Timeout(5.0, read=0.3)) as c:
            with pytest.raises(EstTimeoutError) as info:
                await c.cacerts()
        assert (info.value.phase, info.value.limit) == ("read", 0.3)
    finally:
        server.clear_faults()


ASYNC_FAULTS = [
    (Fault(FaultKind.SERVER_ERROR, status=503), ServerError, None),
    (Fault(FaultKind.DROP_MID_BODY), EstConnectionError, "EST_ERR_SSL_READ"),
    (Fault(FaultKind.DROP_BEFORE_RESPONSE), EstConnectionError, "EST_ERR_SSL_READ"),
    (Fault(FaultKind.BAD_BASE64), MalformedResponseError, None),
    (Fault(FaultKind.TRUNCATED_PKCS7), MalformedResponseError, None),
    (Fault(FaultKind.WRONG_CONTENT_TYPE), MalformedResponseError, None),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("fault", "error", "libest"), ASYNC_FAULTS, ids=[f[0].kind.value for f in ASYNC_FAULTS])
@pytest.mark.parametrize("operation", ["cacerts", "simpleenroll"])
async def test_async_injected_faults_give_their_typed_errors(
    server: EstServer, fault: Fault, error: type[EstError], libest: str | None, operation: str
) -> None:
    server.clear_faults()
    server.inject(Fault(fault.kind, operations={operation}, times=1, status=fault.status))
    try:
        trust = TrustAnchors.explicit_anchors(server.ca_file)
        async with AsyncEstClient(server.url, trust=trust, auth=("estuser", "estpwd")) as c:
            call = c.cacerts() if operation == "cacerts" else c.simple_enroll(new_csr())
            with pytest.raises(error) as info:
                await call
            assert info.value.hint
            if libest is not None:
                assert info.value.libest_error == libest
            assert len((await c.cacerts()).certificates) >= 1  # the fault was used up; the client still works
    finally:
        server.clear_faults()


# -- TLS-level refusals and the connect phase ------------------------------------------------------------------


def test_connect_timeout_names_the_connect_phase(root_only: TrustAnchors) -> None:
    import socket

    with socket.socket() as listener:  # accepts TCP (backlog) but never answers the TLS handshake
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        timeout = httpx.Timeout(5.0, connect=0.3)
        client = EstClient(f"https://localhost:{port}", trust=root_only, timeout=timeout)
        with client, pytest.raises(EstTimeoutError) as info:
            client.cacerts()
    assert (info.value.phase, info.value.limit) == ("connect", 0.3)


def test_tls_client_certificate_refused_by_the_server(pki: TestPki, root_only: TrustAnchors) -> None:
    import ssl

    from estclient import ClientCertificate
    from tests._support.tls_http import Response, serve_tls

    context = pki.server_context(client_auth=ssl.CERT_REQUIRED)
    with serve_tls(lambda req: Response(200), context) as srv:
        with EstClient(srv.url, trust=root_only) as c, pytest.raises(EstConnectionError) as info:
            c.cacerts()
        assert "client certificate" in str(info.value)
        assert info.value.libest_error == "EST_ERR_AUTH_FAIL"
        stranger = issue("stranger", issuer=pki.other_root)
        credential = ClientCertificate(stranger.cert, stranger.key)
        client = EstClient(srv.url, trust=root_only, client_certificate=credential)
        with client, pytest.raises(EstConnectionError) as refused:
            client.cacerts()
        assert refused.value.libest_error == "EST_ERR_AUTH_FAIL"
        assert "client certificate" in str(refused.value)
