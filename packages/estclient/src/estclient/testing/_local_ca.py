"""A local certificate authority and the enrollment backend built on it."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from estclient.testing import _der
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
_END_ENTITY = x509.BasicConstraints(ca=False, path_length=None)
_END_ENTITY_EXTENSION = x509.Extension(x509.BasicConstraints.oid, True, _END_ENTITY)


def _spki(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _signature_hash(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) else hashes.SHA256()


def _extension_der(ext: x509.Extension[x509.ExtensionType]) -> bytes:
    """An Extension as the certificate builder writes it (critical only when true: DEFAULT FALSE)."""
    flag = b"\x01\x01\xff" if ext.critical else b""
    return _der.sequence(_der.oid(ext.oid.dotted_string), flag, _der.der(0x04, ext.value.public_bytes()))


#: The default keyUsage and extendedKeyUsage extensions (objects that live as long as the process), encoded once and
#: found by identity; any other extension is encoded when used.
_ENCODED: dict[int, tuple[x509.Extension[x509.ExtensionType], bytes]] = {}


def _encoded(ext: x509.Extension[x509.ExtensionType]) -> bytes:
    known = _ENCODED.get(id(ext))
    if known is not None and known[0] is ext:
        return known[1]
    return _extension_der(ext)


_E = TypeVar("_E", bound=x509.ExtensionType)


def _remember(ext: x509.Extension[_E]) -> x509.Extension[_E]:
    """Encode a long-lived extension once (it stays referenced here, so its id is never another object's)."""
    _ENCODED[id(ext)] = (ext, _extension_der(ext))
    return ext


_SKI_HEAD = _der.oid(x509.SubjectKeyIdentifier.oid.dotted_string)


def _subject_key_identifier_der(spki: bytes) -> bytes:
    """The subjectKeyIdentifier extension for a SubjectPublicKeyInfo (DER), as the certificate builder writes it.

    The identifier is the SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2, method 1): what
    ``x509.SubjectKeyIdentifier.from_public_key`` computes.
    """
    bits = _der.content(_der.elements(spki)[1])[1:]  # the BIT STRING without its unused-bits count
    digest = hashlib.sha1(bits).digest()  # noqa: S324 (RFC 5280's key identifier method)
    return _der.sequence(_SKI_HEAD, _der.der(0x04, _der.der(0x04, digest)))


def _sign_function(
    key: CertificateIssuerPrivateKeyTypes, signature_hash: hashes.SHA256 | None
) -> Callable[[bytes], bytes] | None:
    """Signs as ``CertificateBuilder.sign(key, signature_hash)`` does: ECDSA, RSA PKCS#1 v1.5, or EdDSA."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and signature_hash is not None:
        ecdsa = ec.ECDSA(signature_hash)  # made once per CA, not once per certificate
        return lambda data: key.sign(data, ecdsa)
    if isinstance(key, rsa.RSAPrivateKey) and signature_hash is not None:
        pkcs1 = padding.PKCS1v15()
        return lambda data: key.sign(data, pkcs1, signature_hash)
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) and signature_hash is None:
        return key.sign
    return None


@dataclass(frozen=True)
class _DirectSigner:
    """Writes and signs a CA's certificates without ``CertificateBuilder``: the same DER, less work per certificate.

    The builder calls back into Python for every part of a certificate (type checks of the key and hash, a new
    ECDSA object, each name attribute and extension). Here the parts that never change for a CA are encoded once:
    the signature AlgorithmIdentifier and the issuer name come from a certificate the builder made with the CA's
    key, and the signing itself is checked once against that certificate.
    """

    algorithm: bytes
    issuer: bytes
    sign: Callable[[bytes], bytes]
    end_entity: bytes  # the basicConstraints extension
    authority_key_identifier: bytes  # the authorityKeyIdentifier extension

    @classmethod
    def for_ca(cls, ca: LocalCa) -> _DirectSigner | None:
        """The signer for a CA, or None when its key is of a kind this does not sign for (the builder does)."""
        issuer, _, signature_hash = ca._issuer
        key = ca.private_key
        sign = _sign_function(key, signature_hash)
        if sign is None:
            return None
        try:
            probe = x509.CertificateBuilder(
                issuer_name=issuer,
                subject_name=issuer,
                public_key=key.public_key(),
                serial_number=1,
                not_valid_before=dt.datetime(2000, 1, 1),  # naive UTC, as the builder keeps them
                not_valid_after=dt.datetime(2000, 1, 2),
            ).sign(key, signature_hash)
            tbs = probe.tbs_certificate_bytes
            _, _, algorithm, issuer_der, *_ = _der.elements(tbs)
            own = x509.load_der_x509_certificate(_der.sequence(tbs, algorithm, _bit_string(sign(tbs))))
            own.verify_directly_issued_by(probe)
        except (ValueError, TypeError, InvalidSignature):
            return None
        aki = _extension_der(ca._authority_key_identifier_extension)
        return cls(algorithm, issuer_der, sign, _extension_der(_END_ENTITY_EXTENSION), aki)

    def issue(
        self,
        serial_number: int,
        not_before: dt.datetime,
        not_after: dt.datetime,
        subject: x509.Name,
        spki: bytes,
        extensions: Sequence[bytes],
    ) -> x509.Certificate:
        """The certificate the builder makes of these fields (all extensions encoded, in order; dates in UTC)."""
        tbs = _der.sequence(
            b"\xa0\x03\x02\x01\x02",  # [0] EXPLICIT version v3
            _der.integer(serial_number),
            self.algorithm,
            self.issuer,
            _der.validity(not_before, not_after),
            subject.public_bytes(),
            spki,
            _der.der(0xA3, _der.sequence(*extensions)),
        )
        return x509.load_der_x509_certificate(_der.sequence(tbs, self.algorithm, _bit_string(self.sign(tbs))))


def _bit_string(data: bytes) -> bytes:
    return _der.der(0x03, b"\x00" + data)


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

    @cached_property
    def _authority_key_identifier_extension(self) -> x509.Extension[x509.AuthorityKeyIdentifier]:
        return x509.Extension(x509.AuthorityKeyIdentifier.oid, False, self._authority_key_identifier)

    @cached_property
    def _issuer(self) -> tuple[x509.Name, dt.datetime, hashes.SHA256 | None]:
        """What every certificate issued takes from the CA: issuer name, latest end of validity, signature hash."""
        return self.certificate.subject, self.certificate.not_valid_after_utc, _signature_hash(self.private_key)

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
        issuer, ca_not_after, signature_hash = self._issuer
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _SKEW)
            .not_valid_after(min(now + dt.timedelta(days=days), ca_not_after))
            .add_extension(_END_ENTITY, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(self._authority_key_identifier, critical=False)
        )
        for ext in extensions:
            builder = builder.add_extension(ext.value, critical=ext.critical)
        return builder.sign(self.private_key, signature_hash)

    def _issue_requested(
        self,
        subject: x509.Name,
        public_key: CertificatePublicKeyTypes,
        extensions: Sequence[x509.Extension[x509.ExtensionType]],
        days: int,
    ) -> x509.Certificate:
        """What :meth:`issue` issues, for a subject, key and extensions taken from a parsed CSR, at less cost.

        :meth:`issue` sets each field through the builder's setters, which check the value and copy the builder.
        Values from a parsed CSR (a Name, a key type the builder takes, distinct subjectAltName, keyUsage and
        extendedKeyUsage extensions) and the CA's own pass those checks by construction, so they go to the builder
        in one step: the same certificate, with less work. For a CA key the builder signs with ECDSA, RSA PKCS#1
        v1.5 or EdDSA, :class:`_DirectSigner` writes that same DER itself, cheaper still. Dates the setters would
        refuse (an expired CA) and subclasses that override :meth:`issue` go through :meth:`issue`.
        """
        issuer, ca_not_after, signature_hash = self._issuer
        now = _now()
        not_before, not_after = now - _SKEW, min(now + dt.timedelta(days=days), ca_not_after)
        if not_after < not_before or type(self).issue is not LocalCa.issue:
            return self.issue(subject, public_key, extensions=extensions, days=days)
        serial_number = x509.random_serial_number()
        signer = self._direct_signer
        # A fraction of a day can leave a fraction of a second in not_after, which the builder drops and an RFC 5280
        # Time cannot hold (_der.x509_time refuses it): the builder decides such dates.
        if signer is not None and not_before.year >= 1950 and not not_after.microsecond:
            spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            encoded = [
                signer.end_entity,
                _subject_key_identifier_der(spki),
                signer.authority_key_identifier,
                *(_encoded(e) for e in extensions),
            ]
            return signer.issue(serial_number, not_before, not_after, subject, spki, encoded)
        ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
        builder = x509.CertificateBuilder(
            issuer_name=issuer,
            subject_name=subject,
            public_key=public_key,
            serial_number=serial_number,
            not_valid_before=not_before.replace(tzinfo=None),  # naive UTC, as the setters store them
            not_valid_after=not_after.replace(tzinfo=None),
            extensions=[
                _END_ENTITY_EXTENSION,
                x509.Extension(x509.SubjectKeyIdentifier.oid, False, ski),
                self._authority_key_identifier_extension,
                *extensions,
            ],
        )
        return builder.sign(self.private_key, signature_hash)

    @cached_property
    def _direct_signer(self) -> _DirectSigner | None:
        return _DirectSigner.for_ca(self)

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


def _key_usage(key_encipherment: bool) -> x509.Extension[x509.KeyUsage]:
    usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=key_encipherment, data_encipherment=False,
        key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
    )  # fmt: skip
    return x509.Extension(x509.KeyUsage.oid, True, usage)


#: The keyUsage set when a CSR asks for none: digitalSignature, plus keyEncipherment for an RSA key.
_DEFAULT_KEY_USAGE_RSA = _remember(_key_usage(True))
_DEFAULT_KEY_USAGE = _remember(_key_usage(False))


@functools.cache  # one per distinct default_eku in the process
def _extended_key_usage(usages: tuple[x509.ObjectIdentifier, ...]) -> x509.Extension[x509.ExtendedKeyUsage]:
    return _remember(x509.Extension(x509.ExtendedKeyUsage.oid, False, x509.ExtendedKeyUsage(list(usages))))


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

    def _extensions(
        self, csr: x509.CertificateSigningRequest, csr_key: CertificatePublicKeyTypes
    ) -> list[x509.Extension[x509.ExtensionType]]:
        requested = [e for e in csr.extensions if isinstance(e.value, _COPIED_EXTENSIONS)]
        kinds = {type(e.value) for e in requested}
        if x509.KeyUsage not in kinds:
            rsa_key = isinstance(csr_key, rsa.RSAPublicKey)
            requested.append(_DEFAULT_KEY_USAGE_RSA if rsa_key else _DEFAULT_KEY_USAGE)
        if x509.ExtendedKeyUsage not in kinds and self.default_eku:
            requested.append(_extended_key_usage(tuple(self.default_eku)))
        return requested

    def _issue(
        self,
        csr: x509.CertificateSigningRequest,
        public_key: CertificatePublicKeyTypes,
        csr_key: CertificatePublicKeyTypes,
    ) -> Issued:
        # csr.subject and csr.public_key() build new objects on every call: each is taken once per request
        subject = csr.subject
        has_san = any(isinstance(e.value, x509.SubjectAlternativeName) for e in csr.extensions)
        if not len(subject) and not has_san:
            raise EnrollmentRejected(
                "The CSR has an empty subject and no subjectAltName; put the identity in the subject or a SAN."
            )
        cert = self.ca._issue_requested(subject, public_key, self._extensions(csr, csr_key), self.days)
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
        key = csr.public_key()
        return self._issue(csr, key, key)

    def server_keygen(
        self,
        csr: x509.CertificateSigningRequest,
        *,
        label: str | None,
        requester: Requester,
    ) -> IssuedWithKey:
        """Generate a key of the CSR key's type (same curve, or RSA of the same size) and issue a certificate."""
        requested = csr.public_key()
        key = _new_key_like(requested)
        issued = self._issue(csr, key.public_key(), requested)
        return IssuedWithKey(key, issued.certificate, issued.chain)
