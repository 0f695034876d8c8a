"""The synchronous EST client, :class:`EstClient` (a thin driver of the shared operation flows over httpx)."""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, TypeVar

import httpx

from estclient._auth import BasicAuth, ClientCertificate
from estclient._cookies import SetCookieJar
from estclient._csrattrs import CsrAttrs
from estclient._errors import EstError, EstTimeoutError, MalformedResponseError, ProtocolVersionError
from estclient._operations import CsrInput, Exchange, Flow, Lane, Operations, Sleep
from estclient._pop import LinkingMode, tls_binding
from estclient._protocol import WELL_KNOWN, EstRequest, EstResponse
from estclient._results import CaCertificates, EnrollResult, Pending
from estclient._serverkeygen import DecryptKey, ServerKeyGenResult
from estclient._tls_errors import error_from_exception
from estclient._transport import PlainHttpRedirect, ServerChecks, make_sync_transport
from estclient._trust import TrustAnchors, build_ssl_context

__all__ = ["DEFAULT_LIMITS", "DEFAULT_TIMEOUT", "MAX_RESPONSE_BYTES", "EstClient"]

_log = logging.getLogger("estclient")

T = TypeVar("T")

#: Default time limits in seconds: connect 10, read 60 (a CA behind the server may be slow), write 30,
#: waiting for a pooled connection 10.
DEFAULT_TIMEOUT: Final = httpx.Timeout(connect=10.0, read=60.0, write=30.0, pool=10.0)

#: Default connection pool: up to 10 connections, 10 kept alive for 30 s.
DEFAULT_LIMITS: Final = httpx.Limits(max_connections=10, max_keepalive_connections=10, keepalive_expiry=30.0)

#: Responses larger than this are refused (libest refuses /cacerts above 2 MB).
MAX_RESPONSE_BYTES: Final = 8 * 1024 * 1024


@dataclass(frozen=True)
class _Settings:
    """What both clients derive from their constructor arguments."""

    origin: str
    root: str
    context: ssl.SSLContext
    checks: ServerChecks
    auth: httpx.Auth | None
    timeout: httpx.Timeout
    operations: Operations
    _urls: dict[str, httpx.URL] = field(default_factory=dict, compare=False, repr=False)

    def url_for(self, path: str) -> httpx.URL:
        """The request URL for an EST path, parsed once per path (httpx would parse the text on every request)."""
        url = self._urls.get(path)
        if url is None:
            url = httpx.URL(self.origin + path)
            if len(self._urls) < _MAX_CACHED_URLS:  # paths are operations x labels: few, but labels are the caller's
                self._urls[path] = url
        return url


_MAX_CACHED_URLS: Final = 64


def _settings(
    url: str,
    *,
    trust: TrustAnchors | None,
    label: str | None,
    auth: httpx.Auth | tuple[str, str] | None,
    client_certificate: ClientCertificate | None,
    pop_linking: LinkingMode,
    tls_minimum_version: ssl.TLSVersion | None,
    tls_maximum_version: ssl.TLSVersion | None,
    timeout: httpx.Timeout | float | None,
    proxy: str | httpx.Proxy | None,
    max_retry_wait: float,
) -> _Settings:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        parsed = httpx.URL("invalid:")
    if parsed.userinfo:
        shown = parsed.copy_with(username=None, password=None)
        raise EstError(
            f"The EST server URL {str(shown)!r} carries a user name and password (user:password@), which would not "
            "be sent and could end up in logs.",
            hint="Remove them from the URL and pass auth=BasicAuth(user, password) (or DigestAuth) instead.",
            libest_error="EST_ERR_INVALID_SERVER_NAME",
        )
    if parsed.scheme != "https" or not parsed.host:
        raise EstError(
            f"The EST server URL {url!r} is not an https:// URL.",
            hint="EST runs over HTTPS only (RFC 7030 §3.3): use https://HOST[:PORT][/.well-known/est].",
            libest_error="EST_ERR_INVALID_SERVER_NAME",
        )
    if parsed.query or parsed.fragment:
        raise EstError(
            f"The EST server URL {url!r} has a query or fragment, which EST does not use.",
            hint="Use https://HOST[:PORT][/PATH]; give a CA label with label= (not ?label=).",
            libest_error="EST_ERR_INVALID_SERVER_NAME",
        )
    if pop_linking not in ("auto", "always", "never"):
        raise EstError(f"pop_linking must be 'auto', 'always' or 'never', not {pop_linking!r}.")
    trust = trust if trust is not None else TrustAnchors.system()
    if pop_linking == "always":
        if tls_minimum_version is not None and tls_minimum_version > ssl.TLSVersion.TLSv1_2:
            raise ProtocolVersionError(
                f"pop_linking='always' needs TLS 1.2, but the minimum TLS version is {tls_minimum_version.name}.",
                hint="Remove tls_minimum_version (or set it to TLSv1_2), or use pop_linking='auto'/'never'.",
            )
        if tls_maximum_version is not None and tls_maximum_version > ssl.TLSVersion.TLSv1_2:
            raise ProtocolVersionError(
                f"pop_linking='always' needs TLS 1.2, but tls_maximum_version is {tls_maximum_version.name}.",
                hint="Remove tls_maximum_version: with pop_linking='always' the client caps TLS at 1.2 itself.",
            )
        tls_maximum_version = ssl.TLSVersion.TLSv1_2
    context = build_ssl_context(
        trust,
        minimum_version=tls_minimum_version,
        maximum_version=tls_maximum_version,
        client_certificate=client_certificate,
    )
    if isinstance(auth, tuple):
        auth = BasicAuth(*auth)
    if trust.is_bootstrap and (auth is not None or client_certificate is not None):
        _log.info("Bootstrap mode: the configured credentials are not sent (RFC 7030 §4.1.1)")
        auth = None
    if timeout is None or isinstance(timeout, (int, float)):
        timeout = httpx.Timeout(timeout)
    port = f":{parsed.port}" if parsed.port else ""
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    path = parsed.path.rstrip("/")
    root = path if path else WELL_KNOWN
    operations = Operations(
        trust=trust,
        root=root,
        label=label,
        linking=pop_linking,
        max_retry_wait=max_retry_wait,
        has_credentials=auth is not None or (client_certificate is not None and not trust.is_bootstrap),
        current_certificate=client_certificate.certificate if client_certificate is not None else None,
    )
    checks = ServerChecks(trust, context, may_probe=proxy is None)
    return _Settings(f"https://{host}{port}", root, context, checks, auth, timeout, operations)


def _response(raw: httpx.Response, body: bytes) -> EstResponse:
    return EstResponse.from_parts(raw.status_code, dict(raw.headers.items()), body, str(raw.url))


def _too_large(operation: str) -> MalformedResponseError:
    return MalformedResponseError(
        f"The /{operation} response is larger than {MAX_RESPONSE_BYTES} bytes; refused.",
        hint="Check that the URL points at an EST server.",
        libest_error="EST_ERR_BUF_EXCEEDS_MAX_LEN",
    )


def _downgraded(operation: str, url: str) -> EstError:
    return EstError(
        f"The server redirected /{operation} to {url!r}, which is not HTTPS; the client does not follow it.",
        hint="EST runs over HTTPS only (RFC 7030 §3.3); fix the server's redirect or configure the final URL.",
        libest_error="EST_ERR_HTTP_UNSUPPORTED",
    )


def lane_limits(limits: httpx.Limits) -> httpx.Limits:
    """Limits of a lane: one connection, kept alive as the client's own connections are."""
    keep = 1 if limits.max_keepalive_connections is None else min(1, limits.max_keepalive_connections)
    return httpx.Limits(max_connections=1, max_keepalive_connections=keep, keepalive_expiry=limits.keepalive_expiry)


class _Lanes:
    """Single-connection httpx clients, one per PoP-linked enrollment in progress (see ``Lane``).

    With an injected ``httpx.Client`` there is one lane, that client, taken by one linked enrollment at a time.
    """

    def __init__(self, make: Callable[[], httpx.Client] | None, shared: httpx.Client, size: int) -> None:
        self._make = make
        self._shared = shared
        self._slots = threading.BoundedSemaphore(size if make is not None else 1)
        self._lock = threading.Lock()
        self._free: list[httpx.Client] = []
        self._all: list[httpx.Client] = []

    def take(self, wait: float | None) -> httpx.Client:
        if not self._slots.acquire(timeout=wait):
            raise EstTimeoutError("pool", wait, operation="PoP-linked enrollment")
        if self._make is None:
            return self._shared
        with self._lock:
            if self._free:
                return self._free.pop()
            lane = self._make()
            self._all.append(lane)
            return lane

    def give_back(self, lane: httpx.Client) -> None:
        if self._make is not None:
            with self._lock:
                self._free.append(lane)
        self._slots.release()

    def close(self) -> None:
        with self._lock:
            lanes, self._all, self._free = self._all, [], []
        for lane in lanes:
            lane.close()


class EstClient:
    """A synchronous RFC 7030 EST client.

    One client keeps its connections open and reuses them. Every method sends its request only after the
    server was authenticated per RFC 7030 §3.6 (see :class:`TrustAnchors`).

    Args:
        url: The EST server, ``https://HOST[:PORT]``; a path other than ``/`` replaces ``/.well-known/est``.
        trust: Whom to trust: :meth:`TrustAnchors.explicit_anchors` (usual), :meth:`TrustAnchors.system`
            (default) or :meth:`TrustAnchors.bootstrap`.
        label: The CA label (``/.well-known/est/<label>/...``) used unless a call names another.
        auth: HTTP credentials: :class:`BasicAuth`, :class:`DigestAuth`, any ``httpx.Auth``, or a
            ``(user, password)`` pair for Basic.
        client_certificate: A TLS client certificate (for ``/simplereenroll``: the certificate being renewed).
        pop_linking: ``"auto"`` (link CSRs the client builds when the connection has tls-unique, i.e. TLS 1.2,
            or when the server lists challengePassword), ``"always"`` (caps TLS at 1.2), ``"never"``.
        tls_minimum_version: Lowest TLS version (default TLS 1.2).
        tls_maximum_version: Highest TLS version (default: the newest).
        timeout: Time limits per phase (``httpx.Timeout``) or one number for all; default
            :data:`DEFAULT_TIMEOUT` (connect 10 s, read 60 s, write 30 s, pool 10 s).
        proxy: An HTTP(S) or SOCKS proxy URL or ``httpx.Proxy`` (environment variables are not read).
        limits: Connection pool limits.
        max_retry_wait: With ``wait=True``, the longest single Retry-After to sleep (seconds); a longer one
            returns the :class:`Pending` result instead.
        http_client: Use this ``httpx.Client`` instead of making one. Its own TLS settings then apply: the
            RFC 7030 §3.6 checks and the diagnosis of trust failures run only on clients EstClient makes.
        headers: Extra headers for every request.

    Raises:
        EstError: For a non-https URL, a URL with user:password@, a query or a fragment, or unusable trust
            anchors.
        InvalidLabelError: For a bad label.
        ProtocolVersionError: When ``pop_linking="always"`` meets a TLS 1.3-only setting.
    """

    def __init__(
        self,
        url: str,
        *,
        trust: TrustAnchors | None = None,
        label: str | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        client_certificate: ClientCertificate | None = None,
        pop_linking: LinkingMode = "auto",
        tls_minimum_version: ssl.TLSVersion | None = None,
        tls_maximum_version: ssl.TLSVersion | None = None,
        timeout: httpx.Timeout | float | None = DEFAULT_TIMEOUT,
        proxy: str | httpx.Proxy | None = None,
        limits: httpx.Limits = DEFAULT_LIMITS,
        max_retry_wait: float = 300.0,
        http_client: httpx.Client | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._settings = _settings(
            url,
            trust=trust,
            label=label,
            auth=auth,
            client_certificate=client_certificate,
            pop_linking=pop_linking,
            tls_minimum_version=tls_minimum_version,
            tls_maximum_version=tls_maximum_version,
            timeout=timeout,
            proxy=proxy,
            max_retry_wait=max_retry_wait,
        )
        self._owns_http = http_client is None
        make_lane: Callable[[], httpx.Client] | None = None
        if http_client is None:
            checks, timeout_ = self._settings.checks, self._settings.timeout
            transport = make_sync_transport(checks, limits=limits, proxy=proxy)
            jar = SetCookieJar()  # one jar for the client and its lanes
            http_client = httpx.Client(transport=transport, timeout=timeout_, trust_env=False, cookies=jar)

            def make_lane() -> httpx.Client:
                lane = make_sync_transport(checks, limits=lane_limits(limits), proxy=proxy)
                return httpx.Client(transport=lane, timeout=timeout_, trust_env=False, cookies=jar)

        self._http = http_client
        self._lanes = _Lanes(make_lane, http_client, limits.max_connections or 10)
        self._headers = dict(headers or {})

    # -- plumbing -----------------------------------------------------------------------------------------------

    @property
    def trust(self) -> TrustAnchors:
        """The trust anchors this client uses."""
        return self._settings.operations.trust

    @property
    def url(self) -> str:
        """The EST root URL (origin and root path)."""
        return self._settings.origin + self._settings.root

    def _send(self, request: EstRequest, http: httpx.Client | None = None) -> Exchange:
        url = self._settings.url_for(request.path)
        headers = {**self._headers, **dict(request.headers)}
        auth: Any = None if self.trust.is_bootstrap else (self._settings.auth or httpx.USE_CLIENT_DEFAULT)
        try:
            with (http or self._http).stream(
                request.method,
                url,
                headers=headers,
                content=request.body if request.method == "POST" else None,
                auth=auth,
                follow_redirects=request.method == "GET",
            ) as raw:
                if raw.url.scheme != "https":
                    raise _downgraded(request.operation, str(raw.url))
                # now: the connection may close once the body is read
                binding = tls_binding(raw, with_anchor=request.operation == "cacerts")
                chunks: list[bytes] = []
                size = 0
                for chunk in raw.iter_bytes():
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        raise _too_large(request.operation)
                    chunks.append(chunk)
        except EstError:
            raise
        except PlainHttpRedirect as exc:
            raise _downgraded(request.operation, exc.url) from None
        except (httpx.HTTPError, OSError) as exc:
            raise error_from_exception(exc, operation=request.operation) from exc
        response = _response(raw, b"".join(chunks))
        _log.debug("EST %s %s -> %d (%d bytes)", request.method, url, response.status, len(response.body))
        return Exchange(response, binding)

    def _drive(self, flow: Flow[T]) -> T:
        lane: httpx.Client | None = None
        try:
            step = next(flow)
            while True:
                if isinstance(step, Sleep):
                    time.sleep(step.seconds)
                    step = flow.send(None)
                elif isinstance(step, Lane):
                    if step.hold and lane is None:
                        lane = self._lanes.take(self._settings.timeout.pool)
                    elif not step.hold and lane is not None:
                        self._lanes.give_back(lane)
                        lane = None
                    step = flow.send(None)
                else:
                    step = flow.send(self._send(step, lane))
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            if lane is not None:
                self._lanes.give_back(lane)

    def close(self) -> None:
        """Close the connections (an injected ``http_client`` is left open for its owner)."""
        self._lanes.close()
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> EstClient:
        """Use the client in a ``with`` block; it closes at the end."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close the client."""
        self.close()

    # -- operations -----------------------------------------------------------------------------------------------

    def cacerts(self, *, label: str | None = None) -> CaCertificates:
        """Get the CA certificates (``GET /cacerts``, RFC 7030 §4.1).

        In bootstrap mode the certificates are returned only when a fingerprint was confirmed.

        Args:
            label: CA label for this call (default: the client's).

        Returns:
            The CA certificates, with how the server was authenticated.

        Raises:
            BootstrapError: In bootstrap mode, when no certificate was confirmed.
            EstError: A subclass naming the cause (trust, connection, HTTP status, malformed response).
        """
        return self._drive(self._settings.operations.cacerts(label))

    def csrattrs(self, *, label: str | None = None) -> CsrAttrs:
        """Get what the server wants in certificate requests (``GET /csrattrs``, RFC 7030 §4.5).

        Args:
            label: CA label for this call (default: the client's).

        Returns:
            The CSR attributes; empty when the server answered 204 or 404 (no requirements).

        Raises:
            CsrAttrsError: When the body is not DER CsrAttrs.
            EstError: A subclass naming the cause.
        """
        return self._drive(self._settings.operations.csrattrs(label))

    def simple_enroll(
        self, csr: CsrInput, *, label: str | None = None, wait: bool = False, max_retries: int = 3
    ) -> EnrollResult | Pending:
        """Enroll for a certificate (``POST /simpleenroll``, RFC 7030 §4.2.1).

        Args:
            csr: A signed ``x509.CertificateSigningRequest`` (sent as is), or a :class:`CsrSpec` the client
                builds and signs on the sending connection (with PoP linking per ``pop_linking``).
            label: CA label for this call (default: the client's).
            wait: On HTTP 202, wait the Retry-After time and ask again (at most ``max_retries`` times).
            max_retries: How many times to ask again when ``wait`` is set.

        Returns:
            The issued certificate, or :class:`Pending` (202) when not waiting or the retries ran out.

        Raises:
            EstError: A subclass naming the cause (e.g. :class:`AuthenticationError`, :class:`BadRequestError`,
                :class:`CmcFailError` with the server's words).
        """
        result: EnrollResult | Pending = self._drive(
            self._settings.operations.enroll(
                csr, operation="simpleenroll", label=label, wait=wait, max_retries=max_retries
            )
        )
        return result

    def simple_reenroll(
        self, csr: CsrInput, *, label: str | None = None, wait: bool = False, max_retries: int = 3
    ) -> EnrollResult | Pending:
        """Renew or rekey a certificate (``POST /simplereenroll``, RFC 7030 §4.2.2).

        The request's subject and subjectAltName must equal the current certificate's; authenticate with that
        certificate (``client_certificate=``), as RFC 7030 §3.3.2 asks.

        Args:
            csr: A signed request, or a :class:`CsrSpec` (same key: renew; new key: rekey); a spec without a
                subject takes the client certificate's subject and subjectAltName.
            label: CA label for this call (default: the client's).
            wait: On HTTP 202, wait and ask again (at most ``max_retries`` times).
            max_retries: How many times to ask again when ``wait`` is set.

        Returns:
            The issued certificate, or :class:`Pending`.

        Raises:
            EstError: A subclass naming the cause.
        """
        result: EnrollResult | Pending = self._drive(
            self._settings.operations.enroll(
                csr, operation="simplereenroll", label=label, wait=wait, max_retries=max_retries
            )
        )
        return result

    def server_keygen(
        self,
        csr: CsrInput,
        *,
        decrypt_key: DecryptKey | None = None,
        label: str | None = None,
        wait: bool = False,
        max_retries: int = 3,
    ) -> ServerKeyGenResult | Pending:
        """Have the server generate the key pair (``POST /serverkeygen``, RFC 7030 §4.4).

        Args:
            csr: The request naming the subject (its key is ignored by the server); to get the key encrypted,
                use a :class:`CsrSpec` with ``decrypt_key_id`` or ``asymmetric_decrypt_key_id``.
            decrypt_key: The key that decrypts a CMS-encrypted private key (a symmetric key's bytes, or the
                private key of the certificate named by the asymmetric identifier).
            label: CA label for this call (default: the client's).
            wait: On HTTP 202, wait and ask again (at most ``max_retries`` times).
            max_retries: How many times to ask again when ``wait`` is set.

        Returns:
            The private key and certificate, or :class:`Pending`.

        Raises:
            ServerKeyGenError: When the key cannot be parsed or decrypted.
            EstError: A subclass naming the cause.
        """
        result: ServerKeyGenResult | Pending = self._drive(
            self._settings.operations.enroll(
                csr,
                operation="serverkeygen",
                label=label,
                wait=wait,
                max_retries=max_retries,
                decrypt_key=decrypt_key,
            )
        )
        return result

    def full_cmc(
        self,
        request: CsrInput | bytes,
        *,
        label: str | None = None,
        wait: bool = False,
        max_retries: int = 3,
        request_id: int = 1,
    ) -> EnrollResult | Pending:
        """Enroll with a CMC Full PKI Request (``POST /fullcmc``, RFC 7030 §4.3).

        Args:
            request: A DER PKIData you built, or a request (signed CSR or :class:`CsrSpec`) the client wraps
                into a PKIData.
            label: CA label for this call (default: the client's).
            wait: On HTTP 202, wait and ask again (at most ``max_retries`` times).
            max_retries: How many times to ask again when ``wait`` is set.
            request_id: The bodyPartID of the request inside the PKIData the client builds.

        Returns:
            The issued certificate, or :class:`Pending`.

        Raises:
            CmcFailError: The CA answered a CMC failure (with its failInfo and status string).
            EstError: A subclass naming the cause.
        """
        result: EnrollResult | Pending = self._drive(
            self._settings.operations.enroll(
                request,  # type: ignore[arg-type]
                operation="fullcmc",
                label=label,
                wait=wait,
                max_retries=max_retries,
                request_id=request_id,
            )
        )
        return result
