"""Typed CAPF messages: one frozen dataclass per command in use, converted to and from :class:`Message`.

Each field maps to one element tag (declared in the field's metadata); elements a message does not declare,
unknown tags and repeats of a single-valued tag are kept, in order, in ``extra``. The state machines use
these classes as their events (h11 style): the same class is sent by one role and received by the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_der_public_key

from capf_common._codec import Element, Message
from capf_common._elements import (
    CertificateElement,
    HashedSignature,
    SudiData,
    decode_string,
    decode_u8,
    decode_u16,
    encode_string,
    encode_u8,
    encode_u16,
)
from capf_common._enums import (
    PROTOCOL_VERSION,
    AuthType,
    CertificateType,
    Command,
    Curve,
    ElementTag,
    HashId,
    KeyType,
    Reason,
    as_enum,
    enum_name,
)
from capf_common._errors import CapfSignatureError, RemoteProtocolError

__all__ = [
    "AuthRequest",
    "AuthResponse",
    "CapfMessage",
    "DeleteCertificateRequest",
    "DeleteCertificateResponse",
    "EndSession",
    "FetchCertificateRequest",
    "FetchCertificateResponse",
    "KeyGenerateRequest",
    "KeyGenerateResponse",
    "RequestInProgress",
    "SignCertificateRequest",
    "SignCertificateResponse",
    "StoreCertificateRequest",
    "StoreCertificateResponse",
    "parse_message",
]

_U8, _U16, _STRING, _BYTES, _CERT, _HASHED, _SUDI = "u8", "u16", "string", "bytes", "cert", "hashed", "sudi"


def _m(tag: ElementTag, kind: str, enum: Any = None, *, repeat: bool = False) -> dict[str, Any]:
    """Field metadata: the element tag, the value layout, the enum of its numbers, repeated or not."""
    return {"tag": tag, "kind": kind, "enum": enum, "repeat": repeat}


def _encode_value(kind: str, value: Any) -> bytes:
    if kind == _U8:
        return encode_u8(value)
    if kind == _U16:
        return encode_u16(value)
    if kind == _STRING:
        return encode_string(value)
    if kind == _BYTES:
        return bytes(value)
    encoded: bytes = value.encode()
    return encoded


def _decode_value(kind: str, element: Element, enum: Any) -> Any:
    value, tag = element.value, element.tag
    if kind == _U8:
        number = decode_u8(value, tag)
        return number if enum is None else as_enum(enum, number)
    if kind == _U16:
        return decode_u16(value, tag)
    if kind == _STRING:
        return decode_string(value, tag)
    if kind == _CERT:
        return CertificateElement.decode(value)
    if kind == _HASHED:
        return HashedSignature.decode(value)
    if kind == _SUDI:
        return SudiData.decode(value)
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class CapfMessage:
    """Base of the typed messages.

    Attributes:
        extra: Elements this message type does not declare (unknown tags included), kept in wire order.
    """

    command: ClassVar[Command]
    extra: tuple[Element, ...] = ()

    def to_message(self, session_id: int) -> Message:
        """Return the generic message: declared elements in declaration order, then ``extra``.

        Args:
            session_id: The session id to put in the header.
        """
        elements: list[Element] = []
        for f in fields(self):
            if "tag" not in f.metadata:
                continue
            value = getattr(self, f.name)
            values = value if f.metadata["repeat"] else (() if value is None else (value,))
            elements.extend(Element(f.metadata["tag"], _encode_value(f.metadata["kind"], v)) for v in values)
        return Message(self.command, session_id, (*elements, *self.extra))

    def encode(self, session_id: int) -> bytes:
        """Return the wire bytes of this message in session ``session_id``.

        Raises:
            LocalProtocolError: A value does not fit its field.
        """
        return self.to_message(session_id).encode()

    @classmethod
    def from_message(cls, message: Message) -> Self:
        """Build the typed message of this class from a generic one (its command is not checked).

        Raises:
            FramingError: A declared element's value does not fit its layout.
        """
        by_tag = {f.metadata["tag"]: f for f in fields(cls) if "tag" in f.metadata}
        values: dict[str, Any] = {f.name: (() if f.metadata["repeat"] else None) for f in by_tag.values()}
        extra: list[Element] = []
        for element in message.elements:
            f = by_tag.get(element.tag)
            if f is None or (not f.metadata["repeat"] and values[f.name] is not None):
                extra.append(element)
                continue
            decoded = _decode_value(f.metadata["kind"], element, f.metadata["enum"])
            values[f.name] = (*values[f.name], decoded) if f.metadata["repeat"] else decoded
        return cls(extra=tuple(extra), **values)


def _missing(command: str, element: str, reason: int | None) -> RemoteProtocolError:
    shown = "none" if reason is None else enum_name(Reason, reason)
    return RemoteProtocolError(
        f"{command} carries no {element} (REASON {shown})",
        hint="the phone reported a failure or left the element out; check the REASON and the phone's logs",
    )


class _ReasonMixin:
    __slots__ = ()
    reason: Reason | int | None

    @property
    def succeeded(self) -> bool:
        """Whether REASON says success (UPDATE_CERTIFICATE, the phone's "OK")."""
        return self.reason == Reason.UPDATE_CERTIFICATE


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthRequest(CapfMessage):
    """AUTH_REQUEST (1), CAPF → phone, the session's first message.

    Attributes:
        version: VERSION; servers send 3.
        auth_type: AUTH_TYPE; capfd sends NONE, a real CUCM may omit it.
    """

    command: ClassVar[Command] = Command.AUTH_REQUEST
    version: int | None = field(default=PROTOCOL_VERSION, metadata=_m(ElementTag.VERSION, _U8))
    auth_type: AuthType | int | None = field(default=None, metadata=_m(ElementTag.AUTH_TYPE, _U8, AuthType))


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthResponse(_ReasonMixin, CapfMessage):
    """AUTH_RESPONSE (2), phone → CAPF: who the phone is and its proof.

    Attributes:
        reason: REASON; phones send UPDATE_CERTIFICATE (1).
        version: VERSION; phones answer 3, Jabber 2.
        device_name: DEVICE_NAME, e.g. ``SEP001122334455``.
        password: PASSWORD, the authentication string (empty when there is none).
        certificate: CERTIFICATE, the LSC or MIC the phone authenticates with.
        signed_data: SIGNED_DATA, the SHA-1 signature over device name, NUL and certificate DER.
        sha2_signed_data: SHA2_SIGNED_DATA, the SHA-512 signature over the same data.
        sudi_data: SUDI_DATA, the SUDI certificate and its signatures over the session id (little-endian).
    """

    command: ClassVar[Command] = Command.AUTH_RESPONSE
    reason: Reason | int | None = field(default=None, metadata=_m(ElementTag.REASON, _U8, Reason))
    version: int | None = field(default=PROTOCOL_VERSION, metadata=_m(ElementTag.VERSION, _U8))
    device_name: str | None = field(default=None, metadata=_m(ElementTag.DEVICE_NAME, _STRING))
    password: str | None = field(default=None, repr=False, metadata=_m(ElementTag.PASSWORD, _STRING))
    certificate: CertificateElement | None = field(default=None, metadata=_m(ElementTag.CERTIFICATE, _CERT))
    signed_data: bytes | None = field(default=None, metadata=_m(ElementTag.SIGNED_DATA, _BYTES))
    sha2_signed_data: HashedSignature | None = field(default=None, metadata=_m(ElementTag.SHA2_SIGNED_DATA, _HASHED))
    sudi_data: SudiData | None = field(default=None, metadata=_m(ElementTag.SUDI_DATA, _SUDI))


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyGenerateRequest(CapfMessage):
    """KEY_GENERATE_REQUEST (3), CAPF → phone: generate a key pair and send the public key.

    Attributes:
        key_type: KEY_TYPE (a real CUCM may omit it and send only KEY_SIZE).
        key_size: KEY_SIZE, RSA modulus bits.
        curve: CURVE for EC keys.
    """

    command: ClassVar[Command] = Command.KEY_GENERATE_REQUEST
    key_type: KeyType | int | None = field(default=None, metadata=_m(ElementTag.KEY_TYPE, _U8, KeyType))
    key_size: int | None = field(default=None, metadata=_m(ElementTag.KEY_SIZE, _U16))
    curve: Curve | int | None = field(default=None, metadata=_m(ElementTag.CURVE, _U8, Curve))


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyGenerateResponse(_ReasonMixin, CapfMessage):
    """KEY_GENERATE_RESPONSE (4), phone → CAPF: the new public key, or a REASON without it on failure.

    Attributes:
        reason: REASON (optional on success).
        public_key: PUBLIC_KEY, DER SubjectPublicKeyInfo.
    """

    command: ClassVar[Command] = Command.KEY_GENERATE_RESPONSE
    reason: Reason | int | None = field(default=None, metadata=_m(ElementTag.REASON, _U8, Reason))
    public_key: bytes | None = field(default=None, metadata=_m(ElementTag.PUBLIC_KEY, _BYTES))

    def load_public_key(self) -> PublicKeyTypes:
        """Return PUBLIC_KEY as a ``cryptography`` public key.

        Raises:
            RemoteProtocolError: PUBLIC_KEY is missing or not a DER SubjectPublicKeyInfo.
        """
        if self.public_key is None:
            raise _missing("KEY_GENERATE_RESPONSE", "PUBLIC_KEY", self.reason)
        try:
            return load_der_public_key(self.public_key)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise RemoteProtocolError(
                "PUBLIC_KEY is not a DER SubjectPublicKeyInfo", hint="the phone must send its public key as SPKI"
            ) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class SignCertificateRequest(CapfMessage):
    """SIGN_CERTIFICATE_REQUEST (22), CAPF → phone: generate a key pair and send a CSR (this project's layout).

    Attributes:
        key_type: KEY_TYPE.
        key_size: KEY_SIZE for RSA.
        curve: CURVE for EC.
        digest: DIGEST_TYPE, the hash to sign the CSR with (SHA-256 when absent).
    """

    command: ClassVar[Command] = Command.SIGN_CERTIFICATE_REQUEST
    key_type: KeyType | int | None = field(default=None, metadata=_m(ElementTag.KEY_TYPE, _U8, KeyType))
    key_size: int | None = field(default=None, metadata=_m(ElementTag.KEY_SIZE, _U16))
    curve: Curve | int | None = field(default=None, metadata=_m(ElementTag.CURVE, _U8, Curve))
    digest: HashId | int | None = field(default=None, metadata=_m(ElementTag.DIGEST_TYPE, _U8, HashId))


@dataclass(frozen=True, slots=True, kw_only=True)
class SignCertificateResponse(_ReasonMixin, CapfMessage):
    """SIGN_CERTIFICATE_RESPONSE (23), phone → CAPF: REASON and the DER PKCS#10 (this project's layout).

    Attributes:
        reason: REASON; UPDATE_CERTIFICATE (1) with a CSR on success.
        csr: CSR (tag 0x80), the DER PKCS#10 signed with the new key.
    """

    command: ClassVar[Command] = Command.SIGN_CERTIFICATE_RESPONSE
    reason: Reason | int | None = field(default=None, metadata=_m(ElementTag.REASON, _U8, Reason))
    csr: bytes | None = field(default=None, metadata=_m(ElementTag.CSR, _BYTES))

    def load_csr(self) -> x509.CertificateSigningRequest:
        """Return the CSR, its signature checked (proof that the phone holds the key).

        Raises:
            RemoteProtocolError: CSR is missing or not DER PKCS#10.
            CapfSignatureError: The CSR's signature does not verify with its own public key.
        """
        if self.csr is None:
            raise _missing("SIGN_CERTIFICATE_RESPONSE", "CSR", self.reason)
        try:
            csr = x509.load_der_x509_csr(self.csr)
            valid = csr.is_signature_valid
        except (ValueError, TypeError, UnsupportedAlgorithm, x509.UnsupportedGeneralNameType):
            raise RemoteProtocolError(
                "CSR element is not a DER PKCS#10 request", hint="the phone must send its CSR in DER"
            ) from None
        if not valid:
            raise CapfSignatureError(
                "the phone's CSR signature does not verify with the CSR's public key",
                hint="the phone must sign the CSR with the key it generated; let it generate a new one",
            )
        return csr


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestInProgress(CapfMessage):
    """REQUEST_IN_PROGRESS (17), phone → CAPF: still generating, the response follows."""

    command: ClassVar[Command] = Command.REQUEST_IN_PROGRESS


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreCertificateRequest(CapfMessage):
    """STORE_CERTIFICATE_REQUEST (9), CAPF → phone: store this certificate.

    Attributes:
        certificate_type: CERTIFICATE_TYPE (LSC).
        certificate: CERTIFICATE, the nested certificate.
    """

    command: ClassVar[Command] = Command.STORE_CERTIFICATE_REQUEST
    certificate_type: CertificateType | int | None = field(
        default=None, metadata=_m(ElementTag.CERTIFICATE_TYPE, _U8, CertificateType)
    )
    certificate: CertificateElement | None = field(default=None, metadata=_m(ElementTag.CERTIFICATE, _CERT))


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreCertificateResponse(_ReasonMixin, CapfMessage):
    """STORE_CERTIFICATE_RESPONSE (10), phone → CAPF.

    Attributes:
        reason: REASON; UPDATE_CERTIFICATE (1) when stored.
    """

    command: ClassVar[Command] = Command.STORE_CERTIFICATE_RESPONSE
    reason: Reason | int | None = field(default=None, metadata=_m(ElementTag.REASON, _U8, Reason))


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchCertificateRequest(CapfMessage):
    """FETCH_CERTIFICATE_REQUEST (11), CAPF → phone: send your certificate (CUCM "Troubleshoot").

    Attributes:
        certificate_type: CERTIFICATE_TYPE, optional.
    """

    command: ClassVar[Command] = Command.FETCH_CERTIFICATE_REQUEST
    certificate_type: CertificateType | int | None = field(
        default=None, metadata=_m(ElementTag.CERTIFICATE_TYPE, _U8, CertificateType)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchCertificateResponse(_ReasonMixin, CapfMessage):
    """FETCH_CERTIFICATE_RESPONSE (12), phone → CAPF.

    Attributes:
        reason: REASON.
        certificates: CERTIFICATE elements (LSC and/or MIC), possibly none.
    """

    command: ClassVar[Command] = Command.FETCH_CERTIFICATE_RESPONSE
    reason: Reason | int | None = field(default=None, metadata=_m(ElementTag.REASON, _U8, Reason))
    certificates: tuple[CertificateElement, ...] = field(
        default=(), metadata=_m(ElementTag.CERTIFICATE, _CERT, repeat=True)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteCertificateRequest(CapfMessage):
    """DELETE_CERTIFICATE_REQUEST (13), CAPF → phone: delete the LSC.

    Attributes:
        certificate_type: CERTIFICATE_TYPE, optional.
    """

    command: ClassVar[Command] = Command.DELETE_CERTIFICATE_REQUEST
    certificate_type: CertificateType | int | None = field(
        default=None, metadata=_m(ElementTag.CERTIFICATE_TYPE, _U8, CertificateType)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteCertificateResponse(_ReasonMixin, CapfMessage):
    """DELETE_CERTIFICATE_RESPONSE (14), phone → CAPF.

    Attributes:
        reason: REASON; UPDATE_CERTIFICATE (1) when deleted.
    """

    command: ClassVar[Command] = Command.DELETE_CERTIFICATE_RESPONSE
    reason: Reason | int | None = field(default=None, metadata=_m(ElementTag.REASON, _U8, Reason))


@dataclass(frozen=True, slots=True, kw_only=True)
class EndSession(_ReasonMixin, CapfMessage):
    """END_SESSION (15), CAPF → phone, the session's last message.

    Attributes:
        reason: REASON: UPDATE_CERTIFICATE after a successful operation, NO_ACTION when nothing is scheduled,
            UNKNOWN_DEVICE, INVALID_ELEMENT (generic failure).
    """

    command: ClassVar[Command] = Command.END_SESSION
    reason: Reason | int | None = field(default=None, metadata=_m(ElementTag.REASON, _U8, Reason))


MESSAGE_TYPES: dict[int, type[CapfMessage]] = {
    cls.command: cls
    for cls in (
        AuthRequest,
        AuthResponse,
        KeyGenerateRequest,
        KeyGenerateResponse,
        SignCertificateRequest,
        SignCertificateResponse,
        RequestInProgress,
        StoreCertificateRequest,
        StoreCertificateResponse,
        FetchCertificateRequest,
        FetchCertificateResponse,
        DeleteCertificateRequest,
        DeleteCertificateResponse,
        EndSession,
    )
}


def parse_message(message: Message) -> CapfMessage:
    """Return the typed message for a generic one.

    Args:
        message: A decoded message.

    Returns:
        The instance of the class for its command.

    Raises:
        RemoteProtocolError: The command has no known payload (5-8, 16, 18-21, or unknown).
        FramingError: An element value does not fit its layout.
    """
    cls = MESSAGE_TYPES.get(message.command)
    if cls is None:
        raise RemoteProtocolError(
            f"CAPF command {enum_name(Command, message.command)} has no known payload",
            hint="only the commands of the install, fetch, delete and CSR exchanges are supported",
        )
    return cls.from_message(message)
