"""What the EST operations return: frozen dataclasses holding cryptography types.

A pending enrollment (HTTP 202) is a result, :class:`Pending`, not an exception.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509

from estclient._pkcs7 import is_self_signed, order_chain, rollover_roles, signed_by
from estclient._trust import AnchorKind, TrustAnchors

__all__ = ["CaCertificates", "EnrollResult", "Pending"]


@dataclass(frozen=True)
class CaCertificates:
    """The CA certificates of ``/cacerts`` (RFC 7030 §4.1), and how far they can be trusted.

    Attributes:
        certificates: Every certificate of the response, in the server's order.
        crls: CRLs the response carried (often none).
        authenticated_by: How the server was authenticated: ``"explicit"`` or ``"implicit"`` trust anchor, or
            ``"bootstrap"`` (a provisional connection; the certificates were then accepted through a confirmed
            fingerprint, see :attr:`confirmed`).
        confirmed: In bootstrap mode, the certificates whose fingerprint was confirmed (or all, when the
            confirm callback accepted them); empty otherwise.
    """

    certificates: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    authenticated_by: AnchorKind = "explicit"
    confirmed: tuple[x509.Certificate, ...] = field(default=())

    @property
    def roots(self) -> tuple[x509.Certificate, ...]:
        """The self-signed certificates (two during a root rollover: OldWithOld and NewWithNew)."""
        return tuple(c for c in self.certificates if is_self_signed(c))

    @property
    def rollover(self) -> dict[str, x509.Certificate]:
        """The root-rollover roles found (``"OldWithOld"``, ``"OldWithNew"``, ``"NewWithOld"``, ``"NewWithNew"``).

        Empty when the response is not a rollover set (RFC 7030 §4.1.3).
        """
        return rollover_roles(self.certificates)

    @property
    def issuing_ca(self) -> x509.Certificate | None:
        """The CA certificate at the bottom of the chain (the one that issues client certificates), if any.

        It is the certificate that signed none of the others (ignoring rollover cross-certificates); with a
        single root it is that root.
        """
        cross = {self.rollover.get(k) for k in ("OldWithNew", "NewWithOld")}
        pool = [c for c in self.certificates if c not in cross]
        if not pool:
            return None
        return order_chain(pool)[0]

    def trusted_certificates(self) -> tuple[x509.Certificate, ...]:
        """The certificates that may become explicit trust anchors (RFC 7030 §4.1.3).

        Over an authenticated connection that is all of them. After bootstrap, it is the confirmed certificates
        and those they verifiably issued (directly or through others so accepted): a certificate an attacker
        slipped into the provisional response is left out.

        Returns:
            The certificates to trust.
        """
        if self.authenticated_by != "bootstrap":
            return self.certificates
        accepted = list(self.confirmed)
        grew = True
        while grew:
            grew = False
            for cert in self.certificates:
                if cert not in accepted and any(signed_by(cert, a) for a in accepted):
                    accepted.append(cert)
                    grew = True
        return tuple(accepted)

    def trust_anchors(self) -> TrustAnchors:
        """Explicit trust anchors for the next client of this EST server (see :meth:`trusted_certificates`)."""
        return TrustAnchors(explicit=self.trusted_certificates())


@dataclass(frozen=True)
class EnrollResult:
    """A certificate issued by ``/simpleenroll``, ``/simplereenroll`` or ``/fullcmc``.

    Attributes:
        certificate: The issued certificate (the one for the request's public key when the server returned
            several).
        chain: The other certificates of the response, ordered from the issuer upwards where they chain.
        crls: CRLs the response carried.
        csr: The certificate request that was sent (for a request the client built and signed: that one).
    """

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    csr: x509.CertificateSigningRequest | None = None


@dataclass(frozen=True)
class Pending:
    """The server accepted the request but has not issued yet (HTTP 202, RFC 7030 §4.2.3).

    Send the same request again after :attr:`retry_after` seconds (or pass ``wait=True`` to have the client
    do it).

    Attributes:
        retry_after: Seconds to wait, counted from :attr:`received_at`.
        retry_at: The earliest time to ask again (UTC).
        received_at: When the 202 arrived (UTC).
        operation: The EST operation (``"simpleenroll"``...).
        server_text: Any text the server sent with the 202.
        csr: The request that was sent (resend it; a PoP-linked one is re-signed on the new connection).
    """

    retry_after: float
    retry_at: dt.datetime
    received_at: dt.datetime
    operation: str
    server_text: str = ""
    csr: x509.CertificateSigningRequest | None = None
