"""httpx authentication for AD CS web enrollment: NTLM, Kerberos and Negotiate over pyspnego, and Basic over TLS.

How a request goes (IIS semantics, one TCP connection at a time):

1. The request is sent as is. On a connection that has already authenticated, IIS answers it: no handshake,
   no extra round trip.
2. A 401 names the schemes the server offers (``WWW-Authenticate: Negotiate`` / ``NTLM``). The auth picks one,
   takes the server certificate from this very connection, computes the channel binding (RFC 5929
   ``tls-server-end-point``, on by default so IIS Extended Protection "Required" works) and answers with its
   token on the same connection: NTLM needs two legs, Kerberos one. The request (its body included) is
   replayed on every leg.
3. The last leg carries the request itself; a 401 there means the credentials or the binding were refused,
   which surfaces as :class:`~certsrv.AuthenticationError`. Once authenticated, the connection serves every
   later request, so a kept-alive client pays the handshake once per connection.

The handshake legs must land on the same connection. httpx hands back the connection the 401 arrived on when
the client is used from one thread at a time; with concurrent requests, give each its own client or limit the
client to one connection (``httpx.Limits(max_connections=1)``). HTTP/2 does not work with Windows
authentication; keep ``http2=False``.

Requests that carry a handshake token are marked with the request extension :data:`AUTH_PHASE_EXTENSION`
(value ``"handshake"``; ``"challenge"`` on the first, token-less send), so a caller catching
``httpx.TimeoutException`` can tell from ``exc.request.extensions`` that the limit struck during
authentication. ``handshake_timeout`` gives those legs their own limit.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import logging
import os
import threading
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NoReturn

import anyio.to_thread
import httpx
import spnego
from spnego.channel_bindings import GssChannelBindings

from certsrv._channel_binding import channel_bindings
from certsrv._errors import (
    AuthenticationError,
    ConfigurationError,
    InsecureAuthenticationError,
    KerberosUnavailableError,
)

__all__ = [
    "AUTH_PHASE_EXTENSION",
    "PASSWORD_ENV",
    "BasicAuth",
    "KerberosAuth",
    "NegotiateAuth",
    "NtlmAuth",
    "UserName",
    "parse_username",
]

log = logging.getLogger("certsrv.auth")

#: Environment variable the auth classes read the password from when none is passed.
PASSWORD_ENV = "CERTSRV_PASSWORD"  # noqa: S105 (a variable name, not a password)
#: Request extension naming the authentication phase of a send: ``"challenge"`` or ``"handshake"``.
AUTH_PHASE_EXTENSION = "certsrv_auth_phase"

AuthPhase = Literal["challenge", "handshake"]
_KERBEROS_INSTALL = 'pip install "adcs-certsrv[kerberos]"'


@dataclass(frozen=True)
class UserName:
    r"""A user name split into its parts.

    Attributes:
        user: The account name.
        domain: The NetBIOS domain (``DOMAIN\user``) or the realm / UPN suffix (``user@REALM``), if given.
        form: ``"down-level"`` for ``DOMAIN\user``, ``"upn"`` for ``user@REALM``, ``"bare"`` for ``user``.
    """

    user: str
    domain: str | None
    form: Literal["down-level", "upn", "bare"]

    @property
    def for_ntlm(self) -> str:
        r"""The name as NTLM sends it (the form typed; NTLM matches ``DOMAIN\user`` and UPNs)."""
        if self.form == "down-level":
            return f"{self.domain}\\{self.user}"
        if self.form == "upn":
            return f"{self.user}@{self.domain}"
        return self.user

    @property
    def for_kerberos(self) -> str:
        r"""The Kerberos principal: ``user@REALM`` with the realm upper-cased (``DOMAIN\user`` becomes that too).

        A bare name is left to the default realm of the Kerberos configuration.
        """
        if self.domain:
            return f"{self.user}@{self.domain.upper()}"
        return self.user


def parse_username(name: str) -> UserName:
    r"""Split ``DOMAIN\user``, ``user@REALM`` or ``user``.

    Raises:
        ConfigurationError: the name is empty or has an empty part (``DOMAIN\``, ``@REALM``).
    """
    text = name.strip()
    if "\\" in text:
        domain, _, user = text.partition("\\")
        form: Literal["down-level", "upn", "bare"] = "down-level"
    elif "@" in text:
        user, _, domain = text.rpartition("@")
        form = "upn"
    else:
        user, domain, form = text, "", "bare"
    if not user or (form != "bare" and not domain) or any(c in user for c in "\\@"):
        raise ConfigurationError(
            f"the user name {name!r} is not of the form DOMAIN\\user, user@REALM or user. "
            "Fix: give the account as DOMAIN\\user (NTLM) or user@REALM (Kerberos, NTLM)"
        )
    return UserName(user, domain or None, form)


def _password(username: str | None, password: str | None) -> str | None:
    if password is not None:
        return password
    if username is not None:
        return os.environ.get(PASSWORD_ENV)
    return None


def kerberos_available() -> bool:
    """True when python-gssapi and krb5 (the ``kerberos`` extra) are importable."""
    return importlib.util.find_spec("gssapi") is not None and importlib.util.find_spec("krb5") is not None


def _offered(response: httpx.Response) -> dict[str, bytes | None]:
    """The schemes of the ``WWW-Authenticate`` headers (lower-cased) and their tokens, if any."""
    offered: dict[str, bytes | None] = {}
    for value in response.headers.get_list("www-authenticate"):
        for part in value.split(","):
            scheme, _, param = part.strip().partition(" ")
            if not scheme or "=" in scheme:
                continue
            token: bytes | None = None
            param = param.strip()
            if param and "=" not in param.rstrip("="):
                try:
                    token = base64.b64decode(param, validate=True)
                except (binascii.Error, ValueError):
                    token = None
            offered.setdefault(scheme.lower(), token)
    return offered


def _peer_certificate(response: httpx.Response) -> bytes | None:
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    ssl_object = stream.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    # The sync transport hands out a low-level _ssl._SSLSocket: getpeercert takes the flag positionally.
    der = ssl_object.getpeercert(True)
    return der if isinstance(der, bytes) and der else None


class _SpnegoAuth(httpx.Auth):
    """The shared flow of :class:`NtlmAuth`, :class:`KerberosAuth` and :class:`NegotiateAuth`."""

    requires_request_body = True  # the body is replayed on every handshake leg
    #: (scheme offered by the server, pyspnego protocol) in order of preference.
    _choices: ClassVar[tuple[tuple[str, str], ...]]
    _method: ClassVar[str]

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        *,
        channel_binding: bool = True,
        service: str = "HTTP",
        hostname: str | None = None,
        handshake_timeout: httpx.Timeout | float | None = None,
    ) -> None:
        self._name = parse_username(username) if username is not None else None
        self._password = _password(username, password)
        self.channel_binding = channel_binding
        self.service = service
        self.hostname = hostname
        self._handshake_timeout = (
            None
            if handshake_timeout is None
            else handshake_timeout
            if isinstance(handshake_timeout, httpx.Timeout)
            else httpx.Timeout(handshake_timeout)
        )
        self._lock = threading.Lock()
        self._handshakes = 0

    @property
    def username(self) -> str | None:
        """The user name as given (``None``: the Kerberos credential cache decides)."""
        return self._name.for_ntlm if self._name else None

    @property
    def handshakes(self) -> int:
        """How many handshakes this auth has started (one per connection that needed to authenticate)."""
        return self._handshakes

    def __repr__(self) -> str:  # never the password
        return f"{type(self).__name__}(username={self.username!r}, channel_binding={self.channel_binding})"

    # -- the parts subclasses vary ---------------------------------------------------------------------

    def _client_name(self, protocol: str) -> str | None:
        if self._name is None:
            return None
        return self._name.for_kerberos if protocol == "kerberos" else self._name.for_ntlm

    def _new_context(self, protocol: str, host: str, bindings: GssChannelBindings | None) -> Any:
        return spnego.client(
            self._client_name(protocol),
            self._password,
            hostname=host,
            service=self.service,
            protocol=protocol,
            channel_bindings=bindings,
        )

    # -- the flow -----------------------------------------------------------------------------------------

    def _choose(self, response: httpx.Response) -> tuple[str, str]:
        offered = _offered(response)
        for scheme, protocol in self._choices:
            if scheme.lower() in offered:
                return scheme, protocol
        schemes = ", ".join(sorted(offered)) or "none"
        raise AuthenticationError(
            f"{response.request.url.host} answered 401 offering {schemes}, but {self._method} needs "
            f"{' or '.join(s for s, _ in self._choices)}",
            hint=(
                "enable Windows Authentication (Negotiate and NTLM providers) on the IIS /certsrv application, "
                "or choose the authentication method the server offers"
            ),
            status_code=401,
        )

    def _fail(
        self, what: str, scheme: str, status: int | None, *, bound: bool, exc: BaseException | None = None
    ) -> NoReturn:
        if not self.channel_binding:
            binding_hint = "channel binding is off: if IIS Extended Protection is 'Required', turn channel binding on"
        elif not bound:
            binding_hint = "no channel binding could be made (no TLS certificate on the connection)"
        else:
            binding_hint = (
                "if a TLS-inspecting proxy or load balancer terminates TLS before IIS, the channel binding "
                "cannot match: connect to IIS directly or set Extended Protection to 'Accept'"
            )
        detail = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
        raise AuthenticationError(
            f"{self._method} authentication as {self.username or 'the cached Kerberos principal'} failed: "
            f"{what}{detail}",
            hint=(
                "check the user name (DOMAIN\\user or user@REALM) and the password "
                f"(argument or {PASSWORD_ENV}); {binding_hint}"
            ),
            scheme=scheme,
            status_code=status,
        ) from exc

    def _set_phase(self, request: httpx.Request, phase: AuthPhase) -> None:
        request.extensions[AUTH_PHASE_EXTENSION] = phase
        if phase == "handshake" and self._handshake_timeout is not None:
            request.extensions["timeout"] = self._handshake_timeout.as_dict()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Send the request; answer a 401 with a handshake on the same connection (see the module docs)."""
        self._set_phase(request, "challenge")
        response = yield request
        if response.status_code != 401:
            return
        handshake = _Handshake(self, request, response)
        token: bytes | None = handshake.first_token()
        self._set_phase(request, "handshake")
        while token is not None:
            request.headers["Authorization"] = handshake.header(token)
            response = yield request
            token = handshake.answer(response)

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """The same flow for ``httpx.AsyncClient``; Kerberos work (KDC round trips) runs in a worker thread."""
        await request.aread()
        self._set_phase(request, "challenge")
        response = yield request
        if response.status_code != 401:
            return
        handshake = _Handshake(self, request, response)
        token: bytes | None = await handshake.run(handshake.first_token)
        self._set_phase(request, "handshake")
        while token is not None:
            request.headers["Authorization"] = handshake.header(token)
            response = yield request
            token = await handshake.run(handshake.answer, response)


class _Handshake:
    """One connection's handshake: the scheme, the binding and the pyspnego context between legs."""

    def __init__(self, auth: _SpnegoAuth, request: httpx.Request, response: httpx.Response) -> None:
        self.auth = auth
        self.scheme, self.protocol = auth._choose(response)
        cert = _peer_certificate(response) if auth.channel_binding else None
        self.bindings = channel_bindings(cert) if cert is not None else None
        self.host = auth.hostname or request.url.host
        self.stream = response.extensions.get("network_stream")
        self.context: Any = None
        with auth._lock:
            auth._handshakes += 1
        log.debug(
            "authenticating to %s with %s (%s), channel binding %s",
            self.host,
            self.scheme,
            self.protocol,
            self.bindings is not None,
        )

    def fail(self, what: str, status: int | None, exc: BaseException | None = None) -> NoReturn:
        self.auth._fail(what, self.scheme, status, bound=self.bindings is not None, exc=exc)

    async def run(self, step: Callable[..., bytes | None], *args: Any) -> bytes | None:
        """Run a step; Kerberos steps may talk to the KDC, so they leave the event loop."""
        if self.protocol == "ntlm":
            return step(*args)
        return await anyio.to_thread.run_sync(step, *args)

    def header(self, token: bytes) -> str:
        return f"{self.scheme} {base64.b64encode(token).decode('ascii')}"

    def first_token(self) -> bytes:
        try:
            self.context = self.auth._new_context(self.protocol, self.host, self.bindings)
            token = self.context.step()
        except AuthenticationError:
            raise
        except Exception as exc:  # pyspnego, gssapi and krb5 raise their own trees
            self.fail("no token could be made", None, exc)
        if not token:
            self.fail("the handshake ended without a token to send", None)
        return bytes(token)

    def answer(self, response: httpx.Response) -> bytes | None:
        """The next token to send, or ``None`` once the server accepted the request."""
        server_token = _offered(response).get(self.scheme.lower())
        if response.status_code != 401:
            if server_token is not None and not self.context.complete:
                try:  # Kerberos mutual authentication: the AP-REP rides on the answer
                    self.context.step(server_token)
                except Exception as exc:  # the server could not prove its identity
                    self.fail("the server's final token did not verify", None, exc)
            return None
        if server_token is None or self.context.complete:
            moved = self.stream is not None and response.extensions.get("network_stream") is not self.stream
            self.fail(
                "the handshake legs went over different connections (limit the client to one connection)"
                if moved
                else "the server answered 401 to the credentials",
                401,
            )
        try:
            token = self.context.step(server_token)
        except Exception as exc:  # a malformed or hostile challenge
            self.fail("the server's challenge was rejected", 401, exc)
        if not token:
            self.fail("the handshake ended without a token to send", 401)
        return bytes(token)


class NtlmAuth(_SpnegoAuth):
    r"""NTLM authentication (pyspnego, pure Python), with channel binding on by default.

    Prefers the ``NTLM`` scheme and sends raw NTLM under ``Negotiate`` when that is all the server offers.

    Args:
        username: ``DOMAIN\user`` (as NTLM matches it) or ``user@REALM``.
        password: The password; when ``None``, read from ``CERTSRV_PASSWORD``.
        channel_binding: Send the RFC 5929 tls-server-end-point binding (needed by IIS Extended Protection
            "Required"; harmless under "Accept" and "Off").
        service: The service class of the server's principal.
        hostname: The host name for the principal; defaults to the URL's host.
        handshake_timeout: A limit for the legs that carry handshake tokens; ``None`` keeps the client's.

    Raises:
        ConfigurationError: no password was given or found in ``CERTSRV_PASSWORD``, or the user name is
            malformed.
    """

    _choices = (("NTLM", "ntlm"), ("Negotiate", "ntlm"))
    _method = "NTLM"

    def __init__(
        self,
        username: str,
        password: str | None = None,
        *,
        channel_binding: bool = True,
        service: str = "HTTP",
        hostname: str | None = None,
        handshake_timeout: httpx.Timeout | float | None = None,
    ) -> None:
        super().__init__(
            username,
            password,
            channel_binding=channel_binding,
            service=service,
            hostname=hostname,
            handshake_timeout=handshake_timeout,
        )
        if self._password is None:
            raise ConfigurationError(
                f"NTLM needs a password for {username}. "
                f"Fix: pass password=... or set the environment variable {PASSWORD_ENV}"
            )


class KerberosAuth(_SpnegoAuth):
    r"""Kerberos authentication (python-gssapi through pyspnego) under the ``Negotiate`` scheme.

    With a user name and a password (argument or ``CERTSRV_PASSWORD``) it gets its own ticket for each
    connection that authenticates; without them it uses the credential cache (``kinit``, ``KRB5CCNAME``).
    The server principal is ``HTTP/<host as in the URL>``; DNS canonicalisation is the Kerberos
    configuration's business.

    Args:
        username: ``user@REALM`` (``DOMAIN\user`` is read as ``user@DOMAIN``), or ``None`` for the cache's
            principal.
        password: The password; when ``None`` and a user name is given, read from ``CERTSRV_PASSWORD``; when
            still ``None``, the credential cache is used for that principal.
        channel_binding: Send the RFC 5929 tls-server-end-point binding (IIS Extended Protection).
        service: The service class of the server's principal.
        hostname: The host name for the principal; defaults to the URL's host.
        handshake_timeout: A limit for the legs that carry handshake tokens; ``None`` keeps the client's.

    Raises:
        KerberosUnavailableError: python-gssapi or krb5 is not installed.
    """

    _choices = (("Negotiate", "kerberos"), ("Kerberos", "kerberos"))
    _method = "Kerberos"

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        *,
        channel_binding: bool = True,
        service: str = "HTTP",
        hostname: str | None = None,
        handshake_timeout: httpx.Timeout | float | None = None,
    ) -> None:
        if not kerberos_available():
            raise KerberosUnavailableError(
                "Kerberos authentication needs python-gssapi and krb5, which are not installed",
                hint=f"{_KERBEROS_INSTALL} (it builds against MIT krb5: Debian libkrb5-dev), or use NTLM",
                scheme="Negotiate",
            )
        super().__init__(
            username,
            password,
            channel_binding=channel_binding,
            service=service,
            hostname=hostname,
            handshake_timeout=handshake_timeout,
        )


class NegotiateAuth(_SpnegoAuth):
    r"""SPNEGO ``Negotiate``: Kerberos when it can get a ticket, NTLM otherwise; plain ``NTLM`` if that is all.

    Without python-gssapi (the ``kerberos`` extra) it negotiates NTLM only. For Kerberos give the user as
    ``user@REALM``.

    Args:
        username: ``user@REALM`` or ``DOMAIN\user`` (the latter only works for NTLM).
        password: The password; when ``None``, read from ``CERTSRV_PASSWORD`` (Kerberos can then still use
            the credential cache).
        channel_binding: Send the RFC 5929 tls-server-end-point binding (IIS Extended Protection).
        service: The service class of the server's principal.
        hostname: The host name for the principal; defaults to the URL's host.
        handshake_timeout: A limit for the legs that carry handshake tokens; ``None`` keeps the client's.
    """

    _choices = (("Negotiate", "negotiate"), ("NTLM", "ntlm"))
    _method = "Negotiate"

    def _client_name(self, protocol: str) -> str | None:
        if self._name is None:
            return None
        # One name serves both mechanisms: a UPN with the realm upper-cased works for Kerberos and NTLM alike.
        return self._name.for_kerberos if self._name.form == "upn" else self._name.for_ntlm


class BasicAuth(httpx.Auth):
    r"""HTTP Basic authentication, refused over plain ``http://``.

    The credentials go with every request (IIS Basic is per request). Use it only where IIS offers Basic and
    Windows authentication is not possible.

    Args:
        username: The account as IIS expects it (``DOMAIN\user`` or ``user@REALM``).
        password: The password; when ``None``, read from ``CERTSRV_PASSWORD``.

    Raises:
        ConfigurationError: no password was given or found in ``CERTSRV_PASSWORD``.
    """

    def __init__(self, username: str, password: str | None = None) -> None:
        self.username = username
        found = _password(username, password)
        if found is None:
            raise ConfigurationError(
                f"Basic authentication needs a password for {username}. "
                f"Fix: pass password=... or set the environment variable {PASSWORD_ENV}"
            )
        self._header = "Basic " + base64.b64encode(f"{username}:{found}".encode()).decode("ascii")

    def __repr__(self) -> str:  # never the password
        return f"BasicAuth(username={self.username!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the ``Authorization`` header, over https only; a 401 is an :class:`AuthenticationError`.

        Raises:
            InsecureAuthenticationError: the URL is ``http://``.
            AuthenticationError: the server answered 401.
        """
        if request.url.scheme != "https":
            raise InsecureAuthenticationError(
                f"Basic authentication over {request.url.scheme}:// would send the password in clear",
                hint="use an https:// URL (IIS: require SSL on /certsrv), or NTLM/Kerberos",
                scheme="Basic",
            )
        request.headers["Authorization"] = self._header
        response = yield request
        if response.status_code == 401:
            offered = ", ".join(sorted(_offered(response))) or "none"
            raise AuthenticationError(
                f"Basic authentication as {self.username} was refused (the server offers: {offered})",
                hint="check the user name and password, and that IIS has Basic authentication enabled on /certsrv",
                scheme="Basic",
                status_code=401,
            )
