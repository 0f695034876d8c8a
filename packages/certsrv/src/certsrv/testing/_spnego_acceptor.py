r"""The server side of Windows authentication for the AD CS emulator: NTLM, Kerberos and Negotiate over pyspnego.

It behaves as IIS does on ``/certsrv`` with Windows Authentication on and anonymous access off:

* a request without credentials gets 401 with ``WWW-Authenticate: Negotiate`` and ``WWW-Authenticate: NTLM``;
* the handshake state belongs to the TCP connection (:meth:`SpnegoAcceptor.new_connection`), and once a
  connection has authenticated, every later request on it is served without a new handshake;
* Extended Protection (channel binding, RFC 5929 tls-server-end-point) is ``"off"``, ``"accept"`` (IIS
  "Accept": a binding the client sends must match, none is fine) or ``"required"`` (IIS "Required": the binding
  must be present and match).

Users for NTLM come from ``users=`` (``DOMAIN\name:password`` or ``name@REALM:password``) or from the file
named by ``NTLM_USER_FILE``; Kerberos uses a keytab (``keytab=`` or ``KRB5_KTNAME``). pyspnego reads both
from the environment, so every acceptor step runs under one process-wide lock that sets them for its duration.

Use from a ``http.server`` handler::

    acceptor = SpnegoAcceptor(users=["EXAMPLE\\alice:Passw0rd!"], extended_protection="required")
    conn = acceptor.new_connection()          # once per TCP connection
    result = conn.authenticate(self.headers.get("Authorization"), server_cert_der)
    if not result.authenticated:
        send 401 with result.headers
    else:
        serve the page for result.user (and send result.headers: Kerberos' mutual-auth token)
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import shutil
import struct
import tempfile
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import spnego
from spnego.channel_bindings import GssChannelBindings

from certsrv._channel_binding import channel_bindings
from certsrv._errors import ConfigurationError

__all__ = ["AuthResult", "ExtendedProtection", "SpnegoAcceptor", "SpnegoConnection", "ntlm_channel_binding"]

ExtendedProtection = Literal["off", "accept", "required"]

_EXTENDED_PROTECTION = ("off", "accept", "required")
_GSS_C_CHANNEL_BOUND_FLAG = 0x800
_NTLM_SIGNATURE = b"NTLMSSP\x00"
_MSV_AV_EOL = 0x0000
_MSV_AV_CHANNEL_BINDINGS = 0x000A
_ENV_LOCK = threading.RLock()


def ntlm_channel_binding(token: bytes) -> bytes | None:
    """The MsvAvChannelBindings value of an NTLM AUTHENTICATE message (raw or inside SPNEGO), if it has one.

    Looks for the NTLMSSP signature, reads the NTLMv2 response and walks its AV pairs (MS-NLMP 2.2.2.1). Returns
    the 16-byte hash (all zeros when the client sent an empty binding), or ``None`` when the token is no NTLMv2
    AUTHENTICATE message or carries no binding. Never raises on malformed input.
    """
    start = token.find(_NTLM_SIGNATURE)
    if start < 0:
        return None
    msg = token[start:]
    if len(msg) < 28 or struct.unpack_from("<I", msg, 8)[0] != 3:
        return None
    nt_len, _, nt_offset = struct.unpack_from("<HHI", msg, 20)
    nt = msg[nt_offset : nt_offset + nt_len]
    if len(nt) != nt_len or nt_len <= 24:  # 24 bytes: NTLMv1, no AV pairs
        return None
    pos = 16 + 28  # NTProofStr, then the NTLMv2 client challenge header up to its AV pairs
    while pos + 4 <= len(nt):
        av_id, av_len = struct.unpack_from("<HH", nt, pos)
        pos += 4
        if av_id == _MSV_AV_EOL:
            return None
        value = nt[pos : pos + av_len]
        if len(value) != av_len:
            return None
        if av_id == _MSV_AV_CHANNEL_BINDINGS:
            return value
        pos += av_len
    return None


@dataclass(frozen=True)
class AuthResult:
    r"""The outcome of :meth:`SpnegoConnection.authenticate` for one request.

    Attributes:
        user: The authenticated user (``DOMAIN\user`` for NTLM, ``user@REALM`` for Kerberos), or ``None``.
        headers: Headers to send: the 401 challenges, a handshake continuation, or Kerberos' final token.
        scheme: The scheme the client used (``"Negotiate"`` or ``"NTLM"``), when it sent credentials.
        mechanism: ``"ntlm"`` or ``"kerberos"`` once known.
        reason: Why the credentials were rejected (for logs and tests), ``None`` otherwise.
        handshake: True when this request carried a handshake token.
    """

    user: str | None
    headers: tuple[tuple[str, str], ...] = ()
    scheme: str | None = None
    mechanism: str | None = None
    reason: str | None = None
    handshake: bool = False

    @property
    def authenticated(self) -> bool:
        """True when the request may be served (the connection is authenticated)."""
        return self.user is not None

    @property
    def status(self) -> int:
        """200 when authenticated, else 401."""
        return 200 if self.user is not None else 401


def _parse_users(users: Mapping[str, str] | Iterable[str]) -> list[str]:
    pairs = list(users.items()) if isinstance(users, Mapping) else [_split_entry(u) for u in users]
    lines = []
    for name, password in pairs:
        if "\\" in name:
            domain, _, user = name.partition("\\")
            lines.append(f"{domain}:{user}:{password}")
        elif "@" in name:
            lines.append(f":{name}:{password}")
            user, _, realm = name.rpartition("@")
            # also DOMAIN\user for the realm's first label, as AD maps EXAMPLE.TEST to the NetBIOS name EXAMPLE
            lines.append(f"{realm.split('.')[0]}:{user}:{password}")
        else:
            raise ConfigurationError(
                f"user {name!r} has no domain. Fix: give users as DOMAIN\\name:password or name@REALM:password"
            )
    return lines


def _split_entry(entry: str) -> tuple[str, str]:
    name, sep, password = entry.partition(":")
    if not sep or not name or not password:
        raise ConfigurationError(
            "a user entry is not NAME:PASSWORD. Fix: give users as DOMAIN\\name:password or name@REALM:password"
        )
    return name, password


class SpnegoAcceptor:
    r"""IIS-like Windows authentication for a test server: configuration shared by all connections.

    Args:
        users: NTLM users as ``DOMAIN\name:password`` / ``name@REALM:password`` strings or a mapping of name to
            password. ``None`` uses the file named by ``NTLM_USER_FILE`` (pyspnego's ``DOMAIN:user:password``
            lines).
        keytab: The keytab with the service's keys (``HTTP/host``) for Kerberos; ``None`` uses ``KRB5_KTNAME``.
            Without a usable keytab Negotiate falls back to NTLM.
        extended_protection: ``"off"``, ``"accept"`` or ``"required"`` (IIS Extended Protection).
        schemes: The schemes offered in the 401, in order (IIS default ``("Negotiate", "NTLM")``; a
            Kerberos-only provider offers ``("Negotiate",)``).
        service: The service class (the ``HTTP`` in ``HTTP/host``).

    Raises:
        ConfigurationError: an unknown Extended Protection mode or scheme, or a malformed user entry.
    """

    def __init__(
        self,
        *,
        users: Mapping[str, str] | Iterable[str] | None = None,
        keytab: str | os.PathLike[str] | None = None,
        extended_protection: ExtendedProtection = "off",
        schemes: Iterable[str] = ("Negotiate", "NTLM"),
        service: str = "HTTP",
    ) -> None:
        if extended_protection not in _EXTENDED_PROTECTION:
            raise ConfigurationError(
                f"unknown Extended Protection mode {extended_protection!r}. Fix: use one of off, accept, required"
            )
        self.schemes = tuple(schemes)
        if not self.schemes or any(s.lower() not in ("negotiate", "ntlm") for s in self.schemes):
            raise ConfigurationError(f"unsupported schemes {self.schemes!r}. Fix: offer Negotiate and/or NTLM")
        self.extended_protection: ExtendedProtection = extended_protection
        self.service = service
        self._folder: Path | None = None
        self._user_file: str | None = None
        if users is not None:
            self._folder = Path(tempfile.mkdtemp(prefix="certsrv-ntlm-"))
            path = self._folder / "users"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write("\n".join(_parse_users(users)) + "\n")
            self._user_file = str(path)
            # removed by close(), or at garbage collection / interpreter exit when nobody called it
            self._cleanup: weakref.finalize[Any, Any] | None = weakref.finalize(
                self, shutil.rmtree, self._folder, ignore_errors=True
            )
        else:
            self._cleanup = None
        self._keytab = None if keytab is None else os.fspath(keytab)
        if self._keytab is not None and ":" not in self._keytab.split("/")[0]:
            self._keytab = f"FILE:{self._keytab}"
        self._stats_lock = threading.Lock()
        self.legs = 0
        self.logins = 0
        self.rejections = 0

    @property
    def challenge_headers(self) -> tuple[tuple[str, str], ...]:
        """The ``WWW-Authenticate`` headers of a bare 401."""
        return tuple(("WWW-Authenticate", s) for s in self.schemes)

    def new_connection(self) -> SpnegoConnection:
        """State for one TCP connection; call once per accepted connection."""
        return SpnegoConnection(self)

    def close(self) -> None:
        """Remove the temporary user file (if ``users=`` made one); also done at garbage collection."""
        if self._cleanup is not None:
            self._cleanup()

    def __enter__(self) -> SpnegoAcceptor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _environment(self) -> Iterator[None]:
        """Hold the process-wide lock and point pyspnego at this acceptor's user file and keytab."""
        overrides = {"NTLM_USER_FILE": self._user_file, "KRB5_KTNAME": self._keytab}
        with _ENV_LOCK:
            saved = {k: os.environ.get(k) for k, v in overrides.items() if v is not None}
            try:
                for key, value in overrides.items():
                    if value is not None:
                        os.environ[key] = value
                yield
            finally:
                for key, old in saved.items():
                    if old is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = old

    def _count(self, *, leg: bool = False, login: bool = False, rejection: bool = False) -> None:
        with self._stats_lock:
            self.legs += leg
            self.logins += login
            self.rejections += rejection


def _channel_bound(context: Any) -> bool:
    """Whether a completed Kerberos context saw matching channel bindings (GSS_C_CHANNEL_BOUND_FLAG)."""
    inner = getattr(context, "_context", None)
    target = inner if isinstance(inner, spnego.ContextProxy) else context
    return bool(int(getattr(target, "_context_attr", 0)) & _GSS_C_CHANNEL_BOUND_FLAG)


class SpnegoConnection:
    """The authentication state of one TCP connection (see :meth:`SpnegoAcceptor.new_connection`).

    Attributes:
        user: The user this connection authenticated as, or ``None``.
        scheme: The scheme of that login (``"Negotiate"`` or ``"NTLM"``).
        mechanism: The mechanism of that login (``"ntlm"`` or ``"kerberos"``).
        logins: Completed handshakes on this connection.
        legs: Requests that carried a handshake token.
    """

    def __init__(self, acceptor: SpnegoAcceptor) -> None:
        self._acceptor = acceptor
        self._context: Any = None
        self._scheme: str | None = None
        self._mech = "kerberos"
        self.user: str | None = None
        self.scheme: str | None = None
        self.mechanism: str | None = None
        self.logins = 0
        self.legs = 0

    def _challenge(self, reason: str | None = None, scheme: str | None = None, mech: str | None = None) -> AuthResult:
        self._context = None
        self._scheme = None
        if reason is not None:
            self._acceptor._count(rejection=True)
        return AuthResult(None, self._acceptor.challenge_headers, scheme=scheme, mechanism=mech, reason=reason)

    def authenticate(self, authorization: str | None, server_cert_der: bytes) -> AuthResult:
        """Process one request's ``Authorization`` header on this connection.

        Args:
            authorization: The header's value (``"NTLM <base64>"`` / ``"Negotiate <base64>"``), or ``None``.
            server_cert_der: The DER certificate this server presents on the connection (for the binding).

        Returns:
            The result: authenticated (``user`` set), or a 401 with the headers to send.
        """
        if authorization is None or not authorization.strip():
            if self.user is not None:
                return AuthResult(self.user, scheme=self.scheme, mechanism=self.mechanism)
            return self._challenge()
        scheme_text, _, token_text = authorization.strip().partition(" ")
        scheme = next((s for s in self._acceptor.schemes if s.lower() == scheme_text.lower()), None)
        if scheme is None:
            return self._challenge(f"scheme {scheme_text!r} is not offered")
        try:
            token = base64.b64decode(token_text.strip(), validate=True)
        except (binascii.Error, ValueError):
            return self._challenge("the token is not base64", scheme)
        if not token:
            return self._challenge("the token is empty", scheme)
        self.legs += 1
        self._acceptor._count(leg=True)
        if self._context is None or self._scheme != scheme:
            self.user = None  # a new handshake replaces the connection's identity, as in IIS
        return self._step(scheme, token, server_cert_der)

    def _step(self, scheme: str, token: bytes, server_cert_der: bytes) -> AuthResult:
        mode = self._acceptor.extended_protection
        is_ntlm = _NTLM_SIGNATURE in token
        mech = "ntlm" if is_ntlm or (self._context is not None and self._mech == "ntlm") else "kerberos"
        bindings: GssChannelBindings | None = None
        if mode != "off":
            bindings = channel_bindings(server_cert_der)
            client_binding = ntlm_channel_binding(token) if is_ntlm else None
            sent = client_binding is not None and client_binding != b"\x00" * 16
            if is_ntlm and _is_authenticate(token):
                if mode == "accept" and not sent:
                    bindings = None  # IIS "Accept": no binding from the client is fine
                elif mode == "required" and not sent:
                    return self._challenge("Extended Protection requires a channel binding", scheme, "ntlm")
        try:
            with self._acceptor._environment():
                if self._context is None:
                    self._context = spnego.server(
                        service=self._acceptor.service,
                        protocol="negotiate" if scheme == "Negotiate" else "ntlm",
                    )
                    self._scheme = scheme
                    self._mech = mech
                out = self._context.step(token, channel_bindings=bindings)
        except Exception as exc:  # any acceptor failure (bad password, bad binding, garbage) is a rejection
            return self._challenge(f"{type(exc).__name__}: {exc}", scheme, mech)
        if not self._context.complete:
            if out is None:
                return self._challenge("the handshake stalled", scheme, mech)
            return AuthResult(
                None, (("WWW-Authenticate", f"{scheme} {_b64(out)}"),), scheme=scheme, mechanism=mech, handshake=True
            )
        negotiated = getattr(self._context, "negotiated_protocol", None) or mech
        if mode == "required" and negotiated == "kerberos" and not _channel_bound(self._context):
            return self._challenge("Extended Protection requires a channel binding", scheme, "kerberos")
        user = self._context.client_principal or ""
        self._context = None
        self.user, self.scheme, self.mechanism = user, scheme, negotiated
        self.logins += 1
        self._acceptor._count(login=True)
        headers = (("WWW-Authenticate", f"{scheme} {_b64(out)}"),) if out else ()
        return AuthResult(user, headers, scheme=scheme, mechanism=negotiated, handshake=True)


def _is_authenticate(token: bytes) -> bool:
    start = token.find(_NTLM_SIGNATURE)
    return start >= 0 and token[start + 8 : start + 12] == b"\x03\x00\x00\x00"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
