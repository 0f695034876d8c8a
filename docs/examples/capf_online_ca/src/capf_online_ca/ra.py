"""The RA (CiscoRA / CES): an EST server whose enrollments go to AD CS, logging like CiscoRA's nginx error.log.

It is estclient's :class:`~estclient.testing.EstServer` with :class:`~capf_online_ca.ra_backend.AdcsBackend`
behind it. CAPF authenticates with its TLS client certificate (issued under the lab root) or, when EST users are
configured, with HTTP Basic. Proof-of-possession linking is off, as in CiscoRA ("pop_enabled off"): CAPF forwards
CSRs the phones made on another connection.

Example::

    with start_adcs(pki, folder) as adcs, start_ra(pki, folder, ra_settings(adcs)) as ra:
        print(ra.url, ra.error_log)   # EST at https://localhost:PORT/.well-known/est/
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import TracebackType

from cryptography import x509

from capf_online_ca.adcs import LabAdcs
from capf_online_ca.faults import LabFault
from capf_online_ca.nginx_log import EST_LOGGER, EstLogHandler, NginxErrorLog
from capf_online_ca.pki import LabPki
from capf_online_ca.ra_backend import AdcsBackend, AdcsSettings
from estclient.testing import EstServer, TlsIdentity

__all__ = ["ERROR_LOG_NAME", "LabRa", "certsrv_check_arguments", "ra_settings", "start_ra"]

#: The RA's log file name in the lab folder (CiscoRA: /usr/local/thirdparty/nginx/install/logs/error.log).
ERROR_LOG_NAME = "error.log"


def ra_settings(
    adcs: LabAdcs,
    fault: LabFault | None = None,
    *,
    auth_timeout: float = 10.0,
    enroll_timeout: float = 30.0,
    retrieval_timeout: float = 30.0,
    connections: int = 4,
) -> AdcsSettings:
    """The RA's AD CS settings for the lab's AD CS, with a fault's misconfiguration and time limits applied.

    Args:
        adcs: The running lab AD CS.
        fault: The lab fault (its CA host, template and RA time limits win over the arguments).
        auth_timeout: Seconds for each authentication round trip.
        enroll_timeout: Seconds to wait for the answer to a submitted request.
        retrieval_timeout: Seconds to wait for certificates and the CA chain.
        connections: Authenticated connections the RA keeps to AD CS.

    Returns:
        The settings for :func:`start_ra`.
    """
    settings = AdcsSettings(
        url=adcs.url,
        username=adcs.username,
        password=adcs.password,
        template=adcs.template,
        trust_file=adcs.trust_file,
        auth_timeout=auth_timeout,
        enroll_timeout=enroll_timeout,
        retrieval_timeout=retrieval_timeout,
        connections=connections,
    )
    if fault is None:
        return settings
    return replace(
        settings,
        url=adcs.url_for(fault.ca_host) if fault.ca_host else settings.url,
        template=fault.template or settings.template,
        auth_timeout=fault.ra_auth_timeout or settings.auth_timeout,
        enroll_timeout=fault.ra_enroll_timeout or settings.enroll_timeout,
        retrieval_timeout=fault.ra_retrieval_timeout or settings.retrieval_timeout,
    )


def certsrv_check_arguments(settings: AdcsSettings, fault: LabFault | None = None) -> tuple[list[str], dict[str, str]]:
    """The ``certsrv`` arguments and environment that check the RA's AD CS configuration (``certsrv check``).

    The check then walks the seed's common problems with the RA's URL, account, trust store and template; for a
    timeout fault it gets the fault's short ``--timeout``, for the enrollment timeout ``--test-enroll``.

    Args:
        settings: The RA's AD CS settings.
        fault: The lab fault being reproduced, if any.

    Returns:
        ``(arguments, environment)``: run ``certsrv *arguments`` with the environment added (the password goes
        there, ``CERTSRV_PASSWORD``, never on the command line). The output is JSON.
    """
    args = ["--url", settings.url, "--auth", settings.auth, "--user", settings.username]
    args += ["--ca-file", str(settings.trust_file)]
    if fault is not None and fault.check_timeout is not None:
        args += ["--timeout", str(fault.check_timeout)]
    args += ["--json", "check", "--template", settings.template, *(fault.check_args if fault else ())]
    return args, {"CERTSRV_PASSWORD": settings.password}


class LabRa:
    """The RA: start with :meth:`start` (or :func:`start_ra`), stop with :meth:`stop`, restart on the same port.

    Args:
        pki: The lab PKI (the RA's TLS certificate; the root and issuing CA trusted for CAPF's client certificate).
        folder: The lab folder: ``error.log`` is written there, the EST server's files under ``ra/``.
        settings: How to reach AD CS.
        est_users: EST user name → password for HTTP Basic; ``None``: CAPF must present a client certificate.
        host: The address to listen on.
        port: The port (0: a free one; a restart keeps the port first chosen).

    The EST server's libest-style records come from the process-wide ``estclient.testing`` logger: run one RA per
    process at a time, or the ``***EST`` lines of both land in both error.logs.

    Attributes:
        log: The error.log writer.
        backend: The AD CS backend of the running server (``None`` while stopped).
        server: The EST server (``None`` while stopped).
    """

    def __init__(
        self,
        pki: LabPki,
        folder: Path,
        settings: AdcsSettings,
        *,
        est_users: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.pki = pki
        self.folder = folder
        self.settings = settings
        self.est_users = dict(est_users or {})
        self.host = host
        self.port = port
        self.log = NginxErrorLog(folder / ERROR_LOG_NAME)
        self.backend: AdcsBackend | None = None
        self.server: EstServer | None = None
        self._handler: EstLogHandler | None = None
        self._previous_level = logging.NOTSET

    @property
    def error_log(self) -> Path:
        """The RA's error.log."""
        return self.log.path

    @property
    def url(self) -> str:
        """``https://localhost:PORT`` (EST paths under ``/.well-known/est/``)."""
        return f"https://localhost:{self.port}"

    @property
    def trust_file(self) -> Path:
        """What an EST client trusts for the RA's TLS certificate (the lab root)."""
        return self.pki.trust_bundle

    def start(self) -> LabRa:
        """Log into AD CS, fetch the CA chain (both logged) and start serving EST.

        The server starts even when the login fails, as CiscoRA does: ``/cacerts`` and enrollments try AD CS
        again, and every failure is logged.

        Returns:
            The RA itself.
        """
        if self.server is not None:
            return self
        self._attach_log()
        for cert in (self.pki.root.cert, self.pki.issuing_ca.cert):
            self.log.startup("warn", f"ssl_init_cert_store: Adding cert to store ({_openssl_name(cert)})")
        backend = AdcsBackend(self.settings, self.log)
        backend.start()
        ra = self.pki.ra
        server = EstServer(
            backend,
            host=self.host,
            port=self.port,
            tls=TlsIdentity(ra.cert, ra.key, (self.pki.issuing_ca.cert,), (self.pki.root.cert,)),
            users=self.est_users or None,
            client_cas=[self.pki.root.cert, self.pki.issuing_ca.cert],
            require_client_certificate=not self.est_users,
            pop="off",
            directory=self.folder / "ra",
        )
        try:
            server.start()
        except BaseException:
            backend.close()
            self._detach_log()
            raise
        self.backend, self.server = backend, server
        self.port = server.port
        return self

    def stop(self) -> None:
        """Stop serving and close the connections to AD CS (the log stays)."""
        server, backend = self.server, self.backend
        self.server = self.backend = None
        if server is not None:
            server.stop()
        if backend is not None:
            backend.close()
        self._detach_log()

    def restart(self) -> None:
        """Stop and start again on the same port (a new login and CA chain fetch, as a CES restart)."""
        self.stop()
        self.start()

    def __enter__(self) -> LabRa:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _attach_log(self) -> None:
        logger = logging.getLogger(EST_LOGGER)
        self._handler = EstLogHandler(self.log)
        self._previous_level = logger.level
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        logger.addHandler(self._handler)

    def _detach_log(self) -> None:
        if self._handler is not None:
            logger = logging.getLogger(EST_LOGGER)
            logger.removeHandler(self._handler)
            logger.setLevel(self._previous_level)
            self._handler = None


def _openssl_name(cert: x509.Certificate) -> str:
    """The subject as OpenSSL's one-line form prints it (``/DC=test/DC=lab/CN=Lab Root CA``)."""
    return "".join(f"/{attr.rfc4514_attribute_name}={attr.value!s}" for rdn in cert.subject.rdns for attr in rdn)


def start_ra(
    pki: LabPki,
    folder: Path,
    settings: AdcsSettings,
    *,
    est_users: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> LabRa:
    """Start the RA and return it running (see :class:`LabRa` for the arguments)."""
    return LabRa(pki, folder, settings, est_users=est_users, host=host, port=port).start()
