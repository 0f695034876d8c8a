"""The enrollment backend interface of the EST server, and the results a backend returns.

The server speaks EST on the wire; a backend decides what gets issued. :class:`LocalCaBackend` is a local CA; the
reference RA implements the same protocol with AD CS behind it. A backend raises :class:`EnrollmentRejected`
to refuse a request (the server answers with the given HTTP status and the reason as text/plain).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from estclient._errors import EstError

if TYPE_CHECKING:
    from estclient._csrattrs import CsrAttrs

__all__ = [
    "EnrollmentBackend",
    "EnrollmentRejected",
    "Issued",
    "IssuedWithKey",
    "Pending",
    "Requester",
]


@dataclass(frozen=True)
class Requester:
    """Who sent an enrollment request, as the server authenticated them.

    Attributes:
        user: The HTTP Basic/Digest user name, or None when the request carried no HTTP credentials.
        certificate: The verified TLS client certificate, or None when the client presented none.
        address: The client's IP address.
    """

    user: str | None = None
    certificate: x509.Certificate | None = None
    address: str = ""

    @property
    def description(self) -> str:
        """A short, log-safe description (user name and/or certificate subject; never a secret)."""
        parts = []
        if self.user is not None:
            parts.append(f"user {self.user!r}")
        if self.certificate is not None:
            parts.append(f"certificate {self.certificate.subject.rfc4514_string()!r}")
        return ", ".join(parts) or "anonymous"


@dataclass(frozen=True)
class Issued:
    """An issued certificate.

    Attributes:
        certificate: The new certificate.
        chain: Certificates above it that the client may need (issuing CAs), sent along in the PKCS#7.
    """

    certificate: x509.Certificate
    chain: Sequence[x509.Certificate] = ()


@dataclass(frozen=True)
class IssuedWithKey:
    """A certificate issued for a key pair the backend generated (``/serverkeygen``).

    Attributes:
        private_key: The generated private key (sent to the client, never logged).
        certificate: The certificate for it.
        chain: Certificates above it (issuing CAs).
    """

    private_key: PrivateKeyTypes = field(repr=False)
    certificate: x509.Certificate
    chain: Sequence[x509.Certificate] = ()


@dataclass(frozen=True)
class Pending:
    """The request awaits a decision (the server answers ``202 Accepted`` with ``Retry-After``).

    Attributes:
        retry_after: Seconds the client should wait before sending the same request again.
        request_id: The backend's identifier of the pending request (for logs and operators).
    """

    retry_after: int = 60
    request_id: str = ""


class EnrollmentRejected(EstError):
    """A backend refuses a request; the server answers ``http_status`` with the reason as text/plain.

    Args:
        reason: Why, in words the client's user can act on (it is sent to the client).
        http_status: The HTTP status to answer with (400 bad request, 403 denied, 503 CA unavailable...).
        retry_after: For 503: seconds after which the client may try again (sent as Retry-After).
    """

    default_hint = "The enrollment backend refused the request; the reason says what to change."

    def __init__(self, reason: str, *, http_status: int = 400, retry_after: int | None = None) -> None:
        super().__init__(reason, libest_error="EST_ERR_CA_ENROLL_FAIL")
        self.reason = reason
        self.http_status = http_status
        self.retry_after = retry_after


@runtime_checkable
class EnrollmentBackend(Protocol):
    """What the EST server asks of the party that really issues certificates.

    Every method gets the CA label of the request (``None`` for ``/.well-known/est/<op>`` without a label).
    Methods run in the server's connection threads, possibly concurrently: implementations must be thread-safe.
    Raise :class:`EnrollmentRejected` to refuse a request.
    """

    def ca_certificates(self, label: str | None) -> Sequence[x509.Certificate]:
        """Return the CA certificates for ``/cacerts`` (the issuing CA, its chain, rollover certificates)."""
        ...

    def csr_attributes(self, label: str | None) -> CsrAttrs | None:
        """Return what ``/csrattrs`` announces, or None for "no requirements" (the server answers 204)."""
        ...

    def enroll(
        self,
        csr: x509.CertificateSigningRequest,
        *,
        label: str | None,
        requester: Requester,
        renewal_of: x509.Certificate | None,
    ) -> Issued | Pending:
        """Issue a certificate for a CSR whose signature (and, when required, PoP link) the server has checked.

        Args:
            csr: The request.
            label: The CA label of the request.
            requester: Who asked.
            renewal_of: For ``/simplereenroll``: the certificate being renewed (the TLS client certificate,
                whose subject and subjectAltName the server has checked against the CSR).

        Returns:
            The issued certificate, or :class:`Pending` when a decision is outstanding.
        """
        ...

    def server_keygen(
        self,
        csr: x509.CertificateSigningRequest,
        *,
        label: str | None,
        requester: Requester,
    ) -> IssuedWithKey | Pending:
        """Generate a key pair and issue a certificate for it (``/serverkeygen``).

        The CSR's own public key is to be ignored (RFC 7030 §4.4.1); its subject and extensions apply.

        Returns:
            The key and certificate, or :class:`Pending`.
        """
        ...
