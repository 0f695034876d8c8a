"""The RA's error.log, in the forms of CiscoRA's nginx error.log that the seed shows.

Three line forms, as CiscoRA writes them:

* ``2019/03/05 12:31:21 [info] 31067#0: login_to_certsrv_ca: Secure connection to MS CertServ completed ...``
  (nginx's own format; ``*N`` after the pid names the EST connection a line belongs to);
* ``nginx: [warn] login_to_certsrv_ca: Curl call for MS CA login failed with return code 60 (...)`` (the start-up
  messages);
* ``***EST [WARNING][est_enroll_auth:394]--> HTTP authentication failed. Auth type=1`` (libest's logger: here the
  EST server's log records, with the Python line number in place of libest's).

certsrv's typed errors are written as the curl return codes and texts CiscoRA shows for the same causes
(:func:`curl_error`): 6 name resolution, 7 connection refused, 28 timeout, 35 TLS handshake, 51 host name
mismatch, 60 certificate chain, self-signed certificate or validity dates. Passwords never reach this log: the
lines carry URLs, user names, subjects and error texts only.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from pathlib import Path

from certsrv import (
    AuthenticationError,
    CertsrvError,
    CertsrvTimeoutError,
    ConnectTimeoutError,
    HostnameMismatchError,
    NameResolutionError,
    SelfSignedServerCertificateError,
    ServerCertificateExpiredError,
    ServerCertificateNotYetValidError,
    ServerUnreachableError,
    TlsError,
    UntrustedServerChainError,
)

__all__ = ["EST_LOGGER", "EstLogHandler", "NginxErrorLog", "curl_error"]

#: The logger the EST server (``estclient.testing``) writes its libest-style records to.
EST_LOGGER = "estclient.testing"

_NGINX_LEVELS = {"DEBUG": "debug", "INFO": "info", "WARNING": "warn", "ERROR": "error", "CRITICAL": "crit"}
_EST_RECORD = re.compile(r"^\*\*\*EST \[(?P<level>\w+)\]\[(?P<func>[^\]:]+)(?::\d+)?\]-->\s?(?P<msg>.*)$", re.DOTALL)


def curl_error(error: CertsrvError) -> tuple[int, str]:
    """The curl return code and text CiscoRA logs for the failure certsrv reports as ``error``.

    Returns:
        ``(code, text)``, e.g. ``(60, "SSL certificate problem: unable to get local issuer certificate")``.
    """
    if isinstance(error, NameResolutionError):
        return 6, f"Could not resolve: {error.host} (Domain name not found)"
    if isinstance(error, ConnectTimeoutError):
        return 28, f"Connection timed out after {_milliseconds(error.limit)} milliseconds"
    if isinstance(error, CertsrvTimeoutError):
        return 28, f"Operation timed out after {_milliseconds(error.limit)} milliseconds with 0 bytes received"
    if isinstance(error, HostnameMismatchError):
        name = error.names[0] if error.names else ""
        return 51, f"SSL: certificate subject name '{name}' does not match target host name '{error.host}'"
    if isinstance(error, SelfSignedServerCertificateError):
        return 60, "SSL certificate problem: self signed certificate"
    if isinstance(error, UntrustedServerChainError):
        return 60, "SSL certificate problem: unable to get local issuer certificate"
    if isinstance(error, ServerCertificateNotYetValidError):
        return 60, "SSL certificate problem: certificate is not yet valid"
    if isinstance(error, ServerCertificateExpiredError):
        return 60, "SSL certificate problem: certificate has expired"
    if isinstance(error, TlsError):
        return 35, "SSL connect error"
    if isinstance(error, ServerUnreachableError):
        return 7, "Couldn't connect to server"
    if isinstance(error, AuthenticationError):
        return 22, "The requested URL returned error: 401 Unauthorized"
    return 0, str(error).split(". Fix:", 1)[0]


def _milliseconds(limit: float | None) -> int:
    return 0 if limit is None else round(limit * 1000)


class NginxErrorLog:
    """Appends lines to the RA's error.log (thread-safe; the file is created when missing).

    Args:
        path: The log file.
        pid: The process id written in the timestamped lines (default: this process's).
    """

    def __init__(self, path: Path, *, pid: int | None = None) -> None:
        self.path = path
        self.pid = os.getpid() if pid is None else pid
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)

    def write(self, line: str) -> None:
        """Append one line (line breaks inside it are replaced by spaces)."""
        text = line.replace("\r", " ").replace("\n", " ")
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(text + "\n")

    def event(self, level: str, function: str, message: str, *, connection: int | None = None) -> None:
        """A timestamped line: ``YYYY/MM/DD HH:MM:SS [level] PID#0: [*N ]function: message``."""
        stamp = time.strftime("%Y/%m/%d %H:%M:%S")
        conn = f"*{connection} " if connection is not None else ""
        self.write(f"{stamp} [{level}] {self.pid}#0: {conn}{function}: {message}")

    def startup(self, level: str, message: str) -> None:
        """A start-up line: ``nginx: [level] message``."""
        self.write(f"nginx: [{level}] {message}")

    def est(self, level: str, function: str, line: int, message: str) -> None:
        """A libest line: ``***EST [LEVEL][function:line]--> message``."""
        self.write(f"***EST [{level.upper()}][{function}:{line}]--> {message}")

    # -- the CiscoRA messages of the seed ----------------------------------------------------------------------

    def login_ok(self, url: str) -> None:
        """The certsrv login worked."""
        self.event(
            "info", "login_to_certsrv_ca", f"Secure connection to MS CertServ completed successfully using the "
            f"following URL {url}"
        )  # fmt: skip

    def cacerts_ok(self, url: str) -> None:
        """The CA chain was fetched and handed to EST."""
        self.event(
            "info", "retrieve_cacerts", f"Secure connection to MS CertServ completed successfully using the "
            f"following URL {url}"
        )  # fmt: skip
        self.event("info", "ra_certsrv_ca_plugin_postconf", "CA Cert chain retrieved from CA, will be passed to EST")

    def login_failed(self, url: str, error: CertsrvError) -> None:
        """The certsrv login at start failed: the four lines of the seed."""
        code, text = curl_error(error)
        self.startup("warn", f"login_to_certsrv_ca: Curl call for MS CA login failed with return code {code} ({text})")
        self.startup("warn", f"login_to_certsrv_ca: URL used: {url}")
        self.startup("error", "retrieve_cacerts: Unable to execute login to certsrv with curl")
        self.startup("warn", "ra_certsrv_ca_plugin_postconf: Unable to retrieve CA Cert chain from CA")

    def cacerts_failed(self, url: str, error: CertsrvError) -> None:
        """The login worked but fetching the CA chain failed."""
        code, text = curl_error(error)
        self.startup("warn", f"retrieve_cacerts: Curl request failed with return code {code} ({text})")
        self.startup("warn", f"retrieve_cacerts: URL used: {url}")
        self.startup("warn", "ra_certsrv_ca_plugin_postconf: Unable to retrieve CA Cert chain from CA")

    def request_failed(self, function: str, url: str, error: CertsrvError, *, connection: int | None) -> None:
        """A request to the CA during an enrollment failed below HTTP (curl's view).

        When the failing request was the login (``/certsrv``: a new connection authenticating), the lines are
        ``login_to_certsrv_ca``'s, as CiscoRA's start-up writes them.
        """
        code, text = curl_error(error)
        if url.rstrip("/").endswith("/certsrv"):
            function, what = "login_to_certsrv_ca", "Curl call for MS CA login failed"
        else:
            what = "Curl request failed"
        self.event("warn", function, f"{what} with return code {code} ({text})", connection=connection)
        self.event("warn", function, f"URL used: {url.rstrip('/')}", connection=connection)


class EstLogHandler(logging.Handler):
    """Writes the EST server's log records into the error.log in libest's ``***EST [LEVEL][func:line]-->`` form.

    Records that are not in libest's form become timestamped nginx lines.

    Args:
        log: The error.log.
    """

    def __init__(self, log: NginxErrorLog) -> None:
        super().__init__(logging.INFO)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        """Write one record."""
        try:
            message = record.getMessage()
            match = _EST_RECORD.match(message)
            if match:
                self.log.est(match["level"], match["func"], record.lineno, match["msg"])
            else:
                level = _NGINX_LEVELS.get(record.levelname, "info")
                self.log.event(level, record.funcName, message)
        except Exception:  # a log handler must never break the server
            self.handleError(record)
