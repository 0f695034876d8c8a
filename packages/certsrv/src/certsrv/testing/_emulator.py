"""The AD CS emulator: the IIS ``/certsrv`` web enrollment site over HTTP/1.1 and TLS on loopback.

It behaves as IIS with Windows authentication does: a request without credentials gets ``401`` with
``WWW-Authenticate: Negotiate`` and ``WWW-Authenticate: NTLM`` (and ``Basic`` when enabled) and IIS's 401 page; an
NTLM or Kerberos handshake authenticates the TCP connection, so later requests on it need no new handshake;
Extended Protection (channel binding) is off, accept or required. The pages are rendered from the real AD CS markup
(see :mod:`certsrv.testing._pages`); the CA behind them is :class:`~certsrv.testing.EmulatedCa`. Every response is
written to an IIS W3C access log (:class:`~certsrv.testing.IisLog`), and faults (slow authentication, slow
enrollment, HTTP 500, connection reset) can be switched on at any time through :attr:`AdcsEmulator.faults`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import http.server
import logging
import os
import socket
import ssl
import struct
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs, parse_qsl, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from certsrv.testing._ca import (
    INVALID_PARAMETER,
    PROPERTY_EMPTY,
    S_OK,
    CertificateTemplate,
    Disposition,
    EmulatedCa,
)
from certsrv.testing._iislog import IisLog, IisLogEntry
from certsrv.testing._pages import Language, PageRenderer
from certsrv.testing._spnego_acceptor import AuthResult, ExtendedProtection, SpnegoAcceptor, SpnegoConnection

__all__ = ["AdcsEmulator", "AuthScheme", "ExtendedProtection", "Faults"]

_log = logging.getLogger(__name__)

AuthScheme = Literal["negotiate", "ntlm", "basic"]

#: What IIS logs for a 401 (``sc-substatus``, ``sc-win32-status``).
_NO_CREDENTIALS = (2, 5)  # no Authorization header: 401.2, ERROR_ACCESS_DENIED
_CHALLENGE = (1, 2148074254)  # a handshake leg: 401.1, SEC_E_NO_CREDENTIALS (0x8009030E), as in the seed's log
_LOGON_FAILURE = (1, 1326)  # wrong user or password: 401.1, ERROR_LOGON_FAILURE

_DEFAULT_TEMPLATES = (CertificateTemplate("WebServer", display_name="Web Server"), CertificateTemplate("User"))


@dataclass
class Faults:
    """Faults the emulator injects, switchable while it runs.

    Page names are the last path segment in lower case (``certfnsh.asp``, ``certnew.cer``, ``certnew.p7b``,
    ``certcrl.crl``, ``certcarc.asp``, ``certrqxt.asp``, ``default.asp`` for ``/certsrv/``, ``certsrv`` for
    ``/certsrv``); ``"*"`` stands for every page.

    Attributes:
        auth_delay: Seconds to wait before sending each 401 (the authentication legs): reproduces the seed's
            "CES authentication timeout".
        enroll_delay: Seconds to wait before answering certfnsh.asp: reproduces the "CES enrollment timeout".
        download_delay: Seconds to wait before answering certnew.cer, certnew.p7b and certcrl.crl.
        http_500: Pages answered with IIS's "500 - Internal server error." (after authentication).
        reset: Pages on which the emulator resets the TCP connection (RST, no response) instead of answering.
    """

    auth_delay: float = 0.0
    enroll_delay: float = 0.0
    download_delay: float = 0.0
    http_500: set[str] = field(default_factory=set)
    reset: set[str] = field(default_factory=set)

    def clear(self) -> None:
        """Switch every fault off."""
        self.auth_delay = self.enroll_delay = self.download_delay = 0.0
        self.http_500 = set()
        self.reset = set()

    @staticmethod
    def _matches(pages: set[str], page: str) -> bool:
        return "*" in pages or page in pages


@dataclass(frozen=True)
class AuthDecision:
    r"""The outcome of one authentication step on a connection.

    Attributes:
        user: The authenticated user (``DOMAIN\name`` or ``name@REALM``), or ``None``: answer 401.
        headers: ``WWW-Authenticate`` values to send (a challenge token, or the final token with the 200).
        substatus: ``sc-substatus`` for the log when the answer is 401.
        win32_status: ``sc-win32-status`` for the log when the answer is 401.
        persistent: Whether the connection stays authenticated (NTLM, Kerberos) or each request must carry
            credentials (Basic).
    """

    user: str | None
    headers: tuple[str, ...] = ()
    substatus: int = 0
    win32_status: int = 0
    persistent: bool = True


class ConnectionAuthenticator(Protocol):
    """Authentication state of one TCP connection (a pyspnego context lives here between legs)."""

    def authenticate(self, authorization: str | None, server_cert_der: bytes) -> AuthDecision:
        """Process the request's ``Authorization`` header (``None`` when absent)."""
        ...


def _basic_user(header: str, users: Mapping[str, str]) -> str | None:
    try:
        decoded = base64.b64decode(header.split(" ", 1)[1].strip(), validate=True).decode("utf-8")
    except (IndexError, ValueError, binascii.Error, UnicodeDecodeError):
        return None
    name, sep, password = decoded.partition(":")
    if not sep:
        return None
    for known, secret in users.items():
        bare = known.rsplit("\\", 1)[-1]
        if name.lower() in (known.lower(), bare.lower()) and password == secret:
            return known
    return None


class _Authenticator:
    """Per-connection authentication: Negotiate/NTLM through the pyspnego acceptor, Basic from the user list."""

    def __init__(self, emulator: AdcsEmulator) -> None:
        self._emulator = emulator
        self._spnego: SpnegoConnection | None = None

    def _offers(self) -> tuple[str, ...]:
        offers: list[str] = []
        schemes = self._emulator.auth
        if "negotiate" in schemes:
            offers.append("Negotiate")
        if "ntlm" in schemes:
            offers.append("NTLM")
        if "basic" in schemes:
            offers.append(f'Basic realm="{self._emulator.server_name}"')
        return tuple(offers)

    def authenticate(self, authorization: str | None, server_cert_der: bytes) -> AuthDecision:
        offers = self._offers()
        if not authorization:
            return AuthDecision(None, offers, *_NO_CREDENTIALS)
        scheme = authorization.split(" ", 1)[0].lower()
        if scheme == "basic" and "basic" in self._emulator.auth:
            user = _basic_user(authorization, self._emulator.users)
            if user is None:
                return AuthDecision(None, offers, *_LOGON_FAILURE)
            return AuthDecision(user, persistent=False)
        if scheme in ("negotiate", "ntlm") and scheme in self._emulator.auth:
            if self._spnego is None:
                self._spnego = self._emulator._spnego_acceptor().new_connection()
            return _spnego_decision(self._spnego.authenticate(authorization, server_cert_der), offers)
        return AuthDecision(None, offers, *_LOGON_FAILURE)


def _spnego_decision(result: AuthResult, offers: tuple[str, ...]) -> AuthDecision:
    """Translate the pyspnego acceptor's result into an :class:`AuthDecision`."""
    values = tuple(value for name, value in result.headers if name.lower() == "www-authenticate")
    if result.user is not None:
        return AuthDecision(result.user, values)
    if result.reason is not None:
        return AuthDecision(None, offers, *_LOGON_FAILURE)
    if result.handshake:
        return AuthDecision(None, values, *_CHALLENGE)
    return AuthDecision(None, offers, *_NO_CREDENTIALS)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        sock = self.request
        assert isinstance(sock, ssl.SSLSocket)
        sock.settimeout(self.server.emulator.idle_timeout)
        self.server.track(sock)
        try:
            sock.do_handshake()  # in the connection's own thread, never in the accept loop
        except BaseException:
            self.server.untrack(sock)
            raise
        super().setup()
        self.authenticator: ConnectionAuthenticator = _Authenticator(self.server.emulator)
        self.user: str | None = None

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.untrack(self.request)

    def version_string(self) -> str:
        return "Microsoft-IIS/10.0"

    def log_message(self, format: str, *args: Any) -> None:  # the IIS log replaces the stdlib's stderr log
        return

    def _handle(self) -> None:
        self.server.emulator._serve(self)

    do_GET = do_POST = do_HEAD = _handle


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # many clients connecting at once (labs, benchmarks)
    emulator: AdcsEmulator
    context: ssl.SSLContext

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def track(self, sock: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(sock)

    def untrack(self, sock: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(sock)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _page_name(stem: str) -> str:
    lowered = stem.lower()
    if lowered == "/certsrv":
        return "certsrv"
    if lowered == "/certsrv/":
        return "default.asp"
    if lowered.startswith("/certsrv/"):
        return lowered[len("/certsrv/") :].rstrip("/")
    return lowered.strip("/") or "/"


def _pem_armor(der: bytes, label: str) -> bytes:
    lines = base64.encodebytes(der).replace(b"\n", b"")
    wrapped = b"\r\n".join(lines[i : i + 64] for i in range(0, len(lines), 64))
    return b"-----BEGIN " + label.encode() + b"-----\r\n" + wrapped + b"\r\n-----END " + label.encode() + b"-----\r\n"


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = "text/html"
    headers: list[tuple[str, str]] = field(default_factory=list)
    substatus: int = 0
    win32_status: int = 0


class AdcsEmulator:
    r"""A Microsoft AD CS web enrollment site (IIS ``/certsrv``) on loopback, for tests and labs.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`)::

        from certsrv import CertsrvClient
        from certsrv.testing import AdcsEmulator, CertificateTemplate

        with AdcsEmulator(users={"EXAMPLE\\alice": "Passw0rd!"}, templates=[CertificateTemplate("WebServer")]) as ca:
            with CertsrvClient(ca.url, auth="ntlm", username="EXAMPLE\\alice", password="Passw0rd!",
                               ca_file=ca.ca_file) as client:
                result = client.submit(csr_pem, "WebServer")

    Args:
        users: The accounts, ``DOMAIN\name`` → password (NTLM and Basic). Kerberos users come from the KDC.
        templates: The published certificate templates (default: ``WebServer`` and ``User``, issued at once).
        auth: The schemes offered in the 401 challenge: any of ``"negotiate"``, ``"ntlm"`` and ``"basic"``.
        keytab: The keytab holding ``HTTP/<server_name>`` for Kerberos (default: ``KRB5_KTNAME`` of the process).
        extended_protection: IIS Extended Protection: ``"off"`` (no channel binding check), ``"accept"`` (a
            binding, when sent, must match) or ``"required"`` (a matching binding is mandatory).
        language: ``"en"`` or ``"de"``: the language of every page.
        ca_name: The CA's name (page headers, CA certificate subject).
        renewals: How many times the CA certificate was renewed (``nRenewals``).
        delta_crl: Publish delta CRLs.
        host: The address to listen on.
        port: The port (0: a free one).
        server_name: The host name in :attr:`url` and on the emulator-made TLS certificate.
        tls_cert_file: PEM file with the TLS certificate (and its chain) to present instead of one issued by the
            emulated CA (e.g. a broken certificate to reproduce a TLS problem).
        tls_key_file: The private key of ``tls_cert_file``.
        log_file: Where to append the IIS W3C access log (it is always kept in memory too).
        workdir: Folder for the CA file and the emulator-made TLS key (default: a temporary folder removed at
            :meth:`stop`).
        first_request_id: The request id the first submission gets.
        crlf: Serve pages with CRLF line ends.
        allow_san_attribute: Honour ``SAN:`` request attributes (``EDITF_ATTRIBUTESUBJECTALTNAME2``).
        idle_timeout: Seconds an idle kept-alive connection stays open (IIS's default is 120).
        faults: Faults switched on from the start (see :class:`Faults`).
    """

    def __init__(
        self,
        *,
        users: Mapping[str, str] | None = None,
        templates: Iterable[CertificateTemplate] | None = None,
        auth: Sequence[AuthScheme] = ("negotiate", "ntlm"),
        keytab: str | os.PathLike[str] | None = None,
        extended_protection: ExtendedProtection = "accept",
        language: Language = "en",
        ca_name: str = "EMULATED-CA",
        renewals: int = 0,
        delta_crl: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        server_name: str = "localhost",
        tls_cert_file: str | os.PathLike[str] | None = None,
        tls_key_file: str | os.PathLike[str] | None = None,
        log_file: str | os.PathLike[str] | None = None,
        workdir: str | os.PathLike[str] | None = None,
        first_request_id: int = 1,
        crlf: bool = False,
        allow_san_attribute: bool = False,
        idle_timeout: float = 120.0,
        faults: Faults | None = None,
    ) -> None:
        unknown = [a for a in auth if a not in ("negotiate", "ntlm", "basic")]
        if unknown or not auth:
            raise ValueError(f"auth must name some of negotiate, ntlm, basic (got {list(auth)!r})")
        if extended_protection not in ("off", "accept", "required"):
            raise ValueError(f"extended_protection must be off, accept or required, not {extended_protection!r}")
        if (tls_cert_file is None) != (tls_key_file is None):
            raise ValueError("give tls_cert_file and tls_key_file together")
        self.users: dict[str, str] = dict(users or {})
        self.auth: tuple[AuthScheme, ...] = tuple(auth)
        self.keytab = None if keytab is None else str(keytab)
        self.extended_protection: ExtendedProtection = extended_protection
        self.server_name = server_name
        self.idle_timeout = idle_timeout
        self.faults = faults or Faults()
        self.ca = EmulatedCa(
            ca_name,
            _DEFAULT_TEMPLATES if templates is None else templates,
            renewals=renewals,
            first_request_id=first_request_id,
            delta_crl=delta_crl,
            allow_san_attribute=allow_san_attribute,
        )
        self.pages = PageRenderer(language, ca_name, crlf=crlf)
        self.access_log = IisLog(None if log_file is None else Path(log_file))
        self._host = host
        self._port = port
        self._tls_files = (
            None if tls_cert_file is None or tls_key_file is None else (Path(tls_cert_file), Path(tls_key_file))
        )
        self._workdir_arg = None if workdir is None else Path(workdir)
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._acceptor: SpnegoAcceptor | None = None
        self._acceptor_lock = threading.Lock()
        self._ca_file: Path | None = None
        self.server_certificate: x509.Certificate | None = None
        self._server_der = b""

    # -- lifecycle -----------------------------------------------------------------------------------------

    def __enter__(self) -> AdcsEmulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Write the CA file, load the TLS certificate and start serving in a background thread."""
        if self._server is not None:
            return
        if self._workdir_arg is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="adcs-emulator-")
            workdir = Path(self._tempdir.name)
        else:
            workdir = self._workdir_arg
            workdir.mkdir(parents=True, exist_ok=True)
        self._ca_file = workdir / "ca.pem"
        self._ca_file.write_bytes(self.ca.root_certificate.public_bytes(serialization.Encoding.PEM))
        cert_file, key_file = self._tls_files or self._make_tls_files(workdir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self.server_certificate = x509.load_pem_x509_certificates(cert_file.read_bytes())[0]
        self._server_der = self.server_certificate.public_bytes(serialization.Encoding.DER)
        server = _Server((self._host, self._port))
        server.context = context
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="adcs-emulator", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, close every open connection and remove the temporary folder."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        with self._acceptor_lock:
            if self._acceptor is not None:
                self._acceptor.close()
                self._acceptor = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def _make_tls_files(self, workdir: Path) -> tuple[Path, Path]:
        wildcard = self._host in ("", "0.0.0.0", "::")  # noqa: S104 - recognising, not binding
        ips = ["127.0.0.1", "::1"]
        if not wildcard and self._host != "localhost" and self._host not in ips:
            ips.append(self._host)
        names = [self.server_name] if self.server_name not in ips else ["localhost"]
        cert, key = self.ca.issue_tls_certificate(names, ips)
        cert_file, key_file = workdir / "iis.pem", workdir / "iis.key"
        chain = [cert, self.ca.ca_certificate()]
        cert_file.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
        return cert_file, key_file

    # -- addresses -----------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the emulator listens on (after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start() or use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def ca_file(self) -> Path:
        """PEM file with the emulated CA's root certificate (after :meth:`start`).

        It is the trust anchor for the TLS certificate the emulator makes itself (not for one given as
        ``tls_cert_file``) and the root of every certificate the emulated CA issues.
        """
        if self._ca_file is None:
            raise RuntimeError("the emulator is not running: call start() or use it as a context manager")
        return self._ca_file

    @property
    def base_url(self) -> str:
        """``https://SERVER_NAME:PORT``."""
        return f"https://{self.server_name}:{self.port}"

    @property
    def url(self) -> str:
        """The web enrollment URL, ``https://SERVER_NAME:PORT/certsrv``."""
        return self.base_url + "/certsrv"

    # -- the CA administrator's actions --------------------------------------------------------------------

    def approve(self, request_id: int) -> None:
        """Issue the pending request ``request_id`` (see :meth:`EmulatedCa.approve`)."""
        self.ca.approve(request_id)

    def deny(self, request_id: int) -> None:
        """Deny the pending request ``request_id`` (see :meth:`EmulatedCa.deny`)."""
        self.ca.deny(request_id)

    # -- serving -------------------------------------------------------------------------------------------

    def _spnego_acceptor(self) -> SpnegoAcceptor:
        with self._acceptor_lock:
            if self._acceptor is None:
                schemes = [s for s, key in (("Negotiate", "negotiate"), ("NTLM", "ntlm")) if key in self.auth]
                self._acceptor = SpnegoAcceptor(
                    users=self.users or None,
                    keytab=self.keytab,
                    extended_protection=self.extended_protection,
                    schemes=schemes,
                )
            return self._acceptor

    def _serve(self, handler: _Handler) -> None:
        started = time.monotonic()
        parts = urlsplit(handler.path)
        stem, query = parts.path or "/", parts.query
        page = _page_name(stem)
        try:
            length = int(handler.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            handler.close_connection = True
            self._send(handler, _Reply(400, b"Bad Request", substatus=0), "", stem, query, started)
            return
        body = handler.rfile.read(length) if length > 0 else b""
        if Faults._matches(self.faults.reset, page):
            self._reset(handler)
            return
        user = handler.user
        auth_headers: tuple[str, ...] = ()
        if user is None:
            decision = handler.authenticator.authenticate(handler.headers.get("Authorization"), self._server_der)
            if decision.user is None:
                if self.faults.auth_delay > 0:
                    time.sleep(self.faults.auth_delay)
                reply = _Reply(
                    401,
                    self.pages.iis_error(401),
                    headers=[("WWW-Authenticate", value) for value in decision.headers],
                    substatus=decision.substatus,
                    win32_status=decision.win32_status,
                )
                self._send(handler, reply, "", stem, query, started)
                return
            user = decision.user
            auth_headers = decision.headers
            if decision.persistent:
                handler.user = user
        if Faults._matches(self.faults.http_500, page):
            reply = _Reply(500, self.pages.iis_error(500), substatus=0, win32_status=0)
        else:
            reply = self._page(handler, page, stem, query, body)
        reply.headers = [("WWW-Authenticate", value) for value in auth_headers] + reply.headers
        self._send(handler, reply, user, stem, query, started)

    def _page(self, handler: _Handler, page: str, stem: str, query: str, body: bytes) -> _Reply:
        method = handler.command
        params = {k.lower(): v for k, v in parse_qsl(query, keep_blank_values=True)}
        if page == "certsrv":
            host = handler.headers.get("Host") or f"{self.server_name}:{self.port}"
            location = f"https://{host}{stem}/"
            moved = (
                "<head><title>Document Moved</title></head>\n<body><h1>Object Moved</h1>This document may be found "
                f'<a HREF="{location}">here</a></body>'
            ).encode()
            return _Reply(301, moved, headers=[("Location", location)])
        if page in ("default.asp", "certrqxt.asp", "certcarc.asp") and method in ("GET", "HEAD"):
            if page == "default.asp":
                return _Reply(200, self.pages.home())
            if page == "certrqxt.asp":
                return _Reply(200, self.pages.request_form(self.ca.templates))
            return _Reply(200, self.pages.ca_download(self.ca.renewals, delta_crl=self.ca.delta_crl))
        if page == "certfnsh.asp":
            if self.faults.enroll_delay > 0:
                time.sleep(self.faults.enroll_delay)
            return self._submit(method, body, handler.user or "")
        if page in ("certnew.cer", "certnew.p7b", "certcrl.crl") and method in ("GET", "HEAD"):
            if self.faults.download_delay > 0:
                time.sleep(self.faults.download_delay)
            if page == "certcrl.crl":
                return self._crl(params)
            return self._download(params, chain=page == "certnew.p7b")
        if page in ("default.asp", "certrqxt.asp", "certcarc.asp", "certnew.cer", "certnew.p7b", "certcrl.crl"):
            return _Reply(405, self.pages.iis_error(405))
        return _Reply(404, self.pages.iis_error(404), win32_status=2)

    def _submit(self, method: str, body: bytes, requester: str) -> _Reply:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        mode = next((v for k, v in form.items() if k.lower() == "mode"), "")
        if method != "POST" or mode.lower() != "newreq":
            page = self.pages.error(
                new_request=True,
                disposition=Disposition.ERROR,
                disposition_message="",
                result=INVALID_PARAMETER,
                last_status=None,
            )
            return _Reply(200, page)
        csr = next((v for k, v in form.items() if k.lower() == "certrequest"), "")
        attrib = next((v for k, v in form.items() if k.lower() == "certattrib"), "")
        req = self.ca.submit(csr, attrib, requester)
        if req.request_id == 0:
            page = self.pages.error(
                new_request=True,
                disposition=Disposition.ERROR,
                disposition_message=req.disposition_message,
                result=req.status,
                last_status=req.status,
            )
            return _Reply(200, page)
        if req.disposition is Disposition.ISSUED:
            return _Reply(200, self.pages.issued(req.request_id, self.ca.renewals))
        if req.disposition is Disposition.UNDER_SUBMISSION:
            return _Reply(200, self.pages.pending(req.request_id))
        return _Reply(200, self.pages.denied(req))

    @staticmethod
    def _encoding(params: Mapping[str, str]) -> str:
        return "b64" if params.get("enc", "bin").lower() == "b64" else "bin"

    def _fetch_error(self, disposition: Disposition, message: str, last_status: Any, result: Any = S_OK) -> _Reply:
        page = self.pages.error(
            new_request=False,
            disposition=disposition,
            disposition_message=message,
            result=result,
            last_status=last_status,
        )
        return _Reply(200, page)

    def _renewal(self, params: Mapping[str, str]) -> int | None:
        """The ``Renewal`` parameter (``None``: absent, the newest); LookupError for one that does not exist."""
        raw = params.get("renewal")
        if not raw:
            return None
        try:
            return self.ca.renewal_index(int(raw))
        except ValueError as exc:
            raise LookupError(f"Renewal={raw!r} is not a number") from exc

    def _unknown(self) -> _Reply:
        return self._fetch_error(Disposition.INCOMPLETE, "", S_OK, PROPERTY_EMPTY)

    def _download(self, params: Mapping[str, str], *, chain: bool) -> _Reply:
        enc = self._encoding(params)
        req_id = params.get("reqid", "")
        certs: list[x509.Certificate]
        if req_id.lower() == "cacert":
            try:
                renewal = self._renewal(params)
            except LookupError:
                return self._unknown()
            certs = self.ca.ca_chain(renewal) if chain else [self.ca.ca_certificate(renewal)]
        else:
            req = self.ca.get(int(req_id)) if req_id.isascii() and req_id.isdigit() else None
            if req is None:
                return self._unknown()
            if req.certificate is None:
                return self._fetch_error(req.disposition, req.disposition_message, req.status)
            certs = [req.certificate, *self.ca.ca_chain(req.renewal)] if chain else [req.certificate]
        if chain:
            der = pkcs7.serialize_certificates(certs, serialization.Encoding.DER)
            content_type = "application/x-pkcs7-certificates"
        else:
            der = certs[0].public_bytes(serialization.Encoding.DER)
            content_type = "application/pkix-cert"
        body = _pem_armor(der, "CERTIFICATE") if enc == "b64" else der
        return _Reply(200, body, content_type)

    def _crl(self, params: Mapping[str, str]) -> _Reply:
        enc = self._encoding(params)
        delta = params.get("type", "base").lower() == "delta"
        try:
            crl = self.ca.crl(self._renewal(params), delta=delta)
        except LookupError:  # no such renewal, or delta CRLs are not published
            return self._unknown()
        der = crl.public_bytes(serialization.Encoding.DER)
        body = _pem_armor(der, "X509 CRL") if enc == "b64" else der
        return _Reply(200, body, "application/pkix-crl")

    def _send(self, handler: _Handler, reply: _Reply, user: str, stem: str, query: str, started: float) -> None:
        handler.send_response(reply.status)
        handler.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers:
            handler.send_header(name, value)
        handler.send_header("X-Powered-By", "ASP.NET")
        handler.send_header("Content-Length", str(len(reply.body)))
        # Logged before the response leaves, so a client that has its response always finds its log line.
        self._log(handler, reply.status, reply.substatus, reply.win32_status, user, stem, query, started)
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(reply.body)

    def _log(
        self,
        handler: _Handler,
        status: int,
        substatus: int,
        win32_status: int,
        user: str,
        stem: str,
        query: str,
        started: float,
    ) -> None:
        try:
            server_ip = handler.connection.getsockname()[0]
        except OSError:
            server_ip = self._host
        self.access_log.add(
            IisLogEntry(
                time=dt.datetime.now(dt.UTC),
                server_ip=str(server_ip),
                method=handler.command,
                uri_stem=stem,
                uri_query=query,
                server_port=self.port if self._server is not None else self._port,
                username=user if status != 401 else "",
                client_ip=str(handler.client_address[0]),
                user_agent=handler.headers.get("User-Agent", ""),
                referer=handler.headers.get("Referer", ""),
                status=status,
                substatus=substatus,
                win32_status=win32_status,
                time_taken_ms=int((time.monotonic() - started) * 1000),
            )
        )

    @staticmethod
    def _reset(handler: _Handler) -> None:
        sock = handler.connection
        handler.close_connection = True
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
