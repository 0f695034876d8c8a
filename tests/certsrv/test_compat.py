"""certsrv.compat: the older certsrv package's call names, arguments and exceptions, against the emulator."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7

from certsrv import AuthenticationError, CertsrvError
from certsrv.compat import (
    CertificatePendingException,
    Certsrv,
    CouldNotRetrieveCertificateException,
    RequestDeniedException,
    check_credentials,
    get_ca_cert,
    get_cert,
    get_chain,
    get_existing_cert,
)
from certsrv.testing import AdcsEmulator, CertificateTemplate, Policy
from tests._support.pki import TestPki
from tests._support.tls_http import Request, Response, serve_tls
from tests.certsrv._emulator_helpers import ALICE, PASSWORD, USERS, csr_pem
from tests.certsrv._pages_data import page

TEMPLATES = [CertificateTemplate("WebServer"), CertificateTemplate("Manual", policy=Policy.PENDING)]


@pytest.fixture(scope="module")
def emulator() -> Iterator[AdcsEmulator]:
    with AdcsEmulator(users=USERS, templates=TEMPLATES, auth=("negotiate", "ntlm", "basic"), renewals=1) as emu:
        yield emu


def _server(emulator: AdcsEmulator) -> str:
    return str(urlsplit(emulator.url).netloc)


@pytest.fixture(params=["basic", "ntlm"])
def ca(request: pytest.FixtureRequest, emulator: AdcsEmulator) -> Iterator[Certsrv]:
    certsrv = Certsrv(_server(emulator), ALICE, PASSWORD, auth_method=request.param, cafile=str(emulator.ca_file))
    yield certsrv
    certsrv.close()


def test_get_cert_in_both_encodings(ca: Certsrv) -> None:
    pem = ca.get_cert(csr_pem("SEP001F6C81118B"), "WebServer")
    assert pem.startswith(b"-----BEGIN CERTIFICATE-----")
    der = ca.get_cert(csr_pem(), "WebServer", encoding="bin")
    assert x509.load_der_x509_certificate(der).subject.rfc4514_string() == "CN=SEP001122334455"
    assert x509.load_pem_x509_certificate(pem).subject.rfc4514_string() == "CN=SEP001F6C81118B"


def test_attributes_string_is_sent_as_lines(ca: Certsrv) -> None:
    pem = ca.get_cert(csr_pem(), "WebServer", attributes="ccm:SEP001F6C81118B\r\nother:x\r\n")
    assert pem.startswith(b"-----BEGIN CERTIFICATE-----")


def test_pending_then_existing_cert(ca: Certsrv, emulator: AdcsEmulator) -> None:
    with pytest.raises(CertificatePendingException) as info:
        ca.get_cert(csr_pem(), "Manual")
    req_id = info.value.req_id
    assert isinstance(req_id, str) and req_id.isdigit()
    with pytest.raises(CouldNotRetrieveCertificateException) as still:
        ca.get_existing_cert(req_id)
    assert isinstance(still.value.response, str)
    emulator.approve(int(req_id))
    assert ca.get_existing_cert(req_id).startswith(b"-----BEGIN CERTIFICATE-----")
    assert x509.load_der_x509_certificate(ca.get_existing_cert(int(req_id), encoding="bin"))


def test_denied_and_template_errors_are_request_denied(ca: Certsrv, emulator: AdcsEmulator) -> None:
    with pytest.raises(RequestDeniedException) as info:
        ca.get_cert(csr_pem(), "NoSuchTemplate")
    assert "0x80094800" in str(info.value)
    assert "locDenied" in info.value.response
    with pytest.raises(CertificatePendingException) as pending:
        ca.get_cert(csr_pem(), "Manual")
    emulator.deny(int(pending.value.req_id))
    with pytest.raises(CouldNotRetrieveCertificateException) as denied:
        ca.get_existing_cert(pending.value.req_id)
    assert "Denied" in str(denied.value)


def test_ca_cert_and_chain(ca: Certsrv, emulator: AdcsEmulator) -> None:
    newest = emulator.ca.ca_certificate()
    assert x509.load_pem_x509_certificate(ca.get_ca_cert()) == newest
    assert x509.load_der_x509_certificate(ca.get_ca_cert("bin")) == newest
    assert newest in pkcs7.load_der_pkcs7_certificates(ca.get_chain())
    assert newest in pkcs7.load_pem_pkcs7_certificates(ca.get_chain(encoding="b64"))


def test_check_and_update_credentials(emulator: AdcsEmulator) -> None:
    ca = Certsrv(_server(emulator), ALICE, "wrong", auth_method="ntlm", cafile=str(emulator.ca_file))
    try:
        assert ca.check_credentials() is False
        ca.update_credentials(ALICE, PASSWORD)
        assert ca.check_credentials() is True
        ca.update_credentials("EXAMPLE\\bob", "wrong")
        with pytest.raises(AuthenticationError):  # outside the three exceptions: certsrv's typed errors
            ca.get_ca_cert()
    finally:
        ca.close()


def test_exceptions_keep_their_arguments_and_root() -> None:
    denied = RequestDeniedException("Denied by Policy Module", "<html>")
    assert (str(denied), denied.response) == ("Denied by Policy Module", "<html>")
    missing = CouldNotRetrieveCertificateException("Taken Under Submission", b"x")
    assert missing.response == b"x"
    assert CertificatePendingException("12").req_id == "12"
    for cls in (RequestDeniedException, CouldNotRetrieveCertificateException, CertificatePendingException):
        assert issubclass(cls, CertsrvError)


def test_bad_arguments() -> None:
    with pytest.raises(CertsrvError, match="auth_method"):
        Certsrv("ca.example.test", "u", "p", auth_method="digest")


def test_module_functions_warn_and_work(emulator: AdcsEmulator) -> None:
    server, cafile = _server(emulator), str(emulator.ca_file)
    with pytest.warns(DeprecationWarning, match="kept for old code"):
        pem = get_cert(server, csr_pem(), "WebServer", ALICE, PASSWORD, auth_method="ntlm", cafile=cafile)
    with pytest.warns(DeprecationWarning, match="kept for old code"):
        assert get_ca_cert(server, ALICE, PASSWORD, cafile=cafile).startswith(b"-----BEGIN CERTIFICATE-----")
    with pytest.warns(DeprecationWarning, match="kept for old code"):
        assert pkcs7.load_der_pkcs7_certificates(get_chain(server, ALICE, PASSWORD, cafile=cafile))
    with pytest.warns(DeprecationWarning, match="kept for old code"):
        assert check_credentials(server, ALICE, PASSWORD, cafile=cafile)
    serial = x509.load_pem_x509_certificate(pem).serial_number
    request_id = next(
        r.request_id for r in emulator.ca.requests if r.certificate and r.certificate.serial_number == serial
    )
    with pytest.warns(DeprecationWarning, match="kept for old code"):
        assert get_existing_cert(server, str(request_id), ALICE, PASSWORD, cafile=cafile) == pem


def test_client_certificate_auth(pki: TestPki) -> None:
    seen: list[bool] = []

    def handler(request: Request) -> Response:
        seen.append(request.tls.getpeercert() is not None)
        return Response(200, [("Content-Type", "text/html")], page("certcarc"))

    assert pki.client.chain_path is not None and pki.client.key_path is not None
    with serve_tls(handler, pki.server_context(client_auth=ssl.CERT_REQUIRED)) as server:
        ca = Certsrv(
            f"localhost:{server.port}", str(pki.client.chain_path), str(pki.client.key_path),
            auth_method="cert", cafile=str(pki.ca_bundle),
        )  # fmt: skip
        try:
            assert ca.check_credentials() is True
        finally:
            ca.close()
    assert seen == [True]


def test_compat_surface_is_pinned() -> None:
    import certsrv.compat

    assert set(certsrv.compat.__all__) == {
        "TIMEOUT",
        "Certsrv",
        "RequestDeniedException",
        "CertificatePendingException",
        "CouldNotRetrieveCertificateException",
        "get_cert",
        "get_existing_cert",
        "get_ca_cert",
        "get_chain",
        "check_credentials",
    }
    assert [m for m in vars(certsrv.compat.Certsrv) if not m.startswith("_")] == [
        "get_cert",
        "get_existing_cert",
        "get_ca_cert",
        "get_chain",
        "check_credentials",
        "update_credentials",
        "close",
    ]
