"""httpx transports that authorize the EST server right after the TLS handshake, before any byte of HTTP.

RFC 7030 §3.6 decides by the kind of trust anchor that verified the chain (explicit: host name or
id-kp-cmcRA; implicit: host name), which the ``ssl`` module cannot express. These transports wrap httpcore's
network backend: after each TLS handshake with the EST context they check the server (and close the connection
on failure), so credentials and CSRs never reach an unauthorized server, also when a connection is made again
or a redirect leads elsewhere. When verification fails they make one diagnostic handshake (verification off,
closed right after, nothing sent) to name the cause: the missing issuer, the dates, the names.

httpx offers no public hook for this; the wrapper replaces the pool's network backend, an attribute
httpx 0.28 / httpcore 1.x keep stable. A clear error says so should that ever change.
"""

from __future__ import annotations

import datetime as dt
import logging
import select
import ssl
import typing
from collections.abc import Iterable

import httpcore
import httpx
from cryptography import x509

from estclient._errors import EstError
from estclient._tls_errors import error_from_verification, find_cause
from estclient._trust import TrustAnchors, presented_chain, verified_anchor

__all__ = ["PlainHttpRedirect", "ServerChecks", "make_async_transport", "make_sync_transport"]

_log = logging.getLogger("estclient")

SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


class ServerChecks:
    """The post-handshake checks and the failure diagnosis, shared by the sync and async transports."""

    def __init__(self, trust: TrustAnchors, context: ssl.SSLContext, *, may_probe: bool) -> None:
        self.trust = trust
        self.context = context
        self.may_probe = may_probe
        self._probe_context: ssl.SSLContext | None = None

    @property
    def probe_context(self) -> ssl.SSLContext:
        """A context that completes any handshake (diagnosis only: nothing is sent on it), made when needed."""
        if self._probe_context is None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            self._probe_context = context
        return self._probe_context

    def after_handshake(self, ssl_object: typing.Any, host: str) -> None:
        """Authorize the server of a finished handshake (RFC 7030 §3.6) or raise the typed error."""
        if self.trust.is_bootstrap:
            _log.info("Provisional (bootstrap) TLS connection to %s: the server is not authenticated yet", host)
            return
        chain = presented_chain(ssl_object)
        if not chain:
            raise EstError(
                f"The TLS handshake with {host!r} finished without a server certificate.",
                hint="EST servers must present a certificate; check the server's TLS configuration.",
                libest_error="EST_ERR_SSL_CONNECT",
            )
        kind = self.trust.authorize_server(host, chain[0], verified_anchor(ssl_object))
        _log.debug("EST server %s authorized through an %s trust anchor (%s)", host, kind, ssl_object.version())

    def explain(self, exc: BaseException, host: str, chain: list[x509.Certificate]) -> EstError | None:
        """The typed error for a failed handshake with the EST context, or None if it is not a trust failure."""
        verify = find_cause(exc, ssl.SSLCertVerificationError)
        if not isinstance(verify, ssl.SSLCertVerificationError):
            return None
        return error_from_verification(
            verify.verify_code or 0,
            verify.verify_message or str(verify),
            host,
            chain,
            self.trust,
            dt.datetime.now(dt.UTC),
        )


def _is_verification_failure(exc: BaseException) -> bool:
    return find_cause(exc, ssl.SSLCertVerificationError) is not None


def _is_readable(sock: typing.Any) -> bool:
    """Whether ``sock`` has data or an end of stream to read (a pooled connection the server has closed).

    The same test httpcore makes (a zero-timeout poll); a missing or closed socket counts as readable, so the
    pool drops the connection.
    """
    fd = -1 if sock is None else sock.fileno()
    if fd < 0:
        return True
    if not hasattr(select, "poll"):  # pragma: no cover - Windows
        readable, _, _ = select.select([fd], [], [], 0)
        return bool(readable)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def _holds_for_a_body(buffer: bytes) -> bool:
    """True for a request head that announces a body: it waits to go out in one write with that body.

    httpcore writes the head and the body of a request separately: two TLS records, two system calls, and an
    EST server that wakes up twice per enrollment. Sending them together (as ``http.client`` does) saves both.
    Whatever is held goes out at the latest before the next read, so nothing can wait for it.
    """
    return buffer.endswith(b"\r\n\r\n") and buffer.startswith(b"POST ")


# -- sync ------------------------------------------------------------------------------------------------------


class _SyncStream(httpcore.NetworkStream):
    def __init__(
        self, inner: httpcore.NetworkStream, backend: _SyncBackend, host: str, port: int, via_proxy: bool
    ) -> None:
        self._inner = inner
        self._backend = backend
        self._host = host
        self._port = port
        self._via_proxy = via_proxy
        self._held = b""  # a request head waiting for its body (see _holds_for_a_body)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._held:
            self._write_held(timeout)
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if self._held:
            buffer, self._held = self._held + buffer, b""
        elif _holds_for_a_body(buffer):
            self._held = buffer
            return
        self._inner.write(buffer, timeout)

    def _write_held(self, timeout: float | None) -> None:
        buffer, self._held = self._held, b""
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._held = b""
        self._inner.close()

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        checks = self._backend.checks
        ours = ssl_context is checks.context
        host = server_hostname or self._host
        try:
            tls = self._inner.start_tls(ssl_context, server_hostname, timeout)
        except Exception as exc:
            if ours and _is_verification_failure(exc):
                chain = self._probe(host, timeout) if checks.may_probe and not self._via_proxy else []
                error = checks.explain(exc, host, chain)
                if error is not None:
                    raise error from exc
            raise
        if ours:
            try:
                checks.after_handshake(tls.get_extra_info("ssl_object"), host)
            except BaseException:
                tls.close()
                raise
        # A TLS connection to a proxy may carry the EST server's TLS next: keep watching.
        return _SyncStream(tls, self._backend, host, self._port, via_proxy=not ours or self._via_proxy)

    def _probe(self, host: str, timeout: float | None) -> list[x509.Certificate]:
        try:
            raw = self._backend.inner.connect_tcp(self._host, self._port, timeout)
            tls = raw.start_tls(self._backend.checks.probe_context, host, timeout)
        except Exception:
            return []
        try:
            return presented_chain(tls.get_extra_info("ssl_object"))
        finally:
            tls.close()


class _SyncBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend, checks: ServerChecks, via_proxy: bool) -> None:
        self.inner = inner
        self.checks = checks
        self.via_proxy = via_proxy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self.inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _SyncStream(stream, self, host, port, self.via_proxy)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[SocketOption] | None = None
    ) -> httpcore.NetworkStream:  # pragma: no cover - EST runs over TCP
        return self.inner.connect_unix_socket(path, timeout, socket_options)

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


# -- async -----------------------------------------------------------------------------------------------------


class _AsyncStream(httpcore.AsyncNetworkStream):
    def __init__(
        self, inner: httpcore.AsyncNetworkStream, backend: _AsyncBackend, host: str, port: int, via_proxy: bool
    ) -> None:
        self._inner = inner
        self._backend = backend
        self._host = host
        self._port = port
        self._via_proxy = via_proxy
        self._held = b""  # a request head waiting for its body (see _holds_for_a_body)
        self._extra: dict[str, typing.Any] = {}  # the stream's socket and TLS object, once looked up

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._held:
            buffer, self._held = self._held, b""
            await self._inner.write(buffer, timeout)
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if self._held:
            buffer, self._held = self._held + buffer, b""
        elif _holds_for_a_body(buffer):
            self._held = buffer
            return
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        self._held = b""
        await self._inner.aclose()

    def get_extra_info(self, info: str) -> typing.Any:
        # httpcore asks every pooled connection whether it is readable (closed by the server) for each request,
        # and anyio answers each lookup by building a dict of all the stream's attributes. The socket and the TLS
        # object never change during a stream's life: they are looked up once.
        if info == "is_readable":
            return _is_readable(self._lasting("socket"))
        if info in ("socket", "ssl_object"):
            return self._lasting(info)
        return self._inner.get_extra_info(info)

    def _lasting(self, info: str) -> typing.Any:
        value = self._extra.get(info)
        if value is None:
            value = self._extra[info] = self._inner.get_extra_info(info)
        return value

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        checks = self._backend.checks
        ours = ssl_context is checks.context
        host = server_hostname or self._host
        try:
            tls = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        except Exception as exc:
            if ours and _is_verification_failure(exc):
                chain = await self._probe(host, timeout) if checks.may_probe and not self._via_proxy else []
                error = checks.explain(exc, host, chain)
                if error is not None:
                    raise error from exc
            raise
        if ours:
            try:
                checks.after_handshake(tls.get_extra_info("ssl_object"), host)
            except BaseException:
                await tls.aclose()
                raise
        return _AsyncStream(tls, self._backend, host, self._port, via_proxy=not ours or self._via_proxy)

    async def _probe(self, host: str, timeout: float | None) -> list[x509.Certificate]:
        try:
            raw = await self._backend.inner.connect_tcp(self._host, self._port, timeout)
            tls = await raw.start_tls(self._backend.checks.probe_context, host, timeout)
        except Exception:
            return []
        try:
            return presented_chain(tls.get_extra_info("ssl_object"))
        finally:
            await tls.aclose()


class _AsyncBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, inner: httpcore.AsyncNetworkBackend, checks: ServerChecks, via_proxy: bool) -> None:
        self.inner = inner
        self.checks = checks
        self.via_proxy = via_proxy

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self.inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _AsyncStream(stream, self, host, port, self.via_proxy)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[SocketOption] | None = None
    ) -> httpcore.AsyncNetworkStream:  # pragma: no cover - EST runs over TCP
        return await self.inner.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


# -- factories -------------------------------------------------------------------------------------------------


class PlainHttpRedirect(Exception):
    """A redirect led to a non-HTTPS URL: refused before anything was sent there (the clients name the operation)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


class _HttpsOnlyTransport(httpx.HTTPTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme != "https":
            raise PlainHttpRedirect(str(request.url))
        return super().handle_request(request)


class _AsyncHttpsOnlyTransport(httpx.AsyncHTTPTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme != "https":
            raise PlainHttpRedirect(str(request.url))
        return await super().handle_async_request(request)


def _pool_of(transport: httpx.HTTPTransport | httpx.AsyncHTTPTransport) -> typing.Any:
    pool = getattr(transport, "_pool", None)
    if pool is None or not hasattr(pool, "_network_backend"):  # pragma: no cover - guards an httpx upgrade
        raise RuntimeError(
            "estclient cannot install its TLS server checks into this httpx version's transport; "
            "use httpx 0.28 (httpcore 1.x) or report the incompatibility."
        )
    return pool


def make_sync_transport(
    checks: ServerChecks, *, limits: httpx.Limits, proxy: str | httpx.Proxy | None
) -> httpx.HTTPTransport:
    """An ``httpx.HTTPTransport`` using ``checks.context`` that runs ``checks`` after every EST handshake.

    It refuses plain-HTTP URLs (a redirect away from HTTPS) before connecting: see :class:`PlainHttpRedirect`.
    """
    transport = _HttpsOnlyTransport(verify=checks.context, limits=limits, proxy=proxy, trust_env=False)
    pool = _pool_of(transport)
    pool._network_backend = _SyncBackend(pool._network_backend, checks, via_proxy=proxy is not None)
    return transport


def make_async_transport(
    checks: ServerChecks, *, limits: httpx.Limits, proxy: str | httpx.Proxy | None
) -> httpx.AsyncHTTPTransport:
    """An ``httpx.AsyncHTTPTransport`` using ``checks.context`` that runs ``checks`` after every EST handshake.

    It refuses plain-HTTP URLs (a redirect away from HTTPS) before connecting: see :class:`PlainHttpRedirect`.
    """
    transport = _AsyncHttpsOnlyTransport(verify=checks.context, limits=limits, proxy=proxy, trust_env=False)
    pool = _pool_of(transport)
    pool._network_backend = _AsyncBackend(pool._network_backend, checks, via_proxy=proxy is not None)
    return transport
