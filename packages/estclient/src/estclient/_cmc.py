"""/fullcmc messages (RFC 7030 §4.3, CMC RFC 5272/6402): PKIData requests and PKIResponse answers.

A Full PKI Request is a ContentInfo(SignedData) whose content (type id-cct-PKIData) is a PKIData with the
PKCS#10 request(s) as TaggedRequests. The answer is either a Simple PKI Response (certs-only) or a Full PKI
Response: SignedData with content id-cct-PKIResponse carrying a CMCStatusInfoV2 control and the certificates.
A failed status is raised as :class:`CmcFailError` with the CMCFailInfo code and the server's statusString.

Requests built here are unsigned (no SignerInfo: the PKCS#10 inside is the proof of possession) unless a signer
certificate and key are given; the server side (:func:`build_pki_response`) signs with the RA key when given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ObjectIdentifier

from estclient import _asn1, _cms
from estclient._csr import load_csr
from estclient._errors import CmcFailError, MalformedMessageError, MalformedRequestError, MalformedResponseError
from estclient._pkcs7 import CertsOnly, parse_certs_only

__all__ = [
    "CMC_STATUS",
    "CmcControl",
    "CmcRequest",
    "build_pki_data",
    "build_pki_response",
    "parse_pki_data",
    "parse_pki_response",
]

OID_PKI_DATA = "1.3.6.1.5.5.7.12.2"
OID_PKI_RESPONSE = "1.3.6.1.5.5.7.12.3"
OID_STATUS_INFO = "1.3.6.1.5.5.7.7.1"
OID_STATUS_INFO_V2 = "1.3.6.1.5.5.7.7.25"
OID_TRANSACTION_ID = "1.3.6.1.5.5.7.7.5"

#: CMCStatus values (RFC 5272 §6.1.1).
CMC_STATUS: dict[str, int] = {
    "success": 0,
    "failed": 2,
    "pending": 3,
    "noSupport": 4,
    "confirmRequired": 5,
    "popRequired": 6,
    "partial": 7,
}
_STATUS_NAMES = {v: k for k, v in CMC_STATUS.items()}
_FAIL_INFO_CODES = {name: code for code, name in CmcFailError.FAIL_INFO_NAMES.items()}

StatusName = Literal["success", "failed", "pending", "noSupport", "confirmRequired", "popRequired", "partial"]
SigningKey = _cms.SigningKey


@dataclass(frozen=True)
class CmcControl:
    """A CMC control attribute (TaggedAttribute).

    Attributes:
        body_part_id: The control's body part id.
        oid: The control type (e.g. id-cmc-transactionId).
        values: The DER of each value.
    """

    body_part_id: int
    oid: ObjectIdentifier
    values: tuple[bytes, ...]


@dataclass(frozen=True)
class CmcRequest:
    """A parsed Full PKI Request (server side).

    Attributes:
        requests: ``(body part id, PKCS#10 request)`` pairs, in order.
        controls: The control attributes.
        signers: Certificates of the SignerInfos whose signatures verified (empty when unsigned).
        other_requests: How many CRMF/other requests were present (not supported; ignored).
    """

    requests: tuple[tuple[int, x509.CertificateSigningRequest], ...]
    controls: tuple[CmcControl, ...] = ()
    signers: tuple[x509.Certificate, ...] = ()
    other_requests: int = 0

    @property
    def csr(self) -> x509.CertificateSigningRequest:
        """The first PKCS#10 request."""
        return self.requests[0][1]

    @property
    def body_part_ids(self) -> tuple[int, ...]:
        """The body part ids of the requests (for the response's bodyList)."""
        return tuple(bpid for bpid, _ in self.requests)


def build_pki_data(
    csr: x509.CertificateSigningRequest | Sequence[x509.CertificateSigningRequest],
    *,
    req_id: int = 1,
    controls: Sequence[CmcControl] = (),
    transaction_id: int | None = None,
    signer_cert: x509.Certificate | None = None,
    signer_key: SigningKey | None = None,
) -> bytes:
    """Build a Full PKI Request (DER ContentInfo) for /fullcmc.

    Args:
        csr: The PKCS#10 request, or several.
        req_id: Body part id of the first request (the next ones count up).
        controls: Extra control attributes.
        transaction_id: Adds an id-cmc-transactionId control with this value.
        signer_cert: Certificate to sign the request with (e.g. the client's current certificate).
        signer_key: Its private key.

    Returns:
        The DER message (base64-encode it with ``encode_body`` to send it).
    """
    csrs = [csr] if isinstance(csr, x509.CertificateSigningRequest) else list(csr)
    requests = [(req_id + i, c.public_bytes(serialization.Encoding.DER)) for i, c in enumerate(csrs)]
    next_id = req_id + len(csrs)
    tagged = [_asn1.TaggedAttributeParts(c.body_part_id, c.oid.dotted_string, c.values) for c in controls]
    if transaction_id is not None:
        tagged.append(_asn1.TaggedAttributeParts(next_id, OID_TRANSACTION_ID, (_asn1.int_to_der(transaction_id),)))
    pki_data = _asn1.pki_data_encode(tagged, requests)
    return _cms.sign_content(OID_PKI_DATA, pki_data, signer_cert=signer_cert, signer_key=signer_key)


def parse_pki_data(der: bytes, *, error: type[MalformedMessageError] = MalformedRequestError) -> CmcRequest:
    """Parse a Full PKI Request (server side): the PKCS#10 requests, controls and verified signers.

    Args:
        der: The DER ContentInfo (decode the base64 body first).
        error: The error class to raise.

    Returns:
        The request.

    Raises:
        MalformedRequestError: (or ``error``) when the bytes are not a PKIData in a SignedData, a signature
            does not verify, a request does not parse, or there is no PKCS#10 request.
    """
    try:
        parts = _asn1.signed_data_decode(der)
    except _asn1.Asn1Error as exc:
        raise error(f"The CMC request is not a CMS SignedData ({exc}).") from None
    if parts.content_type != OID_PKI_DATA or parts.content is None:
        raise error(
            f"The CMC request's content type is {parts.content_type}, not id-cct-PKIData ({OID_PKI_DATA}).",
            hint="Send a Full PKI Request (RFC 5272 §3.2) with smime-type=CMC-request.",
        )
    try:
        signers = _cms.verify_signers(parts)
    except (_cms.CmsError, ValueError) as exc:
        raise error(f"The CMC request's signature does not verify ({exc}).") from None
    try:
        controls, requests, others = _asn1.pki_data_decode(parts.content)
    except _asn1.Asn1Error as exc:
        raise error(f"The CMC request's PKIData does not parse ({exc}).") from None
    if not requests:
        raise error(
            "The CMC request carries no PKCS#10 request (CRMF requests are not supported).",
            hint="Put the request in a TaggedCertificationRequest (tcr).",
        )
    parsed = tuple((bpid, load_csr(csr_der, error=error)) for bpid, csr_der in requests)
    return CmcRequest(
        requests=parsed,
        controls=tuple(CmcControl(c.body_part_id, _oid(c.oid, error), c.values) for c in controls),
        signers=tuple(signers),
        other_requests=others,
    )


def _oid(dotted: str, error: type[MalformedMessageError]) -> ObjectIdentifier:
    try:
        return ObjectIdentifier(dotted)
    except ValueError as exc:
        raise error(f"Bad OID in a CMC control ({exc}).") from None


def build_pki_response(
    certs: Sequence[x509.Certificate],
    *,
    status: StatusName = "success",
    fail_info: int | str | None = None,
    status_string: str | None = None,
    body_list: Sequence[int] = (1,),
    signer_cert: x509.Certificate | None = None,
    signer_key: SigningKey | None = None,
) -> bytes:
    """Build a Full PKI Response (server side): SignedData over a PKIResponse with a CMCStatusInfoV2.

    Args:
        certs: Certificates to return (the issued one and its chain; none on failure).
        status: The CMCStatus name.
        fail_info: CMCFailInfo code or name (e.g. ``"badRequest"``) for a failure.
        status_string: Human-readable text for the client.
        body_list: Body part ids of the requests this status is about.
        signer_cert: RA certificate to sign with (None: unsigned).
        signer_key: Its private key.

    Returns:
        The DER ContentInfo.

    Raises:
        ValueError: Unknown status or failInfo name.
    """
    code = CMC_STATUS[status]
    info = _FAIL_INFO_CODES[fail_info] if isinstance(fail_info, str) else fail_info
    status_der = _asn1.cmc_status_encode(code, body_list, status_string, info)
    control = _asn1.TaggedAttributeParts(_next_id(body_list), OID_STATUS_INFO_V2, (status_der,))
    response = _asn1.pki_response_encode([control])
    return _cms.sign_content(
        OID_PKI_RESPONSE, response, signer_cert=signer_cert, signer_key=signer_key, certificates=certs
    )


def _next_id(body_list: Sequence[int]) -> int:
    return (max(body_list) + 1) if body_list else 1


def parse_pki_response(
    der: bytes,
    *,
    http_status: int | None = None,
    error: type[MalformedMessageError] = MalformedResponseError,
) -> CertsOnly:
    """Parse a /fullcmc answer: a Simple PKI Response (certs-only) or a Full PKI Response.

    Args:
        der: The DER ContentInfo (decode the base64 body first).
        http_status: The HTTP status that carried it (recorded in a :class:`CmcFailError`).
        error: The error class to raise for bytes that do not parse.

    Returns:
        The certificates (and CRLs) of a successful response.

    Raises:
        CmcFailError: The response reports a status other than success (with failInfo and statusString).
        MalformedResponseError: (or ``error``) when the bytes are not a CMC response, or a signature does
            not verify.
    """
    try:
        parts = _asn1.signed_data_decode(der)
    except _asn1.Asn1Error as exc:
        raise error(f"The CMC response is not a CMS SignedData ({exc}).") from None
    if parts.content_type == _asn1.OID_DATA:
        return parse_certs_only(der, what="CMC Simple PKI Response", error=error)
    if parts.content_type != OID_PKI_RESPONSE or parts.content is None:
        raise error(f"The CMC response's content type {parts.content_type} is not id-cct-PKIResponse.")
    try:
        _cms.verify_signers(parts)
    except (_cms.CmsError, ValueError) as exc:
        raise error(f"The CMC response's signature does not verify ({exc}).") from None
    try:
        controls = _asn1.pki_response_decode(parts.content)
    except _asn1.Asn1Error as exc:
        raise error(f"The CMC PKIResponse does not parse ({exc}).") from None
    for control in controls:
        if control.oid in (OID_STATUS_INFO_V2, OID_STATUS_INFO) and control.values:
            try:
                st = _asn1.cmc_status_decode(control.values[0])
            except _asn1.Asn1Error as exc:
                raise error(f"The CMC status does not parse ({exc}).") from None
            if st.status != CMC_STATUS["success"]:
                name = _STATUS_NAMES.get(st.status, f"status {st.status}")
                hint = None
                if name == "pending":
                    hint = "The CA has not decided yet; send the request again later."
                raise CmcFailError(st.fail_info, st.status_string, http_status=http_status, status=name, hint=hint)
    certs_only = parse_certs_only(der, what="CMC Full PKI Response", error=error)
    return certs_only
