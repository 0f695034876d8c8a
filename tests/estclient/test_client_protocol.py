"""The sans-IO request builders and response readers the clients share (no network)."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import email.utils

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from estclient import (
    AuthenticationError,
    BadRequestError,
    CaCertificates,
    CmcFailError,
    CsrBuildError,
    EnrollResult,
    EstError,
    EstHttpError,
    InvalidLabelError,
    MalformedResponseError,
    NotSupportedError,
    Pending,
    ResourceLockedError,
    ServerError,
    parse_subject,
)
from estclient._cmc import build_pki_response
from estclient._pkcs7 import build_certs_only
from estclient._protocol import (
    EstResponse,
    cacerts_request,
    enroll_request,
    est_path,
    fullcmc_request,
    parse_retry_after,
    raise_for_error,
    read_cacerts,
    read_csrattrs,
    read_enroll,
    read_fullcmc,
    read_serverkeygen,
    serverkeygen_request,
    validate_label,
)
from tests._support.pki import Credential, TestPki, issue

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
CERTS_ONLY = "application/pkcs7-mime; smime-type=certs-only"
# RFC 7030 §4.5.2 / RFC 8951 §4 example (tolerated although RFC 9908 §5.2 calls its macAddress encoding wrong)
RFC7030_CSRATTRS = "MEEGCSqGSIb3DQEJBzASBgcqhkjOPQIBMQcGBSuBBAAiMBYGCSqGSIb3DQEJDjEJBgcrBgEBAQEWBggqhkjOPQQDAw=="


def response(status: int, body: bytes = b"", content_type: str | None = None, **headers: str) -> EstResponse:
    all_headers = {k.replace("_", "-"): v for k, v in headers.items()}
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    return EstResponse.from_parts(status, all_headers, body, "https://est.example.test/.well-known/est/x")


def new_csr() -> tuple[ec.EllipticCurvePrivateKey, x509.CertificateSigningRequest]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unit")])
    return key, x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())


# -- paths and labels --------------------------------------------------------------------------------------------


def test_paths_with_and_without_label() -> None:
    assert est_path("cacerts") == "/.well-known/est/cacerts"
    assert est_path("simpleenroll", label="phones") == "/.well-known/est/phones/simpleenroll"
    assert est_path("csrattrs", root="/est/") == "/est/csrattrs"
    assert cacerts_request(label="ca-2").path == "/.well-known/est/ca-2/cacerts"


@pytest.mark.parametrize("label", ["phones", "CA_1", "a.b-c~d", "x!$&'()*+,;=:y"])
def test_valid_labels(label: str) -> None:
    assert validate_label(label) == label


@pytest.mark.parametrize("label", ["", "a/b", "a b", "a%2fb", "a?b", "a@b", "ü", ".", "..", "cacerts", "x" * 256])
def test_invalid_labels(label: str) -> None:
    with pytest.raises(InvalidLabelError) as info:
        validate_label(label)
    assert info.value.libest_code == 17


# -- requests ----------------------------------------------------------------------------------------------------


def test_enroll_request_is_rfc2045_base64_with_the_est_headers() -> None:
    _, csr = new_csr()
    request = enroll_request(csr)
    headers = dict(request.headers)
    assert request.method == "POST"
    assert request.path == "/.well-known/est/simpleenroll"
    assert headers["Content-Type"] == "application/pkcs10"
    assert headers["Content-Transfer-Encoding"] == "base64"
    lines = request.body.split(b"\r\n")
    assert lines[-1] == b""
    assert all(len(line) <= 76 for line in lines) and len(lines[0]) == 76
    assert base64.b64decode(request.body) == csr.public_bytes(serialization.Encoding.DER)
    assert enroll_request(csr, reenroll=True, label="l").path == "/.well-known/est/l/simplereenroll"
    assert serverkeygen_request(csr).path.endswith("/serverkeygen")


def test_fullcmc_request_content_type() -> None:
    request = fullcmc_request(b"\x30\x00")
    assert dict(request.headers)["Content-Type"] == "application/pkcs7-mime; smime-type=CMC-request"
    assert base64.b64decode(request.body) == b"\x30\x00"


# -- Retry-After ---------------------------------------------------------------------------------------------------


def test_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after("120", NOW) == (120.0, NOW + dt.timedelta(seconds=120))
    later = NOW + dt.timedelta(minutes=5)
    seconds, when = parse_retry_after(email.utils.format_datetime(later, usegmt=True), NOW)
    assert seconds == 300.0 and when == later
    past = email.utils.format_datetime(NOW - dt.timedelta(hours=1), usegmt=True)
    assert parse_retry_after(past, NOW) == (0.0, NOW)


def test_huge_retry_after_is_clamped_not_an_overflow() -> None:
    year = 365 * 24 * 3600.0
    assert parse_retry_after("300000000000", NOW) == (year, NOW + dt.timedelta(seconds=year))
    with pytest.raises(MalformedResponseError):  # a date beyond datetime's range is not a date
        parse_retry_after("Fri, 31 Dec 99999 23:59:59 GMT", NOW)


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "²", "١٢"])
def test_bad_retry_after(value: str | None) -> None:
    with pytest.raises(MalformedResponseError) as info:
        parse_retry_after(value, NOW)
    assert info.value.libest_error == "EST_ERR_INVALID_RETRY_VALUE"


def test_202_is_pending_with_the_date_form(pki: TestPki) -> None:
    _, csr = new_csr()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    result = read_enroll(response(202, b"", None, retry_after=email.utils.format_datetime(later, usegmt=True)), csr=csr)
    assert isinstance(result, Pending)
    assert 7100 < result.retry_after <= 7200
    assert result.csr == csr


# -- lenient bodies ------------------------------------------------------------------------------------------------


def certs_only(pki: TestPki) -> bytes:
    return build_certs_only([pki.root.cert, pki.intermediate.cert])


@pytest.mark.parametrize(
    "encode",
    [
        lambda der: base64.b64encode(der),  # one line (OpenXPKI)
        lambda der: base64.encodebytes(der),  # 76 columns, LF
        lambda der: base64.encodebytes(der).replace(b"\n", b"\r\n"),
        lambda der: b" \t".join(base64.b64encode(der)[i : i + 10] for i in range(0, 4000, 10)),
        lambda der: base64.b64encode(der) + b"\x00\x00",  # C string terminator
        lambda der: der,  # binary DER
    ],
)
def test_cacerts_bodies_are_read_leniently(pki: TestPki, encode: object) -> None:
    der = certs_only(pki)
    body = encode(der)  # type: ignore[operator]
    parsed = read_cacerts(response(200, body, CERTS_ONLY, content_transfer_encoding="binary"))
    assert parsed.certificates == (pki.root.cert, pki.intermediate.cert)
    assert read_cacerts(response(200, body)).certificates  # no content type at all


def test_html_instead_of_pkcs7_is_malformed(pki: TestPki) -> None:
    with pytest.raises(MalformedResponseError) as info:
        read_cacerts(response(200, base64.b64encode(certs_only(pki)), "text/html"))
    assert "text/html" in str(info.value)


def test_csrattrs_no_requirements_forms() -> None:
    assert read_csrattrs(response(204)).is_empty
    assert read_csrattrs(response(404, b"not here", "text/plain")).is_empty
    assert read_csrattrs(response(200, b"", "application/csrattrs")).is_empty
    assert read_csrattrs(response(200, b"MAA=", "application/csrattrs")).is_empty


def test_csrattrs_rfc7030_example() -> None:
    body = b"\r\n".join(RFC7030_CSRATTRS.encode()[i : i + 20] for i in range(0, len(RFC7030_CSRATTRS), 20))
    attrs = read_csrattrs(response(200, body, "application/csrattrs"))
    assert attrs.requires_challenge_password
    assert attrs.requirements().curve == "secp384r1"
    assert attrs.requirements().hash_algorithm == "sha384"


def test_enroll_picks_the_certificate_for_the_csr_key(pki: TestPki) -> None:
    key, csr = new_csr()
    leaf = issue("unit", issuer=pki.intermediate, key=key)
    body = base64.b64encode(build_certs_only([pki.intermediate.cert, leaf.cert, pki.root.cert]))
    result = read_enroll(response(200, body, CERTS_ONLY), csr=csr)
    assert isinstance(result, EnrollResult)
    assert result.certificate == leaf.cert
    assert result.chain == (pki.intermediate.cert, pki.root.cert)


def test_enroll_without_certificates_is_malformed() -> None:
    with pytest.raises(MalformedResponseError):
        read_enroll(response(200, base64.b64encode(build_certs_only([])), CERTS_ONLY))


# -- errors ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotSupportedError),
        (423, ResourceLockedError),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_error_statuses_keep_the_servers_words(status: int, cls: type[EstHttpError]) -> None:
    with pytest.raises(cls) as info:
        read_enroll(response(status, b"template not allowed\x00", "text/plain; charset=utf-8"))
    assert info.value.server_text == "template not allowed"
    assert "template not allowed" in str(info.value)
    assert info.value.operation == "simpleenroll"


def test_html_error_page_is_reduced_to_its_text() -> None:
    page = b"<html><head><style>p{}</style></head><body><h1>Error</h1><p>CA unreachable</p></body></html>"
    with pytest.raises(ServerError) as info:
        raise_for_error(response(502, page, "text/html"), "cacerts")
    assert info.value.server_text == "Error CA unreachable"


def test_redirect_of_an_enrollment_is_not_followed() -> None:
    with pytest.raises(EstHttpError) as info:
        read_enroll(response(302, b"", None, location="https://other.example.test/.well-known/est/simpleenroll"))
    assert "other.example.test" in info.value.hint


def test_cmc_failure_body_becomes_cmc_fail_error() -> None:
    der = build_pki_response([], status="failed", fail_info="badIdentity", status_string="unknown device")
    with pytest.raises(CmcFailError) as info:
        read_enroll(response(400, base64.b64encode(der), "application/pkcs7-mime; smime-type=CMC-response"))
    assert info.value.fail_info_name == "badIdentity"
    assert info.value.status_string == "unknown device"
    assert info.value.http_status == 400
    with pytest.raises(CmcFailError):
        read_fullcmc(response(200, base64.b64encode(der), "application/pkcs7-mime; smime-type=CMC-response"))


def test_undecodable_cmc_error_body_falls_back_to_the_http_error() -> None:
    with pytest.raises(BadRequestError):
        read_enroll(response(400, b"!!!", "application/pkcs7-mime"))


# -- property tests: any response gives a result or an EstError -------------------------------------------------

_STATUSES = st.sampled_from([200, 202, 204, 301, 400, 401, 404, 500])
_TYPES = st.sampled_from(
    [None, CERTS_ONLY, "application/csrattrs", "text/plain", "multipart/mixed; boundary=b", "application/pkcs7-mime"]
)
_HEADERS = st.dictionaries(st.sampled_from(["retry-after", "location"]), st.text(max_size=30), max_size=2)


@settings(max_examples=250, deadline=None)
@given(status=_STATUSES, content_type=_TYPES, body=st.binary(max_size=300), headers=_HEADERS)
def test_readers_raise_only_est_errors(
    status: int, content_type: str | None, body: bytes, headers: dict[str, str]
) -> None:
    all_headers = dict(headers)
    if content_type is not None:
        all_headers["content-type"] = content_type
    resp = EstResponse.from_parts(status, all_headers, body)
    for reader in (read_cacerts, read_csrattrs, read_enroll, read_fullcmc, read_serverkeygen):
        with contextlib.suppress(EstError):
            reader(resp)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=40))
def test_label_validation_raises_only_invalid_label(text: str) -> None:
    with contextlib.suppress(InvalidLabelError):
        assert validate_label(text) == text


def test_cacerts_root_rollover_roles(pki: TestPki) -> None:
    old_key, new_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    old = issue("estExampleCA", issuer=None, ca=True, key=old_key)
    new = issue("estExampleCA", issuer=None, ca=True, key=new_key, not_before=later - dt.timedelta(hours=1))
    old_with_new = issue("estExampleCA", issuer=Credential(new.cert, new_key), ca=True, key=old_key)
    new_with_old = issue("estExampleCA", issuer=Credential(old.cert, old_key), ca=True, key=new_key)
    body = base64.b64encode(build_certs_only([old.cert, new_with_old.cert, old_with_new.cert, new.cert]))
    parsed = read_cacerts(response(200, body, CERTS_ONLY))
    cas = CaCertificates(parsed.certificates, parsed.crls, "explicit")
    assert cas.rollover == {
        "OldWithOld": old.cert,
        "NewWithNew": new.cert,
        "OldWithNew": old_with_new.cert,
        "NewWithOld": new_with_old.cert,
    }
    assert set(cas.roots) == {old.cert, new.cert}
    assert cas.trusted_certificates() == parsed.certificates


@settings(max_examples=250, deadline=None)
@given(
    value=st.one_of(st.text(max_size=60), st.from_regex(r"\A[A-Za-z]{3}, \d{1,5} [A-Za-z]{3} \d{1,6} [\d:]{1,9} GMT\Z"))
)
def test_retry_after_parser_raises_only_est_errors(value: str) -> None:
    with contextlib.suppress(EstError):
        seconds, when = parse_retry_after(value, NOW)
        assert seconds >= 0 and when >= NOW


@settings(max_examples=250, deadline=None)
@given(text=st.one_of(st.text(max_size=60), st.from_regex(r"\A/?([A-Za-z]{1,6}=[^/]{0,8}/?){0,4}\Z")))
def test_subject_parser_raises_only_csr_build_errors(text: str) -> None:
    with contextlib.suppress(CsrBuildError):
        assert isinstance(parse_subject(text), x509.Name)
