"""The local CA backend issues, for a CSR, the certificate ``LocalCa.issue`` makes of the CSR's subject, key and
extensions (the backend builds it in one step, ``issue`` through the builder's checking setters)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from estclient.testing import LocalCa, LocalCaBackend, Requester

_WHO = Requester("tester", None, "127.0.0.1")


def _ca(key: CertificateIssuerPrivateKeyTypes, *, not_after: dt.datetime | None = None) -> LocalCa:
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "Test CA"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "T")]
    )
    now = dt.datetime.now(dt.UTC)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(not_after or now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, algorithm)
    )
    return LocalCa(cert, key)


def _csr(
    key: Any, *, extensions: Sequence[x509.ExtensionType] = (), cn: str | None = "device"
) -> x509.CertificateSigningRequest:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    for ext in extensions:
        builder = builder.add_extension(ext, critical=isinstance(ext, x509.KeyUsage))
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)


def _shape(cert: x509.Certificate) -> dict[str, object]:
    """Everything of a certificate but its serial number, its dates' position in time and its signature value."""
    return {
        "version": cert.version,
        "subject": cert.subject,
        "issuer": cert.issuer,
        "public_key": cert.public_key(),
        "signature_algorithm": cert.signature_algorithm_oid,
        "hash": type(cert.signature_hash_algorithm),
        "validity": cert.not_valid_after_utc - cert.not_valid_before_utc,
        "extensions": [(e.oid, e.critical, e.value) for e in cert.extensions],
    }


_SAN = x509.SubjectAlternativeName([x509.DNSName("device.example"), x509.RFC822Name("d@example.com")])
_KU = x509.KeyUsage(
    digital_signature=False, content_commitment=True, key_encipherment=False, data_encipherment=False,
    key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
)  # fmt: skip
_EKU = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
_OTHER = x509.BasicConstraints(ca=True, path_length=0)  # asked for, never copied


@pytest.mark.parametrize(
    "ca_key",
    [
        ec.generate_private_key(ec.SECP256R1()),
        rsa.generate_private_key(65537, 2048),
        ed25519.Ed25519PrivateKey.generate(),
    ],
    ids=["ec-ca", "rsa-ca", "ed25519-ca"],
)
@pytest.mark.parametrize(
    ("csr_key", "extensions", "cn"),
    [
        (ec.generate_private_key(ec.SECP384R1()), [], "device"),
        (rsa.generate_private_key(65537, 2048), [], "device"),  # default keyUsage with keyEncipherment
        (ec.generate_private_key(ec.SECP256R1()), [_SAN, _KU, _EKU, _OTHER], "device"),
        (ed25519.Ed25519PrivateKey.generate(), [_SAN], None),  # empty subject, a SAN
    ],
    ids=["ec", "rsa", "all-extensions", "ed25519-san-only"],
)
def test_enroll_issues_what_issue_issues(
    ca_key: Any, csr_key: Any, extensions: list[x509.ExtensionType], cn: str | None
) -> None:
    ca = _ca(ca_key)
    backend = LocalCaBackend(ca, days=90, default_eku=(ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.IPSEC_IKE))
    csr = _csr(csr_key, extensions=extensions, cn=cn)
    issued = backend.enroll(csr, label=None, requester=_WHO, renewal_of=None)
    reference = ca.issue(csr.subject, csr.public_key(), extensions=backend._extensions(csr, csr.public_key()), days=90)
    assert _shape(issued.certificate) == _shape(reference)
    assert abs(issued.certificate.not_valid_before_utc - reference.not_valid_before_utc) < dt.timedelta(seconds=30)
    assert issued.certificate.serial_number != reference.serial_number
    issued.certificate.verify_directly_issued_by(ca.certificate)
    assert backend.issued == [issued.certificate]


def test_the_expected_extensions_are_set() -> None:
    ca = LocalCa.generate()
    backend = LocalCaBackend(ca)
    cert = backend.enroll(_csr(rsa.generate_private_key(65537, 2048)), label=None, requester=_WHO, renewal_of=None)
    exts = cert.certificate.extensions
    assert [e.oid for e in exts] == [
        x509.BasicConstraints.oid,
        x509.SubjectKeyIdentifier.oid,
        x509.AuthorityKeyIdentifier.oid,
        x509.KeyUsage.oid,
        x509.ExtendedKeyUsage.oid,
    ]
    assert exts.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert exts.get_extension_for_class(x509.KeyUsage).value.key_encipherment is True
    assert exts.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    ski = exts.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.certificate.public_key())
    aki = exts.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == x509.SubjectKeyIdentifier.from_public_key(ca.certificate.public_key()).digest
    assert cert.certificate.not_valid_after_utc - cert.certificate.not_valid_before_utc == dt.timedelta(
        days=365, minutes=5
    )


def test_validity_is_capped_by_the_ca_and_an_expired_ca_fails_as_issue_does() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    soon = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=2)
    capped = LocalCaBackend(_ca(key, not_after=soon)).enroll(_csr(key), label=None, requester=_WHO, renewal_of=None)
    assert capped.certificate.not_valid_after_utc == soon

    expired_ca = _ca(key, not_after=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    with pytest.raises(ValueError, match="not valid after date must be after") as from_issue:
        expired_ca.issue(_csr(key).subject, key.public_key())
    with pytest.raises(ValueError, match="not valid after date must be after") as from_backend:
        LocalCaBackend(expired_ca).enroll(_csr(key), label=None, requester=_WHO, renewal_of=None)
    assert str(from_backend.value) == str(from_issue.value)


def test_a_ca_subclass_overriding_issue_is_used_by_the_backend() -> None:
    calls = []

    class _Counting(LocalCa):
        def issue(self, subject: x509.Name, public_key: Any, **kwargs: Any) -> x509.Certificate:
            calls.append(subject)
            return super().issue(subject, public_key, **kwargs)

    plain = LocalCa.generate()
    backend = LocalCaBackend(_Counting(plain.certificate, plain.private_key))
    csr = _csr(ec.generate_private_key(ec.SECP256R1()))
    backend.enroll(csr, label=None, requester=_WHO, renewal_of=None)
    backend.server_keygen(csr, label=None, requester=_WHO)
    assert calls == [csr.subject, csr.subject]


def test_server_keygen_key_usage_follows_the_csr_key_type() -> None:
    backend = LocalCaBackend()
    result = backend.server_keygen(_csr(rsa.generate_private_key(65537, 2048)), label=None, requester=_WHO)
    assert isinstance(result.private_key, rsa.RSAPrivateKey)
    assert result.certificate.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment is True
    result = backend.server_keygen(_csr(ec.generate_private_key(ec.SECP256R1())), label=None, requester=_WHO)
    assert result.certificate.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment is False
