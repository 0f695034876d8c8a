"""Units of the core: the HRESULT registry, the timeouts, the output helpers and the error messages."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7

from certsrv import (
    AuthenticationTimeoutError,
    ConfigurationError,
    ConnectTimeoutError,
    EnrollmentTimeoutError,
    HostnameMismatchError,
    NameResolutionError,
    RequestDeniedError,
    RetrievalTimeoutError,
    ServerCertificateNotYetValidError,
    TemplateAccessDeniedError,
    TemplateNotFoundError,
    Timeouts,
    UnknownRequestError,
    UntrustedServerChainError,
    describe_hresult,
    encode_certificate,
    encode_certificates,
    encode_crl,
    lookup_hresult,
)
from certsrv._hresults import TEMPLATE_NOT_FOUND_CODES
from certsrv._timeouts import timeout_error
from certsrv._tls_errors import ConnectFailure, classify_connect_failure, tls_error


def _cert(cn: str, *, not_before: dt.datetime | None = None, issuer: str | None = None) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    start = not_before or now - dt.timedelta(days=1)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)]))
        .issuer_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, issuer or cn)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )


@pytest.mark.parametrize(
    ("code", "symbol", "error"),
    [
        (0x80094800, "CERTSRV_E_UNSUPPORTED_CERT_TYPE", TemplateNotFoundError),
        (0x80094801, "CERTSRV_E_NO_CERT_TYPE", TemplateNotFoundError),
        (0x80094012, "CERTSRV_E_TEMPLATE_DENIED", TemplateAccessDeniedError),
        (0x80094014, "CERTSRV_E_ADMIN_DENIED_REQUEST", RequestDeniedError),
        (0x80094004, "CERTSRV_E_PROPERTY_EMPTY", UnknownRequestError),
        (-2146875392, "CERTSRV_E_UNSUPPORTED_CERT_TYPE", TemplateNotFoundError),  # the signed form on the pages
    ],
)
def test_hresult_registry(code: int, symbol: str, error: type[Exception]) -> None:
    entry = lookup_hresult(code)
    assert entry is not None
    assert (entry.symbol, entry.error) == (symbol, error)
    assert describe_hresult(code).startswith(f"{entry.hex} {symbol}: ")


def test_unknown_hresult_is_described_by_its_code() -> None:
    assert lookup_hresult(0x80001234) is None
    assert describe_hresult(0x80001234) == "0x80001234"
    assert {0x80094800, 0x80094801} <= TEMPLATE_NOT_FOUND_CODES


def test_timeouts_defaults_and_validation() -> None:
    timeouts = Timeouts()
    assert (timeouts.connect, timeouts.authentication, timeouts.enrollment, timeouts.retrieval) == (10, 30, 120, 60)
    assert Timeouts.uniform(5).limit("enrollment") == 5
    assert timeouts.with_phase("authentication", 90).authentication == 90
    httpx_timeout = timeouts.for_phase("enrollment")
    assert (httpx_timeout.connect, httpx_timeout.read) == (10, 120)
    assert Timeouts(enrollment=None).for_phase("enrollment").read is None
    with pytest.raises(ConfigurationError, match="positive"):
        Timeouts(authentication=0)


def test_timeout_errors_name_phase_and_limit() -> None:
    request = httpx.Request("GET", "https://ca.example.test/certsrv/")
    read = httpx.ReadTimeout("timed out", request=request)
    url = "https://ca.example.test/certsrv/"
    timeouts = Timeouts(authentication=10)
    assert isinstance(timeout_error(read, "authentication", timeouts, url), AuthenticationTimeoutError)
    assert isinstance(timeout_error(read, "enrollment", timeouts, url), EnrollmentTimeoutError)
    assert isinstance(timeout_error(read, "retrieval", timeouts, url), RetrievalTimeoutError)
    connect = timeout_error(httpx.ConnectTimeout("x", request=request), "enrollment", timeouts, url)
    assert isinstance(connect, ConnectTimeoutError) and connect.phase == "connect"
    error = timeout_error(read, "authentication", timeouts, url)
    assert "timeout during authentication" in str(error) and "10 s" in str(error)
    assert "Timeouts(authentication=SECONDS)" in str(error)


def test_output_helpers() -> None:
    cert = _cert("a")
    assert encode_certificate(cert, "der") == cert.public_bytes(serialization.Encoding.DER)
    assert encode_certificates([cert, cert], "pem").count(b"BEGIN CERTIFICATE") == 2
    assert pkcs7.load_der_pkcs7_certificates(encode_certificates([cert], "der")) == [cert]
    with pytest.raises(ConfigurationError):
        encode_certificates([], "der")
    with pytest.raises(ConfigurationError):
        encode_certificate(cert, "b64")  # type: ignore[arg-type]
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(cert.subject)
        .last_update(now)
        .next_update(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    assert encode_crl(crl, "pem").startswith(b"-----BEGIN X509 CRL-----")


def test_tls_error_mapping_from_verify_codes() -> None:
    leaf = _cert("ca.example.test", issuer="Example Issuing CA")
    url = "https://ca.example.test/certsrv/"
    missing = tls_error(
        ConnectFailure("tls-verify", "unable to get local issuer certificate", 20), host="h", url=url, chain=[leaf]
    )
    assert isinstance(missing, UntrustedServerChainError) and missing.missing_issuer == "CN=Example Issuing CA"
    mismatch = tls_error(ConnectFailure("tls-verify", "Hostname mismatch", 62), host="lab-dc", url=url, chain=[leaf])
    assert isinstance(mismatch, HostnameMismatchError) and mismatch.names == ("ca.example.test",)
    future = _cert("x", not_before=dt.datetime.now(dt.UTC) + dt.timedelta(days=3))
    early = tls_error(
        ConnectFailure("tls-verify", "certificate is not yet valid", 9), host="h", url=url, chain=[future]
    )
    assert isinstance(early, ServerCertificateNotYetValidError)
    assert "not yet valid" in str(early) and "local clock" in str(early)


def test_classify_walks_the_cause_chain() -> None:
    import socket

    try:
        try:
            raise socket.gaierror(-2, "Name or service not known")
        except socket.gaierror as inner:
            raise httpx.ConnectError("boom") from inner
    except httpx.ConnectError as exc:
        failure = classify_connect_failure(exc)
    assert failure.kind == "dns"
    assert isinstance(NameResolutionError("h"), NameResolutionError)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"auth": "digest"}, "unknown auth"),
        ({"auth": "cert"}, "client certificate"),
        ({"auth": "ntlm"}, r"needs a user name. Fix: username='DOMAIN\\user'"),
        ({"auth": "basic"}, "needs a user name"),
        ({"ca_file": "/nonexistent/ca.pem"}, "cannot be loaded"),
        ({"client_cert": ("/nonexistent/c.pem", "/nonexistent/k.pem")}, "client certificate"),
    ],
)
def test_client_configuration_errors(kwargs: dict[str, object], match: str) -> None:
    from certsrv import CertsrvClient

    with pytest.raises(ConfigurationError, match=match):
        CertsrvClient("https://ca.example.test/certsrv", **kwargs)  # type: ignore[arg-type]
