"""An EST server (RFC 7030, RFC 8951) over real TLS on loopback, for tests, labs and users' own test suites.

The server is a stdlib ``ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive (Nagle off, Content-Length on
every response, 401s included). TLS handshakes run in each connection's thread, never in the accept loop. The
TLS socket of the connection gives the tls-unique channel binding (PoP linking, RFC 7030 §3.5) and the client's
certificate. What gets issued is decided by an :class:`~estclient.testing.EnrollmentBackend`.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import logging
import re
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7

from estclient._b64 import decode_body, encode_body
from estclient._csr import csr_challenge_password
from estclient._errors import MalformedRequestError
from estclient.testing import _wire
from estclient.testing._approval import ManualApproval
from estclient.testing._auth import HttpAuthenticator
from estclient.testing._backend import (
    EnrollmentBackend,
    EnrollmentRejected,
    Issued,
    IssuedWithKey,
    Pending,
    Requester,
)
from estclient.testing._faults import Fault, FaultKind, FaultPlan
from estclient.testing._files import write_atomic
from estclient.testing._http import Exchange, HttpServer, Reply
from estclient.testing._local_ca import LocalCa, LocalCaBackend

__all__ = ["OPERATIONS", "EstServer", "RecordedRequest", "TlsIdentity"]

_log = logging.getLogger("estclient.testing")

#: The six EST operations (RFC 7030 §3.2.2).
OPERATIONS: tuple[str, ...] = ("cacerts", "simpleenroll", "simplereenroll", "fullcmc", "serverkeygen", "csrattrs")
_GET_OPERATIONS = frozenset({"cacerts", "csrattrs"})
_PREFIX = "/.well-known/est/"
_LABEL = re.compile(r"[0-9A-Za-z_\-.~!$&'()*+,;:=]{1,255}")
_CERTS_ONLY = "application/pkcs7-mime; smime-type=certs-only"
_CMC_RESPONSE = "application/pkcs7-mime; smime-type=CMC-response"
PopMode = Literal["off", "verify", "require"]


def _certs_only(certs: Sequence[x509.Certificate]) -> bytes:
    # cryptography's encoder (DER sorts the SET OF certificates; EST clients pick the leaf by its key)
    return pkcs7.serialize_certificates(list(certs), serialization.Encoding.DER)


def _openssl_name(name: x509.Name) -> str:
    """``/O=Example/CN=Some CA``: the one-line form OpenSSL (and libest's logs) print."""
    return "".join(f"/{attr.rfc4514_attribute_name}={attr.value!s}" for attr in name)


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class TlsIdentity:
    """The TLS server certificate of an :class:`EstServer`.

    Attributes:
        certificate: The server certificate (its names must match the host clients use).
        private_key: Its key.
        chain: Intermediate certificates sent after it.
        trust_anchors: What clients must trust to accept it (written to :attr:`EstServer.ca_file`); when empty,
            the top certificate of the chain.
    """

    certificate: x509.Certificate
    private_key: CertificateIssuerPrivateKeyTypes = field(repr=False)
    chain: Sequence[x509.Certificate] = ()
    trust_anchors: Sequence[x509.Certificate] = ()

    @classmethod
    def from_files(cls, cert_file: str | Path, key_file: str | Path, ca_file: str | Path | None = None) -> TlsIdentity:
        """Load the identity from PEM files.

        Args:
            cert_file: The server certificate, optionally followed by its chain.
            key_file: Its private key (unencrypted PEM).
            ca_file: The certificates clients trust (default: the top of the chain).

        Returns:
            The identity.
        """
        ca = LocalCa.from_files(cert_file, key_file)
        anchors = x509.load_pem_x509_certificates(Path(ca_file).read_bytes()) if ca_file else ()
        return cls(ca.certificate, ca.private_key, tuple(ca.chain), tuple(anchors))


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server answered (see :attr:`EstServer.requests`).

    Attributes:
        method: ``GET`` or ``POST``.
        path: The request target.
        operation: The EST operation, or None when the path named none.
        label: The CA label, or None.
        status: The HTTP status sent (0 when the connection was dropped before a status line).
        user: The authenticated HTTP user, or None.
        client_certificate: The TLS client certificate, or None.
        fault: The injected fault applied to the response, or None.
        tls_version: The TLS version of the connection (``"TLSv1.2"``, ``"TLSv1.3"``).
        connection: A number identifying the TLS connection (to tell reused connections from new ones).
        headers: The request headers (names in lower case); an Authorization value is cut to its scheme.
        body: The request body as received (a CSR or CMC request; no secrets).
    """

    method: str
    path: str
    operation: str | None
    label: str | None
    status: int
    user: str | None
    client_certificate: x509.Certificate | None
    fault: FaultKind | None
    tls_version: str | None
    connection: int
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    body: bytes = field(default=b"", repr=False)


class EstServer:
    """An EST server on loopback, started with ``with EstServer(...) as server:`` or :meth:`start`/:meth:`stop`.

    Args:
        backend: Issues the certificates; a :class:`~estclient.testing.LocalCaBackend` with a new CA by default.
        host: Address to listen on.
        port: Port to listen on; 0 picks a free one (see :attr:`port`).
        tls: The TLS server certificate; by default one for localhost, 127.0.0.1 and ::1 issued by the local
            backend's CA (or by a separate new CA when the backend is not a ``LocalCaBackend``).
        users: User name to password for HTTP authentication; None or empty turns HTTP authentication off.
        http_auth: ``"basic"`` or ``"digest"``: the challenge sent in 401 responses.
        realm: The authentication realm.
        digest_algorithm: ``"MD5"`` (libest's) or ``"SHA-256"``.
        client_cas: CA certificates trusted for TLS client certificates; by default the backend's CA certificates.
        require_client_certificate: Refuse enrollment requests (403) that come without a TLS client certificate.
        http_auth_required: Require HTTP credentials even from clients that present a trusted certificate.
        pop: Proof-of-possession linking (RFC 7030 §3.5): ``"verify"`` checks a CSR challengePassword against
            base64(tls-unique) when one is present; ``"require"`` also refuses CSRs without it (and caps TLS at 1.2,
            where tls-unique is defined); ``"off"`` ignores it.
        max_tls_version: Highest TLS version to negotiate (default: what the ssl module offers; 1.2 when
            ``pop="require"``).
        labels: CA labels offered (``/.well-known/est/<label>/...``); None accepts any valid label.
        manual_approval: Hold every enrollment until the test calls ``server.approvals.approve(id)``.
        retry_after: Seconds announced in Retry-After for held requests.
        retry_after_as_date: Send Retry-After as an HTTP-date instead of seconds (RFC 9110 allows both; libest's
            client understands only seconds).
        protect_csrattrs: Require authentication for ``/csrattrs`` too (RFC 7030 says a server SHOULD NOT).
        shared_keys: AES keys by key identifier, for ``/serverkeygen`` requests whose CSR carries a
            DecryptKeyIdentifier (RFC 7030 §4.4.1.1). Keys encrypted to the TLS client certificate's own key
            (AsymmetricDecryptKeyIdentifier naming its key identifier) need no setup: RSA key transport for an
            RSA certificate, ephemeral-static ECDH key agreement (RFC 5753) for an EC one.
        directory: Where the CA file and TLS files are written; a temporary folder (removed on stop) by default.

    Attributes:
        backend: The backend in use (the :class:`~estclient.testing.ManualApproval` wrapper in approval mode).
        approvals: The approval queue in manual-approval mode, else None.
        users: The user table (may be changed while running).
    """

    def __init__(
        self,
        backend: EnrollmentBackend | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: TlsIdentity | None = None,
        users: Mapping[str, str] | None = None,
        http_auth: Literal["basic", "digest"] = "basic",
        realm: str = "estrealm",
        digest_algorithm: str = "MD5",
        client_cas: Sequence[x509.Certificate] | None = None,
        require_client_certificate: bool = False,
        http_auth_required: bool = False,
        pop: PopMode = "verify",
        max_tls_version: ssl.TLSVersion | None = None,
        labels: Collection[str] | None = None,
        manual_approval: bool = False,
        retry_after: int = 1,
        retry_after_as_date: bool = False,
        protect_csrattrs: bool = False,
        shared_keys: Mapping[bytes, bytes] | None = None,
        directory: str | Path | None = None,
    ) -> None:
        if pop not in ("off", "verify", "require"):
            raise ValueError(f"pop must be 'off', 'verify' or 'require', not {pop!r}")
        base_backend: EnrollmentBackend = backend if backend is not None else LocalCaBackend()
        self.approvals = ManualApproval(base_backend, retry_after=retry_after) if manual_approval else None
        self.backend: EnrollmentBackend = self.approvals if self.approvals is not None else base_backend
        self.host = host
        self._requested_port = port
        self.users: dict[str, str] = dict(users or {})
        self._auth = HttpAuthenticator(self.users, scheme=http_auth, realm=realm, digest_algorithm=digest_algorithm)
        self.require_client_certificate = require_client_certificate
        self.http_auth_required = http_auth_required
        self.pop: PopMode = pop
        self.labels = frozenset(labels) if labels is not None else None
        self.protect_csrattrs = protect_csrattrs
        self.retry_after_as_date = retry_after_as_date
        self.shared_keys = dict(shared_keys or {})
        self._max_tls_version = max_tls_version or (ssl.TLSVersion.TLSv1_2 if pop == "require" else None)
        if tls is None:
            issuer = base_backend.ca if isinstance(base_backend, LocalCaBackend) else LocalCa.generate("EST TLS CA")
            cert, key = issuer.issue_tls_server()
            above = (issuer.certificate, *issuer.chain)
            sent = tuple(c for c in above if c.issuer != c.subject)  # the anchor itself need not be sent
            tls = TlsIdentity(cert, key, sent, (above[-1],))
        self.tls = tls
        self._client_cas = tuple(client_cas) if client_cas is not None else tuple(base_backend.ca_certificates(None))
        self._own_directory = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="est-server-")) if directory is None else Path(directory)
        self._faults = FaultPlan()
        self._records: list[RecordedRequest] = []
        self._records_lock = threading.Lock()
        self._httpd: HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._write_files()

    # -- files and TLS ----------------------------------------------------------------------------------------

    def _write_files(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        pem = serialization.Encoding.PEM
        anchors = tuple(self.tls.trust_anchors) or ((*self.tls.chain, self.tls.certificate)[-1],)
        self.ca_file.write_bytes(b"".join(c.public_bytes(pem) for c in anchors))
        chain = (self.tls.certificate, *self.tls.chain)
        self._cert_file.write_bytes(b"".join(c.public_bytes(pem) for c in chain))
        key = self.tls.private_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        write_atomic(self._key_file, key, private=True)

    @property
    def ca_file(self) -> Path:
        """PEM file with the certificate(s) a client must trust to accept the server's TLS certificate."""
        return self.directory / "ca.pem"

    @property
    def _cert_file(self) -> Path:
        return self.directory / "tls-server.pem"

    @property
    def _key_file(self) -> Path:
        return self.directory / "tls-server.key"

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self._max_tls_version is not None:
            ctx.maximum_version = self._max_tls_version
        ctx.load_cert_chain(self._cert_file, self._key_file)
        if self._client_cas:
            pem = serialization.Encoding.PEM
            ctx.load_verify_locations(cadata="".join(c.public_bytes(pem).decode() for c in self._client_cas))
            ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx

    # -- lifecycle --------------------------------------------------------------------------------------------

    def start(self) -> EstServer:
        """Start listening and serving in a background thread.

        Returns:
            The server itself (so ``server = EstServer().start()`` works).
        """
        if self._httpd is not None:
            return self
        if not self._key_file.exists():  # a stopped server removed its temporary folder: write it again
            self._write_files()
        httpd = HttpServer((self.host, self._requested_port))
        httpd.context = self._ssl_context()
        httpd.est = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name=f"est-server-{self.port}", daemon=True
        )
        self._thread.start()
        self._log_startup()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and remove the temporary folder (if the server made it)."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
            httpd.close_open_connections()
            if self._thread is not None:
                self._thread.join(5)
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> EstServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the server listens on (the real one when started with port 0)."""
        if self._httpd is None:
            return self._requested_port
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The server's base URL, ``https://localhost:PORT`` (EST paths live under ``/.well-known/est``)."""
        host = "localhost" if self.host in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "::") else self.host  # noqa: S104
        return f"https://{host}:{self.port}"

    def operation_url(self, operation: str, label: str | None = None) -> str:
        """The full URL of an operation, e.g. ``https://localhost:PORT/.well-known/est/simpleenroll``."""
        return f"{self.url}{_PREFIX}{label + '/' if label else ''}{operation}"

    def _log_startup(self) -> None:
        for cert in self._client_cas:
            _log.info(
                "***EST [INFO][ossl_init_cert_store_from_raw]--> Adding cert to store (%s)",
                _openssl_name(cert.subject),
            )
        if self.pop == "off":
            _log.info("***EST [INFO][est_server_init]--> pop_enabled off. Disabling EST Proof of Possession")
        _log.info("***EST [INFO][est_server_start]--> EST server listening on %s", self.url)

    # -- faults and recording ---------------------------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        """Activate a fault (see :class:`~estclient.testing.Fault`)."""
        self._faults.add(fault)

    def clear_faults(self) -> None:
        """Deactivate every fault."""
        self._faults.clear()

    @contextmanager
    def faults(self, *faults: Fault) -> Iterator[None]:
        """Activate faults for the duration of a ``with`` block."""
        for f in faults:
            self.inject(f)
        try:
            yield
        finally:
            self.clear_faults()

    def record(self, exchange: Exchange, status: int, fault: Fault | None, connection: int) -> None:
        """Append a :class:`RecordedRequest` (called by the connection threads)."""
        entry = RecordedRequest(
            exchange.method, exchange.path, exchange.operation, exchange.label, status, exchange.user,
            exchange.client_certificate, fault.kind if fault else None, exchange.tls.version(), connection,
            _redacted(exchange.headers), exchange.body,
        )  # fmt: skip
        with self._records_lock:
            self._records.append(entry)

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests answered so far, oldest first (a copy)."""
        with self._records_lock:
            return list(self._records)

    def count(self, operation: str | None = None, *, status: int | None = None) -> int:
        """Count answered requests, optionally of one operation and/or with one status."""
        return sum(
            1
            for r in self.requests
            if (operation is None or r.operation == operation) and (status is None or r.status == status)
        )

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        with self._records_lock:
            self._records.clear()

    def log_access(self, address: str, request_line: str, status: int, length: int) -> None:
        """Log one access line in the style of libest's ``log_access``."""
        if not _log.isEnabledFor(logging.INFO):
            return
        stamp = dt.datetime.now(dt.UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
        _log.info('***EST [INFO][log_access]--> %s [%s] "%s" %d %d', address, stamp, request_line, status, length)

    # -- request handling -------------------------------------------------------------------------------------

    def handle(self, ex: Exchange) -> Reply:
        """Answer one request (called by the connection threads)."""
        reply = self._route(ex)
        if isinstance(reply, Reply):
            return reply
        operation = reply
        denied = self._authorize(ex, operation)
        if denied is not None:
            return denied
        fault = self._faults.take(operation)
        if fault is not None:
            _log.info("***EST [INFO][fault_injection]--> injecting %s into %s", fault.kind.value, operation)
            if fault.kind is FaultKind.DELAY:
                time.sleep(fault.seconds)
            elif fault.kind is FaultKind.SERVER_ERROR:
                reply = Reply.text(fault.status, f"Injected fault: the server answers {fault.status}.")
                reply.fault = fault
                return reply
            elif fault.kind is FaultKind.DROP_BEFORE_RESPONSE:
                return Reply(0, fault=fault, close=True)
        try:
            reply = self._operate(ex, operation)
        except MalformedRequestError as exc:
            reply = Reply.text(400, f"{exc.message} {exc.hint}")
        except EnrollmentRejected as exc:
            _log.warning("***EST [WARNING][est_http_request]--> Enrollment failed: %s", exc.reason)
            extra = {"Retry_After": self._retry_after(exc.retry_after)} if exc.retry_after is not None else {}
            reply = Reply.text(exc.http_status, exc.reason, **extra)
        except Exception as exc:  # the backend's own failure: answer 500, never crash the connection thread
            _log.exception("***EST [ERROR][est_mg_handler]--> enrollment backend failed")
            reply = Reply.text(500, f"The enrollment backend failed ({type(exc).__name__}); see the server log.")
        if fault is not None:
            self._apply_fault(reply, fault)
        return reply

    def _apply_fault(self, reply: Reply, fault: Fault) -> None:
        kind = fault.kind
        if kind is FaultKind.DELAY:
            reply.fault = fault
            return
        if kind is FaultKind.DROP_MID_BODY:
            reply.close = True
            # an empty body (204) cannot be cut in half: the connection is then cut before the answer
            reply.fault = fault if len(reply.body) >= 2 else replace(fault, kind=FaultKind.DROP_BEFORE_RESPONSE)
            return
        if reply.status != 200:
            return  # body faults only make sense on a successful answer
        reply.fault = fault
        if kind is FaultKind.BAD_BASE64:
            reply.body = b"This is not base64: <<@@ %% !! ##>>\r\n"
        elif kind is FaultKind.TRUNCATED_PKCS7:
            der = reply.der if reply.der is not None else reply.body
            reply.body = encode_body(der[: max(1, len(der) // 2)])
        elif kind is FaultKind.WRONG_CONTENT_TYPE:
            reply.content_type = fault.content_type

    def _route(self, ex: Exchange) -> Reply | str:
        path = ex.path.split("?", 1)[0]
        if not path.startswith(_PREFIX):
            return Reply.text(404, f"Not an EST path: {path}. EST operations live under {_PREFIX}.")
        parts = path[len(_PREFIX) :].split("/")
        if len(parts) == 1:
            label, operation = None, parts[0]
        elif len(parts) == 2:
            label, operation = parts
        else:
            return Reply.text(404, f"Not an EST path: {path}; use {_PREFIX}[<label>/]<operation>.")
        ex.label = label
        if operation not in OPERATIONS:
            return Reply.text(404, f"Unknown EST operation {operation!r}; this server offers {', '.join(OPERATIONS)}.")
        ex.operation = operation
        if label is not None and (_LABEL.fullmatch(label) is None or label in OPERATIONS):
            return Reply.text(404, f"Invalid CA label {label!r} (RFC 7030 §3.2.2).")
        if label is not None and self.labels is not None and label not in self.labels:
            offered = ", ".join(sorted(self.labels)) or "none"
            return Reply.text(404, f"This server has no CA label {label!r}; labels offered: {offered}.")
        expected = "GET" if operation in _GET_OPERATIONS else "POST"
        if ex.method != expected:
            return Reply.text(405, f"/{operation} takes {expected}, not {ex.method}.", Allow=expected)
        return operation

    def _authorize(self, ex: Exchange, operation: str) -> Reply | None:
        if operation == "cacerts" or (operation == "csrattrs" and not self.protect_csrattrs):
            return None
        if ex.client_certificate is None:
            _log.info("***EST [INFO][est_enroll_auth]--> TLS: no peer certificate")
            if self.require_client_certificate:
                _log.warning("***EST [WARNING][est_http_request]--> Enrollment failed with rc=22 (EST_ERR_AUTH_FAIL)")
                return Reply.text(
                    403,
                    "This server requires a TLS client certificate (RFC 7030 §3.3.2); "
                    "configure the client with a certificate issued by a CA the server trusts.",
                )
        authorization = ex.headers.get("authorization")
        stale = False
        if self.users:
            ex.user, stale = self._auth.check(authorization, method=ex.method, path=ex.path)
        if ex.user is not None:
            return None
        if ex.client_certificate is not None and not self.http_auth_required:
            return None
        if not self.users:
            if self.http_auth_required:
                return Reply.text(403, "HTTP authentication is required but the server has no users configured.")
            return None
        if authorization:
            _log.warning(
                "***EST [WARNING][est_enroll_auth]--> HTTP authentication failed. Auth type=%d",
                self._auth.libest_auth_type,
            )
            _log.warning("***EST [WARNING][est_http_request]--> Enrollment failed with rc=22 (EST_ERR_AUTH_FAIL)")
            _log.info(
                "***EST [INFO][mg_send_http_error]--> [Error 401: Unauthorized "
                "The server was unable to authorize the request.]"
            )
            _log.error("***EST [ERROR][est_mg_handler]--> EST error response code: 22 (EST_ERR_AUTH_FAIL)")
            _log.warning("***EST [WARNING][handle_request]--> Incoming request failed rv=22 (EST_ERR_AUTH_FAIL)")
        return Reply.text(
            401,
            "The server was unable to authorize the request.",
            WWW_Authenticate=self._auth.challenge(stale=stale),
        )

    def _requester(self, ex: Exchange) -> Requester:
        return Requester(ex.user, ex.client_certificate, ex.address)

    def _operate(self, ex: Exchange, operation: str) -> Reply:
        if operation == "cacerts":
            certs = list(self.backend.ca_certificates(ex.label))
            if not certs:
                return Reply.text(500, "The enrollment backend has no CA certificates to offer.")
            return Reply.base64(_CERTS_ONLY, _certs_only(certs))
        if operation == "csrattrs":
            attrs = self.backend.csr_attributes(ex.label)
            if self.pop == "require":
                attrs = _wire.with_challenge_password(attrs)
            if attrs is None:
                return Reply(204)
            return Reply.base64("application/csrattrs", _wire.encode_csr_attributes(attrs))
        if operation == "fullcmc":
            return self._fullcmc(ex)
        csr = self._read_csr(ex)
        requester = self._requester(ex)
        if operation == "serverkeygen":
            return self._serverkeygen(ex, csr, requester)
        renewal_of = self._check_renewal(ex, csr) if operation == "simplereenroll" else None
        result = self.backend.enroll(csr, label=ex.label, requester=requester, renewal_of=renewal_of)
        return self._enrolled(result, requester)

    def _retry_after(self, seconds: int) -> str:
        if not self.retry_after_as_date:
            return str(seconds)
        return email.utils.formatdate(time.time() + seconds, usegmt=True)

    def _enrolled(self, result: Issued | Pending, requester: Requester) -> Reply:
        if isinstance(result, Pending):
            _log.info(
                "***EST [INFO][est_enroll]--> request %s pending, Retry-After %d", result.request_id, result.retry_after
            )
            return Reply.text(
                202,
                f"The request {result.request_id} is pending; send the same request again after "
                f"{result.retry_after} seconds.",
                Retry_After=self._retry_after(result.retry_after),
            )
        if _log.isEnabledFor(logging.INFO):
            _log.info(
                "***EST [INFO][est_enroll]--> issued %s (serial %x) to %s",
                _openssl_name(result.certificate.subject), result.certificate.serial_number, requester.description,
            )  # fmt: skip
        der = _certs_only([result.certificate, *result.chain])
        return Reply.base64(_CERTS_ONLY, der)

    def _read_csr(self, ex: Exchange) -> x509.CertificateSigningRequest:
        media = _media_type(ex.headers.get("content-type"))
        if media != "application/pkcs10":
            raise MalformedRequestError(
                f"/{ex.operation} expects Content-Type application/pkcs10, not {media or 'none'}.",
                hint="Send the CSR as base64 DER with Content-Type: application/pkcs10 (RFC 7030 §4.2.1).",
            )
        der = decode_body(ex.body, what=f"/{ex.operation} request", error=MalformedRequestError)
        try:
            csr = x509.load_der_x509_csr(der)
            valid = csr.is_signature_valid
        except (ValueError, TypeError, x509.UnsupportedGeneralNameType) as exc:
            raise MalformedRequestError(
                f"The /{ex.operation} body is not a PKCS#10 CSR ({exc}).",
                hint="Send a DER PKCS#10 CertificationRequest, base64-encoded.",
                libest_error="EST_ERR_BAD_PKCS10",
            ) from None
        if not valid:
            raise MalformedRequestError(
                "The CSR's signature does not verify.",
                hint="Sign the CSR with the private key of the public key it contains, after adding every attribute.",
                libest_error="EST_ERR_X509_SIGN",
            )
        self._check_pop(ex, csr)
        return csr

    def _check_pop(self, ex: Exchange, csr: x509.CertificateSigningRequest) -> None:
        if self.pop == "off":
            return
        value = csr_challenge_password(csr)
        if value is None:
            if self.pop == "require":
                _log.warning("***EST [WARNING][est_tls_uid_auth]--> PoP enabled, CSR was not authenticated")
                raise EnrollmentRejected(
                    "PoP linking is required (RFC 7030 §3.5) but the CSR has no challengePassword; put "
                    "base64(tls-unique) of this TLS connection in the CSR's challengePassword and sign it after the "
                    "handshake."
                )
            return
        binding = ex.tls.get_channel_binding("tls-unique")
        expected = base64.b64encode(binding).decode() if binding is not None else None
        if expected is None or value.strip() != expected:
            _log.warning("***EST [WARNING][est_tls_uid_auth]--> PoP is not valid (tls-unique mismatch)")
            raise EnrollmentRejected(
                "PoP linking failed (RFC 7030 §3.5): the CSR's challengePassword is not base64(tls-unique) of this "
                "TLS connection; build and sign the CSR on the connection that sends it (again after a reconnect)."
            )

    def _check_renewal(self, ex: Exchange, csr: x509.CertificateSigningRequest) -> x509.Certificate:
        current = ex.client_certificate
        if current is None:
            raise EnrollmentRejected(
                "/simplereenroll needs the certificate being renewed as the TLS client certificate (RFC 7030 §4.2.2); "
                "connect with that certificate and its key.",
                http_status=403,
            )
        if csr.subject != current.subject:
            raise EnrollmentRejected(
                f"The re-enrollment CSR's subject {csr.subject.rfc4514_string()!r} differs from the certificate "
                f"being renewed ({current.subject.rfc4514_string()!r}); RFC 7030 §4.2.2 requires the same subject."
            )
        if _san(csr.extensions) != _san(current.extensions):
            raise EnrollmentRejected(
                "The re-enrollment CSR's subjectAltName differs from the certificate being renewed; RFC 7030 §4.2.2 "
                "requires the same subjectAltName."
            )
        return current

    def _serverkeygen(self, ex: Exchange, csr: x509.CertificateSigningRequest, requester: Requester) -> Reply:
        protection = _wire.key_protection(csr, ex.client_certificate, self.shared_keys)
        result: IssuedWithKey | Pending = self.backend.server_keygen(csr, label=ex.label, requester=requester)
        if isinstance(result, Pending):
            return self._enrolled(result, requester)
        content_type, body = _wire.serverkeygen_response(result, protection)
        _log.info(
            "***EST [INFO][est_server_keygen]--> generated a key and issued %s to %s (key %s)",
            _openssl_name(result.certificate.subject), requester.description,
            "CMS-encrypted" if protection.encrypted else "protected by TLS only",
        )  # fmt: skip
        return Reply(200, body, content_type)

    def _fullcmc(self, ex: Exchange) -> Reply:
        media = _media_type(ex.headers.get("content-type"))
        if media != "application/pkcs7-mime":
            raise MalformedRequestError(
                f"/fullcmc expects Content-Type application/pkcs7-mime; smime-type=CMC-request, not {media or 'none'}.",
                hint="Send the CMC Full PKI Request as base64 DER (RFC 7030 §4.3.1).",
            )
        request = _wire.cmc_request(decode_body(ex.body, what="/fullcmc request", error=MalformedRequestError))
        requester = self._requester(ex)
        try:
            for _, csr in request.requests:
                if not csr.is_signature_valid:
                    raise EnrollmentRejected("A CSR inside the CMC request has a signature that does not verify.")
                self._check_pop(ex, csr)
            result = self.backend.enroll(request.csr, label=ex.label, requester=requester, renewal_of=None)
        except EnrollmentRejected as exc:
            # RFC 7030 §4.3.2: a rejection is 4xx/5xx and carries a CMC response with the failure
            _log.warning("***EST [WARNING][est_handle_fullcmc]--> CMC request failed: %s", exc.reason)
            body = _wire.cmc_failure(exc.reason, request.body_part_ids)
            headers = [("Content-Transfer-Encoding", "base64")]
            return Reply(exc.http_status, encode_body(body), _CMC_RESPONSE, headers, der=body)
        if isinstance(result, Pending):
            return self._enrolled(result, requester)
        _log.info("***EST [INFO][est_handle_fullcmc]--> issued %s", _openssl_name(result.certificate.subject))
        body = _wire.cmc_success([result.certificate, *result.chain], request.body_part_ids)
        return Reply.base64(_CMC_RESPONSE, body)


def _redacted(headers: Mapping[str, str]) -> dict[str, str]:
    out = dict(headers)
    if "authorization" in out:
        out["authorization"] = out["authorization"].split(" ", 1)[0] + " (redacted)"
    return out


def _san(extensions: x509.Extensions) -> list[x509.GeneralName]:
    try:
        return sorted(extensions.get_extension_for_class(x509.SubjectAlternativeName).value, key=repr)
    except x509.ExtensionNotFound:
        return []
