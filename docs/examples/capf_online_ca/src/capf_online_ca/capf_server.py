"""The CAPF server (CUCM's Certificate Authority Proxy Function) in Online CA mode, on asyncio over TLS.

Each phone connection is one CAPF session driven by capf_common's :class:`~capf_common.CapfServerConnection`:
AUTH_REQUEST, the phone's AUTH_RESPONSE checked with :func:`~capf_common.verify_auth_response` against the
device's settings in the :class:`~capf_online_ca.registry.DeviceRegistry`, then the scheduled operation:

* install: SIGN_CERTIFICATE_REQUEST, the phone's CSR, enrollment over EST with estclient's
  :class:`~estclient.AsyncEstClient` (CAPF's TLS client certificate, or HTTP Basic) against the RA, then
  STORE_CERTIFICATE_REQUEST with the LSC;
* fetch (Troubleshoot), delete, or nothing (END_SESSION NO_ACTION).

The outcome is recorded as CUCM does (the CAPF operation result such as ``CAPF_OP_SUCCESS`` and the certificate
status such as ``UPGRADE_SUCCESS``) and traced in CAPF's SDI format (:mod:`capf_online_ca.trace`), with the lines
of the seed (``Enrollment rv = 35 (EST_ERR_SSL_READ) with pkcs7 length = 0``, ``Online Cert Signing Failed``,
``SetOperationStatus(Success:CAPF_OP_SUCCESS):0``...). A failed operation stays pending: the phone's next
session runs it again.

Example::

    registry = DeviceRegistry([DeviceConfig("SEP001122334455", AuthType.PASSWORD, "1234")])
    settings = CapfSettings(cert_file, key_file, EstSettings(ra_url, trust_file, client_certificate=cred), folder)
    async with CapfServer(settings, registry) as capf:
        print(capf.port)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TypeVar
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from capf_common import (
    AuthResponse,
    AuthType,
    CapfAuthenticationError,
    CapfError,
    CapfOperationResult,
    CapfServerConnection,
    CertificateType,
    ConnectionClosed,
    Curve,
    DeleteCertificateResponse,
    Event,
    FetchCertificateResponse,
    KeyType,
    NeedData,
    Reason,
    RequestInProgress,
    SignCertificateResponse,
    StoreCertificateResponse,
    certificates_to_pkcs7,
    est_error_code,
    load_certificates,
    verify_auth_response,
    verify_chain,
    write_file_atomic,
)
from capf_online_ca.phone import reason_name
from capf_online_ca.registry import (
    DeviceConfig,
    DeviceRegistry,
    FailureReason,
    Operation,
    certificate_status,
)
from capf_online_ca.trace import CapfTrace
from estclient import (
    AsyncEstClient,
    AuthenticationError,
    BadRequestError,
    BasicAuth,
    ClientCertificate,
    CmcFailError,
    EnrollResult,
    EstError,
    EstHttpError,
    NotSupportedError,
    TrustAnchors,
)

__all__ = ["CAPF_DEFAULT_PORT", "CapfServer", "CapfServerError", "CapfSettings", "EstSettings", "SessionOutcome"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: CAPF's TCP port (TLS).
CAPF_DEFAULT_PORT = 3804

_CURVES = {Curve.SECP256R1: ec.SECP256R1, Curve.SECP384R1: ec.SECP384R1, Curve.SECP521R1: ec.SECP521R1}
_OPERATION_NAMES = {Operation.INSTALL: "UPGRADE", Operation.DELETE: "DELETE", Operation.FETCH: "TROUBLESHOOT"}
_CA_REFUSALS = (AuthenticationError, BadRequestError, CmcFailError, NotSupportedError)


@dataclass(frozen=True)
class EstSettings:
    """How CAPF reaches the RA (EST server): URL, trust, and its credential.

    Attributes:
        url: The RA's base URL, ``https://HOST:PORT`` (EST paths under ``/.well-known/est/``).
        trust_file: PEM with the CA certificate(s) that issued the RA's TLS certificate (CAPF-trust).
        client_certificate: CAPF's TLS client certificate (how CUCM's CAPF authenticates to CES).
        username: HTTP Basic user, instead of or besides the client certificate.
        password: HTTP Basic password (never logged).
        label: EST CA label, if the RA uses one.
        timeout: Seconds for each phase of an EST request (connect, read, write).
        pending_retries: How often to ask again when the RA answers 202 (pending), waiting its Retry-After.
        template: The AD CS template name CES uses (CUCM's "Online CA Template"; written to the trace only).
        ca_host: The Online CA host name (written to the trace only; default: the RA URL's host).
        ca_port: The Online CA port (written to the trace only).
    """

    url: str
    trust_file: Path
    client_certificate: ClientCertificate | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    label: str | None = None
    timeout: float = 30.0
    pending_retries: int = 3
    template: str = "CiscoRA"
    ca_host: str | None = None
    ca_port: int = 443


@dataclass(frozen=True)
class CapfSettings:
    """The CAPF service settings.

    Attributes:
        certificate_file: PEM with CAPF's TLS server certificate followed by its intermediates.
        key_file: PEM with its private key.
        est: How to reach the RA.
        folder: Where the trace (``capf<N>.txt``) goes; CSRs and issued certificates go to ``folder/capf/csr``
            and ``folder/capf/cert`` (CUCM's ``/tmp/capf/csr`` and ``/tmp/capf/cert``).
        lsc_issuers: CAPF-trust for phones authenticating with an LSC: the CA certificates that issue LSCs
            directly (the Online CA's issuing CA). An issued LSC must chain to one of these or to a certificate
            of ``est.trust_file`` (the CA root uploaded to CAPF-trust).
        mic_issuers: The manufacturing CAs trusted for MICs (Cisco Manufacturing CA ...).
        host: The address to listen on.
        port: The port (3804 by default; 0 picks a free one, see :attr:`CapfServer.port`).
        phone_timeout: Seconds to wait for each message of a phone (key generation included).
        announce_auth_type: AUTH_TYPE sent in AUTH_REQUEST (capfd sends NONE; ``None`` omits it like CUCM).
    """

    certificate_file: Path
    key_file: Path
    est: EstSettings
    folder: Path
    lsc_issuers: Sequence[x509.Certificate] = ()
    mic_issuers: Sequence[x509.Certificate] = ()
    host: str = "127.0.0.1"
    port: int = CAPF_DEFAULT_PORT
    phone_timeout: float = 30.0
    announce_auth_type: AuthType | None = AuthType.NONE


@dataclass(frozen=True)
class SessionOutcome:
    """What one CAPF session ended with.

    Attributes:
        device: The device name the phone gave (``None`` if it never authenticated).
        operation: The operation that ran (``None`` for an unknown device or no session).
        result: The CAPF operation result recorded (``None`` when none was recorded: unknown device, no action).
        end_reason: The END_SESSION reason sent (``None`` when the session broke off before).
        elapsed: Seconds from connection to end.
        detail: One line on what happened.
        est_seconds: Seconds spent enrolling over EST (RA and CA included), ``None`` when no enrollment ran.
    """

    device: str | None
    operation: Operation | None
    result: CapfOperationResult | None
    end_reason: Reason | None
    elapsed: float
    detail: str = ""
    est_seconds: float | None = None


class CapfServerError(Exception):
    """CAPF cannot start as configured (certificate files, trust file, port); the message names cause and fix."""


class _Failure(Exception):
    """An operation failed: the result to record, the status reason, and the END_SESSION reason."""

    def __init__(
        self,
        result: CapfOperationResult,
        detail: str,
        reason: FailureReason | None = None,
        end: Reason | None = Reason.INVALID_ELEMENT,
    ) -> None:
        super().__init__(detail)
        self.result = result
        self.detail = detail
        self.reason = reason
        self.end = end


class _PhoneGone(Exception):
    """The phone closed the connection, sent something out of order, or did not answer in time."""


class CapfServer:
    """The CAPF server: listens for phones over TLS and runs each one's scheduled certificate operation.

    Args:
        settings: The service settings.
        registry: The devices and their operations (shared; statuses are recorded in it).
        trace: The trace writer (by default a :class:`~capf_online_ca.trace.CapfTrace` in ``settings.folder``,
            closed by :meth:`stop`; a trace passed in stays open).

    Raises:
        CapfServerError: The RA's trust file cannot be read.

    Attributes:
        registry: The device registry.
        trace: The trace writer.
        outcomes: One :class:`SessionOutcome` per finished session, in order.
    """

    def __init__(self, settings: CapfSettings, registry: DeviceRegistry, *, trace: CapfTrace | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self._owns_trace = trace is None
        self.trace = trace or CapfTrace(settings.folder)
        self.outcomes: list[SessionOutcome] = []
        self._server: asyncio.Server | None = None
        self._est: AsyncEstClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._session_ids = itertools.count(1)
        self._csr_dir = settings.folder / "capf" / "csr"
        trust_file = settings.est.trust_file
        try:
            self._trust_pem = trust_file.read_bytes()
            self._capf_trust = [*settings.lsc_issuers, *load_certificates(self._trust_pem)]
        except (OSError, CapfError) as exc:
            raise CapfServerError(
                f"cannot read the RA's trust file {trust_file}: {exc}. Fix: set EstSettings.trust_file to the PEM "
                "file of the CA that issued the RA's TLS certificate (the root uploaded to CAPF-trust)"
            ) from None
        self._cert_dir = settings.folder / "capf" / "cert"

    # -- lifecycle ----------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port CAPF listens on (the real one when started with port 0)."""
        if self._server is None or not self._server.sockets:
            return self.settings.port
        return int(self._server.sockets[0].getsockname()[1])

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.settings.certificate_file, self.settings.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise CapfServerError(
                f"cannot load CAPF's TLS certificate {self.settings.certificate_file} with key "
                f"{self.settings.key_file}: {exc}. Fix: give a PEM certificate (followed by its intermediates) and "
                "the unencrypted PEM private key that belongs to it"
            ) from None
        return context

    def _est_client(self) -> AsyncEstClient:
        est = self.settings.est
        auth = BasicAuth(est.username, est.password or "") if est.username else None
        return AsyncEstClient(
            est.url,
            trust=TrustAnchors.explicit_anchors(est.trust_file),
            label=est.label,
            auth=auth,
            client_certificate=est.client_certificate,
            pop_linking="never",  # the CSR was signed by the phone on another connection
            timeout=est.timeout,
        )

    async def start(self) -> CapfServer:
        """Read the settings (traced as CUCM's CAPF does at start-up), make the EST client and start listening.

        Returns:
            The server itself.

        Raises:
            CapfServerError: The TLS certificate or key cannot be loaded, or the port cannot be bound.
        """
        if self._server is not None:
            return self
        context = self._ssl_context()
        self._trace_startup()
        self._csr_dir.mkdir(parents=True, exist_ok=True)
        self._cert_dir.mkdir(parents=True, exist_ok=True)
        self._est = self._est_client()
        self.trace.debug("EST context ectx initialized")
        if self.settings.est.client_certificate is not None or self.settings.est.username:
            self.trace.debug("CA Credentials retrieved")
            self.trace.debug("est_client_set_auth() Successful!!")
        self.trace.debug("EST set server details success!!")
        try:
            self._server = await asyncio.start_server(self._accept, self.settings.host, self.settings.port, ssl=context)
        except OSError as exc:
            await self._abort_start()
            raise CapfServerError(
                f"CAPF cannot listen on {self.settings.host}:{self.settings.port}: {exc}. Fix: choose a free port "
                "(0 picks one) or stop the service that holds it"
            ) from None
        except BaseException:
            await self._abort_start()
            raise
        self.trace.debug(f"CAPF listening on {self.settings.host}:{self.port} (TLS)")
        _log.info("CAPF listening on %s:%d", self.settings.host, self.port)
        return self

    async def _abort_start(self) -> None:
        if self._est is not None:
            await self._est.aclose()
            self._est = None
        if self._owns_trace:
            self.trace.close()

    def _trace_startup(self) -> None:
        est = self.settings.est
        split = urlsplit(est.url)
        ca_host = est.ca_host or split.hostname or est.url
        trace = self.trace
        trace.line("CServiceParameters::Init() Certificate Generation Method=OnlineCA:4")
        trace.enter("CServiceParameters::OnlineCAInit()")
        trace.line(f"CServiceParameters::OnlineCAInit() Online CA hostname is {ca_host}")
        trace.line(f"CServiceParameters::OnlineCAInit() Online CA Port : {est.ca_port}")
        trace.line(f"CServiceParameters::OnlineCAInit() Online CA Template is {est.template}")
        trace.line("CServiceParameters::OnlineCAInit() Reading CAPF Service Parameters done")
        trace.leave("CServiceParameters::OnlineCAInit()")
        trace.line("CServiceParameters::Init() OnlineCA Initialized")
        trace.debug("CA Type is Online CA, setting up EST Connection")
        trace.debug("Inside setUpESTClient")
        trace.debug(f"EST server URL is {est.url}")
        length = len(self._trust_pem)
        trace.debug(f"cacert read success. cacert length : {length}")

    async def stop(self) -> None:
        """Stop listening, end open sessions and close the EST client."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
        est, self._est = self._est, None
        if est is not None:
            await est.aclose()
        self.trace.debug("CAPF service stopped")
        if self._owns_trace:
            self.trace.close()

    async def __aenter__(self) -> CapfServer:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        session = _Session(self, reader, writer, next(self._session_ids) & 0xFFFFFFFF)
        try:
            outcome = await session.run()
        except Exception as exc:  # a bug must not take the service down: end this session, keep serving
            _log.exception("CAPF session %s failed", session.conn.session_id)
            self.trace.debug(f"Internal error in the session: {type(exc).__name__}", session.device)
            outcome = session.outcome(f"internal error: {type(exc).__name__}: {exc}")
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        self.outcomes.append(outcome)
        _log.debug("session of %s ended after %.3f s: %s", outcome.device, outcome.elapsed, outcome.detail)

    # -- shared by sessions -------------------------------------------------------------------------------------

    def record(
        self,
        device: str,
        operation: Operation,
        result: CapfOperationResult,
        *,
        reason: FailureReason | None = None,
        lsc: x509.Certificate | None = None,
        clear_lsc: bool = False,
        detail: str = "",
    ) -> None:
        """Record an outcome in the registry and trace it as CUCM's ``SetOperationStatus`` does."""
        record = self.registry.record_outcome(
            device, operation, result, reason=reason, lsc=lsc, clear_lsc=clear_lsc, detail=detail
        )
        success = result in (CapfOperationResult.CAPF_OP_SUCCESS, CapfOperationResult.CAPF_FETCH_SUCCESS_BUT_NO_CERT)
        word = "Success" if success else "Failure"
        name = f"SetOperationStatus({word}:{result.name}):{int(result)}"
        status = certificate_status(operation, result, reason)
        mapper = "CAPFDevice::MapCapf_OpStatusToDBLTypeCertificateStatus"
        mapper += f"(OPERATION_{_OPERATION_NAMES[operation]}, {word})"
        trace = self.trace
        trace.enter(name)
        trace.line(f"  {name} Operation status Value is '{int(result)}'")
        trace.function(mapper, f"=>DbStatus=CERT_STATUS_{status.name}")
        trace.line(f"  {name} Operation status is set to {int(record.operation)}")
        trace.line(f"  {name} Operation status is set to {word}:{result.name}")
        query = (  # the statement CUCM logs; a trace line, never executed
            f"UPDATE Device SET tkCertificateOperation={int(record.operation)}, "  # noqa: S608
            f"tkcertificatestatus='{int(status)}' WHERE my_lower(name)=my_lower('{device}')"
        )
        trace.line(f"  {name} sql query - ({query})")
        trace.leave(name)

    async def enroll(self, device: str, csr: x509.CertificateSigningRequest) -> x509.Certificate:
        """Enroll a phone's CSR over EST, tracing it as CAPF's ``enrollCertUsingEST()`` does.

        Args:
            device: The device name.
            csr: The phone's CSR (its signature already checked).

        Returns:
            The LSC (its key is the CSR's, its chain verified against CAPF-trust).

        Raises:
            _Failure: The enrollment failed (EST error, pending too long, a certificate that does not fit).
        """
        trace = self.trace
        csr_file = self._csr_dir / f"{device}.csr"
        write_file_atomic(csr_file, csr.public_bytes(serialization.Encoding.PEM))
        trace.debug("CA Mode is OnlineCA, Initiating Automatic Certificate Enrollment", device)
        trace.debug(f"Calling enrollCertUsingEST() csr_file={csr_file}", device)
        trace.debug("Inside X509_REQ *read_csr()", device)
        trace.debug("Completed action in X509_REQ *read_csr()", device)
        assert self._est is not None, "CapfServer.start() makes the EST client"
        try:
            result = await self._est.simple_enroll(
                csr, wait=True, max_retries=max(self.settings.est.pending_retries, 0)
            )
        except EstError as exc:
            name = exc.libest_error or "EST_ERR_UNKNOWN"
            # the number as CUCM 12.5's libest 2.x writes it (estclient numbers codes above 54 as libest 3.x does)
            code = est_error_code(name)
            if code is None:
                code = exc.libest_code if exc.libest_code is not None else 0
            reason = (
                FailureReason.CA_REJECTED_CONNECTION
                if isinstance(exc, _CA_REFUSALS)
                else FailureReason.CA_COMMUNICATION_FAILURE
            )
            text = _est_error_text(exc)
            self._trace_enroll_failure(device, code, name, text)
            raise _Failure(CapfOperationResult.CAPF_OP_FAIL, f"EST enrollment failed: {text}", reason) from None
        if not isinstance(result, EnrollResult):
            code = est_error_code("EST_ERR_CA_ENROLL_RETRY") or 0
            self._trace_enroll_failure(device, code, "EST_ERR_CA_ENROLL_RETRY", "the CA still holds the request")
            raise _Failure(
                CapfOperationResult.CAPF_OP_FAIL,
                "the RA answered 202 (pending) after every retry",
                FailureReason.CA_COMMUNICATION_FAILURE,
            )
        lsc = result.certificate
        length = len(certificates_to_pkcs7([lsc, *result.chain]))
        trace.debug(f"Enrollment rv = 0 (EST_ERR_NONE) with pkcs7 length = {length}", device)
        cert_file = self._cert_dir / f"{device}.der"
        write_file_atomic(cert_file, lsc.public_bytes(serialization.Encoding.DER))
        trace.debug(f"Signed Cert written to {self._cert_dir}/ location...", device)
        trace.debug("Converting PKCS7 file to PEM format and PEM to DER", device)
        trace.debug("Return value from enrollCertUsingEST() : 0", device)
        trace.debug("Online Cert Signing successful", device)
        trace.debug("CAPF CORE: Rcvd Event: CAPF_EV_CA_CERT_REP in State: CAPF_STATE_AWAIT_CA_CERT_RESP", device)
        trace.debug("CAPF got device certificate", device)
        trace.debug(f"loadFile('{cert_file}')")
        problem = self._check_lsc(lsc, result.chain, csr)
        if problem:
            trace.debug(f"LSC verification failed: {problem}", device)
            raise _Failure(
                CapfOperationResult.CAPF_OP_FAIL,
                f"the CA's certificate is not usable: {problem}",
                FailureReason.CA_COMMUNICATION_FAILURE,
            )
        trace.debug("Read certificate for device", device)
        csr_file.unlink(missing_ok=True)
        trace.debug(f"LSC is verified. removing CSR at {csr_file}")
        return lsc

    def _trace_enroll_failure(self, device: str, code: int, name: str, message: str) -> None:
        trace = self.trace
        trace.debug(f"Enrollment rv = {code} ({name}) with pkcs7 length = 0", device)
        trace.debug(f"EST client error: {message}", device)
        trace.debug("est_client_enroll_csr() Failed! Could not obtain new certificate. Aborting.", device)
        trace.debug(f"Return value from enrollCertUsingEST() : {code}", device)
        trace.debug("Online Cert Signing Failed", device)

    def _check_lsc(
        self, lsc: x509.Certificate, chain: Sequence[x509.Certificate], csr: x509.CertificateSigningRequest
    ) -> str:
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        der = serialization.Encoding.DER
        if lsc.public_key().public_bytes(der, spki) != csr.public_key().public_bytes(der, spki):
            return "its public key is not the one of the phone's CSR"
        try:
            verify_chain([lsc, *chain], self._capf_trust)
        except CapfError as exc:
            return f"it does not chain to CAPF-trust ({exc})"
        return ""


def _est_error_text(exc: EstError) -> str:
    """The EST error's cause and fix, without estclient's ``[libest: NAME (n)]`` suffix.

    estclient numbers libest codes above 54 as libest 3.x does (``EST_ERR_UNKNOWN (94)``); the CAPF trace writes
    CUCM 12.5's libest 2.x number on the ``Enrollment rv`` line, so a second, different number must not follow.
    """
    if isinstance(exc, EstHttpError) and "certificate template" in exc.server_text:
        # The RA's 401 for a refused template (CiscoRA answers 401): its text names the template problem and the
        # fix; estclient's generic 401 fix (check user name, password, client certificate) would mislead.
        return exc.message
    return f"{exc.message} Fix: {exc.hint}" if exc.hint else exc.message


def _key_description(key_type: KeyType, config: DeviceConfig) -> str:
    return f"EC {config.curve.name}" if key_type == KeyType.EC else f"RSA {config.key_size}"


class _Session:
    """One phone connection: a CAPF session from AUTH_REQUEST to END_SESSION."""

    def __init__(
        self, capf: CapfServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, session_id: int
    ) -> None:
        self.capf = capf
        self.reader = reader
        self.writer = writer
        self.conn = CapfServerConnection(session_id)
        self.device: str | None = None
        self.operation: Operation | None = None
        self.result: CapfOperationResult | None = None
        self.end_reason: Reason | None = None
        self.est_seconds: float | None = None
        self.started = time.monotonic()
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)

    def outcome(self, detail: str) -> SessionOutcome:
        return SessionOutcome(
            self.device,
            self.operation,
            self.result,
            self.end_reason,
            time.monotonic() - self.started,
            detail,
            self.est_seconds,
        )

    # -- I/O --------------------------------------------------------------------------------------------------

    async def _send(self, data: bytes) -> None:
        self.writer.write(data)  # one write per message: header and body together
        await self.writer.drain()

    async def _next(self) -> Event:
        while True:
            event = self.conn.next_event()
            if not isinstance(event, NeedData):
                return event
            try:
                data = await asyncio.wait_for(self.reader.read(65536), self.capf.settings.phone_timeout)
            except TimeoutError:
                raise _PhoneGone(f"no message from the phone within {self.capf.settings.phone_timeout:g} s") from None
            self.conn.receive_data(data)

    async def _expect(self, kind: type[_T], what: str) -> _T:
        """The phone's next message, skipping REQUEST_IN_PROGRESS; must be ``kind``."""
        while True:
            event = await self._next()
            if isinstance(event, RequestInProgress):
                self.capf.trace.debug("Rcvd REQUEST_IN_PROGRESS: the phone is generating its key", self.device)
                continue
            if isinstance(event, ConnectionClosed):
                raise _PhoneGone(f"the phone closed the connection while CAPF waited for {what}")
            if not isinstance(event, kind):
                raise _PhoneGone(f"the phone sent {type(event).__name__} instead of {what}")
            return event

    async def _end(self, reason: Reason) -> None:
        self.capf.trace.debug(f"Sending END_SESSION msg (reason {reason.name})", self.device)
        self.end_reason = reason
        await self._send(self.conn.end_session(reason))

    # -- the session --------------------------------------------------------------------------------------------

    async def run(self) -> SessionOutcome:
        trace = self.capf.trace
        trace.debug(f"Recd connection from {self.peer}, session id {self.conn.session_id}")
        try:
            await self._send(self.conn.start(self.capf.settings.announce_auth_type))
            auth = await self._expect(AuthResponse, "AUTH_RESPONSE")
            self.device = auth.device_name
            return await self._authenticated(auth)
        except _PhoneGone as exc:
            return self._phone_failure(str(exc))
        except CapfError as exc:  # protocol errors: the connection is unusable
            return self._phone_failure(f"protocol error: {exc}")
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            return self._phone_failure(f"connection error: {exc!r}")

    def _phone_failure(self, detail: str) -> SessionOutcome:
        self.capf.trace.debug(f"Phone communication failed: {detail}", self.device)
        if self.device and self.operation is not None and self.operation is not Operation.NONE:
            result = CapfOperationResult.CAPF_OP_FAIL_PHONE_COMM_ERROR
            self.result = result
            self.capf.record(self.device, self.operation, result, detail=detail)
        return self.outcome(detail)

    async def _authenticated(self, auth: AuthResponse) -> SessionOutcome:
        capf, trace, name = self.capf, self.capf.trace, auth.device_name or ""
        trace.debug("CAPF CORE: Rcvd Event: CAPF_EV_AUTH_RESP in State: CAPF_STATE_AWAIT_AUTH_RESP", name)
        record = capf.registry.note_attempt(name)
        if record is None:
            trace.debug(f"Device {name} not found in the database", name)
            await self._end(Reason.UNKNOWN_DEVICE)
            return self.outcome("unknown device")
        config = record.config
        self.device = config.name
        trace.debug(f"findAndPost Device found in the cache map {config.name}")
        if config.operation is Operation.NONE:
            trace.debug("No pending CAPF operation for the device", config.name)
            await self._end(Reason.NO_ACTION)
            return self.outcome("no pending operation")
        self.operation = config.operation
        try:
            self._authenticate(auth, config)
            if config.operation is Operation.INSTALL:
                await self._install(config)
            elif config.operation is Operation.FETCH:
                await self._fetch(config)
            else:
                await self._delete(config)
        except _Failure as failure:
            self.result = failure.result
            capf.record(config.name, config.operation, failure.result, reason=failure.reason, detail=failure.detail)
            if failure.end is not None:
                await self._end(failure.end)
            return self.outcome(failure.detail)
        return self.outcome("done")

    def _authenticate(self, auth: AuthResponse, config: DeviceConfig) -> None:
        settings, trace = self.capf.settings, self.capf.trace
        trace.debug(f"Authenticating device, mode {config.auth_mode.name}", config.name)
        try:
            certificate = verify_auth_response(
                auth,
                mode=config.auth_mode,
                session_id=self.conn.session_id or 0,
                password=config.auth_string,
                lsc_issuers=settings.lsc_issuers,
                mic_issuers=settings.mic_issuers,
                complete_by=config.deadline,  # CUCM's "Operation Completes By": CAPF_OP_FAIL_LATE_REQUEST after it
            )
        except CapfAuthenticationError as exc:
            result = CapfOperationResult(exc.capf_code)
            trace.debug(f"Authentication failed ({result.name}): {exc.cause}", config.name)
            raise _Failure(result, f"authentication refused: {exc.cause}") from None
        used = "" if certificate is None else f" with certificate {certificate.subject.rfc4514_string()}"
        trace.debug(f"Authentication successful{used}", config.name)

    async def _install(self, config: DeviceConfig) -> None:
        capf, trace, name = self.capf, self.capf.trace, config.name
        key_type = config.key_type
        trace.debug(f"Sending SIGN_CERT_REQ msg ({_key_description(key_type, config)})", name)
        await self._send(self.conn.request_csr(key_type, key_size=config.key_size, curve=config.curve))
        answer = await self._expect(SignCertificateResponse, "SIGN_CERTIFICATE_RESPONSE")
        if not answer.succeeded or answer.csr is None:
            raise _Failure(
                CapfOperationResult.CAPF_OP_FAIL,
                f"the phone could not make its key and CSR (reason {reason_name(answer.reason)})",
                FailureReason.KEY_GENERATION_FAILED_TIMEOUT,
            )
        try:
            csr = answer.load_csr()
        except CapfError as exc:
            raise _Failure(
                CapfOperationResult.CAPF_OP_FAIL,
                f"the phone's CSR is unusable: {exc}",
                FailureReason.KEY_GENERATION_FAILED_TIMEOUT,
            ) from None
        trace.debug("Rcvd SIGN_CERT_RES: the phone's CSR", name)
        self._check_csr(csr, config, key_type)
        est_started = time.monotonic()
        try:
            lsc = await capf.enroll(name, csr)
        finally:
            self.est_seconds = time.monotonic() - est_started
        trace.debug("CA CERT RES certificate ready .", name)
        trace.debug("Sending STORE_CERT_REQ msg", name)
        await self._send(self.conn.store_certificate(lsc))
        stored = await self._expect(StoreCertificateResponse, "STORE_CERTIFICATE_RESPONSE")
        if not stored.succeeded:
            raise _Failure(
                CapfOperationResult.CAPF_OP_FAIL, f"the phone did not store the LSC ({reason_name(stored.reason)})"
            )
        trace.debug("Rcvd STORE_CERT_RES: the phone stored its LSC", name)
        trace.enter(f"Select({name})")
        trace.leave(f"Select({name})")
        self.result = CapfOperationResult.CAPF_OP_SUCCESS
        capf.record(name, Operation.INSTALL, self.result, lsc=lsc, detail=f"LSC {lsc.serial_number:x} installed")
        await self._end(Reason.UPDATE_CERTIFICATE)

    def _check_csr(self, csr: x509.CertificateSigningRequest, config: DeviceConfig, key_type: KeyType) -> None:
        key = csr.public_key()
        if key_type == KeyType.RSA:
            fits = isinstance(key, rsa.RSAPublicKey) and key.key_size == config.key_size
        else:
            fits = isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, _CURVES[config.curve])
        if not fits:
            raise _Failure(
                CapfOperationResult.CAPF_OP_FAIL,
                f"the CSR's key is not the {_key_description(key_type, config)} key CAPF asked for",
                FailureReason.KEY_GENERATION_FAILED_TIMEOUT,
            )
        names = csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        if not names or not str(names[0].value).upper().endswith(config.name):
            raise _Failure(
                CapfOperationResult.CAPF_OP_FAIL_INVALID_CRENDENTIALS,
                f"the CSR's common name does not name {config.name}",
            )

    async def _fetch(self, config: DeviceConfig) -> None:
        trace, name = self.capf.trace, config.name
        trace.debug("Sending FETCH_CERT_REQ msg", name)
        await self._send(self.conn.fetch_certificate())
        answer = await self._expect(FetchCertificateResponse, "FETCH_CERTIFICATE_RESPONSE")
        found = 0
        for element in answer.certificates:
            try:
                cert = element.load()
            except CapfError as exc:
                trace.debug(f"Fetched certificate does not parse: {exc}", name)
                continue
            kind = CertificateType(element.certificate_type).name if element.certificate_type in (1, 2) else "?"
            trace.debug(
                f"Fetched {kind} subject={cert.subject.rfc4514_string()} serial={cert.serial_number:x} "
                f"notAfter={cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S}",
                name,
            )
            found += 1
        result = CapfOperationResult.CAPF_OP_SUCCESS if found else CapfOperationResult.CAPF_FETCH_SUCCESS_BUT_NO_CERT
        self.result = result
        self.capf.record(name, Operation.FETCH, result, detail=f"{found} certificate(s) fetched")
        await self._end(Reason.NO_ACTION)

    async def _delete(self, config: DeviceConfig) -> None:
        trace, name = self.capf.trace, config.name
        trace.debug("Sending DELETE_CERT_REQ msg", name)
        await self._send(self.conn.delete_certificate())
        answer = await self._expect(DeleteCertificateResponse, "DELETE_CERTIFICATE_RESPONSE")
        if not answer.succeeded:
            raise _Failure(
                CapfOperationResult.CAPF_OP_FAIL, f"the phone did not delete its LSC ({reason_name(answer.reason)})"
            )
        self.result = CapfOperationResult.CAPF_OP_SUCCESS
        self.capf.record(name, Operation.DELETE, self.result, clear_lsc=True, detail="LSC deleted")
        await self._end(Reason.UPDATE_CERTIFICATE)
