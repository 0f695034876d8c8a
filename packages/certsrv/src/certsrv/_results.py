"""What a submission or retrieval returns, and DER/PEM output helpers.

A request is either issued (:class:`Issued`, with the certificate) or waits for a certificate manager
(:class:`Pending`): both are results. Denials and failures are exceptions (see ``certsrv._errors``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from certsrv._errors import ConfigurationError

__all__ = [
    "Encoding",
    "Issued",
    "Pending",
    "SubmitResult",
    "encode_certificate",
    "encode_certificates",
    "encode_crl",
]

#: Output encodings: ``"pem"`` (Base64 with armor) or ``"der"`` (binary).
Encoding = Literal["pem", "der"]


def _check(encoding: str) -> serialization.Encoding:
    if encoding == "pem":
        return serialization.Encoding.PEM
    if encoding == "der":
        return serialization.Encoding.DER
    raise ConfigurationError(f"encoding must be 'pem' or 'der', not {encoding!r}")


def encode_certificate(certificate: x509.Certificate, encoding: Encoding = "pem") -> bytes:
    """One certificate as PEM or DER bytes."""
    return certificate.public_bytes(_check(encoding))


def encode_certificates(certificates: Sequence[x509.Certificate], encoding: Encoding = "pem") -> bytes:
    """Several certificates: concatenated PEM blocks, or for ``"der"`` a degenerate PKCS#7 (a ``.p7b`` file)."""
    enc = _check(encoding)
    if enc is serialization.Encoding.PEM:
        return b"".join(c.public_bytes(enc) for c in certificates)
    if not certificates:
        raise ConfigurationError("a PKCS#7 (.p7b) bundle needs at least one certificate")
    return pkcs7.serialize_certificates(list(certificates), serialization.Encoding.DER)


def encode_crl(crl: x509.CertificateRevocationList, encoding: Encoding = "pem") -> bytes:
    """A CRL as PEM or DER bytes."""
    return crl.public_bytes(_check(encoding))


@dataclass(frozen=True)
class Issued:
    """The CA issued the certificate.

    Attributes:
        request_id: The CA's request id (keep it: it retrieves the certificate and its chain again later).
        certificate: The issued certificate.
    """

    request_id: int
    certificate: x509.Certificate

    @property
    def pem(self) -> bytes:
        """The certificate in PEM."""
        return encode_certificate(self.certificate, "pem")

    @property
    def der(self) -> bytes:
        """The certificate in DER."""
        return encode_certificate(self.certificate, "der")


@dataclass(frozen=True)
class Pending:
    """The request waits for a certificate manager's approval; retrieve it later with its id.

    Attributes:
        request_id: The CA's request id, for :meth:`CertsrvClient.retrieve`.
    """

    request_id: int


#: What :meth:`CertsrvClient.submit` and :meth:`CertsrvClient.retrieve` return.
SubmitResult = Issued | Pending
