"""The exceptions of estclient.

Every exception the library raises on purpose derives from :class:`EstError`. Each one carries the cause
(its message), the fix (:attr:`EstError.hint`) and, where libest has an equivalent, libest's error name and
number (:attr:`EstError.libest_error`, :attr:`EstError.libest_code`; libest 3.2 numbering, the same as 2.0's
for 1 to 69) so a failure can be matched with a CAPF or libest log line::

    EstError
    ├── EstConnectionError                 transport: the server could not be reached or talked to
    │   ├── NameResolutionError            DNS lookup of the host failed            (EST_ERR_IP_GETADDR 42)
    │   ├── EstTimeoutError                connect/read/write/pool limit exceeded   (EST_ERR_SSL_READ 35 for read)
    │   └── ServerTrustError               the server's TLS certificate was refused (EST_ERR_SSL_CONNECT 38)
    │       ├── UntrustedServerError       chain does not lead to a trust anchor; names the missing issuer
    │       ├── SelfSignedServerError      the server presents a self-signed certificate
    │       ├── HostnameMismatchError      names on the certificate vs host used    (EST_ERR_FQDN_MISMATCH 53)
    │       ├── CertificateValidityError   not yet valid / expired, with the local clock
    │       └── RaAuthorizationError       RFC 7030 §3.6.1: no host match and no id-kp-cmcRA
    ├── ProtocolVersionError               TLS 1.3 negotiated/forced but PoP linking needs tls-unique
    ├── EstHttpError                       the server answered with an HTTP error status
    │   ├── AuthenticationError            401/403                                  (EST_ERR_AUTH_FAIL 22)
    │   ├── BadRequestError                400                                      (EST_ERR_HTTP_BAD_REQ 13)
    │   ├── NotSupportedError              404/501: operation or CA label not offered (EST_ERR_HTTP_NOT_FOUND 14)
    │   ├── ResourceLockedError            423                                      (EST_ERR_HTTP_LOCKED 16)
    │   └── ServerError                    5xx                                      (EST_ERR_UNKNOWN 94)
    ├── PopLinkingError                    proof-of-possession linking (tls-unique) failed (EST_ERR_AUTH_FAIL_TLSUID 23)
    ├── MalformedMessageError              bytes that do not parse (never includes secrets)
    │   ├── MalformedResponseError         ... received from the server
    │   │   ├── CsrAttrsError              /csrattrs body is not a CsrAttrs          (EST_ERR_BAD_ASN1_HEX 65)
    │   │   └── ServerKeyGenError          /serverkeygen key cannot be parsed/decrypted (EST_ERR_ENC_PRIV_KEY_CMS 87)
    │   └── MalformedRequestError          ... received from a client (server side)
    ├── CmcFailError                       CMC status "failed" with its CMCFailInfo  (EST_ERR_CA_ENROLL_FAIL 25)
    ├── BootstrapError                     /cacerts fingerprint mismatch or refused (EST_ERR_CACERT_VERIFICATION 60)
    ├── InvalidLabelError                  CA label unusable as path segment (EST_ERR_HTTP_INVALID_PATH_SEGMENT 17)
    └── CsrBuildError                      a CSR cannot be built as asked (bad subject, unmet requirement)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import ClassVar, Literal

from estclient._libest_codes import libest_code_for

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "BootstrapError",
    "CertificateValidityError",
    "CmcFailError",
    "CsrAttrsError",
    "CsrBuildError",
    "EstConnectionError",
    "EstError",
    "EstHttpError",
    "EstTimeoutError",
    "HostnameMismatchError",
    "InvalidLabelError",
    "MalformedMessageError",
    "MalformedRequestError",
    "MalformedResponseError",
    "NameResolutionError",
    "NotSupportedError",
    "PopLinkingError",
    "ProtocolVersionError",
    "RaAuthorizationError",
    "ResourceLockedError",
    "SelfSignedServerError",
    "ServerError",
    "ServerKeyGenError",
    "ServerTrustError",
    "UntrustedServerError",
    "http_error",
]

TimeoutPhase = Literal["connect", "read", "write", "pool"]

_MAX_SERVER_TEXT = 2000


class EstError(Exception):
    """Root of every error estclient raises.

    Args:
        message: What went wrong (the cause).
        hint: How to fix it; defaults to the class's general advice.
        libest_error: libest's name for the same failure, e.g. ``"EST_ERR_AUTH_FAIL"``; defaults to the class's.
        libest_code: libest's number (3.2 numbering; 1 to 69 are the same since 2.0); derived from
            ``libest_error`` when not given.

    Attributes:
        message: The cause.
        hint: The fix.
        libest_error: libest's ``EST_ERR_*`` name for this failure, or None.
        libest_code: libest's number for it (``22`` for ``EST_ERR_AUTH_FAIL``), or None.
    """

    default_hint: ClassVar[str] = "See the estclient error reference for this error."
    default_libest_error: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        libest_error: str | None = None,
        libest_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint
        # An explicit "" means "libest has no equivalent" (overrides the class default).
        self.libest_error = (libest_error or None) if libest_error is not None else self.default_libest_error
        self.libest_code = libest_code if libest_code is not None else libest_code_for(self.libest_error)

    def __str__(self) -> str:
        """Cause, fix and (when known) the libest equivalent, in one readable line."""
        text = self.message
        if self.hint:
            text = f"{text} Fix: {self.hint}"
        if self.libest_error:
            code = f" ({self.libest_code})" if self.libest_code is not None else ""
            text = f"{text} [libest: {self.libest_error}{code}]"
        return text


# --- transport ------------------------------------------------------------------------------------------------


class EstConnectionError(EstError):
    """The EST server could not be reached, or the connection failed (base of the transport family)."""

    default_hint = "Check the server URL, that the server is running, and any firewall or proxy in between."
    default_libest_error = "EST_ERR_IP_CONNECT"


class NameResolutionError(EstConnectionError):
    """The server's host name could not be resolved (DNS).

    Args:
        host: The host name that did not resolve.
        detail: The resolver's own message, if any.

    Attributes:
        host: The host name that did not resolve.
    """

    default_hint = (
        "Check the spelling of the host in the URL and the DNS servers this machine uses (try `nslookup HOST`); "
        "use an IP address or an /etc/hosts entry if the name is not in DNS."
    )
    default_libest_error = "EST_ERR_IP_GETADDR"

    def __init__(self, host: str, detail: str | None = None, *, hint: str | None = None) -> None:
        self.host = host
        message = f"Name resolution failed for {host!r}" + (f": {detail}." if detail else ".")
        super().__init__(message, hint=hint)


class EstTimeoutError(EstConnectionError):
    """A time limit was exceeded.

    Args:
        phase: ``"connect"``, ``"read"``, ``"write"`` or ``"pool"``.
        limit: The limit in seconds that was exceeded (None when unknown).
        operation: What was being done, e.g. ``"simpleenroll"`` or ``"authentication"``.

    Attributes:
        phase: The phase that timed out.
        limit: The limit in seconds.
        operation: What was being done.
    """

    def __init__(
        self,
        phase: TimeoutPhase,
        limit: float | None,
        *,
        operation: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.phase: TimeoutPhase = phase
        self.limit = limit
        self.operation = operation
        during = f" during {operation}" if operation else ""
        limit_text = f" after {limit:g} s" if limit is not None else ""
        message = f"Timed out in the {phase} phase{during}{limit_text}."
        if hint is None:
            hint = {
                "connect": "Check that the server is reachable on this port; raise the connect timeout if the "
                "network is slow.",
                "read": "The server (or the CA behind it) is slow to answer: raise the read timeout, or check "
                "the server's connection to its CA.",
                "write": "The request could not be sent in time: check the network path and raise the write timeout.",
                "pool": "All connections of the client are busy: lower the concurrency or raise the pool "
                "limits/timeout.",
            }[phase]
        libest = {"connect": "EST_ERR_IP_CONNECT", "read": "EST_ERR_SSL_READ", "write": "EST_ERR_SSL_WRITE"}
        super().__init__(message, hint=hint, libest_error=libest.get(phase, ""))


class ServerTrustError(EstConnectionError):
    """The server's TLS certificate was not accepted."""

    default_hint = "Give the client the CA certificate that issued the server's certificate (ca_file / trust)."
    default_libest_error = "EST_ERR_SSL_CONNECT"


class UntrustedServerError(ServerTrustError):
    """The server's certificate chain does not lead to a trusted anchor.

    Args:
        message: The cause; build it naming the certificate that could not be verified.
        missing_issuer: The issuer name (RFC 4514 string) no trusted or presented certificate matches.

    Attributes:
        missing_issuer: The issuer whose certificate is missing, or None if unknown.
    """

    def __init__(self, message: str, *, missing_issuer: str | None = None, hint: str | None = None) -> None:
        self.missing_issuer = missing_issuer
        if hint is None and missing_issuer:
            hint = (
                f"Add the certificate of {missing_issuer!r} to the trust store (ca_file), or configure the server "
                "to send its full chain (the intermediate CA certificate with its own)."
            )
        super().__init__(message, hint=hint)


class SelfSignedServerError(ServerTrustError):
    """The server presents a self-signed certificate.

    Attributes:
        subject: The subject of the self-signed certificate, if known.
    """

    default_hint = (
        "A self-signed server certificate is not supported: issue the server a certificate from your CA and "
        "trust that CA, or (only for a test) pin this certificate as the trust anchor."
    )

    def __init__(self, message: str, *, subject: str | None = None, hint: str | None = None) -> None:
        self.subject = subject
        super().__init__(message, hint=hint)


class HostnameMismatchError(ServerTrustError):
    """The host in the URL is not a name on the server's certificate.

    Args:
        host: The host the client connected to.
        names: The DNS names / IP addresses on the certificate.

    Attributes:
        host: The host used.
        names: The names the certificate carries.
    """

    default_libest_error = "EST_ERR_FQDN_MISMATCH"

    def __init__(self, host: str, names: Sequence[str], *, hint: str | None = None) -> None:
        self.host = host
        self.names = tuple(names)
        shown = ", ".join(self.names) if self.names else "(none)"
        message = f"Host name mismatch: connected to {host!r}, but the certificate is for {shown}."
        if hint is None:
            hint = (
                "Use a URL whose host is one of the certificate's names, or reissue the server certificate with "
                f"{host!r} in its subjectAltName."
            )
        super().__init__(message, hint=hint)


class CertificateValidityError(ServerTrustError):
    """A certificate is outside its validity period (often a wrong clock / NTP problem).

    Args:
        subject: The certificate's subject.
        not_before: Start of validity.
        not_after: End of validity.
        now: The local clock when checked.

    Attributes:
        subject: The certificate's subject.
        not_before: Start of validity.
        not_after: End of validity.
        now: The local clock used.
        state: ``"not_yet_valid"`` or ``"expired"``.
    """

    def __init__(
        self,
        subject: str,
        not_before: dt.datetime,
        not_after: dt.datetime,
        now: dt.datetime,
        *,
        hint: str | None = None,
    ) -> None:
        self.subject = subject
        self.not_before = not_before
        self.not_after = not_after
        self.now = now
        self.state: Literal["not_yet_valid", "expired"] = "not_yet_valid" if now < not_before else "expired"
        words = "is not yet valid" if self.state == "not_yet_valid" else "has expired"
        message = (
            f"The certificate {subject!r} {words}: valid from {not_before.isoformat()} to {not_after.isoformat()}, "
            f"local clock {now.isoformat()}."
        )
        if hint is None:
            hint = (
                "Check the clocks (NTP) of this machine and of the server; if the clocks are right, renew the "
                "certificate."
            )
        super().__init__(message, hint=hint)


class RaAuthorizationError(ServerTrustError):
    """RFC 7030 §3.6.1: the server certificate neither matches the URI's host nor carries id-kp-cmcRA."""

    default_hint = (
        "Use a URL whose host matches the server certificate, or have the RA certificate issued with the "
        "id-kp-cmcRA extended key usage (1.3.6.1.5.5.7.3.28) by an explicitly trusted CA."
    )
    default_libest_error = "EST_ERR_FQDN_MISMATCH"


# --- protocol / TLS version --------------------------------------------------------------------------------------


class ProtocolVersionError(EstError):
    """The TLS version cannot carry proof-of-possession linking (tls-unique does not exist in TLS 1.3)."""

    default_hint = (
        "Allow TLS 1.2 for this connection (PoP linking needs tls-unique, RFC 7030 §3.5), or disable PoP "
        "linking if the server does not require it."
    )
    default_libest_error = "EST_ERR_AUTH_FAIL_TLSUID"


# --- HTTP status ----------------------------------------------------------------------------------------------


class EstHttpError(EstError):
    """The server answered with an HTTP error status.

    Args:
        status: The HTTP status code.
        server_text: The server's own words (response body as text, trimmed), if any.
        operation: The EST operation, e.g. ``"simpleenroll"``.
        url: The URL requested.

    Attributes:
        status: The HTTP status code.
        server_text: The server's error text ("" when it sent none).
        operation: The EST operation, if known.
        url: The URL, if known.
    """

    default_hint = "Read the server's message; check the server's log for the request."
    default_libest_error = "EST_ERR_HTTP_UNSUPPORTED"

    def __init__(
        self,
        status: int,
        server_text: str = "",
        *,
        operation: str | None = None,
        url: str | None = None,
        hint: str | None = None,
        message: str | None = None,
    ) -> None:
        self.status = status
        self.server_text = server_text.strip()[:_MAX_SERVER_TEXT]
        self.operation = operation
        self.url = url
        if message is None:
            what = f"/{operation}" if operation else (url or "the request")
            message = f"The EST server answered {status} to {what}"
            message += f": {self.server_text!r}." if self.server_text else "."
        super().__init__(message, hint=hint)


class AuthenticationError(EstHttpError):
    """The server refused the client's credentials (401/403)."""

    default_hint = (
        "Check the user name and password or the client certificate and key; make sure the server's CA "
        "trusts the client certificate and the account may enroll."
    )
    default_libest_error = "EST_ERR_AUTH_FAIL"


class BadRequestError(EstHttpError):
    """The server rejected the request as malformed or not acceptable (400)."""

    default_hint = (
        "Check the CSR against the server's /csrattrs requirements (key type, subject, extensions, "
        "challengePassword / PoP linking) and the server's message."
    )
    default_libest_error = "EST_ERR_HTTP_BAD_REQ"


class NotSupportedError(EstHttpError):
    """The server does not offer this operation or CA label (404/501)."""

    default_hint = "Check the CA label and that the server implements this (optional) EST operation."
    default_libest_error = "EST_ERR_HTTP_NOT_FOUND"


class ResourceLockedError(EstHttpError):
    """The server answered 423 Locked."""

    default_hint = "The server refuses the request for now (locked); retry later or ask its operator."
    default_libest_error = "EST_ERR_HTTP_LOCKED"


class ServerError(EstHttpError):
    """The server failed (5xx), often because its CA back end failed or timed out."""

    default_hint = "Retry later; if it persists, check the EST server's log and its connection to the CA."
    default_libest_error = "EST_ERR_UNKNOWN"


def http_error(
    status: int,
    server_text: str = "",
    *,
    operation: str | None = None,
    url: str | None = None,
) -> EstHttpError:
    """Make the typed error for an HTTP error status (400 -> BadRequestError, 401/403 -> AuthenticationError...).

    Args:
        status: The HTTP status code (4xx/5xx).
        server_text: The server's own error text.
        operation: The EST operation.
        url: The URL requested.

    Returns:
        The matching :class:`EstHttpError` subclass instance (not raised).
    """
    cls: type[EstHttpError]
    if status in (401, 403):
        cls = AuthenticationError
    elif status == 400:
        cls = BadRequestError
    elif status in (404, 405, 501):
        cls = NotSupportedError
    elif status == 423:
        cls = ResourceLockedError
    elif 500 <= status <= 599:
        cls = ServerError
    else:
        cls = EstHttpError
    return cls(status, server_text, operation=operation, url=url)


# --- PoP ------------------------------------------------------------------------------------------------------


class PopLinkingError(EstError):
    """Proof-of-possession linking (RFC 7030 §3.5) failed: tls-unique missing, wrong or not obtainable."""

    default_hint = (
        "Build and sign the CSR after the TLS handshake of the connection that sends it (the challengePassword "
        "must be base64(tls-unique) of that connection), over TLS 1.2."
    )
    default_libest_error = "EST_ERR_AUTH_FAIL_TLSUID"


# --- bytes that do not parse ----------------------------------------------------------------------------------


class MalformedMessageError(EstError):
    """Bytes that do not parse as the expected EST message. The message never includes secrets."""

    default_hint = "The peer sent data that is not a valid EST message; check its software and configuration."
    default_libest_error = "EST_ERR_HTTP_UNSUPPORTED"


class MalformedResponseError(MalformedMessageError):
    """The server's response does not parse (bad base64, DER, PKCS#7, multipart...)."""

    default_hint = (
        "The EST server sent a response that is not valid for this operation; check the server's software "
        "and that the URL points at an EST server (/.well-known/est/)."
    )


class MalformedRequestError(MalformedMessageError):
    """A request received by the EST server does not parse (server side)."""

    default_hint = "Send a DER message, base64 encoded, with the content type the EST operation requires."
    default_libest_error = "EST_ERR_BAD_PKCS10"


class CsrAttrsError(MalformedResponseError):
    """A /csrattrs body is not a valid CsrAttrs structure (RFC 7030 §4.5.2 / RFC 8951 §4)."""

    default_hint = (
        "The server's CSR attributes are not valid DER CsrAttrs; report it to the server operator, or "
        "enroll without /csrattrs."
    )
    default_libest_error = "EST_ERR_BAD_ASN1_HEX"


class ServerKeyGenError(MalformedResponseError):
    """The server-generated private key cannot be parsed or decrypted (/serverkeygen)."""

    default_hint = (
        "Check that the decryption key given matches the key the server encrypted to (the DecryptKeyIdentifier "
        "/ AsymmetricDecryptKeyIdentifier sent), or request the key without extra encryption."
    )
    default_libest_error = "EST_ERR_ENC_PRIV_KEY_CMS"


# --- CMC ------------------------------------------------------------------------------------------------------


class CmcFailError(EstError):
    """A CMC response reports failure (RFC 5272 §6.1.4).

    Args:
        fail_info: The CMCFailInfo code, or None if the response gave none.
        status_string: The server's statusString, if any.
        http_status: The HTTP status that carried the response, if known.
        status: The CMCStatus name (``"failed"``, ``"noSupport"``...).

    Attributes:
        fail_info: The CMCFailInfo code (e.g. 2 for badRequest).
        fail_info_name: Its name (``"badRequest"``), or None.
        status_string: The server's own words.
        http_status: The HTTP status, if known.
        status: The CMCStatus name.
    """

    default_libest_error = "EST_ERR_CA_ENROLL_FAIL"

    #: CMCFailInfo (RFC 5272 §6.1.4).
    FAIL_INFO_NAMES: ClassVar[dict[int, str]] = {
        0: "badAlg",
        1: "badMessageCheck",
        2: "badRequest",
        3: "badTime",
        4: "badCertId",
        5: "unsupportedExt",
        6: "mustArchiveKeys",
        7: "badIdentity",
        8: "popRequired",
        9: "popFailed",
        10: "noKeyReuse",
        11: "internalCAError",
        12: "tryLater",
        13: "authDataFail",
    }

    _FAIL_INFO_HINTS: ClassVar[dict[int, str]] = {
        0: "Use a signature/hash algorithm the CA accepts.",
        1: "The CMC message's integrity check failed; rebuild and resend it.",
        2: "The CA refused the request as not permitted or badly formed; check the CSR.",
        3: "Check the clocks (NTP) of this machine and the CA.",
        4: "The certificate referred to is unknown to the CA.",
        5: "Remove the extension(s) the CA does not support from the request.",
        6: "The CA requires key archival; send the private key for archival or use server key generation.",
        7: "The CA could not validate the requester's identity; check the credentials.",
        8: "The CA requires proof of possession; sign the request with the key.",
        9: "The proof of possession failed; sign the CSR with the private key matching its public key.",
        10: "The CA refuses to certify the same key again; generate a new key.",
        11: "The CA failed internally; retry later or ask its operator.",
        12: "The CA asks to retry later.",
        13: "Authentication data (shared secret/POP) did not verify.",
    }

    def __init__(
        self,
        fail_info: int | None,
        status_string: str | None = None,
        *,
        http_status: int | None = None,
        status: str = "failed",
        hint: str | None = None,
    ) -> None:
        self.fail_info = fail_info
        self.fail_info_name = self.FAIL_INFO_NAMES.get(fail_info) if fail_info is not None else None
        self.status_string = status_string
        self.http_status = http_status
        self.status = status
        code = ""
        if fail_info is not None:
            code = f" with failInfo {self.fail_info_name or 'unknown'} ({fail_info})"
        message = f"The CA answered CMC status {status!r}{code}"
        message += f": {status_string!r}." if status_string else "."
        if hint is None and fail_info is not None:
            hint = self._FAIL_INFO_HINTS.get(fail_info)
        if hint is None:
            hint = "Read the CA's status string and correct the request accordingly."
        super().__init__(message, hint=hint)


# --- bootstrap, labels, CSR -----------------------------------------------------------------------------------


class BootstrapError(EstError):
    """Bootstrap /cacerts was refused: no fingerprint matched, or the user declined (RFC 7030 §4.1.1)."""

    default_hint = (
        "Compare the SHA-256 fingerprints shown with the CA's published fingerprint (out of band); only confirm "
        "a matching one, or configure the CA certificate as an explicit trust anchor."
    )
    default_libest_error = "EST_ERR_CACERT_VERIFICATION"


class InvalidLabelError(EstError, ValueError):
    """A CA label cannot be used as the extra path segment of /.well-known/est/<label>/ (RFC 7030 §3.2.2)."""

    default_hint = (
        "Use a label of letters, digits and - . _ ~ ! $ & ' ( ) * + , ; : = only, that is not an EST operation name."
    )
    default_libest_error = "EST_ERR_HTTP_INVALID_PATH_SEGMENT"


class CsrBuildError(EstError, ValueError):
    """A certificate request cannot be built as asked (bad subject text, a requirement the key cannot meet)."""

    default_hint = "Correct the subject, key or options given to build_csr."
    default_libest_error = "EST_ERR_X509_ATTR"
