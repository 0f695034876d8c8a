"""Time limits per phase of the exchange with AD CS.

The seed's RA had one fixed 10 s limit that users could not change (CSCvo58656): a slow domain controller made
authentication fail, a slow policy module made enrollment fail. Here every phase has its own limit, and a timeout
error names the phase and the limit that was exceeded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import httpx

from certsrv._errors import (
    AuthenticationTimeoutError,
    CertsrvTimeoutError,
    ConfigurationError,
    ConnectTimeoutError,
    EnrollmentTimeoutError,
    RetrievalTimeoutError,
)

__all__ = ["Phase", "Timeouts", "timeout_error"]

#: The phases of an exchange with AD CS.
Phase = Literal["connect", "authentication", "enrollment", "retrieval"]


@dataclass(frozen=True)
class Timeouts:
    """Time limits in seconds for each phase; ``None`` means no limit.

    Attributes:
        connect: TCP connect plus TLS handshake with IIS (default 10 s).
        authentication: Each round trip of the authentication exchange: the first request on a connection,
            answered by 401 challenges until NTLM/Kerberos/Negotiate completes (default 30 s; the seed's RA used
            a fixed 10 s, too short for a busy domain controller).
        enrollment: Waiting for the answer to a submitted request (certfnsh.asp), which includes the CA's
            policy module and, for some templates, directory look-ups (default 120 s).
        retrieval: Waiting for certificates, chains, CRLs and pages (default 60 s).
    """

    connect: float | None = 10.0
    authentication: float | None = 30.0
    enrollment: float | None = 120.0
    retrieval: float | None = 60.0

    def __post_init__(self) -> None:
        for name in ("connect", "authentication", "enrollment", "retrieval"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigurationError(
                    f"timeout for {name} must be a positive number of seconds or None (no limit), not {value!r}"
                )

    @classmethod
    def uniform(cls, seconds: float | None) -> Timeouts:
        """The same limit for every phase."""
        return cls(seconds, seconds, seconds, seconds)

    def with_phase(self, phase: Phase, seconds: float | None) -> Timeouts:
        """A copy with one phase's limit changed."""
        return replace(self, **{phase: seconds})

    def limit(self, phase: Phase) -> float | None:
        """The limit of ``phase``."""
        value: float | None = getattr(self, phase)
        return value

    def for_phase(self, phase: Phase) -> httpx.Timeout:
        """The httpx timeout for a request made in ``phase``: connect limit for connecting, phase limit after."""
        limit = self.limit(phase)
        return httpx.Timeout(connect=self.connect, read=limit, write=limit, pool=limit)


def timeout_error(exc: httpx.TimeoutException, phase: Phase, timeouts: Timeouts, url: str) -> CertsrvTimeoutError:
    """The certsrv error for an httpx timeout that happened during ``phase``."""
    if isinstance(exc, httpx.ConnectTimeout):
        return ConnectTimeoutError(limit=timeouts.connect, url=url)
    limit = timeouts.limit(phase)
    if phase == "authentication":
        return AuthenticationTimeoutError(limit=limit, url=url)
    if phase == "enrollment":
        return EnrollmentTimeoutError(limit=limit, url=url)
    if phase == "connect":
        return ConnectTimeoutError(limit=timeouts.connect, url=url)
    return RetrievalTimeoutError(limit=limit, url=url)
