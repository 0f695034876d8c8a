"""AsyncCertsrvClient end to end against the emulator: the same operations and errors as the sync client."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest

from certsrv import (
    AsyncCertsrvClient,
    AuthenticationError,
    AuthenticationTimeoutError,
    ConfigurationError,
    Issued,
    Pending,
    RequestPendingError,
    TemplateNotFoundError,
    Timeouts,
    UntrustedServerChainError,
)
from certsrv.testing import AdcsEmulator, CertificateTemplate, Policy
from tests._support.kerberos import Kdc
from tests._support.pki import TestPki
from tests.certsrv._emulator_helpers import ALICE, PASSWORD, USERS, csr_pem

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def emulator() -> Iterator[AdcsEmulator]:
    templates = [CertificateTemplate("WebServer"), CertificateTemplate("Manual", policy=Policy.PENDING)]
    with AdcsEmulator(users=USERS, templates=templates, language="de", renewals=1) as emu:
        yield emu


def _client(emulator: AdcsEmulator, **kwargs: object) -> AsyncCertsrvClient:
    return AsyncCertsrvClient(
        emulator.url,
        auth="ntlm",
        username=ALICE,
        password=PASSWORD,
        ca_file=emulator.ca_file,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_enroll_retrieve_and_ca_material(emulator: AdcsEmulator) -> None:
    async with _client(emulator) as client:
        await client.authenticate()
        start = len(emulator.access_log.entries)
        issued = await client.submit(csr_pem("SEP0A0B0C0D0E0F"), "WebServer")
        assert isinstance(issued, Issued)
        assert [e.uri_stem for e in emulator.access_log.entries[start:]] == [
            "/certsrv/certfnsh.asp",
            "/certsrv/certnew.cer",
        ]
        assert await client.get_certificate(issued.request_id) == issued.certificate
        assert issued.certificate in await client.get_chain(issued.request_id)
        ca = await client.get_ca_certificate()
        issued.certificate.verify_directly_issued_by(ca)
        assert ca in await client.get_ca_chain()
        assert (await client.get_ca_info()).renewals == 1
        assert (await client.get_crl()).issuer == ca.subject
        assert [t.name for t in await client.list_templates()] == ["WebServer", "Manual"]


async def test_pending_approve_retrieve(emulator: AdcsEmulator) -> None:
    async with _client(emulator) as client:
        pending = await client.submit(csr_pem(), "Manual")
        assert isinstance(pending, Pending)
        with pytest.raises(RequestPendingError):
            await client.get_certificate(pending.request_id)
        emulator.approve(pending.request_id)
        assert isinstance(await client.retrieve(pending.request_id), Issued)


async def test_template_not_found(emulator: AdcsEmulator) -> None:
    async with _client(emulator) as client:
        with pytest.raises(TemplateNotFoundError) as info:
            await client.submit(csr_pem(), "CiscoRA")
    assert info.value.offered == ("WebServer", "Manual")


async def test_concurrent_submissions_share_one_connection(emulator: AdcsEmulator) -> None:
    results: list[Issued | Pending] = []
    async with _client(emulator) as client:

        async def one(i: int) -> None:
            results.append(await client.submit(csr_pem(f"SEP{i:012d}"), "WebServer"))

        async with anyio.create_task_group() as group:
            for i in range(4):
                group.start_soon(one, i)
    assert len(results) == 4 and all(isinstance(r, Issued) for r in results)


async def test_wrong_password(emulator: AdcsEmulator) -> None:
    async with AsyncCertsrvClient(
        emulator.url, auth="ntlm", username=ALICE, password="nope", ca_file=emulator.ca_file
    ) as client:
        with pytest.raises(AuthenticationError):
            await client.submit(csr_pem(), "WebServer")


async def test_authentication_timeout(emulator: AdcsEmulator) -> None:
    emulator.faults.auth_delay = 0.5
    try:
        async with _client(emulator, timeouts=Timeouts(authentication=0.2)) as client:
            with pytest.raises(AuthenticationTimeoutError) as info:
                await client.submit(csr_pem(), "WebServer")
    finally:
        emulator.faults.clear()
    assert info.value.limit == 0.2


async def test_missing_issuer(pki: TestPki) -> None:
    assert pki.server.cert_path is not None and pki.server.key_path is not None
    with AdcsEmulator(users=USERS, tls_cert_file=pki.server.cert_path, tls_key_file=pki.server.key_path) as emu:
        async with AsyncCertsrvClient(
            emu.url, auth="ntlm", username=ALICE, password=PASSWORD, ca_file=pki.ca_bundle
        ) as client:
            with pytest.raises(UntrustedServerChainError) as info:
                await client.authenticate()
    assert info.value.missing_issuer == pki.intermediate.cert.subject.rfc4514_string()


@pytest.mark.kerberos
async def test_kerberos_under_required_extended_protection(kdc: Kdc) -> None:
    templates = [CertificateTemplate("WebServer")]
    with AdcsEmulator(users=USERS, templates=templates, keytab=kdc.keytab, extended_protection="required") as emu:
        async with AsyncCertsrvClient(
            emu.url, auth="kerberos", username=kdc.principal, password=kdc.password, ca_file=emu.ca_file
        ) as client:
            for _ in range(2):
                assert isinstance(await client.submit(csr_pem(), "WebServer"), Issued)
        statuses = [e.status for e in emu.access_log.entries]
        assert statuses.count(401) == 1  # one Kerberos leg for the connection, then four requests on it
        assert {e.username for e in emu.access_log.entries if e.status == 200} == {kdc.principal}


async def test_a_closed_client_says_so(emulator: AdcsEmulator) -> None:
    client = _client(emulator)
    assert await client.list_templates()
    await client.aclose()
    with pytest.raises(ConfigurationError, match=r"closed\. Fix:"):
        await client.list_templates()
