"""The LSC profile: device names, building an LSC or its CSR, and checking a certificate against the profile."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from capf_common import (
    DEVICE_NAME_PREFIXES,
    LSC_EXTENDED_KEY_USAGES,
    CapfError,
    DeviceNameError,
    build_lsc,
    build_lsc_csr,
    certificate_to_der,
    check_lsc,
    is_valid_device_name,
    load_certificate,
    lsc_common_name,
    parse_device_name,
)
from tests._support.pki import Credential, TestPki, issue


@pytest.fixture(scope="module")
def capf_ca(pki: TestPki) -> Credential:
    """A CAPF-like issuing CA under the test root (O/OU copied into the LSC subject)."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cisco"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "tac"),
            x509.NameAttribute(NameOID.COMMON_NAME, "CAPF-eb606ac0"),
        ]
    )
    return issue(name, issuer=pki.root, ca=True, path_length=0)


@pytest.fixture(scope="module")
def phone_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.mark.parametrize(
    ("name", "prefix", "mac"),
    [
        ("SEP74A02FC0A675", "SEP", "74A02FC0A675"),
        ("sep001f6c81118b", "SEP", "001F6C81118B"),
        ("ATA00AB12CD34EF", "ATA", "00AB12CD34EF"),
        ("CSFJSMITH", "CSF", None),
        ("BOTJSMITH", "BOT", None),
        ("TCTJ.SMITH-1", "TCT", None),
        ("TABJSMITH", "TAB", None),
    ],
)
def test_valid_device_names(name: str, prefix: str, mac: str | None) -> None:
    parsed = parse_device_name(name)
    assert parsed.name == name.upper()
    assert parsed.prefix == prefix
    assert parsed.mac == mac
    assert parsed.kind == DEVICE_NAME_PREFIXES[prefix]
    assert is_valid_device_name(name)


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("SEP74A02FC0A67", "12 hex digits"),
        ("SEP74A02FC0A6750", "12 hex digits"),
        ("SEP74A02FC0A67G", "12 hex digits"),
        ("CSF", "1 to 12"),
        ("CSFTHISNAMEISTOOLONG", "1 to 12"),
        ("XYZ74A02FC0A675", "must start with"),
        ("", "must start with"),
    ],
)
def test_invalid_device_names_say_why(name: str, match: str) -> None:
    with pytest.raises(DeviceNameError, match=match):
        parse_device_name(name)
    assert not is_valid_device_name(name)


def test_common_name_forms() -> None:
    assert lsc_common_name("sep74a02fc0a675") == "SEP74A02FC0A675"
    assert lsc_common_name("SEP74A02FC0A675", "CP-8865") == "CP-8865-SEP74A02FC0A675"
    with pytest.raises(DeviceNameError, match="model"):
        lsc_common_name("SEP74A02FC0A675", "CP 8865")


def test_built_lsc_follows_the_profile(capf_ca: Credential, phone_key: ec.EllipticCurvePrivateKey) -> None:
    cert = build_lsc("SEP74A02FC0A675", phone_key.public_key(), capf_ca.cert, capf_ca.key, days=30)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "SEP74A02FC0A675"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "cisco"
    assert cert.issuer == capf_ca.cert.subject
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.key_encipherment
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == list(LSC_EXTENDED_KEY_USAGES)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["SEP74A02FC0A675"]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=30)
    result = check_lsc(cert, "SEP74A02FC0A675", issuer=capf_ca.cert)
    assert result.ok and result.deviations == ()
    assert result.device_name == "SEP74A02FC0A675" and result.model is None


def test_online_ca_form_with_model_prefix(capf_ca: Credential, phone_key: ec.EllipticCurvePrivateKey) -> None:
    cert = build_lsc("SEP74A02FC0A675", phone_key.public_key(), capf_ca.cert, capf_ca.key, model="CP-8865")
    result = check_lsc(cert)
    assert result.ok, result.deviations
    assert (result.model, result.device_name, result.common_name) == (
        "CP-8865",
        "SEP74A02FC0A675",
        "CP-8865-SEP74A02FC0A675",
    )


def test_build_lsc_rejects_bad_input(capf_ca: Credential, phone_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(DeviceNameError):
        build_lsc("PHONE1", phone_key.public_key(), capf_ca.cert, capf_ca.key)
    with pytest.raises(ValueError, match="1825"):
        build_lsc("SEP74A02FC0A675", phone_key.public_key(), capf_ca.cert, capf_ca.key, days=4000)


def test_lsc_csr_carries_the_profile(phone_key: ec.EllipticCurvePrivateKey) -> None:
    csr = build_lsc_csr("SEP74A02FC0A675", phone_key, model="CP-8865")
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "CN=CP-8865-SEP74A02FC0A675"
    assert csr.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment
    eku = csr.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in list(eku)


def test_check_lists_each_deviation(pki: TestPki, capf_ca: Credential) -> None:
    # an ordinary TLS client certificate: wrong CN, no keyEncipherment (EC), clientAuth only, no SAN URI
    result = check_lsc(pki.client.cert, issuer=capf_ca.cert)
    assert not result.ok
    assert set(result.codes) == {"device-name", "key-usage", "extended-key-usage", "issuer"}
    for deviation in result.deviations:
        assert deviation.message
    assert [d.severity for d in result.deviations] == sorted(
        (d.severity for d in result.deviations), key=lambda s: s != "error"
    )


def test_check_flags_other_device_ca_flag_small_key_and_dates(capf_ca: Credential) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SEP001F6C81118B")]))
        .issuer_name(capf_ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=10))
        .not_valid_after(now - dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    result = check_lsc(cert, "SEP74A02FC0A675")
    assert {
        "subject-cn",
        "basic-constraints",
        "key-usage",
        "extended-key-usage",
        "san-uri",
        "key-size",
        "validity",
    } == set(result.codes)
    assert "SEP001F6C81118B" in next(d.message for d in result.deviations if d.code == "subject-cn")
    assert check_lsc(cert, now=now - dt.timedelta(days=20)).deviations[-1].code != "validity"


def test_sha1_signature_is_a_warning() -> None:
    cert = load_certificate((Path(__file__).parent / "certs" / "sha1-lsc.pem").read_bytes())
    result = check_lsc(cert, "SEP74A02FC0A675")
    assert result.codes == ("signature-hash",)
    assert result.ok
    assert "SHA-256" in result.deviations[0].message


@settings(max_examples=250, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=3))
def test_checking_a_mutated_lsc_gives_a_result(
    capf_ca: Credential, phone_key: ec.EllipticCurvePrivateKey, edits: list[tuple[int, int]]
) -> None:
    der = bytearray(certificate_to_der(build_lsc("SEP74A02FC0A675", phone_key.public_key(), capf_ca.cert, capf_ca.key)))
    for position, value in edits:
        der[position % len(der)] = value
    try:
        cert = load_certificate(bytes(der))
    except CapfError:
        return
    result = check_lsc(cert, "SEP74A02FC0A675", issuer=capf_ca.cert)
    assert all(d.code and d.message for d in result.deviations)
