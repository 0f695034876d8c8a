"""CertsrvClient end to end against the AD CS emulator over real TLS: enrollment, pending, denial, templates,
renewals, CRLs, German pages, authentication and Extended Protection, and the minimal round trips."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from certsrv import (
    AuthenticationError,
    CertsrvClient,
    ConfigurationError,
    Issued,
    Pending,
    RequestDeniedError,
    RequestPendingError,
    TemplateAccessDeniedError,
    TemplateNotFoundError,
    UnexpectedResponseError,
    UnknownRequestError,
    encode_certificates,
    san_attribute,
)
from certsrv.testing import AdcsEmulator, CertificateTemplate, ExtendedProtection, Policy
from tests._support.kerberos import Kdc
from tests.certsrv._emulator_helpers import ALICE, PASSWORD, USERS, csr_pem

TEMPLATES = [
    CertificateTemplate("WebServer", display_name="Web Server"),
    CertificateTemplate("Manual", policy=Policy.PENDING),
    CertificateTemplate("Forbidden", policy=Policy.DENY),
]


@pytest.fixture(scope="module", params=["en", "de"])
def emulator(request: pytest.FixtureRequest) -> Iterator[AdcsEmulator]:
    with AdcsEmulator(users=USERS, templates=TEMPLATES, renewals=2, language=request.param) as emu:
        yield emu


@pytest.fixture
def client(emulator: AdcsEmulator) -> Iterator[CertsrvClient]:
    with CertsrvClient(
        emulator.url, auth="ntlm", username=ALICE, password=PASSWORD, ca_file=emulator.ca_file
    ) as client:
        yield client


def _log_since(emulator: AdcsEmulator, start: int) -> list[tuple[str, str, str, int]]:
    return [(e.method, e.uri_stem, e.uri_query, e.status) for e in emulator.access_log.entries[start:]]


def test_submit_issues_in_one_post_and_one_get(emulator: AdcsEmulator, client: CertsrvClient) -> None:
    client.authenticate()
    start = len(emulator.access_log.entries)
    results = [client.submit(csr_pem(f"SEP00000000000{i}"), "WebServer") for i in range(3)]
    assert all(isinstance(r, Issued) for r in results)
    log = _log_since(emulator, start)
    assert len(log) == 6  # no 401, no 301, no certrqxt.asp: the seed's RA needed 7 per certificate
    for i, result in enumerate(results):
        assert isinstance(result, Issued)
        assert result.certificate.subject.rfc4514_string() == f"CN=SEP00000000000{i}"
        assert log[2 * i] == ("POST", "/certsrv/certfnsh.asp", "", 200)
        assert log[2 * i + 1] == ("GET", "/certsrv/certnew.cer", f"ReqID={result.request_id}&Enc=bin", 200)
        assert result.pem.startswith(b"-----BEGIN CERTIFICATE-----")
        assert x509.load_der_x509_certificate(result.der) == result.certificate


def test_first_request_authenticates_the_connection_once(emulator: AdcsEmulator, client: CertsrvClient) -> None:
    start = len(emulator.access_log.entries)
    client.submit(csr_pem(), "WebServer")
    log = _log_since(emulator, start)
    # NTLM: anonymous 401, negotiate 401, authenticated 200, then the enrollment's two requests
    assert [(m, s, st) for m, s, _, st in log] == [
        ("GET", "/certsrv/", 401),
        ("GET", "/certsrv/", 401),
        ("GET", "/certsrv/", 200),
        ("POST", "/certsrv/certfnsh.asp", 200),
        ("GET", "/certsrv/certnew.cer", 200),
    ]


def test_certificate_is_issued_by_the_ca(emulator: AdcsEmulator, client: CertsrvClient) -> None:
    result = client.submit(csr_pem(), "WebServer", {"SAN": san_attribute(dns=["phone.example.test"])})
    assert isinstance(result, Issued)
    ca = client.get_ca_certificate()
    result.certificate.verify_directly_issued_by(ca)
    chain = client.get_chain(result.request_id)
    assert chain[0] == result.certificate or result.certificate in chain
    assert client.get_certificate(result.request_id) == result.certificate
    assert client.retrieve(result.request_id) == result


def test_pending_then_approved(emulator: AdcsEmulator, client: CertsrvClient) -> None:
    pending = client.submit(csr_pem(), "Manual")
    assert isinstance(pending, Pending)
    assert client.retrieve(pending.request_id) == pending
    with pytest.raises(RequestPendingError) as info:
        client.get_certificate(pending.request_id)
    assert info.value.request_id == pending.request_id
    assert f"retrieve({pending.request_id})" in str(info.value)
    emulator.approve(pending.request_id)
    issued = client.retrieve(pending.request_id)
    assert isinstance(issued, Issued)
    assert issued.request_id == pending.request_id


def test_pending_then_denied(emulator: AdcsEmulator, client: CertsrvClient) -> None:
    pending = client.submit(csr_pem(), "Manual")
    assert isinstance(pending, Pending)
    emulator.deny(pending.request_id)
    with pytest.raises(RequestDeniedError) as info:
        client.retrieve(pending.request_id)
    assert info.value.hresult == 0x80094014
    assert info.value.request_id == pending.request_id
    assert "CERTSRV_E_ADMIN_DENIED_REQUEST" in str(info.value)


def test_unknown_request_id(client: CertsrvClient) -> None:
    with pytest.raises(UnknownRequestError) as info:
        client.retrieve(987654)
    assert info.value.request_id == 987654


def test_unknown_template_lists_the_offered_ones(emulator: AdcsEmulator, client: CertsrvClient) -> None:
    client.authenticate()
    start = len(emulator.access_log.entries)
    with pytest.raises(TemplateNotFoundError) as info:
        client.submit(csr_pem(), "CiscoRA")
    error = info.value
    assert error.hresult == 0x80094800
    assert error.template == "CiscoRA"
    assert error.offered == ("WebServer", "Manual", "Forbidden")
    assert "0x80094800" in str(error) and "WebServer, Manual, Forbidden" in str(error)
    assert isinstance(error, RequestDeniedError)  # callers catching denials catch this too
    # certrqxt.asp is fetched only on this failure path, after the POST
    assert [s for _, s, _, _ in _log_since(emulator, start)] == ["/certsrv/certfnsh.asp", "/certsrv/certrqxt.asp"]


def test_template_without_permission(client: CertsrvClient) -> None:
    with pytest.raises(TemplateAccessDeniedError) as info:
        client.submit(csr_pem(), "Forbidden")
    assert info.value.hresult == 0x80094012
    assert "Enroll" in str(info.value)


def test_list_templates(client: CertsrvClient) -> None:
    templates = client.list_templates()
    assert [t.name for t in templates] == ["WebServer", "Manual", "Forbidden"]
    assert templates[0].display_name == "Web Server"


def test_ca_renewals_and_chains(emulator: AdcsEmulator, client: CertsrvClient) -> None:
    info = client.get_ca_info()
    assert info.renewals == 2
    certificates = [client.get_ca_certificate(renewal=r) for r in range(3)]
    assert len({c.serial_number for c in certificates}) == 3
    assert client.get_ca_certificate() == certificates[2] == emulator.ca.ca_certificate()
    chain = client.get_ca_chain()
    assert certificates[2] in chain
    assert client.get_ca_chain(renewal=0)[0] in certificates or certificates[0] in client.get_ca_chain(renewal=0)
    der = encode_certificates(chain, "der")
    assert pkcs7.load_der_pkcs7_certificates(der) == chain


def test_crls_base_and_delta(client: CertsrvClient) -> None:
    ca = client.get_ca_certificate()
    base = client.get_crl()
    delta = client.get_crl(delta=True)
    for crl in (base, delta):
        assert crl.issuer == ca.subject
        assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    assert base.public_bytes(serialization.Encoding.DER) != delta.public_bytes(serialization.Encoding.DER)


def test_renewal_out_of_range(client: CertsrvClient) -> None:
    with pytest.raises(UnexpectedResponseError):
        client.get_ca_certificate(renewal=9)
    with pytest.raises(ConfigurationError, match=r"renewal 9 does not exist.*Fix:"):
        client.get_crl(renewal=9)  # not silently the CRL of another key


def test_bad_csr_is_refused_before_sending(client: CertsrvClient) -> None:
    with pytest.raises(ConfigurationError, match="PKCS#10"):
        client.submit("not a csr", "WebServer")


@pytest.mark.parametrize("username", [ALICE, "EXAMPLE\\nobody"])
def test_wrong_password(emulator: AdcsEmulator, username: str) -> None:
    with (
        CertsrvClient(emulator.url, auth="ntlm", username=username, password="wrong", ca_file=emulator.ca_file) as c,
        pytest.raises(AuthenticationError) as info,
    ):
        c.submit(csr_pem(), "WebServer")
    assert "Fix:" in str(info.value)
    assert "wrong" not in str(info.value)  # never the password


def test_no_credentials_names_the_schemes(emulator: AdcsEmulator) -> None:
    with CertsrvClient(emulator.url, ca_file=emulator.ca_file) as c, pytest.raises(AuthenticationError) as info:
        c.list_templates()
    assert "NTLM" in str(info.value)


def test_password_from_environment(emulator: AdcsEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTSRV_PASSWORD", PASSWORD)
    with CertsrvClient(emulator.url, auth="negotiate", username=ALICE, ca_file=emulator.ca_file) as c:
        assert isinstance(c.submit(csr_pem(), "WebServer"), Issued)


@pytest.mark.parametrize(
    ("mode", "binding", "accepted"),
    [
        ("off", False, True),
        ("accept", True, True),
        ("accept", False, True),
        ("required", True, True),
        ("required", False, False),
    ],
)
def test_ntlm_extended_protection(mode: ExtendedProtection, binding: bool, accepted: bool) -> None:
    with (
        AdcsEmulator(users=USERS, templates=TEMPLATES, extended_protection=mode) as emu,
        CertsrvClient(
            emu.url, auth="ntlm", username=ALICE, password=PASSWORD, ca_file=emu.ca_file, channel_binding=binding
        ) as c,
    ):
        if accepted:
            assert isinstance(c.submit(csr_pem(), "WebServer"), Issued)
        else:
            with pytest.raises(AuthenticationError, match="channel binding"):
                c.submit(csr_pem(), "WebServer")


def test_basic_over_tls(emulator: AdcsEmulator) -> None:
    with AdcsEmulator(users=USERS, templates=TEMPLATES, auth=("basic",)) as emu:
        with CertsrvClient(emu.url, auth="basic", username=ALICE, password=PASSWORD, ca_file=emu.ca_file) as c:
            assert isinstance(c.submit(csr_pem(), "WebServer"), Issued)
        assert [e.status for e in emu.access_log.entries] == [200, 200]  # Basic is preemptive: no 401


def test_a_closed_client_says_so(emulator: AdcsEmulator) -> None:
    client = CertsrvClient(emulator.url, auth="ntlm", username=ALICE, password=PASSWORD, ca_file=emulator.ca_file)
    assert client.list_templates()
    client.close()
    with pytest.raises(ConfigurationError, match=r"closed\. Fix:"):
        client.list_templates()


def test_no_secret_in_any_log_record(caplog: pytest.LogCaptureFixture) -> None:
    # every logger (certsrv, httpx, httpcore, the emulator) at DEBUG: neither the password nor a credential token
    import base64

    wrong = "Wr0ng-S3cret-Value"
    basic_token = base64.b64encode(f"{ALICE}:{PASSWORD}".encode()).decode()
    with caplog.at_level("DEBUG"), AdcsEmulator(users=USERS, templates=TEMPLATES, auth=("ntlm", "basic")) as emu:
        for kind in ("ntlm", "basic"):
            with CertsrvClient(emu.url, auth=kind, username=ALICE, password=PASSWORD, ca_file=emu.ca_file) as c:
                assert isinstance(c.submit(csr_pem(), "WebServer"), Issued)
            with (
                CertsrvClient(emu.url, auth=kind, username=ALICE, password=wrong, ca_file=emu.ca_file) as c,
                pytest.raises(AuthenticationError) as info,
            ):
                c.authenticate()
            assert wrong not in str(info.value)
    assert caplog.records  # the loggers did speak
    for secret in (PASSWORD, wrong, basic_token, "Authorization: NTLM", "Authorization: Basic"):
        assert secret not in caplog.text


@pytest.mark.kerberos
@pytest.mark.parametrize("mode", ["off", "accept", "required"])
def test_kerberos(kdc: Kdc, mode: ExtendedProtection) -> None:
    with (
        AdcsEmulator(users=USERS, templates=TEMPLATES, keytab=kdc.keytab, extended_protection=mode) as emu,
        CertsrvClient(
            emu.url, auth="kerberos", username=kdc.principal, password=kdc.password, ca_file=emu.ca_file
        ) as c,
    ):
        for _ in range(2):
            assert isinstance(c.submit(csr_pem(), "WebServer"), Issued)
        log = [(e.method, e.status) for e in emu.access_log.entries]
        assert log == [("GET", 401), ("GET", 200), ("POST", 200), ("GET", 200), ("POST", 200), ("GET", 200)]


def test_reauthenticates_when_the_server_closed_the_idle_connection() -> None:
    import time

    with (
        AdcsEmulator(users=USERS, templates=TEMPLATES, idle_timeout=0.2) as emu,
        CertsrvClient(emu.url, auth="ntlm", username=ALICE, password=PASSWORD, ca_file=emu.ca_file) as c,
    ):
        assert isinstance(c.submit(csr_pem(), "WebServer"), Issued)
        time.sleep(0.5)  # IIS-like idle timeout closes the kept-alive connection
        start = len(emu.access_log.entries)
        assert isinstance(c.submit(csr_pem(), "WebServer"), Issued)
        log = _log_since(emu, start)
    # the POST finds a new, unauthenticated connection: its auth flow runs the handshake there
    assert [(m, s, st) for m, s, _, st in log] == [
        ("POST", "/certsrv/certfnsh.asp", 401),
        ("POST", "/certsrv/certfnsh.asp", 401),
        ("POST", "/certsrv/certfnsh.asp", 200),
        ("GET", "/certsrv/certnew.cer", 200),
    ]


@pytest.mark.kerberos
def test_kerberos_without_binding_is_refused_when_required(kdc: Kdc) -> None:
    with (
        AdcsEmulator(users=USERS, templates=TEMPLATES, keytab=kdc.keytab, extended_protection="required") as emu,
        CertsrvClient(
            emu.url, auth="kerberos", username=kdc.principal, password=kdc.password, ca_file=emu.ca_file,
            channel_binding=False,
        ) as c,
        pytest.raises(AuthenticationError),
    ):  # fmt: skip
        c.submit(csr_pem(), "WebServer")


def test_an_httpx_client_can_be_supplied(emulator: AdcsEmulator) -> None:
    import ssl

    import httpx

    own = httpx.Client(
        verify=ssl.create_default_context(cafile=str(emulator.ca_file)), limits=httpx.Limits(max_connections=1)
    )
    with own:
        with CertsrvClient(emulator.url, auth="ntlm", username=ALICE, password=PASSWORD, http_client=own) as c:
            assert isinstance(c.submit(csr_pem(), "WebServer"), Issued)
        assert not own.is_closed  # the caller's client stays open
    with httpx.Client() as other, pytest.raises(ConfigurationError, match="http_client"):
        CertsrvClient(emulator.url, ca_file=emulator.ca_file, http_client=other)


def test_san_attribute_reaches_the_certificate() -> None:
    with (
        AdcsEmulator(users=USERS, templates=TEMPLATES, allow_san_attribute=True) as emu,
        CertsrvClient(emu.url, auth="ntlm", username=ALICE, password=PASSWORD, ca_file=emu.ca_file) as c,
    ):
        result = c.submit(csr_pem(), "WebServer", {"SAN": san_attribute(dns=["phone.example.test", "p2.example.test"])})
    assert isinstance(result, Issued)
    san = result.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["phone.example.test", "p2.example.test"]


@pytest.mark.kerberos
def test_negotiate_picks_kerberos_for_a_realm_user(kdc: Kdc) -> None:
    with (
        AdcsEmulator(users=USERS, templates=TEMPLATES, keytab=kdc.keytab, extended_protection="required") as emu,
        CertsrvClient(emu.url, username=kdc.principal, password=kdc.password, ca_file=emu.ca_file) as c,  # Negotiate
    ):
        assert isinstance(c.submit(csr_pem(), "WebServer"), Issued)
        # one 401 and one authenticated GET: Kerberos (NTLM would need two 401s)
        assert [(e.status, e.username) for e in emu.access_log.entries[:2]] == [(401, ""), (200, kdc.principal)]
