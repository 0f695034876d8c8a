"""Certs-only PKCS#7 (CMC Simple PKI Response, RFC 5272 §3.1; RFC 7030 §4.1.3 and §4.2.3).

A certs-only message is a CMS SignedData with no signers and no content, carrying certificates and possibly
CRLs. ``/cacerts`` answers with one (it may hold the root-rollover set OldWithOld, OldWithNew, NewWithOld,
NewWithNew, RFC 7030 §4.1.3); ``/simpleenroll``, ``/simplereenroll`` and ``/fullcmc`` answer with one holding
the issued certificate. The order of the certificates is not specified: helpers here classify and order them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from estclient import _asn1
from estclient._errors import MalformedMessageError, MalformedResponseError
from estclient._sigs import certificate_signed_by
from estclient._x509 import read_der_certificate

__all__ = ["CertsOnly", "build_certs_only", "order_chain", "parse_certs_only", "rollover_roles"]


@dataclass(frozen=True)
class CertsOnly:
    """The content of a certs-only message.

    Attributes:
        certificates: The certificates, in the order the message carried them.
        crls: The CRLs the message carried (often none).
    """

    certificates: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...] = field(default=())

    @property
    def roots(self) -> tuple[x509.Certificate, ...]:
        """The self-signed certificates (trust anchor candidates; two during a root rollover)."""
        return tuple(c for c in self.certificates if is_self_signed(c))

    def certificate_for_key(self, public_key: CertificatePublicKeyTypes) -> x509.Certificate | None:
        """Return the certificate whose public key is ``public_key`` (the one issued for a CSR), or None.

        Args:
            public_key: The public key of the request.

        Returns:
            The matching certificate, or None.
        """
        wanted = _spki(public_key)
        for cert in self.certificates:
            if wanted is not None and _cert_spki(cert) == wanted:
                return cert
        return None


def parse_certs_only(
    der: bytes,
    *,
    what: str = "certs-only response",
    error: type[MalformedMessageError] = MalformedResponseError,
) -> CertsOnly:
    """Parse a certs-only PKCS#7 (DER) into certificates and CRLs.

    Signers, if a server includes any, are ignored: certs-only messages are not signed (RFC 5272 §3.1).

    Args:
        der: The DER message (decode the base64 body first with ``decode_body``).
        what: Names the message in error messages.
        error: The error class to raise.

    Returns:
        The certificates and CRLs.

    Raises:
        MalformedResponseError: (or ``error``) when the bytes are not a SignedData or a certificate/CRL inside
            does not parse.
    """
    try:
        parts = _asn1.signed_data_decode(der)
    except _asn1.Asn1Error as exc:
        raise error(
            f"The {what} is not a PKCS#7 certs-only message ({exc}).", libest_error="EST_ERR_BAD_X509"
        ) from None
    certs = []
    for i, cert_der in enumerate(parts.certificates):
        try:
            cert = read_der_certificate(cert_der)
            _ = cert.extensions  # parsed lazily: a malformed extension fails here, not in the caller's code
            certs.append(cert)
        except (ValueError, x509.InvalidVersion) as exc:
            raise error(
                f"Certificate {i + 1} in the {what} does not parse: {exc}.", libest_error="EST_ERR_BAD_X509"
            ) from None
    crls = []
    for i, crl_der in enumerate(parts.crls):
        try:
            crls.append(x509.load_der_x509_crl(crl_der))
        except (ValueError, x509.InvalidVersion) as exc:
            raise error(f"CRL {i + 1} in the {what} does not parse: {exc}.", libest_error="EST_ERR_BAD_X509") from None
    return CertsOnly(tuple(certs), tuple(crls))


def build_certs_only(
    certs: Iterable[x509.Certificate],
    crls: Iterable[x509.CertificateRevocationList] = (),
) -> bytes:
    """Build a certs-only PKCS#7 (DER): SignedData, no signers, no content.

    Args:
        certs: The certificates (DER sorts the SET OF, so their order is not kept; it has no meaning in EST).
        crls: CRLs to include.

    Returns:
        The DER message (base64-encode it with ``encode_body`` to send it).
    """
    return _asn1.signed_data_encode(
        _asn1.OID_DATA,
        None,
        certificates=[c.public_bytes(serialization.Encoding.DER) for c in certs],
        crls=[c.public_bytes(serialization.Encoding.DER) for c in crls],
    )


# --- classification ------------------------------------------------------------------------------------------


def _spki(key: CertificatePublicKeyTypes) -> bytes | None:
    try:
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None


def _cert_spki(cert: x509.Certificate) -> bytes | None:
    """The certificate's SubjectPublicKeyInfo, or None for a key type cryptography cannot load."""
    try:
        return _spki(cert.public_key())
    except (ValueError, UnsupportedAlgorithm):
        return None


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer``'s key signed ``cert`` and its subject is ``cert``'s issuer name."""
    return certificate_signed_by(cert, issuer)


def is_self_signed(cert: x509.Certificate) -> bool:
    """Whether ``cert`` is self-signed (its own key verifies its signature)."""
    return signed_by(cert, cert)


def rollover_roles(certs: Sequence[x509.Certificate]) -> dict[str, x509.Certificate]:
    """Classify the root-rollover certificates of a /cacerts response (RFC 7030 §4.1.3, RFC 4210 §4.4).

    The old CA key and the new CA key each have a self-signed certificate (OldWithOld, NewWithNew); the
    cross-certificates carry one key signed by the other (OldWithNew: old key signed by the new key;
    NewWithOld: new key signed by the old key). Old and new are told apart by the self-signed certificates'
    notBefore (the later one is new).

    Args:
        certs: The certificates of the response.

    Returns:
        A dict with those of ``"OldWithOld"``, ``"NewWithNew"``, ``"OldWithNew"``, ``"NewWithOld"`` found
        (empty when the set is no rollover, e.g. a single root).
    """
    roots = list(dict.fromkeys(c for c in certs if is_self_signed(c)))  # a root listed twice is one root
    if len(roots) < 2:
        return {}
    roots.sort(key=lambda c: c.not_valid_before_utc)
    old, new = roots[0], roots[-1]
    roles = {"OldWithOld": old, "NewWithNew": new}
    old_key, new_key = _cert_spki(old), _cert_spki(new)
    for cert in certs:
        if cert in (old, new):
            continue
        key = _cert_spki(cert)
        if key is None:
            continue
        if key == old_key and signed_by(cert, new):
            roles["OldWithNew"] = cert
        elif key == new_key and signed_by(cert, old):
            roles["NewWithOld"] = cert
    return roles


def order_chain(certs: Sequence[x509.Certificate], leaf: x509.Certificate | None = None) -> list[x509.Certificate]:
    """Order certificates from the leaf up to the root, following issuer signatures.

    Args:
        certs: An unordered set of certificates (e.g. a certs-only response).
        leaf: Where to start; by default the certificate that issued none of the others.

    Returns:
        The chain from ``leaf`` upwards, as far as ``certs`` allow (unrelated certificates are left out).
    """
    pool = list(certs)
    if not pool and leaf is None:
        return []
    if leaf is None:
        non_issuers = [c for c in pool if not any(o is not c and signed_by(o, c) for o in pool)]
        leaf = non_issuers[0] if non_issuers else pool[0]
    chain = [leaf]
    current = leaf
    while not is_self_signed(current):
        issuer = next((c for c in pool if c not in chain and signed_by(current, c)), None)
        if issuer is None:
            break
        chain.append(issuer)
        current = issuer
    return chain
