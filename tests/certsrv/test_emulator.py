"""The AD CS emulator over real TLS with real NTLM: every page, every policy, renewals and CRLs."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID

from certsrv._auth import NtlmAuth
from certsrv.testing import AdcsEmulator, CertificateTemplate, Disposition, Policy
from tests.certsrv._emulator_helpers import (
    ALICE,
    PASSWORD,
    USERS,
    client_for,
    csr_pem,
    dd_value,
    issued_request_id,
    page_request_id,
    submit_form,
)

TEMPLATES = [
    CertificateTemplate("WebServer", display_name="Web Server"),
    CertificateTemplate("ClientOnly", ekus=(ExtendedKeyUsageOID.CLIENT_AUTH,)),
    CertificateTemplate("Manual", policy=Policy.PENDING),
    CertificateTemplate("Forbidden", policy=Policy.DENY),
]


@pytest.fixture(scope="module")
def emulator() -> Iterator[AdcsEmulator]:
    with AdcsEmulator(users=USERS, templates=TEMPLATES, renewals=2, first_request_id=100) as running:
        yield running


@pytest.fixture
def client(emulator: AdcsEmulator) -> Iterator[httpx.Client]:
    with client_for(emulator, NtlmAuth(ALICE, PASSWORD)) as c:
        yield c


def _verify_signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    key = issuer.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    cert.verify_directly_issued_by(issuer)


def test_anonymous_request_gets_iis_401(emulator: AdcsEmulator) -> None:
    with client_for(emulator) as anonymous:
        response = anonymous.get("/")
    assert response.status_code == 401
    assert response.headers.get_list("www-authenticate") == ["Negotiate", "NTLM"]
    assert response.headers["content-length"] == str(len(response.content))
    assert "401 - Unauthorized: Access is denied due to invalid credentials." in response.text
    assert response.headers["server"] == "Microsoft-IIS/10.0"


def test_landing_redirect_and_home_page(client: httpx.Client, emulator: AdcsEmulator) -> None:
    moved = client.get(emulator.url)
    assert moved.status_code == 301
    assert moved.headers["location"] == f"{emulator.url}/"
    home = client.get("/")
    assert home.status_code == 200
    assert "Microsoft</I></B> Active Directory Certificate Services &nbsp;--&nbsp; EMULATED-CA" in home.text
    assert 'Href="certcarc.asp"' in home.text


def test_request_form_lists_templates(client: httpx.Client) -> None:
    page = client.get("/certrqxt.asp").text
    assert "<Select Name=lbCertTemplate ID=lbCertTemplateID>" in page
    assert '<Option Value="O;WebServer;1;0;0;0;1;0;;;100;0;4;Web Server">Web Server</Option>' in page
    values = [v.split(";")[1] for v in re.findall(r'<Option Value="([^"]+)"', page)]
    assert values == ["WebServer", "ClientOnly", "Manual", "Forbidden"]


def test_issue_and_download_in_every_encoding(client: httpx.Client, emulator: AdcsEmulator) -> None:
    page = client.post("/certfnsh.asp", data=submit_form("webserver", csr_pem("phone-1"))).text
    assert "<P ID=locPageTitle> <B> Certificate Issued </B>" in page
    request_id = issued_request_id(page)
    assert f'location="certnew.cer?ReqID={request_id}&"+getEncoding();' in page
    der = client.get(f"/certnew.cer?ReqID={request_id}&Enc=bin")
    assert der.headers["content-type"] == "application/pkix-cert"
    cert = x509.load_der_x509_certificate(der.content)
    pem = client.get(f"/certnew.cer?ReqID={request_id}&ENC=b64")  # the seed's upper-case key
    assert x509.load_pem_x509_certificate(pem.content) == cert
    assert cert.subject.rfc4514_string() == "CN=phone-1"
    _verify_signed_by(cert, emulator.ca.ca_certificate())
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    chain = client.get(f"/certnew.p7b?ReqID={request_id}&Enc=bin")
    assert chain.headers["content-type"] == "application/x-pkcs7-certificates"
    certs = pkcs7.load_der_pkcs7_certificates(chain.content)
    # A PKCS#7 SET OF certificates has no meaningful order (DER sorts it): compare as sets.
    assert set(certs) == {cert, emulator.ca.ca_certificate(), emulator.ca.root_certificate}
    assert len(certs) == 3
    b64_chain = client.get(f"/certnew.p7b?ReqID={request_id}&Enc=b64").content
    assert b64_chain.startswith(b"-----BEGIN CERTIFICATE-----\r\n")  # AD CS armors PKCS#7 as CERTIFICATE


def test_template_ekus_and_requester_recorded(client: httpx.Client, emulator: AdcsEmulator) -> None:
    request_id = issued_request_id(client.post("/certfnsh.asp", data=submit_form("ClientOnly")).text)
    row = emulator.ca.get(request_id)
    assert row is not None and row.certificate is not None
    assert row.requester == ALICE
    eku = row.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    key_usage = row.certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert key_usage.critical
    assert key_usage.value.digital_signature and key_usage.value.key_encipherment
    assert not key_usage.value.key_cert_sign
    ski = row.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(row.certificate.public_key())


def test_pending_then_approved(client: httpx.Client, emulator: AdcsEmulator) -> None:
    page = client.post("/certfnsh.asp", data=submit_form("Manual")).text
    assert "Certificate Pending" in page
    request_id = page_request_id(page)
    assert f"Your Request Id is {request_id}." in page
    waiting = client.get(f"/certnew.cer?ReqID={request_id}&Enc=b64")
    assert waiting.headers["content-type"].startswith("text/html")
    assert dd_value(waiting.text, "locDispLabel").startswith("5 -")
    assert dd_value(waiting.text, "locDispMsgLabel") == "Taken Under Submission"
    emulator.approve(request_id)
    cert = x509.load_pem_x509_certificate(client.get(f"/certnew.cer?ReqID={request_id}&Enc=b64").content)
    _verify_signed_by(cert, emulator.ca.ca_certificate())


def test_pending_then_denied(client: httpx.Client, emulator: AdcsEmulator) -> None:
    request_id = page_request_id(client.post("/certfnsh.asp", data=submit_form("Manual")).text)
    emulator.deny(request_id)
    page = client.get(f"/certnew.cer?ReqID={request_id}&Enc=bin").text
    assert dd_value(page, "locDispLabel").startswith("2 -")
    assert "Denied by" in dd_value(page, "locDispMsgLabel")
    assert "0x80094014 (-2146877420 CERTSRV_E_ADMIN_DENIED_REQUEST)" in dd_value(page, "locLastStatLabel")
    with pytest.raises(LookupError):
        emulator.approve(request_id)


@pytest.mark.parametrize(
    ("template", "hresult"),
    [
        ("Forbidden", "0x80094012 (-2146877422 CERTSRV_E_TEMPLATE_DENIED)"),
        ("WebSrever", "0x80094800 (-2146875392 CERTSRV_E_UNSUPPORTED_CERT_TYPE)"),
        (None, "0x80094801 (-2146875391 CERTSRV_E_NO_CERT_TYPE)"),
    ],
)
def test_denied_by_policy_module(
    client: httpx.Client, emulator: AdcsEmulator, template: str | None, hresult: str
) -> None:
    page = client.post("/certfnsh.asp", data=submit_form(template)).text
    assert "<P ID=locDenied> Your certificate request was denied." in page
    request_id = page_request_id(page)
    assert f'The disposition message is "Denied by Policy Module  0x{hresult[2:10]},' in page
    row = emulator.ca.get(request_id)
    assert row is not None and row.disposition is Disposition.DENIED
    later = client.get(f"/certnew.cer?ReqID={request_id}").text
    assert hresult in dd_value(later, "locLastStatLabel")


def test_unparseable_request_is_an_error_page(client: httpx.Client) -> None:
    page = client.post("/certfnsh.asp", data=submit_form("WebServer", csr="not a request")).text
    assert "<P ID=locPageTitle> <B> Error </B>" in page
    assert dd_value(page, "locModeLabel").startswith("newreq -")
    assert "0x8009310b (ASN: 267 CRYPT_E_ASN1_BADTAG)" in dd_value(page, "locResultLabel")


def test_unknown_request_id(client: httpx.Client) -> None:
    page = client.get("/certnew.cer?ReqID=99999&Enc=b64").text
    assert "0x80094004 (-2146877436 CERTSRV_E_PROPERTY_EMPTY)" in dd_value(page, "locResultLabel")
    assert "certnew.cer/certnew.p7b/certcrl.crl" in dd_value(page, "locModeLabel")


def test_non_ascii_digits_in_a_request_id_are_an_unknown_request(client: httpx.Client) -> None:
    # "²".isdigit() is True but int("²") fails: such an id must be an unknown request, not a server error.
    response = client.get("/certnew.cer?ReqID=%C2%B2&Enc=b64")
    assert response.status_code == 200
    assert "0x80094004" in dd_value(response.text, "locResultLabel")


def test_request_ids_are_unique_and_increasing_under_concurrency(emulator: AdcsEmulator) -> None:
    ids: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            row = emulator.ca.submit(csr_pem(), "CertificateTemplate:WebServer", "EXAMPLE\\bob")
            with lock:
                ids.append(row.request_id)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 20
    assert min(ids) >= 100
    assert [r.request_id for r in emulator.ca.requests] == sorted(r.request_id for r in emulator.ca.requests)


def test_renewals_on_certcarc_and_downloads(client: httpx.Client, emulator: AdcsEmulator) -> None:
    page = client.get("/certcarc.asp").text
    assert "var nRenewals=2;" in page
    assert page.count("<Option Value=") == 3
    assert "3, 3, 3" in page
    assert "handleGetDeltaCrl();return false;" in page
    certs = [
        x509.load_der_x509_certificate(client.get(f"/certnew.cer?ReqID=CACert&Renewal={k}&Enc=bin").content)
        for k in range(3)
    ]
    assert certs == emulator.ca.ca_certificates
    assert len({c.serial_number for c in certs}) == 3
    chain = pkcs7.load_der_pkcs7_certificates(client.get("/certnew.p7b?ReqID=CACert&Renewal=1&Enc=bin").content)
    assert set(chain) == {certs[1], emulator.ca.root_certificate}  # a PKCS#7 SET OF has no order
    newest = x509.load_pem_x509_certificate(client.get("/certnew.cer?ReqID=CACert&Enc=b64").content)
    assert newest == certs[2]
    missing = client.get("/certnew.cer?ReqID=CACert&Renewal=7&Enc=bin")
    assert "CERTSRV_E_PROPERTY_EMPTY" in missing.text


def test_base_and_delta_crls(client: httpx.Client, emulator: AdcsEmulator) -> None:
    request_id = issued_request_id(client.post("/certfnsh.asp", data=submit_form("WebServer")).text)
    row = emulator.ca.get(request_id)
    assert row is not None and row.certificate is not None
    emulator.ca.revoke(request_id)
    response = client.get("/certcrl.crl?Type=delta&Renewal=2&Enc=bin")
    assert response.headers["content-type"] == "application/pkix-crl"
    delta = x509.load_der_x509_crl(response.content)
    assert delta.is_signature_valid(emulator.ca.ca_certificate(2).public_key())  # type: ignore[arg-type]
    base_number = delta.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value.crl_number
    assert delta.get_revoked_certificate_by_serial_number(row.certificate.serial_number) is not None
    base = x509.load_pem_x509_crl(client.get("/certcrl.crl?Type=base&Renewal=2&Enc=b64").content)
    assert base.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == base_number
    old = x509.load_der_x509_crl(client.get("/certcrl.crl?Type=base&Renewal=0&Enc=bin").content)
    assert old.is_signature_valid(emulator.ca.ca_certificate(0).public_key())  # type: ignore[arg-type]
    emulator.ca.publish_crls()
    fresh_delta = x509.load_der_x509_crl(client.get("/certcrl.crl?Type=delta&Renewal=2&Enc=bin").content)
    assert fresh_delta.get_revoked_certificate_by_serial_number(row.certificate.serial_number) is None
    fresh_base = x509.load_der_x509_crl(client.get("/certcrl.crl?Type=base&Renewal=2&Enc=bin").content)
    assert fresh_base.get_revoked_certificate_by_serial_number(row.certificate.serial_number) is not None


def test_unknown_page_is_iis_404(client: httpx.Client) -> None:
    response = client.get("/nothere.asp")
    assert response.status_code == 404
    assert "404 - File or directory not found." in response.text


def test_no_delta_crl_when_disabled() -> None:
    with (
        AdcsEmulator(users=USERS, auth=("basic",), delta_crl=False) as emulator,
        client_for(emulator, httpx.BasicAuth(ALICE, PASSWORD)) as client,
    ):
        page = client.get("/certcarc.asp").text
        assert "handleGetDeltaCrl();return false;" not in page
        assert "var nRenewals=0;" in page
        assert "CERTSRV_E_PROPERTY_EMPTY" in client.get("/certcrl.crl?Type=delta&Enc=bin").text
        assert client.get("/certcrl.crl?Type=base&Enc=bin").headers["content-type"] == "application/pkix-crl"


def test_concurrent_clients_over_http() -> None:
    """Several kept-alive NTLM clients enrolling at once: every request issued, ids unique, every response logged."""
    results: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    with AdcsEmulator(users=USERS, templates=TEMPLATES) as emulator:

        def worker() -> None:
            try:
                with client_for(emulator, NtlmAuth(ALICE, PASSWORD)) as client:
                    for _ in range(4):
                        page = client.post("/certfnsh.asp", data=submit_form("WebServer")).text
                        request_id = issued_request_id(page)
                        assert client.get(f"/certnew.cer?ReqID={request_id}&Enc=bin").status_code == 200
                        with lock:
                            results.append(request_id)
            except BaseException as exc:  # surfaced by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        log = emulator.access_log
    assert not errors, errors
    assert sorted(results) == list(range(1, 17))
    assert log.count(lambda e: e.status == 200) == 32
    assert log.count(lambda e: e.status == 401) == 8  # one NTLM handshake (two 401s) per connection
