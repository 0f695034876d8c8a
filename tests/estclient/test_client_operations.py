"""EstClient against the project's EST server over real TLS: every operation, labels, auth, PoP, 202 handling."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from estclient import (
    AuthenticationError,
    BasicAuth,
    CaCertificates,
    ClientCertificate,
    CsrSpec,
    DigestAuth,
    EnrollResult,
    EstClient,
    InvalidLabelError,
    NotSupportedError,
    Pending,
    TrustAnchors,
)
from estclient._csr import csr_challenge_password
from estclient.testing import EstServer, LocalCaBackend

USERS = {"estuser": "estpwd"}


def new_csr(cn: str = "device-1") -> tuple[ec.EllipticCurvePrivateKey, x509.CertificateSigningRequest]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return key, x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())


def anchors(server: EstServer) -> TrustAnchors:
    return TrustAnchors.explicit_anchors(server.ca_file)


@pytest.fixture(scope="module")
def server() -> Iterator[EstServer]:
    with EstServer(users=USERS, labels={"phones", "servers"}) as srv:
        yield srv


@pytest.fixture
def client(server: EstServer) -> Iterator[EstClient]:
    with EstClient(server.url, trust=anchors(server), auth=BasicAuth("estuser", "estpwd")) as c:
        yield c


def ca_of(server: EstServer) -> x509.Certificate:
    assert isinstance(server.backend, LocalCaBackend)
    return server.backend.ca.certificate


def test_cacerts_explicit_anchor(server: EstServer, client: EstClient) -> None:
    result = client.cacerts()
    assert isinstance(result, CaCertificates)
    assert result.certificates == (ca_of(server),)
    assert result.authenticated_by == "explicit"
    assert result.roots == (ca_of(server),)
    assert result.issuing_ca == ca_of(server)
    assert result.trust_anchors().explicit == (ca_of(server),)


def test_cacerts_through_an_implicit_anchor_is_marked_so(server: EstServer) -> None:
    trust = TrustAnchors(implicit=tuple(x509.load_pem_x509_certificates(server.ca_file.read_bytes())))
    with EstClient(server.url, trust=trust) as c:
        assert c.cacerts().authenticated_by == "implicit"


def test_csrattrs_204_means_no_requirements(client: EstClient) -> None:
    attrs = client.csrattrs()
    assert attrs.is_empty


def test_simple_enroll_with_presigned_csr_and_basic(server: EstServer, client: EstClient) -> None:
    key, csr = new_csr("phone-7")
    server.clear_requests()
    result = client.simple_enroll(csr)
    assert isinstance(result, EnrollResult)
    assert result.certificate.public_key() == key.public_key()
    assert result.certificate.subject == csr.subject
    assert result.certificate.issuer == ca_of(server).subject
    assert result.csr == csr
    assert server.requests[-1].user == "estuser"


def test_one_client_reuses_its_connection(server: EstServer, client: EstClient) -> None:
    server.clear_requests()
    client.cacerts()
    client.csrattrs()
    client.simple_enroll(new_csr()[1])
    assert len(server.requests) == 3
    assert len({r.connection for r in server.requests}) == 1


def test_label_goes_into_the_path(server: EstServer) -> None:
    with EstClient(server.url, trust=anchors(server), auth=("estuser", "estpwd"), label="phones") as c:
        server.clear_requests()
        c.simple_enroll(new_csr()[1])
        c.cacerts(label="servers")
        assert [(r.label, r.path) for r in server.requests] == [
            ("phones", "/.well-known/est/phones/simpleenroll"),
            ("servers", "/.well-known/est/servers/cacerts"),
        ]


def test_bad_label_is_refused_before_anything_is_sent(server: EstServer, client: EstClient) -> None:
    server.clear_requests()
    with pytest.raises(InvalidLabelError) as info:
        client.cacerts(label="a/b")
    assert "'/'" in str(info.value)
    with pytest.raises(InvalidLabelError):
        EstClient(server.url, trust=anchors(server), label="simpleenroll")
    assert server.requests == []


def test_unknown_label_is_not_supported(client: EstClient) -> None:
    with pytest.raises(NotSupportedError) as info:
        client.cacerts(label="printers")
    assert info.value.status == 404


def test_wrong_password_gives_authentication_error_with_libest_code(server: EstServer) -> None:
    bad = BasicAuth("estuser", "nope")
    with EstClient(server.url, trust=anchors(server), auth=bad) as c, pytest.raises(AuthenticationError) as info:
        c.simple_enroll(new_csr()[1])
    assert info.value.status == 401
    assert info.value.libest_code == 22
    assert "nope" not in str(info.value)


def test_missing_credentials_hint_names_the_fix(server: EstServer) -> None:
    with EstClient(server.url, trust=anchors(server)) as c, pytest.raises(AuthenticationError) as info:
        c.simple_enroll(new_csr()[1])
    assert "auth=BasicAuth" in info.value.hint


def test_digest_authentication() -> None:
    with EstServer(users=USERS, http_auth="digest") as srv:
        with EstClient(srv.url, trust=anchors(srv), auth=DigestAuth("estuser", "estpwd")) as c:
            result = c.simple_enroll(new_csr("digest-1")[1])
        assert isinstance(result, EnrollResult)
        assert [r.status for r in srv.requests] == [401, 200]
        assert srv.requests[-1].user == "estuser"


def test_reenroll_with_the_certificate_being_renewed(server: EstServer, client: EstClient) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    first = client.simple_enroll(CsrSpec(key, "CN=renew-me", sans=("renew-me.example.test",)))
    assert isinstance(first, EnrollResult)
    credential = ClientCertificate(first.certificate, key)
    assert "renew-me" in repr(credential) and "PRIVATE" not in repr(credential)
    with EstClient(server.url, trust=anchors(server), client_certificate=credential) as tls_client:
        server.clear_requests()
        # no subject given: the client takes subject and subjectAltName from the certificate being renewed
        renewed = tls_client.simple_reenroll(CsrSpec(key))
    assert isinstance(renewed, EnrollResult)
    assert renewed.certificate.subject == first.certificate.subject
    san = renewed.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["renew-me.example.test"]
    assert renewed.certificate.serial_number != first.certificate.serial_number
    assert server.requests[-1].operation == "simplereenroll"
    assert server.requests[-1].client_certificate == first.certificate
    assert server.requests[-1].user is None


def test_injected_http_client_is_used_and_left_open(server: EstServer) -> None:
    import ssl

    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    with httpx.Client(verify=ctx) as http:
        with EstClient(server.url, trust=anchors(server), http_client=http) as c:
            assert c.cacerts().certificates == (ca_of(server),)
        assert not http.is_closed


# -- proof-of-possession linking ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pop_server() -> Iterator[EstServer]:
    with EstServer(users=USERS, pop="require") as srv:  # TLS 1.2, challengePassword listed in /csrattrs
        yield srv


def test_pop_linking_signs_on_the_sending_connection(pop_server: EstServer) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with EstClient(pop_server.url, trust=anchors(pop_server), auth=("estuser", "estpwd"), pop_linking="always") as c:
        pop_server.clear_requests()
        result = c.simple_enroll(CsrSpec(key, "CN=linked-phone,O=Example"))
    assert isinstance(result, EnrollResult)
    assert result.certificate.public_key() == key.public_key()
    assert result.csr is not None
    assert csr_challenge_password(result.csr)  # base64 of 12 bytes of tls-unique
    assert len(csr_challenge_password(result.csr) or "") == 16
    ops = [(r.operation, r.status, r.tls_version) for r in pop_server.requests]
    assert ops == [("csrattrs", 200, "TLSv1.2"), ("simpleenroll", 200, "TLSv1.2")]
    assert len({r.connection for r in pop_server.requests}) == 1


def test_auto_linking_follows_the_servers_csrattrs(pop_server: EstServer) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with EstClient(pop_server.url, trust=anchors(pop_server), auth=("estuser", "estpwd")) as c:
        result = c.simple_enroll(CsrSpec(key, "CN=auto-linked"))
    assert isinstance(result, EnrollResult)
    assert result.csr is not None and csr_challenge_password(result.csr)


def test_presigned_csr_without_link_is_rejected_by_a_requiring_server(pop_server: EstServer) -> None:
    from estclient import BadRequestError

    client = EstClient(pop_server.url, trust=anchors(pop_server), auth=("estuser", "estpwd"))
    with client, pytest.raises(BadRequestError) as info:
        client.simple_enroll(new_csr()[1])
    assert "challengePassword" in info.value.server_text


def test_linking_never_sends_no_challenge_password(server: EstServer) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with EstClient(server.url, trust=anchors(server), auth=("estuser", "estpwd"), pop_linking="never") as c:
        result = c.simple_enroll(CsrSpec(key, "CN=unlinked"))
    assert isinstance(result, EnrollResult)
    assert result.csr is not None and csr_challenge_password(result.csr) is None


def test_pop_linking_fails_when_every_request_gets_a_new_connection(pop_server: EstServer) -> None:
    from estclient import PopLinkingError

    key = ec.generate_private_key(ec.SECP256R1())
    no_reuse = httpx.Limits(max_connections=1, max_keepalive_connections=0)
    with EstClient(
        pop_server.url, trust=anchors(pop_server), auth=("estuser", "estpwd"), pop_linking="always", limits=no_reuse
    ) as c:
        pop_server.clear_requests()
        with pytest.raises(PopLinkingError) as info:
            c.simple_enroll(CsrSpec(key, "CN=never-same-connection"))
    assert "400" in str(info.value) and "tls-unique" in str(info.value)
    # every attempt was re-signed for its new connection and refused by the server's PoP check
    enrolls = [r for r in pop_server.requests if r.operation == "simpleenroll"]
    assert len(enrolls) == 4
    assert all(r.status == 400 for r in enrolls)
    assert len({r.connection for r in pop_server.requests}) == len(pop_server.requests)


# -- 202 pending ---------------------------------------------------------------------------------------------------


@pytest.fixture
def approval_server() -> Iterator[EstServer]:
    with EstServer(users=USERS, manual_approval=True, retry_after=1) as srv:
        yield srv


def test_pending_is_a_result_then_the_same_request_succeeds(approval_server: EstServer) -> None:
    _, csr = new_csr("held-1")
    with EstClient(approval_server.url, trust=anchors(approval_server), auth=("estuser", "estpwd")) as c:
        pending = c.simple_enroll(csr)
        assert isinstance(pending, Pending)
        assert pending.retry_after == 1
        assert pending.operation == "simpleenroll"
        assert pending.csr == csr
        assert approval_server.approvals is not None
        (held,) = approval_server.approvals.pending()
        approval_server.approvals.approve(held.request_id)
        result = c.simple_enroll(csr)
    assert isinstance(result, EnrollResult)
    assert result.certificate.subject == csr.subject


def test_wait_retries_until_issued(approval_server: EstServer) -> None:
    _, csr = new_csr("held-2")
    approvals = approval_server.approvals
    assert approvals is not None

    def approve_when_held() -> None:
        (held,) = approvals.wait_for_pending(1, timeout=10)
        approvals.approve(held.request_id)

    approver = threading.Thread(target=approve_when_held)
    approver.start()
    with EstClient(approval_server.url, trust=anchors(approval_server), auth=("estuser", "estpwd")) as c:
        result = c.simple_enroll(csr, wait=True, max_retries=5)
    approver.join(10)
    assert isinstance(result, EnrollResult)
    statuses = [r.status for r in approval_server.requests if r.operation == "simpleenroll"]
    assert statuses[0] == 202 and statuses[-1] == 200


def test_wait_gives_up_after_max_retries(approval_server: EstServer) -> None:
    _, csr = new_csr("held-3")
    with EstClient(approval_server.url, trust=anchors(approval_server), auth=("estuser", "estpwd")) as c:
        result = c.simple_enroll(csr, wait=True, max_retries=1)
    assert isinstance(result, Pending)
    assert [r.status for r in approval_server.requests] == [202, 202]


def test_wait_does_not_sleep_longer_than_max_retry_wait(approval_server: EstServer) -> None:
    _, csr = new_csr("held-4")
    with EstClient(
        approval_server.url, trust=anchors(approval_server), auth=("estuser", "estpwd"), max_retry_wait=0.5
    ) as c:
        result = c.simple_enroll(csr, wait=True, max_retries=3)
    assert isinstance(result, Pending)
    assert len(approval_server.requests) == 1


def test_ip_address_url_is_checked_against_ip_names(server: EstServer) -> None:
    with EstClient(f"https://127.0.0.1:{server.port}", trust=anchors(server)) as c:
        assert c.cacerts().certificates == (ca_of(server),)
    assert c.url == f"https://127.0.0.1:{server.port}/.well-known/est"


def test_credentials_never_reach_the_logs(server: EstServer, caplog: pytest.LogCaptureFixture) -> None:
    import base64 as b64
    import logging

    secret = "estpwd"
    token = b64.b64encode(b"estuser:" + secret.encode()).decode()
    with caplog.at_level(logging.DEBUG):
        with EstClient(server.url, trust=anchors(server), auth=BasicAuth("estuser", secret)) as c:
            c.simple_enroll(new_csr("logged")[1])
        wrong = EstClient(server.url, trust=anchors(server), auth=BasicAuth("estuser", "wrong-pw"))
        with wrong, pytest.raises(AuthenticationError):
            wrong.simple_enroll(new_csr()[1])
    text = "\n".join(f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records)
    assert "simpleenroll" in text  # the requests were logged...
    assert secret not in text and "wrong-pw" not in text
    assert token not in text and "authorization" not in text.lower()


def test_linked_enrollments_from_several_threads(pop_server: EstServer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with EstClient(pop_server.url, trust=anchors(pop_server), auth=("estuser", "estpwd"), pop_linking="always") as c:
        pop_server.clear_requests()

        def enroll(i: int) -> EnrollResult | Pending:
            return c.simple_enroll(CsrSpec(ec.generate_private_key(ec.SECP256R1()), f"CN=thread-{i}"))

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(enroll, range(8)))
    assert all(isinstance(r, EnrollResult) for r in results)
    assert [r.status for r in pop_server.requests if r.operation == "simpleenroll"] == [200] * 8
