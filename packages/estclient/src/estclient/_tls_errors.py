"""Turn transport failures (``ssl``, ``socket``, httpx) into estclient's typed errors with cause and fix.

The seed's common problems each get their own class: a missing issuer in the server's chain, a self-signed
server certificate, a host name mismatch, a certificate outside its validity period (with the local clock),
a name that does not resolve, and timeouts naming the phase and the limit used.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from collections.abc import Sequence

import httpx
from cryptography import x509

from estclient._errors import (
    CertificateValidityError,
    EstConnectionError,
    EstError,
    EstTimeoutError,
    HostnameMismatchError,
    NameResolutionError,
    ProtocolVersionError,
    SelfSignedServerError,
    ServerTrustError,
    UntrustedServerError,
)
from estclient._trust import TrustAnchors, certificate_names

__all__ = ["error_from_exception", "error_from_verification", "find_cause"]

# OpenSSL X509_V_ERR_* codes (x509_vfy.h) the seed's problems produce.
_UNABLE_TO_GET_ISSUER_CERT = 2
_CERT_NOT_YET_VALID = 9
_CERT_HAS_EXPIRED = 10
_DEPTH_ZERO_SELF_SIGNED_CERT = 18
_SELF_SIGNED_CERT_IN_CHAIN = 19
_UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
_UNABLE_TO_VERIFY_LEAF_SIGNATURE = 21
_HOSTNAME_MISMATCH = 62

_CLIENT_CERT_ALERTS = (
    "ALERT_CERTIFICATE_REQUIRED",
    "ALERT_BAD_CERTIFICATE",
    "ALERT_UNKNOWN_CA",
    "ALERT_CERTIFICATE_UNKNOWN",
    "ALERT_CERTIFICATE_EXPIRED",
    "ALERT_CERTIFICATE_REVOKED",
    "ALERT_ACCESS_DENIED",
    "ALERT_DECRYPT_ERROR",
)
_VERSION_ALERTS = ("ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL", "NO_PROTOCOLS_AVAILABLE", "WRONG_VERSION_NUMBER")


def find_cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """Walk ``__cause__``/``__context__`` from ``exc`` and return the first exception of type ``kind``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def _issuer(cert: x509.Certificate) -> str:
    return cert.issuer.rfc4514_string() or "(empty issuer)"


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _missing_issuer(chain: Sequence[x509.Certificate], trust: TrustAnchors | None) -> x509.Certificate | None:
    """The presented certificate whose issuer neither the server sent nor the anchors hold (leaf side first)."""
    known = {c.subject for c in chain}
    if trust is not None:
        known |= {c.subject for c in (*trust.explicit, *trust.implicit)}
    for cert in chain:
        if cert.issuer != cert.subject and cert.issuer not in known:
            return cert
    return None


def error_from_verification(
    code: int,
    message: str,
    host: str,
    chain: Sequence[x509.Certificate],
    trust: TrustAnchors | None = None,
    now: dt.datetime | None = None,
) -> ServerTrustError:
    """Explain a failed TLS certificate verification.

    Args:
        code: OpenSSL's verify code (``ssl.SSLCertVerificationError.verify_code``).
        message: OpenSSL's verify message.
        host: The host the client connected to.
        chain: The certificates the server presented (leaf first; empty when unknown).
        trust: The anchors the client used (to name what is missing).
        now: The local clock (default: now, UTC).

    Returns:
        The typed error (not raised).
    """
    now = now or dt.datetime.now(dt.UTC)
    leaf = chain[0] if chain else None
    if code in (_CERT_NOT_YET_VALID, _CERT_HAS_EXPIRED):
        for cert in chain:
            start, end = _utc(cert.not_valid_before_utc), _utc(cert.not_valid_after_utc)
            if not start <= now <= end:
                return CertificateValidityError(_name(cert), start, end, now)
        state = "not yet valid" if code == _CERT_NOT_YET_VALID else "expired"
        return ServerTrustError(
            f"A certificate of {host!r} is {state} (local clock {now.isoformat()}): {message}.",
            hint="Check the clocks (NTP) of this machine and of the server; if they are right, renew the certificate.",
        )
    if code == _DEPTH_ZERO_SELF_SIGNED_CERT or (leaf is not None and len(chain) == 1 and leaf.issuer == leaf.subject):
        subject = _name(leaf) if leaf is not None else None
        return SelfSignedServerError(
            f"The server {host!r} presents a self-signed certificate"
            + (f" ({subject!r})" if subject else "")
            + " that is not a trust anchor.",
            subject=subject,
        )
    if code == _HOSTNAME_MISMATCH:
        return HostnameMismatchError(host, certificate_names(leaf) if leaf is not None else ())
    if code == _SELF_SIGNED_CERT_IN_CHAIN:
        root = next((c for c in reversed(chain) if c.issuer == c.subject), None)
        root_name = _name(root) if root is not None else None
        return UntrustedServerError(
            f"The certificate chain of {host!r} ends at the root {root_name or '(unknown)'!r}, which is not a "
            "trust anchor of this client.",
            missing_issuer=root_name,
        )
    if code in (_UNABLE_TO_GET_ISSUER_CERT, _UNABLE_TO_GET_ISSUER_CERT_LOCALLY, _UNABLE_TO_VERIFY_LEAF_SIGNATURE):
        orphan = _missing_issuer(chain, trust)
        if orphan is None and chain:
            orphan = chain[-1]
        if orphan is not None:
            return UntrustedServerError(
                f"The certificate {_name(orphan)!r} presented by {host!r} was issued by {_issuer(orphan)!r}, whose "
                "certificate is neither sent by the server nor a trust anchor of this client (missing issuer).",
                missing_issuer=_issuer(orphan),
            )
        return UntrustedServerError(
            f"The certificate chain of {host!r} does not lead to a trust anchor: {message} (missing issuer)."
        )
    return ServerTrustError(f"TLS certificate verification of {host!r} failed: {message} (OpenSSL code {code}).")


def _timeout_limit(exc: httpx.TimeoutException, phase: str) -> float | None:
    try:
        timeouts = exc.request.extensions.get("timeout", {})
    except RuntimeError:  # no request attached
        return None
    value = timeouts.get(phase) if isinstance(timeouts, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def _host_of(exc: httpx.HTTPError) -> str:
    try:
        return exc.request.url.host
    except RuntimeError:
        return "the EST server"


def error_from_exception(exc: BaseException, *, operation: str | None = None) -> EstError:
    """Map an exception raised while talking to an EST server to the matching :class:`EstError`.

    ``EstError`` instances pass through unchanged.

    Args:
        exc: The exception (httpx, httpcore, ssl or socket).
        operation: The EST operation in progress, for the message.

    Returns:
        The typed error (not raised).
    """
    if isinstance(exc, EstError):
        return exc
    during = f" during /{operation}" if operation else ""
    if isinstance(exc, httpx.TimeoutException):
        phase = {
            httpx.ConnectTimeout: "connect",
            httpx.ReadTimeout: "read",
            httpx.WriteTimeout: "write",
            httpx.PoolTimeout: "pool",
        }.get(type(exc), "read")
        return EstTimeoutError(phase, _timeout_limit(exc, phase), operation=operation)  # type: ignore[arg-type]
    host = _host_of(exc) if isinstance(exc, httpx.HTTPError) else "the EST server"
    gai = find_cause(exc, socket.gaierror)
    if gai is not None:
        return NameResolutionError(host, str(gai.args[1]) if len(gai.args) > 1 else str(gai))
    verify = find_cause(exc, ssl.SSLCertVerificationError)
    if isinstance(verify, ssl.SSLCertVerificationError):
        return error_from_verification(verify.verify_code or 0, verify.verify_message or str(verify), host, ())
    tls = find_cause(exc, ssl.SSLError)
    if isinstance(tls, ssl.SSLError):
        reason = str(getattr(tls, "reason", "") or "")
        if any(alert in reason for alert in _CLIENT_CERT_ALERTS):
            return EstConnectionError(
                f"The server {host!r} refused the TLS handshake{during} because of the client certificate "
                f"({reason.lower().replace('_', ' ')}).",
                hint="Present a client certificate the server's CA trusts, with its matching key and intermediate "
                "certificates; for /simplereenroll use the certificate being renewed.",
                libest_error="EST_ERR_AUTH_FAIL",
            )
        if any(alert in reason for alert in _VERSION_ALERTS):
            return ProtocolVersionError(
                f"The server {host!r} and this client share no TLS version{during} ({reason.lower()}).",
                hint="Allow TLS 1.2 and 1.3 on both sides; EST needs TLS 1.2 or later.",
                libest_error="EST_ERR_SSL_CONNECT",
            )
        return EstConnectionError(
            f"The TLS connection to {host!r} failed{during}: {reason or tls}.",
            hint="Check that the URL points at an HTTPS EST server and that both sides share a TLS version and "
            "cipher suite.",
            libest_error="EST_ERR_SSL_CONNECT",
        )
    if isinstance(exc, httpx.ConnectError):
        return EstConnectionError(f"Cannot connect to {host!r}{during}: {exc}.")
    if isinstance(exc, (httpx.ReadError, httpx.RemoteProtocolError)):
        return EstConnectionError(
            f"The connection to {host!r} broke while reading the response{during}: {exc or 'the server closed it'}.",
            hint="The server closed the connection early; check the server's log (a crash or a proxy limit) and retry.",
            libest_error="EST_ERR_SSL_READ",
        )
    if isinstance(exc, httpx.WriteError):
        return EstConnectionError(
            f"The connection to {host!r} broke while sending the request{during}: {exc}.",
            libest_error="EST_ERR_SSL_WRITE",
        )
    if isinstance(exc, httpx.ProxyError):
        return EstConnectionError(
            f"The proxy refused or failed the connection to {host!r}{during}: {exc}.",
            hint="Check the proxy URL, its credentials and that it allows CONNECT to the EST server's port.",
        )
    if isinstance(exc, httpx.HTTPError):
        return EstConnectionError(f"The request to {host!r} failed{during}: {exc}.")
    return EstConnectionError(f"The request to the EST server failed{during}: {exc!r}.")
