"""Layouts of CAPF element values: integers, NUL-terminated strings, the nested certificate, signatures, SUDI data.

Each layout decodes strictly (anything that would not encode back to the same bytes is a
:class:`~capf_common.FramingError`), so typed views keep the codec's round-trip identity.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, load_der_public_key

from capf_common._codec import Element
from capf_common._enums import (
    AuthType,
    CertificateType,
    Curve,
    ElementTag,
    HashId,
    KeyType,
    Reason,
    as_enum,
    enum_name,
)
from capf_common._errors import FramingError, LocalProtocolError

__all__ = [
    "CertificateElement",
    "HashedSignature",
    "SudiData",
    "decode_string",
    "decode_u8",
    "decode_u16",
    "describe_element",
    "encode_string",
    "encode_u8",
    "encode_u16",
]

_SUB_HEADER = struct.Struct(">BH")
_NESTED_CERTIFICATE_TAG = 0x01
_SUDI_CERTIFICATE_TAG = 0x00


def _bad(what: str, hint: str = "the sender's element layout is wrong") -> FramingError:
    return FramingError(what, hint=hint)


def encode_u8(value: int) -> bytes:
    """Encode a one-byte element value.

    Raises:
        LocalProtocolError: ``value`` is not 0..255.
    """
    if not 0 <= value <= 0xFF:
        raise LocalProtocolError(f"{value} does not fit one byte", hint="use a value from 0 to 255")
    return bytes([value])


def decode_u8(value: bytes, tag: int = 0) -> int:
    """Decode a one-byte element value.

    Raises:
        FramingError: The value is not exactly one byte.
    """
    if len(value) != 1:
        raise _bad(f"{enum_name(ElementTag, tag)} holds {len(value)} bytes where one byte belongs")
    return value[0]


def encode_u16(value: int) -> bytes:
    """Encode a two-byte big-endian element value.

    Raises:
        LocalProtocolError: ``value`` is not 0..65535.
    """
    if not 0 <= value <= 0xFFFF:
        raise LocalProtocolError(f"{value} does not fit 16 bits", hint="use a value from 0 to 65535")
    return value.to_bytes(2, "big")


def decode_u16(value: bytes, tag: int = 0) -> int:
    """Decode a two-byte big-endian element value.

    Raises:
        FramingError: The value is not exactly two bytes.
    """
    if len(value) != 2:
        raise _bad(f"{enum_name(ElementTag, tag)} holds {len(value)} bytes where two belong")
    return int.from_bytes(value, "big")


def encode_string(text: str) -> bytes:
    """Encode a NUL-terminated UTF-8 string (DEVICE_NAME, PASSWORD)."""
    return text.encode("utf-8") + b"\x00"


def decode_string(value: bytes, tag: int = 0) -> str:
    """Decode a NUL-terminated UTF-8 string; the one terminating NUL is removed.

    Raises:
        FramingError: The value lacks the NUL terminator or is not UTF-8.
    """
    name = enum_name(ElementTag, tag)
    if not value.endswith(b"\x00"):
        raise _bad(f"{name} string lacks its terminating NUL byte")
    try:
        return value[:-1].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad(f"{name} string is not UTF-8 ({exc.reason} at byte {exc.start})") from None


def _split_sub_elements(value: bytes, name: str) -> list[tuple[int, bytes]]:
    parts: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(value):
        if len(value) - offset < _SUB_HEADER.size:
            raise _bad(f"{name} ends inside a sub-element header")
        tag, length = _SUB_HEADER.unpack_from(value, offset)
        offset += _SUB_HEADER.size
        if length > len(value) - offset:
            raise _bad(f"{name} sub-element {tag} declares {length} bytes, only {len(value) - offset} remain")
        parts.append((tag, value[offset : offset + length]))
        offset += length
    return parts


def _sub_element(tag: int, value: bytes, name: str) -> bytes:
    if len(value) > 0xFFFF:
        raise LocalProtocolError(f"{name} part has {len(value)} bytes, more than 65535", hint="use a smaller value")
    return _SUB_HEADER.pack(tag, len(value)) + value


@dataclass(frozen=True, slots=True)
class CertificateElement:
    """The nested CERTIFICATE value: ``01 | u16 (len(der)+2) | u16 certificate type | DER``.

    Attributes:
        der: The DER certificate.
        certificate_type: LSC (1) or MIC (2); a real CUCM sends 1 when storing an LSC.
    """

    der: bytes
    certificate_type: CertificateType | int = CertificateType.LSC

    @classmethod
    def from_certificate(
        cls, certificate: x509.Certificate, certificate_type: CertificateType | int = CertificateType.LSC
    ) -> CertificateElement:
        """Wrap a ``cryptography`` certificate."""
        return cls(certificate.public_bytes(Encoding.DER), certificate_type)

    def load(self) -> x509.Certificate:
        """Return the certificate as a ``cryptography`` object.

        Raises:
            FramingError: The DER is not an X.509 certificate.
        """
        try:
            return x509.load_der_x509_certificate(self.der)
        except ValueError:
            raise _bad("CERTIFICATE does not hold a DER X.509 certificate") from None

    def encode(self) -> bytes:
        """Return the element value.

        Raises:
            LocalProtocolError: The certificate is too large or the type does not fit 16 bits.
        """
        return _sub_element(_NESTED_CERTIFICATE_TAG, encode_u16(self.certificate_type) + self.der, "CERTIFICATE")

    @classmethod
    def decode(cls, value: bytes) -> CertificateElement:
        """Parse an element value.

        Raises:
            FramingError: The value is not the nested layout.
        """
        parts = _split_sub_elements(value, "CERTIFICATE")
        if len(parts) != 1 or parts[0][0] != _NESTED_CERTIFICATE_TAG or len(parts[0][1]) < 2:
            raise _bad("CERTIFICATE value is not one nested certificate (01 | u16 length | u16 type | DER)")
        inner = parts[0][1]
        return cls(inner[2:], as_enum(CertificateType, int.from_bytes(inner[:2], "big")))


@dataclass(frozen=True, slots=True)
class HashedSignature:
    """A signature tagged with its hash: ``u8 hash id | u16 length | signature`` (SHA2_SIGNED_DATA, SUDI parts).

    Attributes:
        hash_id: The hash the signature was made over (SHA-512 in practice).
        signature: The signature bytes.
    """

    hash_id: HashId | int
    signature: bytes

    def encode(self) -> bytes:
        """Return the element value.

        Raises:
            LocalProtocolError: The hash id is not a byte or the signature is too long.
        """
        encode_u8(self.hash_id)
        return _sub_element(self.hash_id, self.signature, "signature")

    @classmethod
    def decode(cls, value: bytes) -> HashedSignature:
        """Parse an element value.

        Raises:
            FramingError: The value is not exactly one hashed signature.
        """
        parts = _split_sub_elements(value, "SHA2_SIGNED_DATA")
        if len(parts) != 1:
            raise _bad(f"SHA2_SIGNED_DATA holds {len(parts)} parts where one signature belongs")
        return cls(as_enum(HashId, parts[0][0]), parts[0][1])


@dataclass(frozen=True, slots=True)
class SudiData:
    """The SUDI_DATA value: ``00 | u16 len | SUDI DER`` followed by hashed signatures (SHA-1, then SHA-512).

    The signatures cover the session id as a little-endian u32 followed by the SUDI certificate's DER.

    Attributes:
        certificate: The SUDI certificate (DER).
        signatures: The signatures in wire order.
    """

    certificate: bytes
    signatures: tuple[HashedSignature, ...] = ()

    def signature(self, hash_id: HashId) -> bytes | None:
        """Return the signature made with ``hash_id``, or ``None``."""
        return next((s.signature for s in self.signatures if s.hash_id == hash_id), None)

    def encode(self) -> bytes:
        """Return the element value.

        Raises:
            LocalProtocolError: A part is too long.
        """
        head = _sub_element(_SUDI_CERTIFICATE_TAG, self.certificate, "SUDI certificate")
        return head + b"".join(s.encode() for s in self.signatures)

    @classmethod
    def decode(cls, value: bytes) -> SudiData:
        """Parse an element value.

        Raises:
            FramingError: The value does not start with the certificate part or a part is truncated.
        """
        parts = _split_sub_elements(value, "SUDI_DATA")
        if not parts or parts[0][0] != _SUDI_CERTIFICATE_TAG:
            raise _bad("SUDI_DATA does not start with its certificate part (tag 0)")
        if any(tag == _SUDI_CERTIFICATE_TAG for tag, _ in parts[1:]):
            raise _bad("SUDI_DATA holds more than one certificate part")
        return cls(parts[0][1], tuple(HashedSignature(as_enum(HashId, t), v) for t, v in parts[1:]))


_U8_ENUMS: dict[int, type[Reason | AuthType | CertificateType | KeyType | Curve | HashId] | None] = {
    ElementTag.REASON: Reason,
    ElementTag.CERTIFICATE_TYPE: CertificateType,
    ElementTag.VERSION: None,
    ElementTag.AUTH_TYPE: AuthType,
    ElementTag.KEY_TYPE: KeyType,
    ElementTag.CURVE: Curve,
    ElementTag.DIGEST_TYPE: HashId,
}


def _key_text(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    return type(key).__name__


def _der_summary(tag: int, value: bytes) -> str:
    """A one-line summary of a PUBLIC_KEY or CSR value, or why it does not parse."""
    try:
        if tag == ElementTag.PUBLIC_KEY:
            return f"{_key_text(load_der_public_key(value))} public key"
        csr = x509.load_der_x509_csr(value)
        checked = "signature valid" if csr.is_signature_valid else "SIGNATURE INVALID"
        return f"PKCS#10 for {csr.subject.rfc4514_string()}, {_key_text(csr.public_key())} key, {checked}"
    except (ValueError, TypeError, UnsupportedAlgorithm, x509.UnsupportedGeneralNameType) as exc:
        return f"does not parse ({type(exc).__name__})"


def describe_element(element: Element) -> dict[str, Any]:
    """Describe an element for people and JSON: tag, name, length and the decoded value.

    Values that do not fit their tag's layout, and unknown tags, are shown as hex with ``"raw": true``; this
    function never raises for any element.

    Args:
        element: The element.

    Returns:
        A JSON-serialisable dictionary.
    """
    out: dict[str, Any] = {"tag": int(element.tag), "name": element.name, "length": len(element.value)}
    tag, value = element.tag, element.value
    try:
        if tag in _U8_ENUMS:
            number = decode_u8(value, tag)
            enum_type = _U8_ENUMS[tag]
            out["value"] = number if enum_type is None else {"number": number, "name": enum_name(enum_type, number)}
        elif tag in (ElementTag.KEY_SIZE, ElementTag.RETRY_DELAY):
            out["value"] = decode_u16(value, tag)
        elif tag == ElementTag.PASSWORD:
            decode_string(value, tag)
            out["value"] = "<hidden>" if len(value) > 1 else ""
        elif tag == ElementTag.DEVICE_NAME:
            out["value"] = decode_string(value, tag)
        elif tag == ElementTag.CERTIFICATE:
            cert = CertificateElement.decode(value)
            out["value"] = {
                "certificate_type": enum_name(CertificateType, cert.certificate_type),
                "der_length": len(cert.der),
                "der": cert.der.hex(),
            }
        elif tag == ElementTag.SHA2_SIGNED_DATA:
            sig = HashedSignature.decode(value)
            out["value"] = {"hash": enum_name(HashId, sig.hash_id), "signature": sig.signature.hex()}
        elif tag == ElementTag.SUDI_DATA:
            sudi = SudiData.decode(value)
            out["value"] = {
                "certificate": sudi.certificate.hex(),
                "signatures": [
                    {"hash": enum_name(HashId, s.hash_id), "signature": s.signature.hex()} for s in sudi.signatures
                ],
            }
        elif tag == ElementTag.SIGNED_DATA:
            out["value"] = {"signature": value.hex()}
        elif tag in (ElementTag.PUBLIC_KEY, ElementTag.CSR):
            out["value"] = {"der": value.hex(), "summary": _der_summary(tag, value)}
        else:
            out["value"] = value.hex()
            out["raw"] = True
    except FramingError as exc:
        out["value"] = value.hex()
        out["raw"] = True
        out["error"] = exc.cause
    return out
