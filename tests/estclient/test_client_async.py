"""AsyncEstClient: the same methods and signatures as EstClient, exercised against the EST server over real TLS."""

from __future__ import annotations

import inspect
import logging
import subprocess
import sys
from collections.abc import Iterator

import anyio
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from estclient import (
    AsyncEstClient,
    AuthenticationError,
    ClientCertificate,
    CsrSpec,
    DigestAuth,
    EnrollResult,
    EstClient,
    Pending,
    TrustAnchors,
)
from estclient._csr import csr_challenge_password
from estclient.testing import EstServer, LocalCaBackend

USERS = {"estuser": "estpwd"}
OPERATIONS = ("cacerts", "csrattrs", "simple_enroll", "simple_reenroll", "server_keygen", "full_cmc")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_importing_the_clients_leaves_other_modules_alone() -> None:
    """A library must not change what other code sees: no placeholder in sys.modules (e.g. for sniffio)."""
    code = (
        "import sys; before = dict(sys.modules); import estclient, estclient.testing; "
        "print(sorted(k for k, v in sys.modules.items() if v is None and k not in before))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def new_csr(cn: str = "async-device") -> tuple[ec.EllipticCurvePrivateKey, x509.CertificateSigningRequest]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return key, x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())


@pytest.fixture(scope="module")
def server() -> Iterator[EstServer]:
    with EstServer(users=USERS, labels={"phones"}) as srv:
        yield srv


def trust_for(server: EstServer) -> TrustAnchors:
    return TrustAnchors.explicit_anchors(server.ca_file)


def test_sync_and_async_clients_have_the_same_methods_and_signatures() -> None:
    for name in OPERATIONS:
        sync_sig = inspect.signature(getattr(EstClient, name))
        async_method = getattr(AsyncEstClient, name)
        assert inspect.iscoroutinefunction(async_method), name
        assert inspect.signature(async_method).parameters.keys() == sync_sig.parameters.keys(), name
        assert str(inspect.signature(async_method).return_annotation) == str(sync_sig.return_annotation), name
    sync_init = inspect.signature(EstClient.__init__).parameters
    async_init = inspect.signature(AsyncEstClient.__init__).parameters
    assert sync_init.keys() == async_init.keys()


@pytest.mark.anyio
async def test_async_operations(server: EstServer) -> None:
    assert isinstance(server.backend, LocalCaBackend)
    ca = server.backend.ca.certificate
    async with AsyncEstClient(server.url, trust=trust_for(server), auth=("estuser", "estpwd")) as c:
        server.clear_requests()
        cas = await c.cacerts()
        assert cas.certificates == (ca,) and cas.authenticated_by == "explicit"
        assert (await c.csrattrs()).is_empty
        key, csr = new_csr()
        result = await c.simple_enroll(csr, label="phones")
        assert isinstance(result, EnrollResult)
        assert result.certificate.public_key() == key.public_key()
        assert result.certificate.issuer == ca.subject
    assert [r.operation for r in server.requests] == ["cacerts", "csrattrs", "simpleenroll"]
    assert server.requests[-1].label == "phones"
    assert len({r.connection for r in server.requests}) == 1


@pytest.mark.anyio
async def test_async_concurrent_enrollments_share_one_client(server: EstServer) -> None:
    results: list[EnrollResult] = []
    async with AsyncEstClient(server.url, trust=trust_for(server), auth=("estuser", "estpwd")) as c:

        async def enroll(i: int) -> None:
            result = await c.simple_enroll(new_csr(f"concurrent-{i}")[1])
            assert isinstance(result, EnrollResult)
            results.append(result)

        async with anyio.create_task_group() as tg:
            for i in range(6):
                tg.start_soon(enroll, i)
    assert sorted(r.certificate.subject.rfc4514_string() for r in results) == [f"CN=concurrent-{i}" for i in range(6)]


@pytest.mark.anyio
async def test_async_reenroll_with_client_certificate_and_digest() -> None:
    with EstServer(users=USERS, http_auth="digest") as srv:
        async with AsyncEstClient(srv.url, trust=trust_for(srv), auth=DigestAuth("estuser", "estpwd")) as c:
            key, csr = new_csr("renew-async")
            first = await c.simple_enroll(csr)
        assert isinstance(first, EnrollResult)
        credential = ClientCertificate(first.certificate, key)
        async with AsyncEstClient(srv.url, trust=trust_for(srv), client_certificate=credential) as c:
            renewed = await c.simple_reenroll(CsrSpec(key, csr.subject))
        assert isinstance(renewed, EnrollResult)
        assert srv.requests[-1].client_certificate == first.certificate
        async with AsyncEstClient(srv.url, trust=trust_for(srv), auth=DigestAuth("estuser", "bad")) as c:
            with pytest.raises(AuthenticationError):
                await c.simple_enroll(new_csr()[1])


@pytest.mark.anyio
async def test_async_credentials_never_reach_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Digest and Basic over the async client: no password, no Authorization header value in any log record."""
    with EstServer(users={"estuser": "s3cret-digest"}, http_auth="digest") as srv, caplog.at_level(logging.DEBUG):
        async with AsyncEstClient(srv.url, trust=trust_for(srv), auth=DigestAuth("estuser", "s3cret-digest")) as c:
            assert isinstance(await c.simple_enroll(new_csr("logged")[1]), EnrollResult)
        async with AsyncEstClient(srv.url, trust=trust_for(srv), auth=DigestAuth("estuser", "wr0ng-pw")) as c:
            with pytest.raises(AuthenticationError):
                await c.simple_enroll(new_csr()[1])
    text = "\n".join(f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records)
    assert "simpleenroll" in text  # the requests were logged...
    assert "s3cret-digest" not in text and "wr0ng-pw" not in text
    assert "response=" not in text.lower() and "authorization:" not in text.lower()


@pytest.mark.anyio
async def test_async_pop_linking() -> None:
    with EstServer(users=USERS, pop="require") as srv:
        key = ec.generate_private_key(ec.SECP256R1())
        trust = trust_for(srv)
        async with AsyncEstClient(srv.url, trust=trust, auth=("estuser", "estpwd"), pop_linking="always") as c:
            result = await c.simple_enroll(CsrSpec(key, "CN=async-linked"))
        assert isinstance(result, EnrollResult)
        assert result.csr is not None and csr_challenge_password(result.csr)
        assert [r.status for r in srv.requests] == [200, 200]


@pytest.mark.anyio
async def test_async_pending_and_wait() -> None:
    with EstServer(users=USERS, manual_approval=True, retry_after=1) as srv:
        approvals = srv.approvals
        assert approvals is not None
        _, csr = new_csr("held-async")
        async with AsyncEstClient(srv.url, trust=trust_for(srv), auth=("estuser", "estpwd")) as c:
            pending = await c.simple_enroll(csr)
            assert isinstance(pending, Pending)

            async def approve_soon() -> None:
                await anyio.sleep(0.2)
                (held,) = approvals.pending()
                approvals.approve(held.request_id)

            async with anyio.create_task_group() as tg:
                tg.start_soon(approve_soon)
                result = await c.simple_enroll(csr, wait=True, max_retries=3)
        assert isinstance(result, EnrollResult)
        assert result.certificate.subject == csr.subject


@pytest.mark.anyio
async def test_async_injected_http_client_is_used_and_left_open(server: EstServer) -> None:
    import ssl

    import httpx

    assert isinstance(server.backend, LocalCaBackend)
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    async with httpx.AsyncClient(verify=ctx) as http:
        async with AsyncEstClient(server.url, trust=trust_for(server), http_client=http) as c:
            assert (await c.cacerts()).certificates == (server.backend.ca.certificate,)
        assert not http.is_closed


@pytest.mark.anyio
async def test_concurrent_linked_enrollments_each_keep_their_connection() -> None:
    with EstServer(users=USERS, pop="require") as srv:
        results: list[EnrollResult] = []
        trust = trust_for(srv)
        async with AsyncEstClient(srv.url, trust=trust, auth=("estuser", "estpwd"), pop_linking="always") as c:

            async def enroll(i: int) -> None:
                result = await c.simple_enroll(CsrSpec(ec.generate_private_key(ec.SECP256R1()), f"CN=lane-{i}"))
                assert isinstance(result, EnrollResult)
                results.append(result)

            async with anyio.create_task_group() as tg:
                for i in range(8):
                    tg.start_soon(enroll, i)
        assert len(results) == 8
        enrolls = [r for r in srv.requests if r.operation == "simpleenroll"]
        assert [r.status for r in enrolls] == [200] * 8  # no linked CSR went out on a foreign connection
