"""The EST operations as sans-IO flows that both clients drive.

Each operation is a generator: it yields an :class:`~estclient._protocol.EstRequest` (send this) or a
:class:`Sleep` (wait this long) and receives an :class:`Exchange` (the response and the TLS facts of its
connection) for each request; its return value is the operation's result. The sync client drives the flows
with ``httpx.Client`` and ``time.sleep``, the async client with ``httpx.AsyncClient`` and ``anyio.sleep``: the
logic (PoP linking and re-signing, 202 waiting, bootstrap rules) exists once.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography import x509

from estclient._csrattrs import CsrAttrs
from estclient._errors import AuthenticationError, BootstrapError, EstError, PopLinkingError
from estclient._pop import MAX_RELINKS, CsrSpec, LinkingMode, TlsBinding, decide_linking
from estclient._protocol import (
    WELL_KNOWN,
    EstRequest,
    EstResponse,
    Operation,
    cacerts_request,
    csrattrs_request,
    enroll_request,
    fullcmc_request,
    read_cacerts,
    read_csrattrs,
    read_enroll,
    read_fullcmc,
    read_serverkeygen,
    serverkeygen_request,
    validate_label,
)
from estclient._results import CaCertificates, Pending
from estclient._serverkeygen import DecryptKey
from estclient._trust import TrustAnchors

__all__ = ["CsrInput", "Exchange", "Flow", "Lane", "Operations", "Sleep"]

_log = logging.getLogger("estclient")

T = TypeVar("T")

#: What the enrollment operations accept: a finished, signed request, or a :class:`CsrSpec` the client
#: builds and signs on the connection that sends it (needed for PoP linking).
CsrInput = x509.CertificateSigningRequest | CsrSpec


@dataclass(frozen=True)
class Sleep:
    """Ask the driver to wait (a 202's Retry-After) before the next request.

    Attributes:
        seconds: How long.
    """

    seconds: float


@dataclass(frozen=True)
class Lane:
    """Ask the driver for a connection of its own (``hold``) until released (PoP linking, RFC 7030 §3.5).

    Between ``Lane(True)`` and ``Lane(False)`` the driver sends the flow's requests over a connection no other
    request uses, so the request signed with a connection's tls-unique goes out on that same connection. The
    driver also releases the lane when the flow ends.

    Attributes:
        hold: True to take a lane, False to give it back.
    """

    hold: bool


@dataclass(frozen=True)
class Exchange:
    """A response and the TLS facts of the connection that carried it.

    Attributes:
        response: The response.
        binding: TLS version, tls-unique and the verifying anchor of its connection.
    """

    response: EstResponse
    binding: TlsBinding


Step = EstRequest | Sleep | Lane
Flow = Generator[Step, Exchange | None, T]


class Operations:
    """The EST logic shared by :class:`~estclient.EstClient` and :class:`~estclient.AsyncEstClient`.

    Args:
        trust: The trust anchors (bootstrap mode restricts the operations).
        root: The EST root path.
        label: The default CA label.
        linking: The PoP linking mode.
        max_retry_wait: The longest single Retry-After wait ``wait=True`` sleeps; longer ones return Pending.
        has_credentials: Whether the client was given HTTP credentials (for error hints).
        current_certificate: The TLS client certificate, if any: a ``/simplereenroll`` :class:`CsrSpec` without
            a subject takes this certificate's subject and subjectAltName (RFC 7030 §4.2.2).
    """

    def __init__(
        self,
        *,
        trust: TrustAnchors,
        root: str = WELL_KNOWN,
        label: str | None = None,
        linking: LinkingMode = "auto",
        max_retry_wait: float = 300.0,
        has_credentials: bool = False,
        current_certificate: x509.Certificate | None = None,
    ) -> None:
        self.trust = trust
        self.root = root
        self.label = validate_label(label) if label is not None else None
        self.linking: LinkingMode = linking
        self.max_retry_wait = max_retry_wait
        self.has_credentials = has_credentials
        self.current_certificate = current_certificate

    # -- helpers ----------------------------------------------------------------------------------------------

    def _label(self, label: str | None) -> str | None:
        return validate_label(label) if label is not None else self.label

    def _forbid_in_bootstrap(self, operation: Operation) -> None:
        if self.trust.is_bootstrap:
            raise BootstrapError(
                f"/{operation} is not allowed on a provisional (bootstrap) connection: RFC 7030 §4.1.1 allows only "
                "/cacerts until the CA certificates are accepted.",
                hint="Call cacerts() with this client, then make a new client with "
                "trust=result.trust_anchors() for the other operations.",
            )

    def _explain_auth(self, exc: EstError) -> EstError:
        if isinstance(exc, AuthenticationError) and exc.status == 401 and not self.has_credentials:
            return AuthenticationError(
                exc.status,
                exc.server_text,
                operation=exc.operation,
                url=exc.url,
                hint="The server asks for credentials and the client has none: pass auth=BasicAuth(user, "
                "password) or DigestAuth(...), or a client_certificate the server trusts.",
            )
        return exc

    def _exchange(self, request: EstRequest) -> Generator[Step, Exchange | None, Exchange]:
        reply = yield request
        assert reply is not None, "the driver must send an Exchange for each request"
        return reply

    # -- operations ---------------------------------------------------------------------------------------------

    def cacerts(self, label: str | None = None) -> Flow[CaCertificates]:
        """``/cacerts``: the CA certificates (RFC 7030 §4.1); in bootstrap mode checked against the fingerprints."""
        reply = yield from self._exchange(cacerts_request(label=self._label(label), root=self.root))
        if self.trust.is_bootstrap and reply.response.status in (401, 403):
            raise BootstrapError(
                "The server demands authentication for /cacerts, which a provisional (bootstrap) connection must "
                "not answer (RFC 7030 §4.1.1).",
                hint="Obtain the CA certificate out of band and configure it as an explicit trust anchor.",
            )
        try:
            parsed = read_cacerts(reply.response)
        except EstError as exc:
            raise self._explain_auth(exc) from None
        if self.trust.is_bootstrap:
            confirmed = self.trust.accept_bootstrap(parsed.certificates)
            return CaCertificates(parsed.certificates, parsed.crls, "bootstrap", confirmed)
        kind = self.trust.kind_of(reply.binding.anchor_der)
        return CaCertificates(parsed.certificates, parsed.crls, kind)

    def csrattrs(self, label: str | None = None) -> Flow[CsrAttrs]:
        """``/csrattrs``: what the server wants in CSRs (RFC 7030 §4.5); empty for 204/404."""
        self._forbid_in_bootstrap("csrattrs")
        reply = yield from self._exchange(csrattrs_request(label=self._label(label), root=self.root))
        try:
            return read_csrattrs(reply.response)
        except EstError as exc:
            raise self._explain_auth(exc) from None

    def enroll(
        self,
        csr: CsrInput,
        *,
        operation: Operation,
        label: str | None = None,
        wait: bool = False,
        max_retries: int = 3,
        decrypt_key: DecryptKey | None = None,
        request_id: int = 1,
    ) -> Flow[Any]:
        """``/simpleenroll``, ``/simplereenroll``, ``/serverkeygen`` or ``/fullcmc``, with 202 handling."""
        self._forbid_in_bootstrap(operation)
        label = self._label(label)
        retries = 0
        while True:
            result = yield from self._enroll_once(csr, operation, label, decrypt_key, request_id)
            if not isinstance(result, Pending) or not wait:
                return result
            if retries >= max_retries:
                _log.info("/%s still pending after %d retries", operation, retries)
                return result
            if result.retry_after > self.max_retry_wait:
                _log.info(
                    "/%s pending: Retry-After %.0f s exceeds max_retry_wait %.0f s; returning Pending",
                    operation,
                    result.retry_after,
                    self.max_retry_wait,
                )
                return result
            retries += 1
            _log.info("/%s pending; retry %d/%d in %.1f s", operation, retries, max_retries, result.retry_after)
            yield Sleep(result.retry_after)

    def _request_for(
        self, operation: Operation, csr: x509.CertificateSigningRequest | bytes, label: str | None, request_id: int
    ) -> EstRequest:
        if operation == "fullcmc":
            if isinstance(csr, bytes):
                pki_data = csr
            else:
                from estclient._cmc import build_pki_data

                pki_data = build_pki_data(csr, req_id=request_id)
            return fullcmc_request(pki_data, label=label, root=self.root)
        assert not isinstance(csr, bytes)
        if operation == "serverkeygen":
            return serverkeygen_request(csr, label=label, root=self.root)
        return enroll_request(csr, reenroll=operation == "simplereenroll", label=label, root=self.root)

    def _read(
        self,
        operation: Operation,
        response: EstResponse,
        csr: x509.CertificateSigningRequest | None,
        decrypt_key: DecryptKey | None,
    ) -> Any:
        try:
            if operation == "fullcmc":
                return read_fullcmc(response, csr=csr)
            if operation == "serverkeygen":
                return read_serverkeygen(response, csr=csr, decrypt_key=decrypt_key)
            return read_enroll(response, operation=operation, csr=csr)
        except EstError as exc:
            raise self._explain_auth(exc) from None

    def _enroll_once(
        self,
        csr: CsrInput | bytes,
        operation: Operation,
        label: str | None,
        decrypt_key: DecryptKey | None,
        request_id: int,
    ) -> Generator[Step, Exchange | None, Any]:
        if not isinstance(csr, CsrSpec):
            reply = yield from self._exchange(self._request_for(operation, csr, label, request_id))
            return self._read(operation, reply.response, csr if not isinstance(csr, bytes) else None, decrypt_key)
        if operation == "simplereenroll" and csr.subject is None and self.current_certificate is not None:
            csr = _same_identity(csr, self.current_certificate)
        requirements: CsrAttrs | None = None
        binding = TlsBinding(None, None)
        linking = self.linking != "never"
        if linking:
            yield Lane(True)
        if linking or csr.apply_server_requirements:
            # Opens (or reuses) the connection the enrollment will use, and learns what the server wants.
            prime = yield from self._exchange(csrattrs_request(label=label, root=self.root))
            binding = prime.binding
            try:
                requirements = read_csrattrs(prime.response)
            except EstError as exc:
                _log.info("/csrattrs before /%s gave no requirements: %s", operation, exc.message)
        last = ""
        for _attempt in range(MAX_RELINKS + 1):
            challenge = decide_linking(self.linking, binding, requirements) if self.linking != "never" else None
            signed = csr.build(challenge_password=challenge, requirements=requirements)
            reply = yield from self._exchange(self._request_for(operation, signed, label, request_id))
            after = reply.binding
            relinked = challenge is not None and after.tls_unique is not None and after.tls_unique != binding.tls_unique
            if relinked and reply.response.status >= 400:
                # Signed for one connection, carried by another: the server cannot have verified the link.
                _log.info("/%s went out on a new TLS connection; re-signing the CSR for it", operation)
                binding = after
                text = reply.response.body.decode("utf-8", "replace").strip()[:200]
                last = f" The server's last answer: {reply.response.status} {text!r}."
                continue
            if linking:
                yield Lane(False)
            return self._read(operation, reply.response, signed, decrypt_key)
        raise PopLinkingError(
            f"The TLS connection changed between signing and sending the linked CSR to /{operation} in each of "
            f"{MAX_RELINKS + 1} attempts.{last}",
            hint="Keep connections alive (a server or proxy that closes every connection defeats tls-unique "
            "linking), or use pop_linking='never' if the server does not require it.",
        )


def _same_identity(spec: CsrSpec, current: x509.Certificate) -> CsrSpec:
    """The spec with the subject and subjectAltName of the certificate being renewed (RFC 7030 §4.2.2)."""
    try:
        san = current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    sans = tuple(spec.sans) if spec.sans or san is None else tuple(san)
    return dataclasses.replace(spec, subject=current.subject, sans=sans)
