"""Fault injection for clients' reliability tests: slow, broken and malformed responses on purpose."""

from __future__ import annotations

import enum
import threading
from collections.abc import Collection
from dataclasses import dataclass

__all__ = ["Fault", "FaultKind"]


class FaultKind(enum.Enum):
    """What an injected fault does to a response."""

    #: Wait ``Fault.seconds`` before answering normally (a slow CA).
    DELAY = "delay"
    #: Send the headers and half the body, then close the connection (a dropped connection mid-body).
    DROP_MID_BODY = "drop-mid-body"
    #: Close the connection without answering.
    DROP_BEFORE_RESPONSE = "drop-before-response"
    #: Answer ``Fault.status`` (a 5xx) with a text/plain reason instead of the operation's result.
    SERVER_ERROR = "server-error"
    #: Answer 200 with the right content type and a body that is not base64.
    BAD_BASE64 = "bad-base64"
    #: Answer 200 with valid base64 of a DER structure cut in half (a truncated PKCS#7 or CSR attributes).
    TRUNCATED_PKCS7 = "truncated-pkcs7"
    #: Answer 200 with the normal body but ``Fault.content_type`` (an HTML page type by default).
    WRONG_CONTENT_TYPE = "wrong-content-type"


@dataclass(frozen=True)
class Fault:
    """One fault to inject into the responses of an :class:`~estclient.testing.EstServer`.

    Faults apply to requests that passed authentication (a 401 challenge is never altered), in the order they
    were injected; the first that matches the operation is used.

    Attributes:
        kind: What the fault does.
        operations: The operations it applies to (``"cacerts"``, ``"simpleenroll"``...); None means all.
        times: How many responses it alters before it is used up; None means until cleared.
        seconds: For :attr:`FaultKind.DELAY`: the delay.
        status: For :attr:`FaultKind.SERVER_ERROR`: the HTTP status.
        content_type: For :attr:`FaultKind.WRONG_CONTENT_TYPE`: the content type sent.
    """

    kind: FaultKind
    operations: Collection[str] | None = None
    times: int | None = None
    seconds: float = 0.0
    status: int = 503
    content_type: str = "text/html; charset=utf-8"

    def applies_to(self, operation: str) -> bool:
        """Tell whether the fault is meant for ``operation``."""
        return self.operations is None or operation in self.operations


class FaultPlan:
    """The server's list of active faults (thread-safe); used-up faults drop out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[list[Fault | int | None]] = []

    def add(self, fault: Fault) -> None:
        """Activate ``fault``."""
        if fault.times is not None and fault.times < 1:
            raise ValueError("Fault.times must be at least 1 (or None for 'until cleared').")
        with self._lock:
            self._faults.append([fault, fault.times])

    def clear(self) -> None:
        """Deactivate every fault."""
        with self._lock:
            self._faults.clear()

    def take(self, operation: str) -> Fault | None:
        """Return the fault to apply to this response of ``operation`` (counting it), or None."""
        with self._lock:
            for entry in self._faults:
                fault, left = entry
                assert isinstance(fault, Fault)
                if not fault.applies_to(operation):
                    continue
                if isinstance(left, int):
                    if left <= 1:
                        self._faults.remove(entry)
                    else:
                        entry[1] = left - 1
                return fault
        return None
