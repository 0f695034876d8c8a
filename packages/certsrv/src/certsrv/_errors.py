"""The exceptions of certsrv.

Every exception the library raises on purpose derives from :class:`CertsrvError`. Each message names the
cause and, where there is one, the fix. A *pending* request is not an error: :meth:`CertsrvClient.submit`
returns :class:`Pending` for it. The tree::

    CertsrvError
    ├── ConfigurationError                  bad argument (URL, auth kind, user name, CSR, template, attributes)
    ├── CertsrvConnectionError              the server could not be reached or spoken to
    │   ├── NameResolutionError             DNS: the host name does not resolve
    │   ├── ServerUnreachableError          TCP: refused, reset or unreachable
    │   ├── TlsError                        the TLS handshake failed
    │   │   ├── UntrustedServerChainError   the issuer chain ends at a CA the client does not trust
    │   │   ├── SelfSignedServerCertificateError
    │   │   ├── HostnameMismatchError       the URL's host is not among the certificate's names
    │   │   └── ServerCertificateValidityError
    │   │       ├── ServerCertificateNotYetValidError
    │   │       └── ServerCertificateExpiredError
    │   └── CertsrvTimeoutError             a phase took longer than its limit (``phase``, ``limit``)
    │       ├── ConnectTimeoutError
    │       ├── AuthenticationTimeoutError
    │       ├── EnrollmentTimeoutError
    │       └── RetrievalTimeoutError
    ├── AuthenticationError                 the CA did not accept the credentials (HTTP 401)
    │   ├── InsecureAuthenticationError     Basic over plain http:// is refused
    │   └── KerberosUnavailableError        python-gssapi / krb5 missing
    ├── UnexpectedResponseError             an HTTP status or page certsrv does not understand
    │   └── UnrecognizedPageError           a page parser found none of the markers it knows
    └── EnrollmentError                     the CA answered, and the answer is a failure (``hresult``)
        ├── RequestDeniedError              the CA or a certificate manager denied the request
        │   ├── TemplateNotFoundError       0x80094800 / 0x80094801: template unknown or not given
        │   └── TemplateAccessDeniedError   0x80094011 / 0x80094012: no enroll permission
        ├── RequestFailedError              the CA could not process the request (bad CSR, ...)
        ├── RequestPendingError             the certificate is not issued yet (only where a certificate is due)
        └── UnknownRequestError             the CA has no request with this id
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

__all__ = [
    "CertsrvError",
    "ConfigurationError",
    "CertsrvConnectionError",
    "NameResolutionError",
    "ServerUnreachableError",
    "TlsError",
    "UntrustedServerChainError",
    "SelfSignedServerCertificateError",
    "HostnameMismatchError",
    "ServerCertificateValidityError",
    "ServerCertificateNotYetValidError",
    "ServerCertificateExpiredError",
    "CertsrvTimeoutError",
    "ConnectTimeoutError",
    "AuthenticationTimeoutError",
    "EnrollmentTimeoutError",
    "RetrievalTimeoutError",
    "AuthenticationError",
    "InsecureAuthenticationError",
    "KerberosUnavailableError",
    "UnexpectedResponseError",
    "UnrecognizedPageError",
    "EnrollmentError",
    "RequestDeniedError",
    "TemplateNotFoundError",
    "TemplateAccessDeniedError",
    "RequestFailedError",
    "RequestPendingError",
    "UnknownRequestError",
]


def _hex(code: int | None) -> str:
    return "" if code is None else f"0x{code & 0xFFFFFFFF:08X}"


class CertsrvError(Exception):
    """Root of every error certsrv raises.

    Each subclass names the cause of the failure and, where one exists, the fix, in its message.
    """


class ConfigurationError(CertsrvError, ValueError):
    """An argument given to certsrv cannot work (URL, auth kind, user name, CSR, template or attribute)."""


# -- reaching the server -----------------------------------------------------------------------------------


class CertsrvConnectionError(CertsrvError):
    """The CA's web server could not be reached, or the connection to it failed.

    Attributes:
        url: The URL that was being requested.
    """

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class NameResolutionError(CertsrvConnectionError):
    """The CA's host name does not resolve (DNS).

    Attributes:
        host: The host name that did not resolve.
    """

    def __init__(self, host: str, *, url: str | None = None, detail: str = "") -> None:
        reason = f" ({detail})" if detail else ""
        super().__init__(
            f"name resolution failed for {host}{reason}. Fix: check the spelling of the host in the URL and that "
            f"this machine's DNS server knows it (try `getent hosts {host}`).",
            url=url,
        )
        self.host = host


class ServerUnreachableError(CertsrvConnectionError):
    """The TCP connection to the CA's web server failed (refused, reset or no route)."""


class TlsError(CertsrvConnectionError):
    """The TLS handshake with the CA's web server (IIS) failed.

    Attributes:
        host: The host name the client connected to.
    """

    def __init__(self, message: str, *, host: str = "", url: str | None = None) -> None:
        super().__init__(message, url=url)
        self.host = host


class UntrustedServerChainError(TlsError):
    """The server certificate's issuer chain ends at a CA the client does not trust.

    Attributes:
        missing_issuer: The distinguished name of the first issuer the client could not find (RFC 4514), or
            ``None`` when it could not be determined.
        subject: The server certificate's subject, when known.
    """

    def __init__(
        self,
        *,
        host: str,
        missing_issuer: str | None,
        subject: str | None = None,
        url: str | None = None,
        detail: str = "",
    ) -> None:
        issuer = f"'{missing_issuer}'" if missing_issuer else "an issuer"
        who = f" of '{subject}'" if subject else ""
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"untrusted server certificate chain at {host}: the issuer chain{who} needs {issuer}, which is not in "
            f"the client's trust store and was not sent by the server{extra}. Fix: add the CA certificate {issuer} "
            f"(and any intermediate above it) to the CA file given with ca_file=/--ca-file, or configure IIS to "
            f"send the full chain.",
            host=host,
            url=url,
        )
        self.missing_issuer = missing_issuer
        self.subject = subject


class SelfSignedServerCertificateError(TlsError):
    """IIS presents a self-signed certificate, which is not supported.

    Attributes:
        subject: The self-signed certificate's subject, when known.
    """

    def __init__(self, *, host: str, subject: str | None = None, url: str | None = None) -> None:
        who = f" ('{subject}')" if subject else ""
        super().__init__(
            f"self-signed server certificate at {host}{who}: a self-signed IIS certificate is not supported, even "
            f"when it is trusted elsewhere. Fix: issue the IIS (web enrollment) certificate from the CA and bind it "
            f"to the site's HTTPS binding.",
            host=host,
            url=url,
        )
        self.subject = subject


class HostnameMismatchError(TlsError):
    """The host in the URL is not among the names of the server's certificate.

    Attributes:
        names: The DNS names and IP addresses on the certificate (subject alternative names, else the CN).
    """

    def __init__(self, *, host: str, names: Sequence[str], url: str | None = None) -> None:
        shown = ", ".join(names) if names else "(none found)"
        super().__init__(
            f"host name mismatch: the URL uses '{host}' but the server certificate is for {shown}. Fix: use one of "
            f"the certificate's names in the URL, or issue IIS a certificate whose subject alternative names "
            f"include '{host}'.",
            host=host,
            url=url,
        )
        self.names = tuple(names)


class ServerCertificateValidityError(TlsError):
    """The server certificate is outside its validity period as seen by the local clock.

    Attributes:
        not_before: The certificate's notBefore (UTC), when known.
        not_after: The certificate's notAfter (UTC), when known.
        local_time: The local clock (UTC) when the check failed.
    """

    def __init__(
        self,
        message: str,
        *,
        host: str,
        not_before: dt.datetime | None,
        not_after: dt.datetime | None,
        local_time: dt.datetime,
        url: str | None = None,
    ) -> None:
        super().__init__(message, host=host, url=url)
        self.not_before = not_before
        self.not_after = not_after
        self.local_time = local_time


def _ts(value: dt.datetime | None) -> str:
    return "unknown" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


class ServerCertificateNotYetValidError(ServerCertificateValidityError):
    """The server certificate's notBefore lies in the future of the local clock (often a clock/NTP problem)."""

    def __init__(
        self,
        *,
        host: str,
        not_before: dt.datetime | None,
        not_after: dt.datetime | None,
        local_time: dt.datetime,
        url: str | None = None,
    ) -> None:
        super().__init__(
            f"server certificate of {host} is not yet valid: valid from {_ts(not_before)} to {_ts(not_after)}, but "
            f"the local clock says {_ts(local_time)}. Fix: check NTP on this machine and on the CA (clock skew), or "
            f"wait until the certificate becomes valid.",
            host=host,
            not_before=not_before,
            not_after=not_after,
            local_time=local_time,
            url=url,
        )


class ServerCertificateExpiredError(ServerCertificateValidityError):
    """The server certificate's notAfter lies in the past of the local clock."""

    def __init__(
        self,
        *,
        host: str,
        not_before: dt.datetime | None,
        not_after: dt.datetime | None,
        local_time: dt.datetime,
        url: str | None = None,
    ) -> None:
        super().__init__(
            f"server certificate of {host} has expired: valid from {_ts(not_before)} to {_ts(not_after)}, and the "
            f"local clock says {_ts(local_time)}. Fix: renew the IIS certificate, or correct this machine's clock "
            f"if it is wrong (NTP).",
            host=host,
            not_before=not_before,
            not_after=not_after,
            local_time=local_time,
            url=url,
        )


class CertsrvTimeoutError(CertsrvConnectionError):
    """A phase of the exchange with the CA took longer than its configured limit.

    Attributes:
        phase: ``"connect"``, ``"authentication"``, ``"enrollment"`` or ``"retrieval"``.
        limit: The limit in seconds that was exceeded (``None`` when unlimited).
    """

    def __init__(self, *, phase: str, limit: float | None, url: str | None = None) -> None:
        where = f" ({url})" if url else ""
        shown = "no limit" if limit is None else f"{limit:g} s"
        super().__init__(
            f"timeout during {phase}{where}: the CA did not answer within {shown}. Fix: check that the CA and IIS "
            f"are responsive, or raise the limit: in Python Timeouts({phase}=SECONDS), with the certsrv command "
            f"--timeout-{phase} SECONDS.",
            url=url,
        )
        self.phase = phase
        self.limit = limit


class ConnectTimeoutError(CertsrvTimeoutError):
    """The TCP connection or TLS handshake with IIS did not complete in time."""

    def __init__(self, *, limit: float | None, url: str | None = None) -> None:
        super().__init__(phase="connect", limit=limit, url=url)


class AuthenticationTimeoutError(CertsrvTimeoutError):
    """Authentication with IIS (NTLM, Kerberos, Negotiate, Basic) did not complete in time."""

    def __init__(self, *, limit: float | None, url: str | None = None) -> None:
        super().__init__(phase="authentication", limit=limit, url=url)


class EnrollmentTimeoutError(CertsrvTimeoutError):
    """The CA did not answer a submitted request (certfnsh.asp) in time."""

    def __init__(self, *, limit: float | None, url: str | None = None) -> None:
        super().__init__(phase="enrollment", limit=limit, url=url)


class RetrievalTimeoutError(CertsrvTimeoutError):
    """The CA did not deliver a certificate, chain, CRL or page in time."""

    def __init__(self, *, limit: float | None, url: str | None = None) -> None:
        super().__init__(phase="retrieval", limit=limit, url=url)


# -- authentication ----------------------------------------------------------------------------------------


class AuthenticationError(CertsrvError):
    """The CA's web server did not accept the credentials, or authentication could not be attempted.

    Attributes:
        hint: How to fix it.
        scheme: The HTTP authentication scheme involved (``NTLM``, ``Negotiate``, ``Basic``), when known.
        status_code: The HTTP status that ended the attempt (401), when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        scheme: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(f"{message}. Fix: {hint}" if hint else message)
        self.hint = hint
        self.scheme = scheme
        self.status_code = status_code


class InsecureAuthenticationError(AuthenticationError):
    """The chosen authentication would expose the password (Basic over plain ``http://``)."""


class KerberosUnavailableError(AuthenticationError):
    """Kerberos was asked for, but python-gssapi and krb5 (the ``kerberos`` extra) are not installed."""


# -- responses ---------------------------------------------------------------------------------------------


class UnexpectedResponseError(CertsrvError):
    """The server answered with an HTTP status or a page certsrv does not understand.

    Attributes:
        status: The HTTP status code, when there was a response.
        url: The URL requested.
        body: The response body (the raw page, for diagnosis).
    """

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None, body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.body = body


class UnrecognizedPageError(UnexpectedResponseError):
    """A page parser found none of the markers it relies on (URLs, script variables, element ids, HRESULTs)."""

    def __init__(self, page: str, reason: str, *, body: bytes = b"", url: str | None = None) -> None:
        super().__init__(
            f"unrecognized {page} page: {reason}. Fix: check that the URL points at the AD CS web enrollment "
            f"site (https://HOST/certsrv) and not at a proxy or login page.",
            url=url,
            body=body,
        )
        self.page = page


# -- the CA's verdict --------------------------------------------------------------------------------------


class EnrollmentError(CertsrvError):
    """The CA processed the request and answered with a failure.

    Attributes:
        hresult: The AD CS status code (HRESULT, as an unsigned 32-bit int), when the page carries one.
        disposition_message: The CA's own (possibly localized) message.
        request_id: The CA's request id, when the page carries one.
        body: The raw page, for diagnosis.
    """

    def __init__(
        self,
        message: str,
        *,
        hresult: int | None = None,
        disposition_message: str = "",
        request_id: int | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(message)
        self.hresult = hresult
        self.disposition_message = disposition_message
        self.request_id = request_id
        self.body = body

    @property
    def hresult_hex(self) -> str:
        """The HRESULT as ``0x8009xxxx`` (empty when there is none)."""
        return _hex(self.hresult)


class RequestDeniedError(EnrollmentError):
    """The CA's policy module or a certificate manager denied the request."""


class TemplateNotFoundError(RequestDeniedError):
    """The certificate template is unknown to the CA, not published on it, or missing from the request.

    Attributes:
        template: The template name that was requested.
        offered: The templates the CA offers this user (from certrqxt.asp), or ``None`` when they could not be
            fetched.
    """

    def __init__(
        self,
        *,
        template: str,
        offered: Sequence[str] | None,
        hresult: int | None,
        disposition_message: str = "",
        request_id: int | None = None,
        body: bytes = b"",
    ) -> None:
        if offered is None:
            listing = "the templates offered could not be read from certrqxt.asp"
        elif offered:
            listing = "the CA offers: " + ", ".join(offered)
        else:
            listing = "the CA offers no template to this user"
        code = f" ({_hex(hresult)})" if hresult is not None else ""
        super().__init__(
            f"template not found: the CA does not issue from template '{template}'{code}; {listing}. Fix: use the "
            f"template's name (cn, usually the display name without spaces) and publish the template on the CA "
            f"(certtmpl.msc, then Certificate Templates > New > Certificate Template to Issue).",
            hresult=hresult,
            disposition_message=disposition_message,
            request_id=request_id,
            body=body,
        )
        self.template = template
        self.offered = None if offered is None else tuple(offered)


class TemplateAccessDeniedError(RequestDeniedError):
    """The requesting account lacks the Enroll permission on the template or the CA."""


class RequestFailedError(EnrollmentError):
    """The CA could not process the request (for example a malformed CSR); no certificate was issued."""


class RequestPendingError(EnrollmentError):
    """A certificate was asked for, but the request still waits for a certificate manager's approval.

    :meth:`CertsrvClient.submit` and :meth:`CertsrvClient.retrieve` return :class:`Pending` instead; this error
    comes only from calls that must return a certificate, such as :meth:`CertsrvClient.get_certificate`.
    """


class UnknownRequestError(EnrollmentError):
    """The CA has no request with this id (or none this account may read)."""
