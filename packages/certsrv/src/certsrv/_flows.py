"""What each client operation does, as generators over prepared requests and replies (shared by both clients).

A flow yields a :class:`~certsrv._requests.PreparedRequest`, receives the :class:`Reply` (or, thrown in, the
:class:`~certsrv.CertsrvError` its sending raised) and returns the operation's result. The sync and async
clients only drive flows; everything AD CS-specific is decided here and in the pure modules.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Literal, TypeVar

import httpx
from cryptography import x509

from certsrv._auth import BasicAuth, KerberosAuth, NegotiateAuth, NtlmAuth
from certsrv._errors import (
    AuthenticationError,
    CertsrvError,
    ConfigurationError,
    EnrollmentError,
    RequestDeniedError,
    RequestFailedError,
    RequestPendingError,
    TemplateAccessDeniedError,
    TemplateNotFoundError,
    UnexpectedResponseError,
    UnknownRequestError,
    UnrecognizedPageError,
)
from certsrv._hresults import describe_hresult, lookup_hresult
from certsrv._pages import (
    CaInfo,
    OfferedTemplate,
    RetrievalStatus,
    SubmitDenied,
    SubmitError,
    SubmitIssued,
    SubmitPending,
    parse_ca_info_page,
    parse_certificate_response,
    parse_crl_response,
    parse_iis_error_page,
    parse_pkcs7_response,
    parse_submit_page,
    parse_template_page,
)
from certsrv._requests import (
    Attributes,
    CsrInput,
    PreparedRequest,
    ca_certificate_request,
    ca_chain_request,
    ca_info_request,
    certificate_request,
    chain_request,
    crl_request,
    submit_request,
    template_page_request,
)
from certsrv._results import Issued, Pending, SubmitResult

__all__ = [
    "AuthKind",
    "Flow",
    "Reply",
    "build_auth",
    "build_ssl_context",
    "ca_certificate_flow",
    "ca_chain_flow",
    "ca_info_flow",
    "chain_flow",
    "check_reply",
    "crl_flow",
    "get_certificate_flow",
    "handshake_count",
    "needs_priming",
    "retrieve_flow",
    "submit_flow",
    "templates_flow",
]

T = TypeVar("T")

#: Authentication methods by name.
AuthKind = Literal["ntlm", "kerberos", "negotiate", "basic", "cert"]
_AUTH_KINDS = ("ntlm", "kerberos", "negotiate", "basic", "cert")

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Reply:
    """A 200 answer: what the flows look at.

    Attributes:
        status: The HTTP status (always 200 by the time a flow sees it).
        content_type: The ``Content-Type`` header, if any.
        body: The body.
        url: The URL requested.
    """

    status: int
    content_type: str | None
    body: bytes
    url: str


#: A client operation: yields requests, receives replies, returns ``T``.
Flow = Generator[PreparedRequest, Reply, T]


# -- configuration -------------------------------------------------------------------------------------------


def build_auth(
    auth: AuthKind | httpx.Auth | None,
    *,
    username: str | None,
    password: str | None,
    channel_binding: bool,
    has_client_cert: bool,
) -> httpx.Auth | None:
    """The ``httpx.Auth`` for ``auth``: a name, an instance (used as is) or ``None``.

    ``None`` means Negotiate when a user name is given, else no HTTP authentication (anonymous, or a TLS client
    certificate alone).

    Raises:
        ConfigurationError: an unknown name, or a method without what it needs.
        AuthenticationError: a malformed user name or a missing password (from the auth classes).
    """
    if isinstance(auth, httpx.Auth):
        return auth
    kind = auth if auth is not None else ("negotiate" if username is not None else None)
    if kind is None:
        return None
    if kind not in _AUTH_KINDS:
        raise ConfigurationError(f"unknown auth {kind!r}. Fix: use one of {', '.join(_AUTH_KINDS)} or an httpx.Auth")
    if kind == "cert":
        if not has_client_cert:
            raise ConfigurationError(
                "auth='cert' needs a TLS client certificate. Fix: pass client_cert=(CERT_PEM, KEY_PEM) or an "
                "ssl_context that carries one"
            )
        return None
    if kind in ("ntlm", "basic") and not username:
        raise ConfigurationError(f"auth={kind!r} needs a user name. Fix: username='DOMAIN\\user' or 'user@REALM'")
    if kind == "ntlm" and username:
        return NtlmAuth(username, password, channel_binding=channel_binding)
    if kind == "basic" and username:
        return BasicAuth(username, password)
    if kind == "kerberos":
        return KerberosAuth(username, password, channel_binding=channel_binding)
    return NegotiateAuth(username, password, channel_binding=channel_binding)


def needs_priming(auth: httpx.Auth | None) -> bool:
    """Whether a new client should authenticate its connection with ``GET /certsrv/`` before the first operation.

    Connection-based schemes (NTLM, Kerberos, Negotiate, and any custom auth) pay their handshake on that small
    request, under the authentication time limit, instead of replaying a CSR upload on every handshake leg.
    """
    return auth is not None and not isinstance(auth, BasicAuth)


def handshake_count(auth: httpx.Auth | None) -> int | None:
    """How many handshakes a connection-based auth has run (``None`` for auths that do not count them)."""
    count = getattr(auth, "handshakes", None)
    return count if isinstance(count, int) else None


def build_ssl_context(
    *,
    ca_file: PathLike | None,
    ssl_context: ssl.SSLContext | None,
    client_cert: PathLike | tuple[PathLike, PathLike] | None,
) -> ssl.SSLContext:
    """The TLS context: ``ssl_context`` as given, else the system trust store or ``ca_file``, plus a client cert.

    Raises:
        ConfigurationError: both ``ssl_context`` and ``ca_file``/``client_cert`` given, or a file cannot be read.
    """
    if ssl_context is not None:
        if ca_file is not None or client_cert is not None:
            raise ConfigurationError(
                "give either ssl_context or ca_file/client_cert. Fix: load the CA file and client certificate into "
                "your SSLContext"
            )
        return ssl_context
    try:
        context = ssl.create_default_context(cafile=None if ca_file is None else os.fspath(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"the CA file {os.fspath(ca_file) if ca_file else ''!r} cannot be loaded ({exc}). Fix: give a PEM file "
            f"with the CA certificates that issued the IIS certificate"
        ) from exc
    if client_cert is not None:
        cert, key = client_cert if isinstance(client_cert, tuple) else (client_cert, None)
        try:
            context.load_cert_chain(os.fspath(cert), None if key is None else os.fspath(key))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"the client certificate {os.fspath(cert)!r} cannot be loaded ({exc}). Fix: give PEM files: the "
                f"certificate (with its chain) and its unencrypted private key"
            ) from exc
    return context


# -- responses -----------------------------------------------------------------------------------------------


def check_reply(response: httpx.Response, *, url: str, authenticated: bool) -> Reply:
    """The reply of a 200 answer; a typed error for any other status.

    Raises:
        AuthenticationError: 401 (the auth flow, when there is one, raises its own first).
        UnexpectedResponseError: a redirect or any other status.
    """
    status = response.status_code
    body = response.content
    if status == 200:
        return Reply(status, response.headers.get("content-type"), body, url)
    page = parse_iis_error_page(body)
    said = f" ({page.title})" if page.title else ""
    if status == 401:
        offered = ", ".join(response.headers.get_list("www-authenticate")) or "none"
        if authenticated:
            raise AuthenticationError(
                f"the CA answered 401{said} to the credentials; it offers: {offered}",
                hint="check the user name, password and authentication method (auth=ntlm|kerberos|negotiate|basic)",
                status_code=401,
            )
        raise AuthenticationError(
            f"the CA requires authentication{said}; it offers: {offered}",
            hint="pass auth= and username=/password= (or CERTSRV_PASSWORD), or a TLS client certificate",
            status_code=401,
        )
    if status in (301, 302, 303, 307, 308):
        target = response.headers.get("location", "?")
        raise UnexpectedResponseError(
            f"{url} redirected ({status}) to {target}. Fix: give the URL of the web enrollment site itself "
            f"(https://HOST/certsrv); a redirect to a login page means a proxy or SSO is in front of IIS",
            status=status,
            url=url,
            body=body,
        )
    if status == 403:
        hint = "IIS refused access (403): require-SSL or client-certificate settings, or IP restrictions on /certsrv"
    elif status == 404:
        hint = "the page does not exist: check the URL path (/certsrv) and that AD CS web enrollment is installed"
    elif status >= 500:
        hint = "the server failed: check the IIS and CA event logs, and that the CA service runs"
    else:
        hint = "check the URL and the IIS configuration of /certsrv"
    raise UnexpectedResponseError(f"{url} answered HTTP {status}{said}. Fix: {hint}", status=status, url=url, body=body)


def _with_url(exc: UnrecognizedPageError, url: str) -> UnrecognizedPageError:
    exc.url = url
    return exc


# -- failures -------------------------------------------------------------------------------------------------

_FIXES: dict[type[EnrollmentError], str] = {
    RequestDeniedError: "ask the CA administrator why the policy module or a certificate manager denied it, and "
    "check the template's issuance requirements (subject, SANs, key size)",
    TemplateAccessDeniedError: "grant the account Read and Enroll on the template (certtmpl.msc > Security) and "
    "Request Certificates on the CA",
    RequestFailedError: "check that the CSR is a valid PKCS#10 request and that the attributes are well formed",
    UnknownRequestError: "check the request id; only the account that submitted it (or a CA manager) can read it",
}


def _failure(
    *,
    denied: bool,
    hresult: int | None,
    message: str,
    request_id: int | None,
    body: bytes,
    what: str,
    template: str | None = None,
) -> Flow[EnrollmentError]:
    entry = lookup_hresult(hresult) if hresult is not None else None
    cls: type[EnrollmentError] = entry.error if entry else (RequestDeniedError if denied else RequestFailedError)
    if cls is TemplateNotFoundError and template is not None:
        offered: list[str] | None
        try:
            reply = yield template_page_request()
            offered = [t.name for t in parse_template_page(reply.body)]
        except CertsrvError:
            offered = None
        return TemplateNotFoundError(
            template=template,
            offered=offered,
            hresult=hresult,
            disposition_message=message,
            request_id=request_id,
            body=body,
        )
    if cls is TemplateNotFoundError:
        cls = RequestDeniedError
    code = f": {describe_hresult(hresult)}" if hresult is not None else ""
    said = f"; the CA says: {message}" if message else ""
    rid = f" (request {request_id})" if request_id is not None else ""
    return cls(
        f"{what}{rid}{code}{said}. Fix: {_FIXES.get(cls, _FIXES[RequestFailedError])}",
        hresult=hresult,
        disposition_message=message,
        request_id=request_id,
        body=body,
    )


def _status_failure(status: RetrievalStatus, request_id: int, body: bytes, what: str) -> EnrollmentError:
    if status.kind == "unknown":
        return UnknownRequestError(
            f"{what}: the CA has no request {request_id} ({describe_hresult(status.hresult or 0x80094004)}). "
            f"Fix: {_FIXES[UnknownRequestError]}",
            hresult=status.hresult,
            disposition_message=status.message,
            request_id=request_id,
            body=body,
        )
    if status.kind == "pending":
        return RequestPendingError(
            f"request {request_id} is still pending ({status.message or 'taken under submission'}). Fix: wait for a "
            f"certificate manager to issue it (certsrv.msc > Pending Requests), then retrieve({request_id})",
            disposition_message=status.message,
            request_id=request_id,
            body=body,
        )
    gen = _failure(
        denied=status.kind == "denied",
        hresult=status.hresult,
        message=status.message,
        request_id=request_id,
        body=body,
        what=f"{what}: request {'denied' if status.kind == 'denied' else 'failed'}",
    )
    try:
        next(gen)
    except StopIteration as stop:
        error: EnrollmentError = stop.value
        return error
    raise AssertionError("without a template the failure needs no request")  # pragma: no cover


# -- operations -----------------------------------------------------------------------------------------------


def _certificate(reply: Reply, request_id: int) -> x509.Certificate | Pending:
    try:
        result = parse_certificate_response(reply.body, reply.content_type)
    except UnrecognizedPageError as exc:
        raise _with_url(exc, reply.url) from None
    if isinstance(result, x509.Certificate):
        return result
    if result.kind == "pending":
        return Pending(request_id)
    raise _status_failure(result, request_id, reply.body, f"certificate {request_id} could not be retrieved")


def submit_flow(
    csr: CsrInput, template: str, attributes: Attributes | None, *, user_agent: str | None
) -> Flow[SubmitResult]:
    """Submit: one POST to certfnsh.asp, then (if issued) one GET of certnew.cer."""
    request = submit_request(csr, template, attributes, user_agent=user_agent)
    reply = yield request
    try:
        page = parse_submit_page(reply.body)
    except UnrecognizedPageError as exc:
        raise _with_url(exc, reply.url) from None
    if isinstance(page, SubmitIssued):
        fetched = yield certificate_request(page.request_id)
        result = _certificate(fetched, page.request_id)
        if isinstance(result, Pending):  # issued a moment ago, so this would be odd; report it as it is
            return result
        return Issued(page.request_id, result)
    if isinstance(page, SubmitPending):
        return Pending(page.request_id)
    denied = isinstance(page, SubmitDenied)
    assert isinstance(page, SubmitDenied | SubmitError)
    request_id = page.request_id if isinstance(page, SubmitDenied) else None
    error = yield from _failure(
        denied=denied,
        hresult=page.hresult,
        message=page.message,
        request_id=request_id,
        body=reply.body,
        what=f"the CA {'denied' if denied else 'did not process'} the request for template '{template.strip()}'",
        template=template.strip(),
    )
    raise error


def retrieve_flow(request_id: int) -> Flow[SubmitResult]:
    """Retrieve request ``request_id``: Issued, or Pending while a certificate manager has not decided."""
    reply = yield certificate_request(request_id)
    result = _certificate(reply, request_id)
    return result if isinstance(result, Pending) else Issued(request_id, result)


def get_certificate_flow(request_id: int) -> Flow[x509.Certificate]:
    """The certificate of request ``request_id``; a pending request raises RequestPendingError."""
    result = yield from retrieve_flow(request_id)
    if isinstance(result, Pending):
        raise RequestPendingError(
            f"request {request_id} is still pending. Fix: wait for a certificate manager to issue it "
            f"(certsrv.msc > Pending Requests), then retrieve({request_id})",
            request_id=request_id,
        )
    return result.certificate


def _bundle(reply: Reply, request_id: int | None, what: str) -> list[x509.Certificate]:
    try:
        result = parse_pkcs7_response(reply.body, reply.content_type)
    except UnrecognizedPageError as exc:
        raise _with_url(exc, reply.url) from None
    if isinstance(result, RetrievalStatus):
        if request_id is None:
            raise UnexpectedResponseError(
                f"{what} is not available: {result.message or describe_hresult(result.hresult or 0)}. Fix: check "
                f"the renewal index (see get_ca_info())",
                status=reply.status,
                url=reply.url,
                body=reply.body,
            )
        raise _status_failure(result, request_id, reply.body, what)
    return result


def chain_flow(request_id: int) -> Flow[list[x509.Certificate]]:
    """The per-request PKCS#7 (certnew.p7b?ReqID=N): the issued certificate with its chain."""
    reply = yield chain_request(request_id)
    return _bundle(reply, request_id, f"the chain of request {request_id}")


def ca_info_flow() -> Flow[CaInfo]:
    """certcarc.asp: renewals and CRL states."""
    reply = yield ca_info_request()
    try:
        return parse_ca_info_page(reply.body)
    except UnrecognizedPageError as exc:
        raise _with_url(exc, reply.url) from None


def _ca_download(reply: Reply, parse: Callable[[bytes, str | None], T | RetrievalStatus], what: str, fix: str) -> T:
    """Parse a CA-wide download (CA certificate, CRL): an AD CS status page instead is an error naming ``fix``."""
    try:
        result = parse(reply.body, reply.content_type)
    except UnrecognizedPageError as exc:
        raise _with_url(exc, reply.url) from None
    if isinstance(result, RetrievalStatus):
        raise UnexpectedResponseError(
            f"{what} is not available: {result.message or describe_hresult(result.hresult or 0)}. Fix: {fix}",
            status=reply.status,
            url=reply.url,
            body=reply.body,
        )
    return result


def ca_certificate_flow(renewal: int) -> Flow[x509.Certificate]:
    """The CA certificate of renewal ``renewal``."""
    reply = yield ca_certificate_request(renewal)
    return _ca_download(
        reply,
        parse_certificate_response,
        f"the CA certificate of renewal {renewal}",
        "check the renewal index (see get_ca_info())",
    )


def ca_chain_flow(renewal: int) -> Flow[list[x509.Certificate]]:
    """The CA chain (PKCS#7) of renewal ``renewal``."""
    reply = yield ca_chain_request(renewal)
    return _bundle(reply, None, f"the CA chain of renewal {renewal}")


def crl_flow(renewal: int, *, delta: bool) -> Flow[x509.CertificateRevocationList]:
    """The base or delta CRL of the CA key of ``renewal``."""
    reply = yield crl_request(renewal, delta=delta)
    kind = "delta" if delta else "base"
    return _ca_download(
        reply,
        parse_crl_response,
        f"the {kind} CRL of renewal {renewal}",
        f"check that the CA publishes {kind} CRLs (get_ca_info().delta_crl) for this key",
    )


def templates_flow() -> Flow[list[OfferedTemplate]]:
    """certrqxt.asp: the templates offered to this account."""
    reply = yield template_page_request()
    try:
        return parse_template_page(reply.body)
    except UnrecognizedPageError as exc:
        raise _with_url(exc, reply.url) from None
