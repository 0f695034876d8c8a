"""The local CA writes certificates itself (``_DirectSigner``) only where that gives the builder's own DER.

For the same serial number, dates, names, key and extensions, the to-be-signed part is byte for byte what
``x509.CertificateBuilder`` writes, and the signature verifies under the CA's key; CA keys the builder signs
differently (or a signer that does not match the probe certificate) go through the builder.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from estclient.testing import LocalCa, LocalCaBackend, Requester, _der, _local_ca

_WHO = Requester("tester", None, "127.0.0.1")


def _ca(key: Any, *units: str) -> LocalCa:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "T"),
            *(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, u) for u in units),
            x509.NameAttribute(NameOID.COMMON_NAME, "Direct CA"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) else hashes.SHA256()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, algorithm)
    )
    return LocalCa(cert, key)


_CAS = {
    "p256": _ca(ec.generate_private_key(ec.SECP256R1())),
    "p384": _ca(ec.generate_private_key(ec.SECP384R1()), *(f"A unit with a longer name {i}" for i in range(5))),
    "rsa": _ca(rsa.generate_private_key(65537, 2048)),
    "ed25519": _ca(ed25519.Ed25519PrivateKey.generate()),
    "ed448": _ca(ed448.Ed448PrivateKey.generate()),
}
_SUBJECT_KEYS = [
    ec.generate_private_key(ec.SECP256R1()).public_key(),
    ec.generate_private_key(ec.SECP521R1()).public_key(),
    rsa.generate_private_key(65537, 1024).public_key(),
    rsa.generate_private_key(3, 3072).public_key(),
    ed25519.Ed25519PrivateKey.generate().public_key(),
    ed448.Ed448PrivateKey.generate().public_key(),
]

_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=16)  # <= 64 bytes
_printable = st.text(st.sampled_from("ABCxyz0189 '()+,-./:=?"), min_size=1, max_size=20)
_attribute = st.one_of(
    st.builds(x509.NameAttribute, st.just(NameOID.COMMON_NAME), _text),
    st.builds(x509.NameAttribute, st.just(NameOID.ORGANIZATION_NAME), _text),
    st.builds(x509.NameAttribute, st.just(NameOID.COUNTRY_NAME), st.sampled_from(["DE", "US", "CH"])),
    st.builds(
        lambda v: x509.NameAttribute(NameOID.SERIAL_NUMBER, v, x509.name._ASN1Type.PrintableString),
        _printable,
    ),
    st.builds(
        lambda v: x509.NameAttribute(NameOID.COMMON_NAME, v, x509.name._ASN1Type.BMPString),
        st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"]), min_size=1, max_size=20),
    ),
)
_name = st.lists(st.lists(_attribute, min_size=1, max_size=3), max_size=4).map(
    lambda rdns: x509.Name(
        [x509.RelativeDistinguishedName(r) for r in rdns if len({(a.oid, a.value) for a in r}) == len(r)]
    )
)
_general_name = st.one_of(
    st.from_regex(r"[a-z]{1,10}(\.[a-z]{1,10}){0,3}", fullmatch=True).map(x509.DNSName),
    st.from_regex(r"[a-z]{1,8}@[a-z]{1,8}\.example", fullmatch=True).map(x509.RFC822Name),
    st.ip_addresses().map(x509.IPAddress),
    st.from_regex(r"https://[a-z]{1,8}\.example/[a-z]{0,8}", fullmatch=True).map(x509.UniformResourceIdentifier),
)
_key_usage = st.builds(
    lambda ds, cc, ke, de, ka: x509.KeyUsage(ds, cc, ke, de, ka, False, False, False, False),
    st.booleans(), st.booleans(), st.booleans(), st.booleans(), st.booleans(),
)  # fmt: skip
_oid = st.one_of(
    st.tuples(st.integers(0, 1), st.integers(0, 39)),
    st.tuples(st.just(2), st.integers(0, 2**70)),
).flatmap(
    lambda head: st.lists(st.integers(0, 2**70), max_size=6).map(
        lambda rest: x509.ObjectIdentifier(".".join(str(a) for a in (*head, *rest)))
    )
)
_USAGES = [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.IPSEC_IKE]
_extension_value = st.one_of(
    st.lists(_general_name, min_size=1, max_size=6).map(x509.SubjectAlternativeName),
    _key_usage,
    st.lists(st.sampled_from(_USAGES), min_size=1, max_size=3, unique=True).map(x509.ExtendedKeyUsage),
    st.builds(
        x509.UnrecognizedExtension,
        _oid.filter(lambda o: o.dotted_string.startswith("1.3.6.1.4.1.") or not o.dotted_string.startswith("2.5.29.")),
        st.binary(max_size=300),
    ),
)  # fmt: skip
_extensions = st.lists(st.tuples(_extension_value, st.booleans()), max_size=4).map(
    lambda pairs: [x509.Extension(v.oid, c, v) for v, c in {v.oid: (v, c) for v, c in pairs}.values()]
)
_moment = st.datetimes(min_value=dt.datetime(1950, 1, 1), max_value=dt.datetime(2200, 1, 1)).map(
    lambda d: d.replace(microsecond=0)
)
_edges = st.sampled_from(
    [dt.datetime(1950, 1, 1), dt.datetime(2049, 12, 31, 23, 59, 59), dt.datetime(2050, 1, 1), dt.datetime(9999, 12, 31)]
)


def _builder_certificate(
    ca: LocalCa, serial: int, not_before: dt.datetime, not_after: dt.datetime, subject: x509.Name, key: Any,
    extensions: list[x509.Extension[x509.ExtensionType]],
) -> x509.Certificate:  # fmt: skip
    issuer, _, signature_hash = ca._issuer
    ski = x509.SubjectKeyIdentifier.from_public_key(key)
    return x509.CertificateBuilder(
        issuer_name=issuer,
        subject_name=subject,
        public_key=key,
        serial_number=serial,
        not_valid_before=not_before,
        not_valid_after=not_after,
        extensions=[
            _local_ca._END_ENTITY_EXTENSION,
            x509.Extension(x509.SubjectKeyIdentifier.oid, False, ski),
            ca._authority_key_identifier_extension,
            *extensions,
        ],
    ).sign(ca.private_key, signature_hash)


def _direct_certificate(
    ca: LocalCa, serial: int, not_before: dt.datetime, not_after: dt.datetime, subject: x509.Name, key: Any,
    extensions: list[x509.Extension[x509.ExtensionType]],
) -> x509.Certificate:  # fmt: skip
    signer = ca._direct_signer
    assert signer is not None
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = [
        signer.end_entity,
        _local_ca._subject_key_identifier_der(spki),
        signer.authority_key_identifier,
        *(_local_ca._encoded(e) for e in extensions),
    ]
    return signer.issue(
        serial, not_before.replace(tzinfo=dt.UTC), not_after.replace(tzinfo=dt.UTC), subject, spki, encoded
    )


@settings(max_examples=150, deadline=None)
@given(
    ca_name=st.sampled_from(sorted(_CAS)),
    serial=st.one_of(st.integers(1, 2**159 - 1), st.sampled_from([1, 127, 128, 255, 256, 2**159 - 1])),
    not_before=st.one_of(_moment, _edges),
    not_after=st.one_of(_moment, _edges),
    subject=_name,
    key=st.sampled_from(_SUBJECT_KEYS),
    extensions=_extensions,
)
def test_the_direct_signer_writes_what_the_builder_writes(
    ca_name: str, serial: int, not_before: dt.datetime, not_after: dt.datetime, subject: x509.Name, key: Any,
    extensions: list[x509.Extension[x509.ExtensionType]],
) -> None:  # fmt: skip
    ca = _CAS[ca_name]
    reference = _builder_certificate(ca, serial, not_before, not_after, subject, key, extensions)
    direct = _direct_certificate(ca, serial, not_before, not_after, subject, key, extensions)
    assert direct.tbs_certificate_bytes == reference.tbs_certificate_bytes
    assert direct.signature_algorithm_oid == reference.signature_algorithm_oid
    assert type(direct.signature_hash_algorithm) is type(reference.signature_hash_algorithm)
    direct.verify_directly_issued_by(ca.certificate)
    # the whole certificate is the builder's but for the signature value (ECDSA signatures are randomized)
    der, reference_der = (c.public_bytes(serialization.Encoding.DER) for c in (direct, reference))
    assert _der.elements(der)[:2] == _der.elements(reference_der)[:2]
    if ca_name in ("rsa", "ed25519", "ed448"):  # deterministic signatures: the very same bytes
        assert der == reference_der


def test_the_ca_constants_are_encoded_once_and_only_for_themselves() -> None:
    usage = _local_ca._DEFAULT_KEY_USAGE
    assert _local_ca._encoded(usage) == _local_ca._extension_der(usage)
    eku = _local_ca._extended_key_usage((ExtendedKeyUsageOID.CLIENT_AUTH,))
    assert _local_ca._extended_key_usage((ExtendedKeyUsageOID.CLIENT_AUTH,)) is eku
    assert id(eku) in _local_ca._ENCODED
    other = x509.Extension(x509.KeyUsage.oid, False, usage.value)  # equal value, other criticality and object
    assert id(other) not in _local_ca._ENCODED
    assert _local_ca._encoded(other) != _local_ca._encoded(usage)
    assert _local_ca._encoded(other) == _local_ca._extension_der(other)


def test_enrollment_through_the_direct_signer_and_through_the_builder_give_the_same_certificate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ca = LocalCa.generate()
    backend = LocalCaBackend(ca, default_eku=(ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.IPSEC_IKE))
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([x509.DNSName("phone.example"), x509.IPAddress(ipaddress.ip_address("::1"))])
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "phone")]))
        .add_extension(san, critical=False)
        .sign(key, hashes.SHA256())
    )
    monkeypatch.setattr(x509, "random_serial_number", lambda: 4242)
    monkeypatch.setattr(_local_ca, "_now", lambda: dt.datetime(2030, 5, 6, 7, 8, 9, tzinfo=dt.UTC))
    direct = backend.enroll(csr, label=None, requester=_WHO, renewal_of=None).certificate
    assert ca._direct_signer is not None
    monkeypatch.setitem(ca.__dict__, "_direct_signer", None)  # the builder path
    built = backend.enroll(csr, label=None, requester=_WHO, renewal_of=None).certificate
    assert direct.tbs_certificate_bytes == built.tbs_certificate_bytes
    assert backend.issued == [direct, built]


def test_a_ca_key_the_direct_signer_does_not_sign_for_goes_through_the_builder() -> None:
    dsa_key = dsa.generate_private_key(2048)
    ca = _ca(dsa_key)
    assert ca._direct_signer is None
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device")]))
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )
    cert = LocalCaBackend(ca).enroll(csr, label=None, requester=_WHO, renewal_of=None).certificate
    cert.verify_directly_issued_by(ca.certificate)


def test_a_signer_that_does_not_match_the_probe_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    monkeypatch.setattr(
        _local_ca, "_sign_function", lambda key, h: lambda data: stranger.sign(data, ec.ECDSA(hashes.SHA256()))
    )
    ca = LocalCa.generate()
    assert ca._direct_signer is None
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device")]))
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )
    LocalCaBackend(ca).enroll(csr, label=None, requester=_WHO, renewal_of=None).certificate.verify_directly_issued_by(
        ca.certificate
    )


@given(st.binary(max_size=70000))
@settings(max_examples=60)
def test_der_lengths_read_back(content: bytes) -> None:
    tlv = _der.der(0x04, content)
    assert _der.content(tlv) == content
    assert _der.elements(_der.sequence(tlv, tlv)) == [tlv, tlv]


@pytest.mark.parametrize(
    "data",
    [b"", b"\x30", b"\x30\x05\x04\x01", b"\x30\x80\x00\x00", b"\x30\x02\x04\x05", b"\x1f\x01\x00", b"\x04\x00\x00"],
)
def test_der_reader_refuses_what_is_not_one_definite_tlv(data: bytes) -> None:
    with pytest.raises(ValueError, match="DER"):
        _der.elements(data)


def test_times_outside_rfc_5280_are_refused() -> None:
    with pytest.raises(ValueError, match="no RFC 5280 Time"):
        _der.x509_time(dt.datetime(1949, 12, 31, 23, 59, 59))
    with pytest.raises(ValueError, match="no RFC 5280 Time"):
        _der.x509_time(dt.datetime(2000, 1, 1, 0, 0, 0, 5))
    plus_one = dt.timezone(dt.timedelta(hours=1))
    assert _der.x509_time(dt.datetime(2050, 1, 1, 0, 30, tzinfo=plus_one)) == _der.der(0x17, b"491231233000Z")


def test_a_validity_in_fractions_of_a_day_is_issued_as_the_builder_issues_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # days=1/7 ends 3 h 25 min 42.857143 s from now: the builder drops the fraction of a second; the direct
    # signer, whose times are whole seconds, must leave such dates to the builder instead of failing the request.
    ca = LocalCa.generate()
    backend = LocalCaBackend(ca, days=1 / 7)  # type: ignore[arg-type]  # annotated int; a float works with issue()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "short-lived")]))
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )
    monkeypatch.setattr(_local_ca, "_now", lambda: dt.datetime(2030, 5, 6, 7, 8, 9, tzinfo=dt.UTC))
    cert = backend.enroll(csr, label=None, requester=_WHO, renewal_of=None).certificate
    assert ca._direct_signer is not None
    cert.verify_directly_issued_by(ca.certificate)
    assert cert.not_valid_after_utc == dt.datetime(2030, 5, 6, 10, 33, 51, tzinfo=dt.UTC)
    reference = ca.issue(csr.subject, csr.public_key(), days=1 / 7)  # type: ignore[arg-type]
    assert reference.not_valid_after_utc - reference.not_valid_before_utc == (
        cert.not_valid_after_utc - cert.not_valid_before_utc
    )
