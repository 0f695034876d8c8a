"""Turning connection failures into the seed's problems, each a typed error with its cause and fix.

httpx reports a failed TLS handshake as ``ConnectError`` with the ``ssl.SSLCertVerificationError`` further down
its cause chain; the OpenSSL verify code says what went wrong but not which certificate. To name the missing
issuer, the certificate's names or its dates, :func:`fetch_presented_chain` opens one more TLS connection that
only reads the certificates the server presents (no verification, no application data sent, closed at once)
and :func:`tls_error` builds the error from both.
"""

from __future__ import annotations

import datetime as dt
import errno
import socket
import ssl
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from certsrv._errors import (
    CertsrvConnectionError,
    HostnameMismatchError,
    NameResolutionError,
    SelfSignedServerCertificateError,
    ServerCertificateExpiredError,
    ServerCertificateNotYetValidError,
    ServerUnreachableError,
    TlsError,
    UntrustedServerChainError,
)

__all__ = [
    "ConnectFailure",
    "classify_connect_failure",
    "connection_error",
    "fetch_presented_chain",
    "needs_chain",
    "tls_error",
]

# OpenSSL X509_V_ERR_* codes
_UNABLE_TO_GET_ISSUER_CERT = 2
_CERT_NOT_YET_VALID = 9
_CERT_HAS_EXPIRED = 10
_DEPTH_ZERO_SELF_SIGNED_CERT = 18
_SELF_SIGNED_CERT_IN_CHAIN = 19
_UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
_UNABLE_TO_VERIFY_LEAF_SIGNATURE = 21
_CERT_UNTRUSTED = 27
_HOSTNAME_MISMATCH = 62
_IP_ADDRESS_MISMATCH = 64


@dataclass(frozen=True)
class ConnectFailure:
    """What a connection failure was, read from an exception's cause chain.

    Attributes:
        kind: ``"dns"``, ``"tls-verify"``, ``"tls"``, ``"tcp"``, ``"reset"`` or ``"other"``.
        detail: The underlying message.
        verify_code: The OpenSSL verify code for ``"tls-verify"``.
    """

    kind: Literal["dns", "tls-verify", "tls", "tcp", "reset", "other"]
    detail: str
    verify_code: int | None = None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
        todo += [e for e in getattr(current, "exceptions", ()) if isinstance(e, BaseException)]


def classify_connect_failure(exc: BaseException) -> ConnectFailure:
    """Find the root cause of a failed connection in ``exc``'s cause chain."""
    causes = list(_chain(exc))
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return ConnectFailure("tls-verify", str(cause.verify_message or cause), int(cause.verify_code or 0))
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return ConnectFailure("dns", str(cause.strerror or cause))
    for cause in causes:
        if isinstance(cause, ssl.SSLError):
            return ConnectFailure("tls", str(cause))
    for cause in causes:
        if isinstance(cause, ConnectionError | TimeoutError) or (
            isinstance(cause, OSError) and cause.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH)
        ):
            return ConnectFailure("tcp", str(cause))
    text = " ".join(dict.fromkeys(str(c) for c in causes if str(c)))
    lowered = text.lower()
    if "disconnected without" in lowered or "connection reset" in lowered or "peer closed" in lowered:
        return ConnectFailure("reset", text)
    if "name or service not known" in lowered or "nodename nor servname" in lowered or "name resolution" in lowered:
        return ConnectFailure("dns", text)
    if "certificate verify failed" in lowered:
        return ConnectFailure("tls-verify", text, None)
    return ConnectFailure("other", text)


def fetch_presented_chain(host: str, port: int, timeout: float | None = 10.0) -> list[x509.Certificate]:
    """The certificates the server presents, leaf first, read without verifying them.

    Only the TLS handshake runs: nothing is sent over the connection, which is closed at once. Used solely to
    explain a verification failure. Returns an empty list when the server cannot be reached.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # diagnosis only: the certificates are read, never trusted
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            chain: list[x509.Certificate] = []
            unverified = getattr(getattr(tls, "_sslobj", None), "get_unverified_chain", None)
            if callable(unverified):
                for cert in unverified() or ():
                    der = cert if isinstance(cert, bytes) else cert.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
                    chain.append(x509.load_der_x509_certificate(der))
            if not chain:
                leaf = tls.getpeercert(True)
                if leaf:
                    chain.append(x509.load_der_x509_certificate(leaf))
            return chain
    except (OSError, ValueError):
        return []


def _names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        san = None
    names: list[str] = []
    if san is not None:
        names += san.get_values_for_type(x509.DNSName)
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    if not names:
        names += [str(a.value) for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    return names


def _missing_issuer(chain: list[x509.Certificate], trusted_subjects: set[bytes]) -> tuple[str | None, str | None]:
    """(missing issuer DN, subject of the certificate that needs it) from the presented chain."""
    if not chain:
        return None, None
    by_subject = {c.subject.public_bytes(): c for c in chain}
    current = chain[0]
    for _ in range(len(chain) + 1):
        issuer = current.issuer.public_bytes()
        if current.issuer == current.subject:  # a self-signed root at the top: it is the untrusted one
            return current.subject.rfc4514_string(), current.subject.rfc4514_string()
        if issuer in by_subject and by_subject[issuer] is not current and issuer not in trusted_subjects:
            current = by_subject[issuer]
            continue
        return current.issuer.rfc4514_string(), current.subject.rfc4514_string()
    return chain[0].issuer.rfc4514_string(), chain[0].subject.rfc4514_string()


def _trusted_subjects(context: ssl.SSLContext | None) -> set[bytes]:
    subjects: set[bytes] = set()
    if context is None:
        return subjects
    for der in context.get_ca_certs(binary_form=True):
        try:
            with warnings.catch_warnings():  # system stores hold old CAs (e.g. a non-positive serial)
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                subjects.add(x509.load_der_x509_certificate(der).subject.public_bytes())
        except ValueError:
            continue
    return subjects


def tls_error(
    failure: ConnectFailure,
    *,
    host: str,
    url: str,
    chain: list[x509.Certificate],
    context: ssl.SSLContext | None = None,
    now: dt.datetime | None = None,
) -> TlsError:
    """The typed error for a TLS verification failure, given what the server presented."""
    code = failure.verify_code
    local = now or dt.datetime.now(dt.UTC)
    leaf = chain[0] if chain else None
    message = failure.detail.lower()
    if code in (_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH) or "mismatch" in message:
        return HostnameMismatchError(host=host, names=_names(leaf) if leaf else [], url=url)
    if code == _DEPTH_ZERO_SELF_SIGNED_CERT or (
        leaf is not None
        and leaf.issuer == leaf.subject
        and len(chain) == 1
        and code not in (_CERT_NOT_YET_VALID, _CERT_HAS_EXPIRED)
    ):
        return SelfSignedServerCertificateError(
            host=host, subject=leaf.subject.rfc4514_string() if leaf else None, url=url
        )
    if code in (_CERT_NOT_YET_VALID, _CERT_HAS_EXPIRED) or "not yet valid" in message or "expired" in message:
        target = leaf
        for cert in chain:  # the certificate whose dates are off (usually the leaf)
            if cert.not_valid_before_utc > local or cert.not_valid_after_utc < local:
                target = cert
                break
        before = target.not_valid_before_utc if target else None
        after = target.not_valid_after_utc if target else None
        if code == _CERT_NOT_YET_VALID or "not yet valid" in message or (before is not None and before > local):
            return ServerCertificateNotYetValidError(
                host=host, not_before=before, not_after=after, local_time=local, url=url
            )
        return ServerCertificateExpiredError(host=host, not_before=before, not_after=after, local_time=local, url=url)
    if (
        code
        in (
            _UNABLE_TO_GET_ISSUER_CERT,
            _UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
            _UNABLE_TO_VERIFY_LEAF_SIGNATURE,
            _SELF_SIGNED_CERT_IN_CHAIN,
            _CERT_UNTRUSTED,
        )
        or "issuer" in message
    ):
        issuer, subject = _missing_issuer(chain, _trusted_subjects(context))
        return UntrustedServerChainError(
            host=host, missing_issuer=issuer, subject=subject, url=url, detail=failure.detail
        )
    return TlsError(
        f"TLS handshake with {host} failed: {failure.detail}. Fix: check the IIS certificate binding and that the "
        f"client trusts its issuer (ca_file=/--ca-file)",
        host=host,
        url=url,
    )


def connection_error(
    failure: ConnectFailure, *, host: str, port: int, url: str, chain: list[x509.Certificate] | None = None,
    context: ssl.SSLContext | None = None,
) -> CertsrvConnectionError:  # fmt: skip
    """The typed error for any connection failure (DNS, TCP, TLS)."""
    if failure.kind == "dns":
        return NameResolutionError(host, url=url, detail=failure.detail)
    if failure.kind == "tls-verify":
        return tls_error(failure, host=host, url=url, chain=chain or [], context=context)
    if failure.kind == "tls":
        return TlsError(
            f"TLS handshake with {host}:{port} failed: {failure.detail}. Fix: check that the port serves HTTPS "
            f"and that client and server share a TLS version and cipher",
            host=host,
            url=url,
        )
    if failure.kind == "tcp":
        return ServerUnreachableError(
            f"could not connect to {host}:{port}: {failure.detail}. Fix: check the port, that IIS runs, and any "
            f"firewall between this machine and the CA",
            url=url,
        )
    if failure.kind == "reset":
        return ServerUnreachableError(
            f"{host}:{port} closed or reset the connection without answering ({failure.detail}). Fix: check the "
            f"IIS and CA event logs, and any load balancer or proxy between this machine and the CA",
            url=url,
        )
    return CertsrvConnectionError(
        f"connection to {host}:{port} failed: {failure.detail}. Fix: check the URL and the network path to the CA",
        url=url,
    )


def needs_chain(failure: ConnectFailure) -> bool:
    """Whether explaining ``failure`` needs the server's presented certificates."""
    return failure.kind == "tls-verify"
