r"""The synchronous AD CS web enrollment client.

It owns one ``httpx.Client`` limited to a single kept-alive HTTP/1.1 connection: NTLM and Kerberos authenticate
the connection, so once the first request (``GET /certsrv/``) has paid the handshake, every later request rides
on it. An enrollment is then one POST to certfnsh.asp and one GET of certnew.cer (the seed's RA spent seven
requests: 401, 301, certrqxt.asp, 401, 301, certfnsh.asp, certnew.cer).

Example (the password comes from ``CERTSRV_PASSWORD``)::

    from pathlib import Path

    from certsrv import CertsrvClient, Issued

    with CertsrvClient("https://ca.example.com/certsrv", auth="ntlm", username="EXAMPLE\\alice",
                       ca_file="root.pem") as client:
        result = client.submit(Path("phone.csr").read_bytes(), "WebServer")
        if isinstance(result, Issued):
            Path("phone.pem").write_bytes(result.pem)
"""

from __future__ import annotations

import logging
import ssl
import threading
from types import TracebackType
from typing import TypeVar

import httpx
from cryptography import x509

from certsrv._errors import CertsrvError, ConfigurationError
from certsrv._flows import (
    AuthKind,
    Flow,
    PathLike,
    Reply,
    build_auth,
    build_ssl_context,
    ca_certificate_flow,
    ca_chain_flow,
    ca_info_flow,
    chain_flow,
    check_reply,
    crl_flow,
    get_certificate_flow,
    handshake_count,
    needs_priming,
    retrieve_flow,
    submit_flow,
    templates_flow,
)
from certsrv._pages import CaInfo, OfferedTemplate
from certsrv._requests import (
    DEFAULT_USER_AGENT,
    Attributes,
    CsrInput,
    PreparedRequest,
    normalize_base_url,
    priming_request,
)
from certsrv._results import SubmitResult
from certsrv._timeouts import Timeouts, timeout_error
from certsrv._tls_errors import classify_connect_failure, connection_error, fetch_presented_chain, needs_chain

__all__ = ["CertsrvClient"]

log = logging.getLogger("certsrv.client")
T = TypeVar("T")


def _timeouts(value: Timeouts | float | None) -> Timeouts:
    if value is None:
        return Timeouts()
    if isinstance(value, Timeouts):
        return value
    return Timeouts.uniform(float(value))


class CertsrvClient:
    r"""A client for one AD CS web enrollment site (``https://HOST/certsrv``).

    Args:
        url: The site: ``https://HOST/certsrv`` (a bare host name gets ``https://`` and ``/certsrv/``).
        auth: ``"ntlm"``, ``"kerberos"``, ``"negotiate"``, ``"basic"``, ``"cert"`` (TLS client certificate only),
            an ``httpx.Auth`` instance, or ``None``: Negotiate when ``username`` is given, else anonymous.
        username: ``DOMAIN\user`` or ``user@REALM``.
        password: The password; when ``None``, read from the environment variable ``CERTSRV_PASSWORD``.
        channel_binding: Send the TLS channel binding with NTLM/Kerberos/Negotiate (needed by IIS Extended
            Protection "Required"; harmless otherwise).
        ca_file: PEM file with the CA certificates to trust for the IIS certificate (default: the system store).
        ssl_context: A ready TLS context instead of ``ca_file``/``client_cert``.
        client_cert: A TLS client certificate: a PEM file with certificate and key, or ``(cert_file, key_file)``.
        timeouts: Limits per phase (:class:`Timeouts`), or one number of seconds for every phase.
        user_agent: The User-Agent (AD CS pages sniff for a browser; the default is Mozilla-style).
        proxy: An HTTP(S) proxy URL (proxies in the environment are used too unless ``trust_env=False``).
        trust_env: Read proxy settings from the environment.
        http_client: An ``httpx.Client`` to send through instead of the client's own (its TLS, proxy and limit
            settings then apply, and ``ca_file``, ``ssl_context``, ``client_cert``, ``proxy`` and ``trust_env``
            must be left out). Keep it to one connection per authenticated identity. It is not closed by
            :meth:`close`.

    Raises:
        ConfigurationError: a bad URL, auth name, CA file or client certificate, a malformed user name, or a
            missing password (neither ``password`` nor ``CERTSRV_PASSWORD``).
        KerberosUnavailableError: ``auth="kerberos"`` without python-gssapi (the ``kerberos`` extra).
    """

    def __init__(
        self,
        url: str,
        *,
        auth: AuthKind | httpx.Auth | None = None,
        username: str | None = None,
        password: str | None = None,
        channel_binding: bool = True,
        ca_file: PathLike | None = None,
        ssl_context: ssl.SSLContext | None = None,
        client_cert: PathLike | tuple[PathLike, PathLike] | None = None,
        timeouts: Timeouts | float | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        proxy: str | None = None,
        trust_env: bool = True,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.base_url = normalize_base_url(url)
        self.timeouts = _timeouts(timeouts)
        if http_client is not None and (ca_file or ssl_context or client_cert or proxy or not trust_env):
            raise ConfigurationError(
                "http_client= carries its own TLS and proxy settings. Fix: configure them on that client, or leave "
                "http_client out"
            )
        self._ssl_context = build_ssl_context(ca_file=ca_file, ssl_context=ssl_context, client_cert=client_cert)
        self._auth = build_auth(
            auth,
            username=username,
            password=password,
            channel_binding=channel_binding,
            has_client_cert=client_cert is not None or ssl_context is not None or http_client is not None,
        )
        self._user_agent = user_agent
        self._needs_priming = needs_priming(self._auth)
        self._authenticated = False
        self._lock = threading.Lock()
        self._owns_http = http_client is None
        self._closed = False
        self._http = http_client or httpx.Client(
            verify=self._ssl_context,
            http2=False,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            headers={"User-Agent": user_agent},
            follow_redirects=False,
            proxy=proxy,
            trust_env=trust_env,
        )

    # -- lifecycle -------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (an ``http_client`` given to the constructor stays open)."""
        self._closed = True
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> CertsrvClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CertsrvClient({self.base_url!r}, auth={self._auth!r})"

    # -- transport -------------------------------------------------------------------------------------------

    def _send(self, request: PreparedRequest) -> Reply:
        if self._closed:
            raise ConfigurationError(
                f"this client for {self.base_url} is closed. Fix: use it inside its with block, or make a new one"
            )
        url = request.url(self.base_url)
        log.debug("%s %s", request.method, url)
        try:
            response = self._http.request(
                request.method,
                url,
                content=request.body if request.form is not None else None,
                headers=request.headers,
                timeout=self.timeouts.for_phase(request.phase),
                auth=self._auth if self._auth is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException as exc:
            raise timeout_error(exc, request.phase, self.timeouts, url) from exc
        except httpx.TransportError as exc:
            raise self._connection_error(exc, url) from exc
        log.debug("%s %s -> %d", request.method, url, response.status_code)
        return check_reply(response, url=url, authenticated=self._auth is not None)

    def _connection_error(self, exc: httpx.TransportError, url: str) -> CertsrvError:
        failure = classify_connect_failure(exc)
        parsed = httpx.URL(url)
        host, port = parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80)
        chain = fetch_presented_chain(host, port, self.timeouts.connect) if needs_chain(failure) else None
        return connection_error(failure, host=host, port=port, url=url, chain=chain, context=self._ssl_context)

    def _ensure_authenticated(self) -> None:
        if self._needs_priming and not self._authenticated:
            with self._lock:
                if not self._authenticated:
                    self._prime()

    def _prime(self) -> None:
        before = handshake_count(self._auth)
        self._send(priming_request())
        self._authenticated = True
        if before is not None and handshake_count(self._auth) == before:
            log.warning(
                "%s answered without an authentication challenge: anonymous access is enabled on /certsrv, so "
                "IIS may run requests as the anonymous user (disable Anonymous Authentication for /certsrv)",
                self.base_url,
            )

    def _run(self, flow: Flow[T]) -> T:
        self._ensure_authenticated()
        try:
            request = next(flow)
            while True:
                try:
                    reply = self._send(request)
                except CertsrvError as exc:
                    request = flow.throw(exc)
                else:
                    request = flow.send(reply)
        except StopIteration as stop:
            result: T = stop.value
            return result

    # -- operations ------------------------------------------------------------------------------------------

    def authenticate(self) -> None:
        """Authenticate the connection now (``GET /certsrv/`` under the authentication time limit).

        Other methods do this on their first use; call it to check credentials and reachability up front.

        Raises:
            AuthenticationError: the credentials were refused.
            CertsrvConnectionError: DNS, TCP, TLS or a timeout (see the error tree).
        """
        with self._lock:
            self._prime()

    def submit(self, csr: CsrInput, template: str, attributes: Attributes | None = None) -> SubmitResult:
        """Submit a CSR for ``template``: :class:`Issued` (with the certificate) or :class:`Pending`.

        Args:
            csr: The PKCS#10 request (cryptography object, PEM or DER).
            template: The template's name (cn), e.g. ``"WebServer"``.
            attributes: Extra request attributes (CertAttrib lines), e.g. ``{"SAN": san_attribute(dns=[...])}``.

        Raises:
            TemplateNotFoundError: the CA does not offer the template (lists those it offers).
            RequestDeniedError: the CA denied the request (TemplateAccessDeniedError: no enroll permission).
            RequestFailedError: the CA could not process the request (e.g. a malformed CSR).
            EnrollmentTimeoutError: the CA did not answer within ``timeouts.enrollment``.
        """
        return self._run(submit_flow(csr, template, attributes, user_agent=self._user_agent))

    def retrieve(self, request_id: int) -> SubmitResult:
        """Fetch the outcome of an earlier request: :class:`Issued`, or :class:`Pending` while undecided.

        Raises:
            RequestDeniedError: the request was denied.
            UnknownRequestError: the CA has no such request (for this account).
        """
        return self._run(retrieve_flow(request_id))

    def get_certificate(self, request_id: int) -> x509.Certificate:
        """The certificate issued for ``request_id``.

        Raises:
            RequestPendingError: the request still waits for approval.
            RequestDeniedError: the request was denied.
            UnknownRequestError: the CA has no such request (for this account).
        """
        return self._run(get_certificate_flow(request_id))

    def get_chain(self, request_id: int) -> list[x509.Certificate]:
        """The certificates of request ``request_id``'s PKCS#7 (certnew.p7b): the certificate and its chain.

        Raises:
            RequestPendingError: the request still waits for approval.
            RequestDeniedError: the request was denied.
            UnknownRequestError: the CA has no such request (for this account).
        """
        return self._run(chain_flow(request_id))

    def get_ca_info(self) -> CaInfo:
        """What certcarc.asp says: the number of CA renewals and which keys have CRLs."""
        return self._run(ca_info_flow())

    def _renewal(self, renewal: int | None) -> int:
        return renewal if renewal is not None else self.get_ca_info().renewals

    def get_ca_certificate(self, renewal: int | None = None) -> x509.Certificate:
        """The CA certificate of ``renewal`` (0 is the first; default: the newest, read from certcarc.asp)."""
        return self._run(ca_certificate_flow(self._renewal(renewal)))

    def get_ca_chain(self, renewal: int | None = None) -> list[x509.Certificate]:
        """The CA certificate chain (PKCS#7) of ``renewal`` (default: the newest)."""
        return self._run(ca_chain_flow(self._renewal(renewal)))

    def get_crl(self, *, delta: bool = False, renewal: int | None = None) -> x509.CertificateRevocationList:
        """The base (or delta) CRL for the CA key of ``renewal`` (default: the newest key that has a CRL)."""
        info = self.get_ca_info()
        return self._run(crl_flow(info.crl_renewal(renewal), delta=delta))

    def list_templates(self) -> list[OfferedTemplate]:
        """The templates the CA offers this account (certrqxt.asp)."""
        return self._run(templates_flow())
