"""A local certificate authority and the enrollment backend built on it."""

from __future__ import annotations

import datetime as dt
import ipaddress
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from estclient.testing._backend import EnrollmentRejected, Issued, IssuedWithKey, Requester

if TYPE_CHECKING:
    from estclient._csrattrs import CsrAttrs

__all__ = ["LocalCa", "LocalCaBackend"]

_SKEW = dt.timedelta(minutes=5)
#: Extensions copied from the CSR's extensionRequest; anything else a CSR asks for is left out.
_COPIED_EXTENSIONS = (x509.SubjectAlternativeName, x509.KeyUsage, x509.ExtendedKeyUsage)


_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
    key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
)  # fmt: skip


def _spki(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _signature_hash(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) else hashes.SHA256()


@dataclass(frozen=True)
class LocalCa:
    """A CA certificate with its private key, able to issue certificates.

    Attributes:
        certificate: The CA certificate.
        private_key: Its key (never logged).
        chain: Certificates above it (for an intermediate CA), without the root if the root is the anchor.
    """

    certificate: x509.Certificate
    private_key: CertificateIssuerPrivateKeyTypes = field(repr=False)
    chain: Sequence[x509.Certificate] = ()

    @classmethod
    def generate(cls, common_name: str = "estclient test CA", *, days: int = 3650) -> LocalCa:
        """Make a self-signed root CA with a new P-256 key.

        Args:
            common_name: The CA's common name.
            days: How long the CA certificate is valid.

        Returns:
            The new CA.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "estclient"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _SKEW)
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_CA_KEY_USAGE, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def from_files(cls, cert_file: str | Path, key_file: str | Path, *, password: bytes | None = None) -> LocalCa:
        """Load a CA from PEM files: the CA certificate (optionally followed by its chain) and its private key.

        Args:
            cert_file: PEM with the CA certificate first, then any certificates above it.
            key_file: PEM with the CA's private key.
            password: The key's password, if it is encrypted.

        Returns:
            The CA.

        Raises:
            ValueError: when the files hold no certificate, a key of a type that cannot sign certificates, or a key
                that does not belong to the certificate.
        """
        certs = x509.load_pem_x509_certificates(Path(cert_file).read_bytes())
        key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password)
        if not isinstance(
            key,
            rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey,
        ):
            raise ValueError(f"{key_file}: a {type(key).__name__} cannot sign certificates; use an RSA or EC key.")
        if _spki(key.public_key()) != _spki(certs[0].public_key()):
            raise ValueError(f"{key_file} is not the private key of the first certificate in {cert_file}.")
        return cls(certs[0], key, tuple(certs[1:]))

    @cached_property
    def _authority_key_identifier(self) -> x509.AuthorityKeyIdentifier:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(self.private_key.public_key())

    @property
    def pem(self) -> bytes:
        """The CA certificate and its chain, PEM (what a client trusts)."""
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (self.certificate, *self.chain))

    def issue(
        self,
        subject: x509.Name,
        public_key: CertificatePublicKeyTypes,
        *,
        extensions: Iterable[x509.Extension[x509.ExtensionType]] = (),
        days: int = 365,
    ) -> x509.Certificate:
        """Issue an end-entity certificate.

        Args:
            subject: The subject name.
            public_key: The subject's public key.
            extensions: Extensions to add (BasicConstraints, key identifiers are always set by the CA).
            days: Validity in days (starting five minutes ago, to absorb clock skew).

        Returns:
            The certificate.
        """
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _SKEW)
            .not_valid_after(min(now + dt.timedelta(days=days), self.certificate.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(self._authority_key_identifier, critical=False)
        )
        for ext in extensions:
            builder = builder.add_extension(ext.value, critical=ext.critical)
        return builder.sign(self.private_key, _signature_hash(self.private_key))

    def issue_tls_server(
        self, names: Sequence[str] = ("localhost",), ips: Sequence[str] = ("127.0.0.1", "::1")
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """Issue a TLS server certificate (new P-256 key) for host names and IP addresses.

        Args:
            names: DNS names (the first is also the common name).
            ips: IP addresses.

        Returns:
            The certificate and its key.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        cn = names[0] if names else (ips[0] if ips else "EST server")
        cert = self.issue(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]),
            key.public_key(),
            extensions=[
                x509.Extension(x509.SubjectAlternativeName.oid, False, x509.SubjectAlternativeName(sans)),
                x509.Extension(
                    x509.ExtendedKeyUsage.oid, False, x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
                ),
            ],
        )
        return cert, key


def _new_key_like(public_key: CertificatePublicKeyTypes) -> CertificateIssuerPrivateKeyTypes:
    if isinstance(public_key, rsa.RSAPublicKey):
        return rsa.generate_private_key(public_exponent=65537, key_size=max(public_key.key_size, 2048))
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return ec.generate_private_key(public_key.curve)
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return ed25519.Ed25519PrivateKey.generate()
    if isinstance(public_key, ed448.Ed448PublicKey):
        return ed448.Ed448PrivateKey.generate()
    raise EnrollmentRejected(
        f"Cannot generate a key like the CSR's {type(public_key).__name__}; send a CSR with an RSA, EC or "
        "Ed25519 key to choose the type of the generated key."
    )


def _default_key_usage(public_key: CertificatePublicKeyTypes) -> x509.KeyUsage:
    is_rsa = isinstance(public_key, rsa.RSAPublicKey)
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=is_rsa, data_encipherment=False,
        key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
    )  # fmt: skip


class LocalCaBackend:
    """An :class:`~estclient.testing.EnrollmentBackend` that issues certificates from a local CA.

    The certificate takes the CSR's subject and, from its extensionRequest, the subjectAltName, keyUsage and
    extendedKeyUsage (other requested extensions are left out; ``basicConstraints`` is always ``CA:FALSE``). When
    the CSR asks for no keyUsage, digitalSignature (plus keyEncipherment for RSA) is set; ``default_eku`` is used
    when it asks for no extendedKeyUsage.

    Args:
        ca: The issuing CA; a new P-256 root CA when omitted.
        csr_attributes: What ``/csrattrs`` announces (None: no requirements, the server answers 204).
        days: Validity of issued certificates in days.
        default_eku: Extended key usages for CSRs that request none (default: clientAuth).
    """

    def __init__(
        self,
        ca: LocalCa | None = None,
        *,
        csr_attributes: CsrAttrs | None = None,
        days: int = 365,
        default_eku: Sequence[x509.ObjectIdentifier] = (ExtendedKeyUsageOID.CLIENT_AUTH,),
    ) -> None:
        self.ca = ca or LocalCa.generate()
        self.attributes = csr_attributes
        self.days = days
        self.default_eku = tuple(default_eku)
        self._lock = threading.Lock()
        self.issued: list[x509.Certificate] = []

    def ca_certificates(self, label: str | None) -> Sequence[x509.Certificate]:
        """Return the CA certificate and its chain (the same for every label)."""
        return (self.ca.certificate, *self.ca.chain)

    def csr_attributes(self, label: str | None) -> CsrAttrs | None:
        """Return the configured CSR attributes (the same for every label)."""
        return self.attributes

    def _extensions(self, csr: x509.CertificateSigningRequest) -> list[x509.Extension[x509.ExtensionType]]:
        requested = [e for e in csr.extensions if isinstance(e.value, _COPIED_EXTENSIONS)]
        kinds = {type(e.value) for e in requested}
        public_key = csr.public_key()
        if x509.KeyUsage not in kinds:
            requested.append(x509.Extension(x509.KeyUsage.oid, True, _default_key_usage(public_key)))
        if x509.ExtendedKeyUsage not in kinds and self.default_eku:
            eku = x509.ExtendedKeyUsage(list(self.default_eku))
            requested.append(x509.Extension(x509.ExtendedKeyUsage.oid, False, eku))
        return requested

    def _issue(self, csr: x509.CertificateSigningRequest, public_key: CertificatePublicKeyTypes) -> Issued:
        has_san = any(isinstance(e.value, x509.SubjectAlternativeName) for e in csr.extensions)
        if not len(csr.subject) and not has_san:
            raise EnrollmentRejected(
                "The CSR has an empty subject and no subjectAltName; put the identity in the subject or a SAN."
            )
        cert = self.ca.issue(csr.subject, public_key, extensions=self._extensions(csr), days=self.days)
        with self._lock:
            self.issued.append(cert)
        return Issued(cert, tuple(self.ca_certificates(None)))

    def enroll(
        self,
        csr: x509.CertificateSigningRequest,
        *,
        label: str | None,
        requester: Requester,
        renewal_of: x509.Certificate | None,
    ) -> Issued:
        """Issue a certificate for the CSR's key, subject and requested extensions."""
        return self._issue(csr, csr.public_key())

    def server_keygen(
        self,
        csr: x509.CertificateSigningRequest,
        *,
        label: str | None,
        requester: Requester,
    ) -> IssuedWithKey:
        """Generate a key of the CSR key's type (same curve, or RSA of the same size) and issue a certificate."""
        key = _new_key_like(csr.public_key())
        issued = self._issue(csr, key.public_key())
        return IssuedWithKey(key, issued.certificate, issued.chain)
