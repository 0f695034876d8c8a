"""The asynchronous EST client, :class:`AsyncEstClient`.

It drives the same flows as :class:`EstClient` over ``httpx.AsyncClient``. It waits with anyio (which httpx
itself uses), so it is not tied to asyncio; the tests run it under asyncio.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import anyio
import httpx

from estclient._auth import ClientCertificate
from estclient._client import (
    DEFAULT_LIMITS,
    DEFAULT_TIMEOUT,
    MAX_RESPONSE_BYTES,
    _downgraded,
    _response,
    _settings,
    _too_large,
    lane_limits,
)
from estclient._cookies import SetCookieJar
from estclient._csrattrs import CsrAttrs
from estclient._errors import EstError, EstTimeoutError
from estclient._operations import CsrInput, Exchange, Flow, Lane, Sleep
from estclient._pop import LinkingMode, tls_binding
from estclient._protocol import EstRequest
from estclient._results import CaCertificates, EnrollResult, Pending
from estclient._serverkeygen import DecryptKey, ServerKeyGenResult
from estclient._tls_errors import error_from_exception
from estclient._transport import PlainHttpRedirect, make_async_transport
from estclient._trust import TrustAnchors

__all__ = ["AsyncEstClient"]

_log = logging.getLogger("estclient")

T = TypeVar("T")


class _AsyncLanes:
    """Single-connection httpx clients, one per PoP-linked enrollment in progress (see ``Lane``)."""

    def __init__(self, make: Callable[[], httpx.AsyncClient] | None, shared: httpx.AsyncClient, size: int) -> None:
        self._make = make
        self._shared = shared
        self._size = size if make is not None else 1
        self._slots: anyio.Semaphore | None = None  # made inside the event loop, on first use
        self._free: list[httpx.AsyncClient] = []
        self._all: list[httpx.AsyncClient] = []

    async def take(self, wait: float | None) -> httpx.AsyncClient:
        if self._slots is None:
            self._slots = anyio.Semaphore(self._size)
        with anyio.move_on_after(wait) as scope:
            await self._slots.acquire()
        if scope.cancelled_caught:
            raise EstTimeoutError("pool", wait, operation="PoP-linked enrollment")
        if self._make is None:
            return self._shared
        if self._free:
            return self._free.pop()
        lane = self._make()
        self._all.append(lane)
        return lane

    def give_back(self, lane: httpx.AsyncClient) -> None:
        if self._make is not None:
            self._free.append(lane)
        if self._slots is not None:
            self._slots.release()

    async def aclose(self) -> None:
        lanes, self._all, self._free = self._all, [], []
        for lane in lanes:
            await lane.aclose()


class AsyncEstClient:
    """An asynchronous RFC 7030 EST client: the same methods and arguments as :class:`EstClient`, awaited.

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
        http_client: Use this ``httpx.AsyncClient`` instead of making one. Its own TLS settings then apply: the
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
        http_client: httpx.AsyncClient | None = None,
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
        make_lane: Callable[[], httpx.AsyncClient] | None = None
        if http_client is None:
            checks, timeout_ = self._settings.checks, self._settings.timeout
            transport = make_async_transport(checks, limits=limits, proxy=proxy)
            jar = SetCookieJar()  # one jar for the client and its lanes
            http_client = httpx.AsyncClient(transport=transport, timeout=timeout_, trust_env=False, cookies=jar)

            def make_lane() -> httpx.AsyncClient:
                lane = make_async_transport(checks, limits=lane_limits(limits), proxy=proxy)
                return httpx.AsyncClient(transport=lane, timeout=timeout_, trust_env=False, cookies=jar)

        self._http = http_client
        self._lanes = _AsyncLanes(make_lane, http_client, limits.max_connections or 10)
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

    async def _send(self, request: EstRequest, http: httpx.AsyncClient | None = None) -> Exchange:
        url = self._settings.url_for(request.path)
        headers = {**self._headers, **dict(request.headers)}
        auth: Any = None if self.trust.is_bootstrap else (self._settings.auth or httpx.USE_CLIENT_DEFAULT)
        try:
            async with (http or self._http).stream(
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
                async for chunk in raw.aiter_bytes():
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

    async def _drive(self, flow: Flow[T]) -> T:
        lane: httpx.AsyncClient | None = None
        try:
            step = next(flow)
            while True:
                if isinstance(step, Sleep):
                    await anyio.sleep(step.seconds)
                    step = flow.send(None)
                elif isinstance(step, Lane):
                    if step.hold and lane is None:
                        lane = await self._lanes.take(self._settings.timeout.pool)
                    elif not step.hold and lane is not None:
                        self._lanes.give_back(lane)
                        lane = None
                    step = flow.send(None)
                else:
                    step = flow.send(await self._send(step, lane))
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            if lane is not None:
                self._lanes.give_back(lane)

    async def aclose(self) -> None:
        """Close the connections (an injected ``http_client`` is left open for its owner)."""
        await self._lanes.aclose()
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncEstClient:
        """Use the client in an ``async with`` block; it closes at the end."""
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close the client."""
        await self.aclose()

    # -- operations -----------------------------------------------------------------------------------------------

    async def cacerts(self, *, label: str | None = None) -> CaCertificates:
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
        return await self._drive(self._settings.operations.cacerts(label))

    async def csrattrs(self, *, label: str | None = None) -> CsrAttrs:
        """Get what the server wants in certificate requests (``GET /csrattrs``, RFC 7030 §4.5).

        Args:
            label: CA label for this call (default: the client's).

        Returns:
            The CSR attributes; empty when the server answered 204 or 404 (no requirements).

        Raises:
            CsrAttrsError: When the body is not DER CsrAttrs.
            EstError: A subclass naming the cause.
        """
        return await self._drive(self._settings.operations.csrattrs(label))

    async def simple_enroll(
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
        result: EnrollResult | Pending = await self._drive(
            self._settings.operations.enroll(
                csr, operation="simpleenroll", label=label, wait=wait, max_retries=max_retries
            )
        )
        return result

    async def simple_reenroll(
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
        result: EnrollResult | Pending = await self._drive(
            self._settings.operations.enroll(
                csr, operation="simplereenroll", label=label, wait=wait, max_retries=max_retries
            )
        )
        return result

    async def server_keygen(
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
        result: ServerKeyGenResult | Pending = await self._drive(
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

    async def full_cmc(
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
        result: EnrollResult | Pending = await self._drive(
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
