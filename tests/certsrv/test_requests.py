"""The sans-IO request builders: exact paths, query order and the browser's submit form."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certsrv._errors import ConfigurationError
from certsrv._requests import (
    ca_certificate_request,
    ca_chain_request,
    ca_info_request,
    cert_attrib,
    certificate_request,
    chain_request,
    crl_request,
    csr_to_pem,
    normalize_base_url,
    priming_request,
    san_attribute,
    submit_request,
    template_page_request,
)


@pytest.fixture(scope="module")
def csr() -> x509.CertificateSigningRequest:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "SEP001F6C81118B")])
    return x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("ca.example.test", "https://ca.example.test/certsrv/"),
        ("https://ca.example.test", "https://ca.example.test/certsrv/"),
        ("https://ca.example.test/", "https://ca.example.test/certsrv/"),
        ("https://ca.example.test/certsrv", "https://ca.example.test/certsrv/"),
        ("https://ca.example.test:8443/certsrv/", "https://ca.example.test:8443/certsrv/"),
        ("https://ca.example.test/other/certsrv", "https://ca.example.test/other/certsrv/"),
        ("http://localhost:8080/certsrv", "http://localhost:8080/certsrv/"),
    ],
)
def test_base_url_always_ends_in_a_slash(given: str, expected: str) -> None:
    assert normalize_base_url(given) == expected


@pytest.mark.parametrize("bad", ["ftp://ca/certsrv", "https://", "https://ca/certsrv?x=1"])
def test_bad_base_urls(bad: str) -> None:
    with pytest.raises(ConfigurationError, match=r"Fix:|URL"):
        normalize_base_url(bad)


@pytest.mark.parametrize(
    "url",
    [
        "https://alice:S3cr3t-pw@ca.example.test/certsrv",
        "https://EXAMPLE%5Calice:S3cr3t-pw@ca.example.test",
        "ftp://u:S3cr3t-pw@ca",
    ],
)
def test_credentials_in_the_url_are_refused_without_echoing_them(url: str) -> None:
    # a password in the URL would end up in logs and error messages: refuse it, and do not repeat it
    with pytest.raises(ConfigurationError, match="Fix:") as info:
        normalize_base_url(url)
    assert "S3cr3t-pw" not in str(info.value)


def test_submit_form_matches_the_browser_capture(csr: x509.CertificateSigningRequest) -> None:
    request = submit_request(csr, "CiscoRA", {"SAN": "dns=phone.example.test"}, now=dt.datetime(2019, 3, 14, 10, 9, 2))
    assert (request.method, request.path, request.phase) == ("POST", "certfnsh.asp", "enrollment")
    assert request.headers == {"Content-Type": "application/x-www-form-urlencoded"}
    fields = parse_qsl(request.body.decode("ascii"), keep_blank_values=True)
    assert [name for name, _ in fields] == [
        "Mode",
        "CertRequest",
        "CertAttrib",
        "FriendlyType",
        "ThumbPrint",
        "TargetStoreFlags",
        "SaveCert",
    ]
    values = dict(fields)
    assert values["Mode"] == "newreq"
    assert values["CertRequest"] == csr.public_bytes(serialization.Encoding.PEM).decode()
    lines = values["CertAttrib"].split("\r\n")
    assert lines[0] == "CertificateTemplate:CiscoRA"
    assert lines[1].startswith("UserAgent:Mozilla/5.0")
    assert lines[2:] == ["SAN:dns=phone.example.test", ""]
    assert values["FriendlyType"] == "Saved-Request Certificate (3/14/2019, 10:09:02 AM)"
    assert (values["ThumbPrint"], values["TargetStoreFlags"], values["SaveCert"]) == ("", "0", "yes")


def test_csr_inputs(csr: x509.CertificateSigningRequest) -> None:
    pem = csr.public_bytes(serialization.Encoding.PEM)
    der = csr.public_bytes(serialization.Encoding.DER)
    assert csr_to_pem(csr) == csr_to_pem(pem) == csr_to_pem(der) == csr_to_pem(pem.decode())
    with pytest.raises(ConfigurationError, match="not a PKCS#10"):
        csr_to_pem(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")


@pytest.mark.parametrize(
    ("template", "attributes", "match"),
    [
        ("", None, "template name is empty"),
        ("Web\r\nServer", None, "line break"),
        ("WebServer", {"SAN": "dns=a\r\nCertificateTemplate:Other"}, "line break"),
        ("WebServer", {"a:b": "c"}, "contains ':'"),
        ("WebServer", {"CertificateTemplate": "Other"}, "template="),
        ("WebServer", [("only-one",)], "pair"),
    ],
)
def test_bad_attributes_are_refused(template: str, attributes: object, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        cert_attrib(template, attributes)  # type: ignore[arg-type]


def test_attribute_pairs_keep_order_and_duplicates() -> None:
    text = cert_attrib("User", [("ccm", "a"), ("ccm", "b")])
    assert text == "CertificateTemplate:User\r\nccm:a\r\nccm:b\r\n"


def test_san_attribute() -> None:
    assert san_attribute(dns=["a.example", "b.example"], upn=["u@example"], ip=["192.0.2.1"]) == (
        "dns=a.example&dns=b.example&ipaddress=192.0.2.1&upn=u@example"
    )
    with pytest.raises(ConfigurationError):
        san_attribute()
    with pytest.raises(ConfigurationError):
        san_attribute(dns=["a&b"])


def test_get_requests_use_exact_paths_without_redirects() -> None:
    base = "https://ca.example.test/certsrv/"
    assert priming_request().url(base) == base
    assert priming_request().phase == "authentication"
    assert certificate_request(10).url(base) == base + "certnew.cer?ReqID=10&Enc=bin"
    assert chain_request(10).url(base) == base + "certnew.p7b?ReqID=10&Enc=bin"
    assert ca_certificate_request(0).url(base) == base + "certnew.cer?ReqID=CACert&Renewal=0&Enc=bin"
    # the seed's RA fetches exactly this URL at start-up
    assert ca_chain_request(0).url(base) == base + "certnew.p7b?ReqID=CACert&Renewal=0&Enc=bin"
    assert crl_request(2).url(base) == base + "certcrl.crl?Type=base&Renewal=2&Enc=bin"
    assert crl_request(2, delta=True).url(base) == base + "certcrl.crl?Type=delta&Renewal=2&Enc=bin"
    assert template_page_request().url(base) == base + "certrqxt.asp"
    assert ca_info_request().url(base) == base + "certcarc.asp"
    assert certificate_request(1).body == b""


@pytest.mark.parametrize("bad", [0, -1, True, "10"])
def test_bad_request_ids(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="request id"):
        certificate_request(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, False, "0"])
def test_bad_renewals(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="renewal"):
        ca_certificate_request(bad)  # type: ignore[arg-type]
