"""Manual approval: an enrollment backend wrapper that holds requests until a test (or an operator) decides."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from estclient.testing._backend import (
    EnrollmentBackend,
    EnrollmentRejected,
    Issued,
    IssuedWithKey,
    Pending,
    Requester,
)

if TYPE_CHECKING:
    from estclient._csrattrs import CsrAttrs

__all__ = ["ManualApproval", "PendingRequest"]


@dataclass(frozen=True)
class PendingRequest:
    """A request waiting for approval.

    Attributes:
        request_id: Its identifier (the same for every retry of the same request).
        operation: ``"simpleenroll"``, ``"simplereenroll"`` or ``"serverkeygen"``.
        subject: The CSR's subject (RFC 4514 string).
        label: The CA label of the request.
        requester: Who asked.
    """

    request_id: str
    operation: str
    subject: str
    label: str | None
    requester: Requester


def request_id(csr: x509.CertificateSigningRequest, label: str | None, operation: str) -> str:
    """Identify a request by what survives a retry: operation, label, subject and public key.

    (The CSR's bytes may change between retries: a client that links PoP re-signs it on the new connection.)
    """
    spki = csr.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    h = hashlib.sha256(f"{operation}\0{label or ''}\0".encode())
    h.update(csr.subject.public_bytes())
    h.update(spki)
    return h.hexdigest()[:16]


class ManualApproval:
    """Wraps a backend so that every enrollment waits for :meth:`approve` or :meth:`deny`.

    Until a decision the server answers ``202 Accepted`` with ``Retry-After: retry_after``. After
    :meth:`approve` the next retry of the same request is passed to the wrapped backend; after :meth:`deny`
    it is refused with 403 and the reason.

    Args:
        backend: The backend that issues approved requests.
        retry_after: Seconds announced in Retry-After.
    """

    def __init__(self, backend: EnrollmentBackend, *, retry_after: int = 1) -> None:
        self.backend = backend
        self.retry_after = retry_after
        self._lock = threading.Condition()
        self._pending: dict[str, PendingRequest] = {}
        self._approved: set[str] = set()
        self._denied: dict[str, str] = {}

    def pending(self) -> list[PendingRequest]:
        """Return the requests waiting for a decision, oldest first."""
        with self._lock:
            return list(self._pending.values())

    def wait_for_pending(self, count: int = 1, timeout: float = 10.0) -> list[PendingRequest]:
        """Block until at least ``count`` requests are waiting (or ``timeout`` seconds pass) and return them."""
        with self._lock:
            self._lock.wait_for(lambda: len(self._pending) >= count, timeout)
            return list(self._pending.values())

    def approve(self, request_id: str) -> None:
        """Approve a request: its next retry is issued.

        Raises:
            KeyError: when no request has that id.
        """
        with self._lock:
            if request_id not in self._pending and request_id not in self._denied:
                raise KeyError(f"No pending request {request_id!r}; pending: {sorted(self._pending)}")
            self._pending.pop(request_id, None)
            self._denied.pop(request_id, None)
            self._approved.add(request_id)

    def deny(self, request_id: str, reason: str = "denied by the CA operator") -> None:
        """Deny a request: its next retry is refused with 403 and ``reason``.

        Raises:
            KeyError: when no request has that id.
        """
        with self._lock:
            if request_id not in self._pending and request_id not in self._approved:
                raise KeyError(f"No pending request {request_id!r}; pending: {sorted(self._pending)}")
            self._pending.pop(request_id, None)
            self._approved.discard(request_id)
            self._denied[request_id] = reason

    def _gate(
        self, csr: x509.CertificateSigningRequest, label: str | None, requester: Requester, operation: str
    ) -> Pending | None:
        rid = request_id(csr, label, operation)
        with self._lock:
            if rid in self._approved:
                return None
            if rid in self._denied:
                raise EnrollmentRejected(f"Enrollment request {rid} was denied: {self._denied[rid]}.", http_status=403)
            if rid not in self._pending:
                self._pending[rid] = PendingRequest(rid, operation, csr.subject.rfc4514_string(), label, requester)
                self._lock.notify_all()
        return Pending(self.retry_after, rid)

    def ca_certificates(self, label: str | None) -> Sequence[x509.Certificate]:
        """Delegate to the wrapped backend."""
        return self.backend.ca_certificates(label)

    def csr_attributes(self, label: str | None) -> CsrAttrs | None:
        """Delegate to the wrapped backend."""
        return self.backend.csr_attributes(label)

    def enroll(
        self,
        csr: x509.CertificateSigningRequest,
        *,
        label: str | None,
        requester: Requester,
        renewal_of: x509.Certificate | None,
    ) -> Issued | Pending:
        """Hold the request until approved, then delegate."""
        operation = "simplereenroll" if renewal_of is not None else "simpleenroll"
        pending = self._gate(csr, label, requester, operation)
        if pending is not None:
            return pending
        return self.backend.enroll(csr, label=label, requester=requester, renewal_of=renewal_of)

    def server_keygen(
        self, csr: x509.CertificateSigningRequest, *, label: str | None, requester: Requester
    ) -> IssuedWithKey | Pending:
        """Hold the request until approved, then delegate."""
        pending = self._gate(csr, label, requester, "serverkeygen")
        if pending is not None:
            return pending
        return self.backend.server_keygen(csr, label=label, requester=requester)
