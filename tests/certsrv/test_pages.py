"""The page parsers against real AD CS pages and rebuilt English and German pages of the same structure."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7

from certsrv._errors import UnrecognizedPageError
from certsrv._pages import (
    RetrievalStatus,
    SubmitDenied,
    SubmitError,
    SubmitIssued,
    SubmitPending,
    failure_hresults,
    parse_ca_info_page,
    parse_certificate_response,
    parse_crl_response,
    parse_iis_error_page,
    parse_pkcs7_response,
    parse_retrieval_error_page,
    parse_submit_page,
    parse_template_page,
)
from tests.certsrv._pages_data import LANGUAGES, page, real, real_certcarc, real_certnew


@pytest.fixture(scope="module")
def certificate() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "page test")])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


# -- certfnsh.asp ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_issued_page_gives_request_id_and_ca_renewal(lang: str) -> None:
    assert parse_submit_page(page("certfnsh_issued", lang)) == SubmitIssued(77, 3)


def test_issued_from_script_location_alone() -> None:
    # the seed's page source: only the JS handler carries the request id
    body = b'<Script>function handleGetCert() {\r\n    location="certnew.cer?ReqID=10&"+getEncoding();\r\n}</Script>'
    assert parse_submit_page(body) == SubmitIssued(10, None)


def test_ca_cert_links_are_not_taken_for_a_request_id() -> None:
    body = page("certfnsh_pending").replace(
        b"</Body>", b'<A Href="certnew.cer?ReqID=CACert&amp;Renewal=1">x</A></Body>'
    )
    assert parse_submit_page(body) == SubmitPending(12)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_pending_page_gives_request_id(lang: str) -> None:
    assert parse_submit_page(page("certfnsh_pending", lang)) == SubmitPending(12)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize(
    ("name", "request_id", "code"),
    [
        ("certfnsh_denied_template", 78, 0x80094800),
        ("certfnsh_denied_no_template", 79, 0x80094801),
        ("certfnsh_denied_permission", 80, 0x80094012),
    ],
)
def test_denied_pages_give_hresult_request_id_and_message(lang: str, name: str, request_id: int, code: int) -> None:
    result = parse_submit_page(page(name, lang))
    assert isinstance(result, SubmitDenied)
    assert (result.request_id, result.hresult) == (request_id, code)
    assert f"0x{code:08x}" in result.message.lower()
    assert ("verweigert" in result.message) == (lang == "de")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_error_page_gives_hresult_and_message(lang: str) -> None:
    result = parse_submit_page(page("certfnsh_error", lang))
    assert isinstance(result, SubmitError)
    assert result.hresult == 0x8009310B
    assert "CRYPT_E_ASN1_BADTAG" in result.message


def test_denied_page_without_quotes_uses_english_fallback() -> None:
    body = (
        b"<P ID=locPageTitle> <B> Certificate Request Denied </B><P> Your Request Id is 55. "
        b'The disposition message is "Denied by Policy Module".</P>'
    )
    assert parse_submit_page(body) == SubmitDenied(55, None, "Denied by Policy Module")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html><body>Welcome to nginx</body></html>",
        real("unauth.tmpl"),
        b"<html><p>No idea</p></html>",
    ],
)
def test_unrecognized_submit_pages_raise(body: bytes) -> None:
    with pytest.raises(UnrecognizedPageError) as info:
        parse_submit_page(body)
    assert "certfnsh.asp" in str(info.value)
    assert "Fix:" in str(info.value)


# -- certnew.cer / .p7b / certcrl.crl ---------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize(
    ("name", "kind", "code"),
    [
        ("certnew_pending", "pending", None),
        ("certnew_denied", "denied", 0x80094014),
        ("certnew_unknown", "unknown", 0x80094004),
        ("certfnsh_error", "error", 0x8009310B),
    ],
)
def test_retrieval_error_pages(lang: str, name: str, kind: str, code: int | None) -> None:
    status = parse_retrieval_error_page(page(name, lang))
    assert (status.kind, status.hresult) == (kind, code)


def test_real_certnew_page_pending_and_denied() -> None:
    pending = parse_retrieval_error_page(real_certnew(b"Taken Under Submission", b""))
    assert pending == RetrievalStatus("pending", 5, "Taken Under Submission", None)
    denied = parse_retrieval_error_page(
        real_certnew(
            b"Denied by CS simulator",
            b"The request was denied by a certificate manager or CA administrator. "
            b"0x80094014 (-2146877420 CERTSRV_E_ADMIN_DENIED_REQUEST)",
        )
    )
    assert (denied.kind, denied.hresult, denied.message) == ("denied", 0x80094014, "Denied by CS simulator")


@pytest.mark.parametrize("encoding", ["der", "pem", "bare-base64"])
@pytest.mark.parametrize("content_type", ["application/pkix-cert", "application/octet-stream", None])
def test_certificate_is_sniffed_from_bytes(
    certificate: x509.Certificate, encoding: str, content_type: str | None
) -> None:
    der = certificate.public_bytes(serialization.Encoding.DER)
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    body = {"der": der, "pem": pem, "bare-base64": b"".join(pem.splitlines()[1:-1])}[encoding]
    assert parse_certificate_response(body, content_type) == certificate


def test_certificate_response_html_gives_status() -> None:
    status = parse_certificate_response(page("certnew_pending", "de"), "text/html")
    assert isinstance(status, RetrievalStatus)
    assert status.kind == "pending"


def test_certificate_response_garbage_raises() -> None:
    with pytest.raises(UnrecognizedPageError):
        parse_certificate_response(b"\x30\x03\x02\x01\x01", "application/pkix-cert")


@pytest.mark.parametrize("armor", [None, b"PKCS7", b"CERTIFICATE"])
def test_pkcs7_in_der_and_any_armor(certificate: x509.Certificate, armor: bytes | None) -> None:
    der = pkcs7.serialize_certificates([certificate, certificate], serialization.Encoding.DER)
    body = der
    if armor is not None:
        import base64

        body = b"-----BEGIN " + armor + b"-----\r\n" + base64.encodebytes(der) + b"-----END " + armor + b"-----\r\n"
    assert parse_pkcs7_response(body, "application/x-pkcs7-certificates") == [certificate, certificate]


def test_pkcs7_error_page_gives_status() -> None:
    status = parse_pkcs7_response(page("certnew_denied"), "text/html")
    assert isinstance(status, RetrievalStatus)
    assert status.kind == "denied"


def test_crl_der_and_pem(certificate: x509.Certificate) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(certificate.subject)
        .last_update(now)
        .next_update(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    assert parse_crl_response(crl.public_bytes(serialization.Encoding.DER), "application/pkix-crl") == crl
    assert parse_crl_response(crl.public_bytes(serialization.Encoding.PEM)) == crl
    with pytest.raises(UnrecognizedPageError):
        parse_crl_response(b"not a crl", "application/pkix-crl")


# -- certcarc.asp ---------------------------------------------------------------------------------------------


def test_real_certcarc_page() -> None:
    info = parse_ca_info_page(real_certcarc(0))
    assert info.renewals == 0
    assert info.crl_states == (3,)
    assert info.crl_available(0)
    assert not info.delta_crl
    assert info.instances == ((0, "Current [NokiaInternalSubCA07]"),)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_certcarc_with_renewals_and_delta(lang: str) -> None:
    info = parse_ca_info_page(page("certcarc", lang))
    assert info.renewals == 2
    assert info.crl_states == (3, 4, 3)
    assert info.delta_crl
    assert [renewal for renewal, _ in info.instances] == [2, 1, 0]
    assert info.crl_renewal() == 2
    assert info.crl_renewal(1) == 0  # no CRL for key 1: the page's script walks back to 0
    assert not info.crl_available(7)


def test_certcarc_without_renewals_raises() -> None:
    with pytest.raises(UnrecognizedPageError, match="nRenewals"):
        parse_ca_info_page(page("certrqxt"))


# -- certrqxt.asp ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_template_list(lang: str) -> None:
    templates = parse_template_page(page("certrqxt", lang))
    assert [t.name for t in templates] == ["CiscoRA", "WebServer", "User"]
    assert templates[1].display_name == "Web Server"
    assert templates[0].value.split(";")[1] == "CiscoRA"


def test_template_page_without_templates_is_empty() -> None:
    assert parse_template_page(page("certfnsh_pending")) == []


def test_template_page_unrelated_raises() -> None:
    with pytest.raises(UnrecognizedPageError):
        parse_template_page(b"<html>login</html>")


# -- IIS 401 --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_iis_401_page(lang: str) -> None:
    info = parse_iis_error_page(page("unauth_401", lang))
    assert info.status == 401
    assert info.title.startswith("401 - ")
    assert info.detail


def test_real_iis_401_page_with_junk() -> None:
    info = parse_iis_error_page(real("unauth.tmpl"))
    assert info.status == 401
    assert "invalid credentials" in info.title


def test_failure_hresults_ignores_success_codes() -> None:
    assert failure_hresults("ok 0x0 (WIN32: 0) then 0x80094800, and 0x8009310b (ASN: 267)") == [0x80094800, 0x8009310B]


def test_pending_page_in_a_language_without_known_wording() -> None:
    # French text, and no element id that names the request id: the one number in a translated paragraph is it
    body = (
        page("certfnsh_pending")
        .replace(b"ID=locReqIdMsg> Your Request Id is 12.", b"ID=locInfo9> Votre ID de demande est 4711.")
        .replace(b"Certificate Pending", b"Certificat en attente")
        .replace(b"within 10 days", b"dans les dix jours")
    )
    assert b"locReqIdMsg" not in body
    assert parse_submit_page(body) == SubmitPending(4711)


def test_denied_page_in_a_language_without_known_wording() -> None:
    body = (
        page("certfnsh_denied_template")
        .replace(b"ID=locReqIdMsg> Your Request Id is 78.", b"ID=locInfo9> Votre ID de demande est 78.")
        .replace(b"Denied by Policy Module", b"Refus\xc3\xa9 par le module de strat\xc3\xa9gie")
        .replace(
            b"Your certificate request was denied.", b"Votre demande de certificat a \xc3\xa9t\xc3\xa9 refus\xc3\xa9e."
        )
    )
    result = parse_submit_page(body)
    assert result == SubmitDenied(78, 0x80094800, result.message if isinstance(result, SubmitDenied) else "")
    assert isinstance(result, SubmitDenied) and "0x80094800" in result.message
