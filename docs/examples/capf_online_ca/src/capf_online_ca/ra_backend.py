"""The RA's enrollment backend: EST requests turned into AD CS web enrollment requests through certsrv.

At start it logs into ``/certsrv`` and fetches the CA chain with ``certnew.p7b?ReqID=CACert&Renewal=0&Enc=bin``,
as CiscoRA does (the seed's nginx log), and hands the chain to EST for ``/cacerts``. Each enrollment is one POST to
certfnsh.asp with the configured template and one GET of certnew.cer over an already authenticated connection. A
pending request becomes EST's ``202`` with ``Retry-After``; the client's repeated request fetches the outcome of
the same AD CS request instead of submitting again.

The backend keeps a small pool of certsrv clients (one kept-alive, authenticated connection each), so that
concurrent enrollments do not queue behind one connection.
"""

from __future__ import annotations

import hashlib
import itertools
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from capf_online_ca.nginx_log import NginxErrorLog
from certsrv import (
    CertsrvClient,
    CertsrvConnectionError,
    CertsrvError,
    CertsrvTimeoutError,
    EnrollmentError,
    Issued,
    NameResolutionError,
    Pending,
    TemplateAccessDeniedError,
    TemplateNotFoundError,
    Timeouts,
    TlsError,
)
from estclient.testing import EnrollmentRejected, IssuedWithKey, Requester
from estclient.testing import Issued as EstIssued
from estclient.testing import Pending as EstPending

if TYPE_CHECKING:
    from estclient import CsrAttrs

__all__ = ["AdcsBackend", "AdcsSettings"]

_USER_AGENT = "CiscoRA 1.0"


@dataclass(frozen=True)
class AdcsSettings:
    r"""How the RA reaches AD CS (the seed's Online CA service parameters, plus per-phase time limits).

    Attributes:
        url: The web enrollment URL, ``https://HOST:PORT/certsrv``.
        username: The account, ``DOMAIN\user``.
        password: Its password (never logged, not shown by ``repr``).
        template: The certificate template for every enrollment.
        trust_file: PEM file with the CAs trusted for the IIS certificate.
        auth: ``"ntlm"``, ``"negotiate"`` or ``"kerberos"``.
        connect_timeout: Seconds for TCP connect plus TLS handshake.
        auth_timeout: Seconds for each authentication round trip (CiscoRA: a fixed 10 s).
        enroll_timeout: Seconds to wait for the answer to a submitted request (CiscoRA: a fixed 10 s).
        retrieval_timeout: Seconds to wait for certificates and the CA chain.
        connections: How many authenticated connections to AD CS the RA keeps (concurrent enrollments).
        retry_after: Seconds announced to EST clients while a request is pending at AD CS.
        ca_renewal: The CA renewal whose chain is fetched at start (CiscoRA asks for 0).
        template_refused_status: The HTTP status EST clients get when AD CS refuses the template: CiscoRA
            answers 401 (libest's EST_ERR_AUTH_FAIL, the seed's "Falsche Konfiguration von Zertifikatsvorlagen").
    """

    url: str
    username: str
    password: str = field(repr=False)
    template: str
    trust_file: Path
    auth: str = "ntlm"
    connect_timeout: float = 10.0
    auth_timeout: float = 30.0
    enroll_timeout: float = 60.0
    retrieval_timeout: float = 30.0
    connections: int = 4
    retry_after: int = 5
    ca_renewal: int = 0
    template_refused_status: int = 401

    @property
    def timeouts(self) -> Timeouts:
        """The per-phase limits as certsrv's :class:`~certsrv.Timeouts`."""
        return Timeouts(
            connect=self.connect_timeout,
            authentication=self.auth_timeout,
            enrollment=self.enroll_timeout,
            retrieval=self.retrieval_timeout,
        )

    @property
    def login_url(self) -> str:
        """The URL CiscoRA names for its login (``https://HOST:PORT/certsrv``)."""
        return self.url.rstrip("/")

    def page_url(self, page: str) -> str:
        """The URL of a page under ``/certsrv/``."""
        return f"{self.login_url}/{page}"


class AdcsBackend:
    """An :class:`estclient.testing.EnrollmentBackend` that enrolls at AD CS through certsrv.

    Args:
        settings: How to reach AD CS.
        log: The RA's error.log.
    """

    def __init__(self, settings: AdcsSettings, log: NginxErrorLog) -> None:
        self.settings = settings
        self.log = log
        self._idle: queue.LifoQueue[CertsrvClient] = queue.LifoQueue()
        self._created = 0
        self._all: list[CertsrvClient] = []
        self._lock = threading.Lock()
        self._chain: list[x509.Certificate] = []
        self._pending: dict[bytes, int] = {}
        self._sequence = itertools.count(1)
        self._closed = False

    # -- the certsrv connection pool ---------------------------------------------------------------------------

    def _new_client(self) -> CertsrvClient:
        s = self.settings
        return CertsrvClient(
            s.url,
            auth=s.auth,  # type: ignore[arg-type]  # checked by certsrv (ConfigurationError names the choices)
            username=s.username,
            password=s.password,
            ca_file=s.trust_file,
            timeouts=s.timeouts,
            user_agent=_USER_AGENT,
            trust_env=False,
        )

    @contextmanager
    def _client(self) -> Iterator[CertsrvClient]:
        try:
            client = self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                grow = self._created < self.settings.connections
                if grow:
                    self._created += 1
            if grow:
                client = self._new_client()
                with self._lock:
                    self._all.append(client)
            else:
                client = self._idle.get()
        try:
            yield client
        finally:
            self._idle.put(client)

    def close(self) -> None:
        """Close every connection to AD CS."""
        self._closed = True
        with self._lock:
            clients, self._all = self._all, []
            self._created = 0
        for client in clients:
            client.close()
        while not self._idle.empty():
            self._idle.get_nowait()

    # -- start-up: login and CA chain ----------------------------------------------------------------------------

    def start(self) -> bool:
        """Log into ``/certsrv`` and fetch the CA chain (CiscoRA's start-up); log the outcome.

        Returns:
            Whether the CA chain is now known.
        """
        s = self.settings
        with self._client() as client:
            try:
                client.authenticate()
            except CertsrvError as exc:
                self.log.login_failed(s.login_url, exc)
                return False
            self.log.login_ok(s.login_url)
            chain_url = s.page_url(f"certnew.p7b?ReqID=CACert&Renewal={s.ca_renewal}&Enc=bin")
            try:
                chain = client.get_ca_chain(s.ca_renewal)
            except CertsrvError as exc:
                self.log.cacerts_failed(chain_url, exc)
                return False
        self._chain = list(chain)
        self.log.cacerts_ok(chain_url)
        return True

    @property
    def ready(self) -> bool:
        """Whether the CA chain is known (the start-up succeeded)."""
        return bool(self._chain)

    # -- EnrollmentBackend ---------------------------------------------------------------------------------------

    def ca_certificates(self, label: str | None) -> Sequence[x509.Certificate]:
        """The AD CS chain fetched at start (fetched again if the start-up failed)."""
        if not self._chain:
            self.log.startup("warn", "CA Chain requested but this value has not yet been set")
            self.start()
        return list(self._chain)

    def csr_attributes(self, label: str | None) -> CsrAttrs | None:
        """No CSR attribute requirements (``/csrattrs`` answers 204), as CiscoRA."""
        return None

    def enroll(
        self,
        csr: x509.CertificateSigningRequest,
        *,
        label: str | None,
        requester: Requester,
        renewal_of: x509.Certificate | None,
    ) -> EstIssued | EstPending:
        """Submit the CSR with the configured template (or fetch the outcome of its pending request)."""
        s = self.settings
        connection = next(self._sequence)
        key = hashlib.sha256(csr.public_bytes(serialization.Encoding.DER)).digest()
        with self._lock:
            pending_id = self._pending.get(key)
        page = "certnew.cer" if pending_id is not None else "certfnsh.asp"
        try:
            with self._client() as client:
                result = client.retrieve(pending_id) if pending_id is not None else client.submit(csr, s.template)
        except CertsrvConnectionError as exc:
            self.log.request_failed("ra_certsrv_enroll", exc.url or s.page_url(page), exc, connection=connection)
            raise EnrollmentRejected(
                _unreachable_text(exc),
                http_status=503,
                retry_after=s.retry_after,
            ) from exc
        except (TemplateNotFoundError, TemplateAccessDeniedError) as exc:
            with self._lock:
                self._pending.pop(key, None)
            self.log.event(
                "warn", "ra_certsrv_enroll", f"MS CA refused the request for template '{s.template}': "
                f"{_short(exc)}", connection=connection
            )  # fmt: skip
            raise EnrollmentRejected(
                f"The CA refused the certificate template {s.template!r} (the RA's login to the CA worked; this is "
                f"not a credential problem): {_short(exc)} Fix: set CUCM's Online CA Template service parameter to "
                "a template the CA offers (its name, not its display name) that the RA's account may enroll for.",
                http_status=s.template_refused_status,
            ) from exc
        except EnrollmentError as exc:
            with self._lock:
                self._pending.pop(key, None)
            self.log.event(
                "warn", "ra_certsrv_enroll", f"MS CA refused the request: {_short(exc)}", connection=connection
            )
            raise EnrollmentRejected(f"The CA refused the request: {_short(exc)}", http_status=403) from exc
        except CertsrvError as exc:
            self.log.event(
                "error", "ra_certsrv_enroll", f"Request to MS CA failed: {_short(exc)}", connection=connection
            )
            raise EnrollmentRejected(f"The request to the CA failed: {_short(exc)}", http_status=502) from exc
        if isinstance(result, Pending):
            with self._lock:
                self._pending[key] = result.request_id
            self.log.event(
                "info", "ra_certsrv_enroll", f"Request ID {result.request_id} is pending at the CA (template "
                f"{s.template}) for {requester.description}", connection=connection
            )  # fmt: skip
            return EstPending(retry_after=s.retry_after, request_id=str(result.request_id))
        assert isinstance(result, Issued)
        with self._lock:
            self._pending.pop(key, None)
        self.log.event(
            "info", "ra_certsrv_enroll", f"Certificate issued by MS CA for Request ID {result.request_id} (template "
            f"{s.template}, {result.certificate.subject.rfc4514_string()}) to {requester.description}",
            connection=connection,
        )  # fmt: skip
        chain = [c for c in self._chain if c.subject != c.issuer] or self._chain[:1]
        return EstIssued(result.certificate, chain)

    def server_keygen(
        self,
        csr: x509.CertificateSigningRequest,
        *,
        label: str | None,
        requester: Requester,
    ) -> IssuedWithKey | EstPending:
        """Not offered: AD CS web enrollment takes requests for keys the client made (CiscoRA has no keygen)."""
        raise EnrollmentRejected(
            "This RA does not generate keys (/serverkeygen): send your own CSR to /simpleenroll.", http_status=501
        )


def _unreachable_text(exc: CertsrvConnectionError) -> str:
    """The RA's 503 text: the actual cause of the failed connection to the CA (certsrv's message, no secret in it)."""
    cause = _short(exc).rstrip(".")
    if isinstance(exc, CertsrvTimeoutError):
        return f"The CA did not answer in time: {cause}; try again later."
    if isinstance(exc, TlsError | NameResolutionError):
        return f"The RA cannot connect to the CA: {cause}; the RA's CA settings or certificates need fixing."
    return f"The RA could not reach the CA: {cause}; try again later."


def _short(exc: CertsrvError) -> str:
    """The error's message without its fix sentence (the fix is for the RA's operator, not the EST client)."""
    return str(exc).split(" Fix:", 1)[0]
