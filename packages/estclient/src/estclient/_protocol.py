"""The EST operations without I/O: request builders and response readers that both clients share.

Each operation has a builder that returns an :class:`EstRequest` (method, path, headers, body) and a reader
that turns an :class:`EstResponse` (status, headers, body) into a result or raises a typed error. The sync and
async clients only move these over httpx.

Requests follow RFC 7030 §4 with RFC 8951's clarifications: DER bodies as RFC 2045 base64 (76-column lines),
``Content-Transfer-Encoding: base64`` sent for old servers, ignored on receipt. Responses are read leniently:
any line structure, whitespace, trailing NULs, a binary DER body, content-type parameters ignored.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from estclient._b64 import decode_body, encode_body
from estclient._csrattrs import CsrAttrs, parse_csrattrs
from estclient._errors import (
    CsrAttrsError,
    EstHttpError,
    InvalidLabelError,
    MalformedResponseError,
    http_error,
)
from estclient._pkcs7 import CertsOnly, order_chain, parse_certs_only
from estclient._results import EnrollResult, Pending

if TYPE_CHECKING:
    from estclient._serverkeygen import DecryptKey, ServerKeyGenResult

__all__ = [
    "OPERATIONS",
    "WELL_KNOWN",
    "EstRequest",
    "EstResponse",
    "cacerts_request",
    "csrattrs_request",
    "enroll_request",
    "est_path",
    "fullcmc_request",
    "parse_retry_after",
    "raise_for_error",
    "read_cacerts",
    "read_csrattrs",
    "read_enroll",
    "read_fullcmc",
    "read_serverkeygen",
    "serverkeygen_request",
    "validate_label",
]

Operation = Literal["cacerts", "simpleenroll", "simplereenroll", "fullcmc", "serverkeygen", "csrattrs"]

#: The EST operations (RFC 7030 §3.2.2).
OPERATIONS: Final[tuple[Operation, ...]] = (
    "cacerts",
    "simpleenroll",
    "simplereenroll",
    "fullcmc",
    "serverkeygen",
    "csrattrs",
)

#: Where EST lives on a server (RFC 7030 §3.2.2).
WELL_KNOWN: Final = "/.well-known/est"

# RFC 3986 segment characters without "/", "%", "@" and "?" (as Bouncy Castle accepts for labels).
_LABEL = re.compile(r"[0-9A-Za-z_\-.~!$&'()*+,;:=]+")
_MAX_LABEL = 255
_MAX_TEXT = 2000
_PKCS10 = "application/pkcs10"
_PKCS7 = "application/pkcs7-mime"


@dataclass(frozen=True)
class EstRequest:
    """One HTTP request of an EST operation.

    Attributes:
        operation: The EST operation.
        method: ``"GET"`` or ``"POST"``.
        path: The path below the server's origin, e.g. ``/.well-known/est/simpleenroll``.
        headers: Header name/value pairs.
        body: The body (base64 text for POSTs).
    """

    operation: Operation
    method: Literal["GET", "POST"]
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass(frozen=True)
class EstResponse:
    """The parts of an HTTP response the readers look at.

    Attributes:
        status: The HTTP status code.
        headers: Header names (lower-case) to values.
        body: The complete body.
        url: The URL that answered (for messages).
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str = ""

    @classmethod
    def from_parts(cls, status: int, headers: Mapping[str, str], body: bytes, url: str = "") -> EstResponse:
        """Build a response, lower-casing header names."""
        return cls(status, {k.lower(): v for k, v in headers.items()}, body, url)

    @property
    def media_type(self) -> str:
        """The Content-Type without parameters, lower-case ("" when absent)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    def parameter(self, name: str) -> str | None:
        """A Content-Type parameter (e.g. ``smime-type``), lower-case, or None."""
        for part in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = part.partition("=")
            if key.strip().lower() == name:
                return value.strip().strip('"').lower()
        return None


# --- paths ------------------------------------------------------------------------------------------------------


def validate_label(label: str) -> str:
    """Check a CA label (the extra path segment of ``/.well-known/est/<label>/``, RFC 7030 §3.2.2).

    Args:
        label: The label.

    Returns:
        The label, unchanged.

    Raises:
        InvalidLabelError: When it is empty, too long, has characters outside the RFC 3986 segment set (or a
            slash), is ``.``/``..``, or equals an operation name.
    """
    if not isinstance(label, str) or not label:
        raise InvalidLabelError("The CA label is empty.")
    if len(label) > _MAX_LABEL:
        raise InvalidLabelError(f"The CA label is {len(label)} characters long; at most {_MAX_LABEL} are allowed.")
    if not _LABEL.fullmatch(label):
        bad = next(ch for ch in label if not _LABEL.fullmatch(ch))
        raise InvalidLabelError(f"The CA label {label!r} contains {bad!r}, which cannot be part of a path segment.")
    if label in (".", ".."):
        raise InvalidLabelError(f"The CA label {label!r} is a relative path segment.")
    if label in OPERATIONS:
        raise InvalidLabelError(f"The CA label {label!r} is the name of an EST operation.")
    return label


def est_path(operation: Operation, *, label: str | None = None, root: str = WELL_KNOWN) -> str:
    """The path of an operation: ``<root>[/<label>]/<operation>``.

    Args:
        operation: The EST operation.
        label: The CA label, or None.
        root: The EST root path (``/.well-known/est`` unless the server uses another).

    Returns:
        The path.

    Raises:
        InvalidLabelError: For a bad label.
    """
    root = "/" + root.strip("/") if root.strip("/") else ""
    middle = f"/{validate_label(label)}" if label is not None else ""
    return f"{root}{middle}/{operation}"


# --- builders ---------------------------------------------------------------------------------------------------


def _post(operation: Operation, path: str, der: bytes, content_type: str) -> EstRequest:
    headers = (
        ("Content-Type", content_type),
        ("Content-Transfer-Encoding", "base64"),
        ("Accept", "*/*"),
    )
    return EstRequest(operation, "POST", path, headers, encode_body(der))


def cacerts_request(*, label: str | None = None, root: str = WELL_KNOWN) -> EstRequest:
    """``GET /cacerts`` (RFC 7030 §4.1.2)."""
    return EstRequest("cacerts", "GET", est_path("cacerts", label=label, root=root), (("Accept", "*/*"),))


def csrattrs_request(*, label: str | None = None, root: str = WELL_KNOWN) -> EstRequest:
    """``GET /csrattrs`` (RFC 7030 §4.5.1)."""
    return EstRequest("csrattrs", "GET", est_path("csrattrs", label=label, root=root), (("Accept", "*/*"),))


def enroll_request(
    csr: x509.CertificateSigningRequest,
    *,
    reenroll: bool = False,
    label: str | None = None,
    root: str = WELL_KNOWN,
) -> EstRequest:
    """``POST /simpleenroll`` or ``/simplereenroll`` with a PKCS#10 (RFC 7030 §4.2.1)."""
    operation: Operation = "simplereenroll" if reenroll else "simpleenroll"
    der = csr.public_bytes(serialization.Encoding.DER)
    return _post(operation, est_path(operation, label=label, root=root), der, _PKCS10)


def serverkeygen_request(
    csr: x509.CertificateSigningRequest, *, label: str | None = None, root: str = WELL_KNOWN
) -> EstRequest:
    """``POST /serverkeygen`` with a PKCS#10 (RFC 7030 §4.4.1; the server ignores its key)."""
    der = csr.public_bytes(serialization.Encoding.DER)
    return _post("serverkeygen", est_path("serverkeygen", label=label, root=root), der, _PKCS10)


def fullcmc_request(pki_data: bytes, *, label: str | None = None, root: str = WELL_KNOWN) -> EstRequest:
    """``POST /fullcmc`` with a CMC Full PKI Request (DER ContentInfo, RFC 7030 §4.3.1)."""
    return _post("fullcmc", est_path("fullcmc", label=label, root=root), pki_data, f"{_PKCS7}; smime-type=CMC-request")


# --- readers ----------------------------------------------------------------------------------------------------


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def parse_retry_after(value: str | None, now: dt.datetime) -> tuple[float, dt.datetime]:
    """Read a Retry-After header: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).

    Args:
        value: The header value.
        now: When the response arrived (UTC).

    Returns:
        ``(seconds to wait, the time to retry at)``; a date in the past gives 0 seconds.

    Raises:
        MalformedResponseError: When the header is missing or neither form.
    """
    now = _utc(now)
    if value is None or not value.strip():
        raise MalformedResponseError(
            "The server answered 202 (request pending) without a Retry-After header (RFC 7030 §4.2.3 requires it).",
            hint="Ask the server operator to fix the server; meanwhile resend the request later yourself.",
            libest_error="EST_ERR_INVALID_RETRY_VALUE",
        )
    text = value.strip()
    if text.isascii() and text.isdigit():  # delta-seconds is ASCII DIGITs; str.isdigit also takes "²"
        # Clamp absurd values (they would overflow datetime); callers cap the wait with max_retry_wait anyway.
        seconds = float(min(int(text), _MAX_RETRY_AFTER_SECONDS))
        return seconds, now + dt.timedelta(seconds=seconds)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        when = None
    if when is None:
        raise MalformedResponseError(
            f"The Retry-After value {text[:60]!r} is neither seconds nor an HTTP date.",
            hint="Ask the server operator to fix the server; meanwhile resend the request later yourself.",
            libest_error="EST_ERR_INVALID_RETRY_VALUE",
        )
    when = _utc(when)
    return max(0.0, (when - now).total_seconds()), max(when, now)


#: The longest Retry-After taken literally (one year); larger values are clamped to it.
_MAX_RETRY_AFTER_SECONDS = 365 * 24 * 3600


def _text(response: EstResponse) -> str:
    raw = response.body.rstrip(b"\x00")
    text = raw.decode("utf-8", "replace")
    if response.media_type in ("text/html", "application/xhtml+xml"):
        text = re.sub(r"(?is)<(script|style)[^>]*>.*?</\1>", " ", text)
        text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text[:_MAX_TEXT]


def _read_cmc_error(response: EstResponse, operation: Operation) -> None:
    """Raise the CmcFailError a CMC error response carries (no-op when it does not parse as one)."""
    from estclient._cmc import parse_pki_response

    try:
        der = _der_body(response, what=f"/{operation} error response")
        parse_pki_response(der, http_status=response.status)
    except MalformedResponseError:
        return


def raise_for_error(response: EstResponse, operation: Operation) -> None:
    """Raise the typed error for a 3xx/4xx/5xx response; return for 2xx.

    The server's own words are kept: a text/plain or HTML body (tags removed), or the status string and
    failure code of a CMC response (raised as :class:`~estclient.CmcFailError`).

    Args:
        response: The response.
        operation: The EST operation.

    Raises:
        CmcFailError: The body is a CMC response reporting failure.
        EstHttpError: A subclass by status (401/403 authentication, 400 bad request, 404/405/501 not
            supported, 423 locked, 5xx server error).
    """
    if 200 <= response.status < 300:
        return
    if 300 <= response.status < 400:
        location = response.headers.get("location", "")
        raise EstHttpError(
            response.status,
            _text(response),
            operation=operation,
            url=response.url or None,
            hint=(
                f"The server redirects to {location!r}; EST does not follow redirects of enrollment requests "
                "without the user's consent (RFC 7030 §3.2.1): configure that URL if you trust it."
                if location
                else "The server answered a redirect without a Location; configure the right EST URL."
            ),
        )
    if response.media_type == _PKCS7 and response.body.strip():
        _read_cmc_error(response, operation)
    raise http_error(response.status, _text(response), operation=operation, url=response.url or None)


def _der_body(
    response: EstResponse, *, what: str, error: type[MalformedResponseError] = MalformedResponseError
) -> bytes:
    """Decode a base64 body; accept a binary DER body as well (some servers send one)."""
    body = response.body
    try:
        return decode_body(body, what=what, error=error)
    except MalformedResponseError:
        # A binary DER body: a SEQUENCE whose length byte is not base64 text.
        if len(body) > 2 and body[0] == 0x30 and not (0x2B <= body[1] <= 0x7A):
            return body
        raise


def _expect_pkcs7(response: EstResponse, operation: Operation) -> None:
    media = response.media_type
    if media and media not in (_PKCS7, "application/x-pkcs7-mime", "application/pkcs7", "application/octet-stream"):
        raise MalformedResponseError(
            f"The /{operation} response has Content-Type {media!r}; expected {_PKCS7!r} "
            f"(is {response.url or 'the URL'} an EST server?).",
            libest_error="EST_ERR_BAD_CONTENT_TYPE",
        )


def _pending(response: EstResponse, operation: Operation, csr: x509.CertificateSigningRequest | None) -> Pending:
    now = dt.datetime.now(dt.UTC)
    seconds, when = parse_retry_after(response.headers.get("retry-after"), now)
    return Pending(seconds, when, now, operation, _text(response) if response.body.strip() else "", csr)


def read_cacerts(response: EstResponse) -> CertsOnly:
    """Read a ``/cacerts`` response: the certificates (and CRLs) of a certs-only PKCS#7.

    Args:
        response: The response.

    Returns:
        The certificates and CRLs.

    Raises:
        EstHttpError: For an error status.
        MalformedResponseError: When the body is not a certs-only PKCS#7 with at least one certificate.
    """
    raise_for_error(response, "cacerts")
    _expect_pkcs7(response, "cacerts")
    parsed = parse_certs_only(_der_body(response, what="/cacerts response"), what="/cacerts response")
    if not parsed.certificates:
        raise MalformedResponseError(
            "The /cacerts response holds no certificate.", libest_error="EST_ERR_NO_CERTS_FOUND"
        )
    return parsed


def read_csrattrs(response: EstResponse) -> CsrAttrs:
    """Read a ``/csrattrs`` response; 204 and 404 mean "no requirements" (RFC 7030 §4.5.2, RFC 8951 §4).

    Args:
        response: The response.

    Returns:
        The attributes (empty for 204, 404 or an empty body).

    Raises:
        EstHttpError: For other error statuses.
        CsrAttrsError: When the body is not DER CsrAttrs.
    """
    if response.status in (204, 404):
        return CsrAttrs()
    raise_for_error(response, "csrattrs")
    if not response.body.strip(b" \t\r\n\x00"):
        return CsrAttrs()
    return parse_csrattrs(_der_body(response, what="/csrattrs response", error=CsrAttrsError))


def _enroll_result(parsed: CertsOnly, operation: Operation, csr: x509.CertificateSigningRequest | None) -> EnrollResult:
    if not parsed.certificates:
        raise MalformedResponseError(
            f"The /{operation} response holds no certificate.", libest_error="EST_ERR_NO_CERTS_FOUND"
        )
    leaf = parsed.certificate_for_key(csr.public_key()) if csr is not None else None
    if leaf is None:
        leaf = order_chain(parsed.certificates)[0]
    ordered = _issuers_by_name(leaf, parsed.certificates)
    rest = [c for c in parsed.certificates if c is not leaf and c not in ordered]
    return EnrollResult(leaf, (*ordered, *rest), parsed.crls, csr)


def _issuers_by_name(leaf: x509.Certificate, certs: tuple[x509.Certificate, ...]) -> list[x509.Certificate]:
    """The issuers of ``leaf`` among ``certs``, bottom up, by name only (presentation order, not validation)."""
    chain: list[x509.Certificate] = []
    current = leaf
    while current.issuer != current.subject:
        issuer = next((c for c in certs if c.subject == current.issuer and c is not leaf and c not in chain), None)
        if issuer is None:
            break
        chain.append(issuer)
        current = issuer
    return chain


def read_enroll(
    response: EstResponse, *, operation: Operation = "simpleenroll", csr: x509.CertificateSigningRequest | None = None
) -> EnrollResult | Pending:
    """Read a ``/simpleenroll`` or ``/simplereenroll`` response (RFC 7030 §4.2.3).

    Args:
        response: The response.
        operation: Which of the two.
        csr: The request that was sent (picks the issued certificate among several, kept in the result).

    Returns:
        The issued certificate, or :class:`Pending` for 202.

    Raises:
        EstHttpError: For an error status.
        CmcFailError: When the error body is a CMC failure.
        MalformedResponseError: When a 200 body is not a certs-only PKCS#7, or a 202 lacks Retry-After.
    """
    if response.status == 202:
        return _pending(response, operation, csr)
    raise_for_error(response, operation)
    _expect_pkcs7(response, operation)
    parsed = parse_certs_only(_der_body(response, what=f"/{operation} response"), what=f"/{operation} response")
    return _enroll_result(parsed, operation, csr)


def read_fullcmc(response: EstResponse, *, csr: x509.CertificateSigningRequest | None = None) -> EnrollResult | Pending:
    """Read a ``/fullcmc`` response: a Simple or Full PKI Response (RFC 7030 §4.3.2).

    Args:
        response: The response.
        csr: The request inside the PKIData, if known (selects the issued certificate).

    Returns:
        The issued certificate, or :class:`Pending` for 202.

    Raises:
        CmcFailError: The CMC status is a failure (also for 4xx/5xx carrying a CMC response).
        EstHttpError: For an error status without a CMC body.
        MalformedResponseError: When the body does not parse.
    """
    from estclient._cmc import parse_pki_response

    if response.status == 202:
        return _pending(response, "fullcmc", csr)
    raise_for_error(response, "fullcmc")
    _expect_pkcs7(response, "fullcmc")
    parsed = parse_pki_response(_der_body(response, what="/fullcmc response"))
    return _enroll_result(parsed, "fullcmc", csr)


def read_serverkeygen(
    response: EstResponse,
    *,
    csr: x509.CertificateSigningRequest | None = None,
    decrypt_key: DecryptKey | None = None,
) -> ServerKeyGenResult | Pending:
    """Read a ``/serverkeygen`` response: multipart/mixed with the private key and the certificate (§4.4.2).

    Args:
        response: The response.
        csr: The request that was sent.
        decrypt_key: The key to decrypt a CMS-encrypted private key with, if one was requested.

    Returns:
        The key and certificate, or :class:`Pending` for 202.

    Raises:
        EstHttpError: For an error status.
        ServerKeyGenError: When the key part cannot be parsed or decrypted.
        MalformedResponseError: When the multipart body does not parse.
    """
    from estclient._serverkeygen import parse_serverkeygen_response

    if response.status == 202:
        return _pending(response, "serverkeygen", csr)
    raise_for_error(response, "serverkeygen")
    return parse_serverkeygen_response(response.headers.get("content-type", ""), response.body, decrypt_key=decrypt_key)
